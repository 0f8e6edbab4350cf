"""The ``sdrwatch`` command line: thin click commands that parse options and call the layers.

Each command lives in its own module of this package and is registered in ``COMMANDS`` below.
Every :class:`~sdrwatch.errors.SdrwatchError` (and a few OS errors a user can cause, such as a full
disk) becomes one line on stderr and a non-zero exit; tracebacks are for bugs only.
"""
from __future__ import annotations

import errno
import importlib
import os
import signal
import sys

import click

from .. import __version__
from ..errors import SdrwatchError

#: command name -> "module:attribute"; modules are imported only when their command runs
COMMANDS = {
    "replay": "sdrwatch.cli.replay:replay",
    "baseline": "sdrwatch.cli.replay:baseline",
    "evaluate": "sdrwatch.cli.replay:evaluate",
    "bench": "sdrwatch.cli.bench:bench",
    "record": "sdrwatch.cli.record:record",
    "devices": "sdrwatch.cli.devices:devices",
    "simulate": "sdrwatch.cli.simulate:simulate",
    "demo": "sdrwatch.cli.demo:demo",
    "plot": "sdrwatch.cli.plot:plot",
    "report": "sdrwatch.cli.report:report",
    "seal": "sdrwatch.cli.seal:seal",
    "console": "sdrwatch.cli.console:console",
    "verify": "sdrwatch.cli.verify:verify",
    "confusion": "sdrwatch.cli.confusion:confusion",
    "check": "sdrwatch.cli.check:check",
    "plan": "sdrwatch.cli.plan:plan",
    "agent": "sdrwatch.cli.agent:agent",
    "keys": "sdrwatch.cli.keys:keys",
    "collector": "sdrwatch.cli.collector:collector",
    "loadgen": "sdrwatch.cli.loadgen:loadgen",
}

import warnings  # noqa: E402

# numpy's overflow/invalid-value warnings on absurd but readable input must not spill several lines
# onto the terminal; what matters is caught and reported as one line by the readers and the detector
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"sdrwatch\.")

EXIT_BAD_INPUT = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_USAGE = 2  # a bad option or argument, as click reports it
EXIT_CLOSED_STDOUT = 0  # stdout closed by its reader (`sdrwatch ... | head`): the reader had enough

#: signals that end a command like Ctrl-C: SIGTERM (kill, systemd), SIGHUP (the ssh session dropped),
#: SIGQUIT (Ctrl-\); writers clean up their partial files on the way out
TERMINATING_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n))


def _terminate(signum, frame) -> None:
    """A terminating signal ends a command like Ctrl-C: writers clean up their partial files on the way out."""
    raise KeyboardInterrupt


def _fd_identity(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _exit_closed_stdout() -> None:
    """The reader of stdout went away: point stdout at /dev/null (so the interpreter's final flush
    cannot fail again) and exit with the one closed-stdout code."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    sys.exit(EXIT_CLOSED_STDOUT)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, so ``--help`` and each command start fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attr)

    def main(self, *args, **kwargs):  # noqa: D401 - click API
        """Usage errors (a bad option value, a missing argument) are one ``error:`` line too, exit 2."""
        kwargs.setdefault("standalone_mode", True)
        _one_blas_thread()
        try:
            for sig in TERMINATING_SIGNALS:
                signal.signal(sig, _terminate)
        except ValueError:  # not the main thread (an embedding program's worker): leave signals alone
            pass
        stdout_was = _fd_identity(1)
        try:
            result = super().main(*args, **{**kwargs, "standalone_mode": False})
            sys.stdout.flush()  # a reader that left after the last write shows up here, not at exit
            return result
        except BrokenPipeError:
            _exit_closed_stdout()
        except SystemExit as exc:
            # rich (like the Python docs' recipe) answers a closed stdout by pointing it at /dev/null and
            # exiting 1; give it the same code as every other command
            # (and click wraps stdout in its PacifyFlushWrapper, _PacifyFlushWrapper from 8.5, and exits 1)
            if exc.code not in (0, None) and (type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper" or (
                    stdout_was is not None and _fd_identity(1) != stdout_was
                    and _fd_identity(1) == _fd_identity_of_devnull())):
                _exit_closed_stdout()
            raise
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            sys.exit(0)
        except click.UsageError as exc:
            hint = f" (see 'sdrwatch {exc.ctx.command_path.split(' ', 1)[1]} --help')" if exc.ctx and " " in exc.ctx.command_path else ""
            click.echo(f"error: {one_line(exc.format_message())}{hint}", err=True)
            sys.exit(EXIT_USAGE)
        except click.exceptions.Abort:
            click.echo("error: interrupted; nothing partial was kept", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)

    def invoke(self, ctx: click.Context):  # noqa: D401 - click API
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("error: interrupted; nothing partial was kept", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except SdrwatchError as exc:
            fail(str(exc))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                fail(f"disk full while writing {exc.filename or 'output'}: nothing partial was kept")
            if exc.errno == errno.EPIPE:
                _exit_closed_stdout()
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else f"{exc.strerror or exc}")
        except UnicodeDecodeError as exc:
            fail(f"input is not UTF-8 text ({exc.reason} at byte {exc.start})")


def _fd_identity_of_devnull() -> tuple[int, int] | None:
    try:
        st = os.stat(os.devnull)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def one_line(message: str) -> str:
    """``message`` with control characters (a newline in a file name, an escape sequence) shown escaped,
    so an error stays one line and cannot paint the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))


def fail(message: str) -> None:
    """Print ``error: MESSAGE`` on one line to stderr and exit non-zero."""
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _one_blas_thread() -> None:
    """sdrwatch's numpy work is elementwise, FFTs and small reductions, none of it BLAS; OpenBLAS's
    thread pool only costs start-up (about 0.07 s of ``import numpy`` on 2 cores) and competes with
    the receivers' and the spectrum engine's threads. One BLAS thread, unless the user chose."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sdrwatch")
def main() -> None:
    """sdrwatch: catch wireless cheating devices at exam sites with RTL-SDR receivers.

    \b
    Examples:
      sdrwatch demo                                   # the whole station on simulated sites
      sdrwatch agent --config examples/sim-site.toml  # a site agent
      sdrwatch replay recordings/fm-voice-appears     # emissions in a recording
      sdrwatch replay REC --baseline BASE --format jsonl
    """
