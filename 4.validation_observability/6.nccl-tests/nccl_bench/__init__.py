"""NCCL/gloo collective benchmarks and nccl-tests output verdicts (see the folder's README)."""

__version__ = "0.1.0"
