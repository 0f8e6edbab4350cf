"""The one exception family sdrwatch raises for bad input; the CLI turns it into a one-line error."""


class SdrwatchError(Exception):
    """Bad input or an unusable resource. ``str(err)`` is the one line shown to the user."""


class RecordingError(SdrwatchError):
    """A recording that cannot be read: missing, truncated, wrong format or incomplete metadata."""


class SourceError(SdrwatchError):
    """A receiver that cannot be opened or used: unknown URI, no device, library missing, link lost."""


class PlanError(SdrwatchError):
    """A sweep plan or setting the receiver cannot do (frequency gap, invalid sample rate, unknown gain)."""


class BaselineError(SdrwatchError):
    """A baseline file that is missing, corrupt, or does not match the recording it is used with."""


class LinkLost(SourceError):
    """A receiver link that stopped delivering samples within its deadline (closed, reset, stalled or
    trickling, and not regained by reconnecting). ``str(err)`` says what happened, in one line.

    The source stays usable: the next ``read`` reconnects from scratch with a fresh deadline. A
    one-shot command (``record``) stops on it; a long-running agent reports it as health
    (``receiver_lost``) and keeps reading, which is how it retries forever.
    Attributes: ``uri``, ``reason`` (the last failure), ``waited_s`` (time without samples),
    ``reconnects`` (successful reconnects during the wait).
    """

    def __init__(self, message: str, *, uri: str = "", reason: str = "", waited_s: float = 0.0, reconnects: int = 0):
        super().__init__(message)
        self.uri, self.reason, self.waited_s, self.reconnects = uri, reason, waited_s, reconnects
