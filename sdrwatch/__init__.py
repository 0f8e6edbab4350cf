"""sdrwatch: catch wireless cheating devices at exam sites with RTL-SDR receivers."""

__version__ = "0.1.0"
