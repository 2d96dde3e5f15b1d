"""tunnel-tui: reach private databases through SSH bastions."""

__version__ = "0.1.0"
