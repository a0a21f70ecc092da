"""PyTorch environment validation: checks with verdicts, not a printout (see the folder's README)."""

__version__ = "0.1.0"
