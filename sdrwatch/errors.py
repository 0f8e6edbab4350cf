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
