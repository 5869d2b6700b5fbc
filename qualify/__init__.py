"""qualify — hardware burn-in and qualification of server nodes."""

__version__ = "0.1.0"
