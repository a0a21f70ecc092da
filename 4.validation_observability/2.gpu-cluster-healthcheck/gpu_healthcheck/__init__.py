"""GPU node health checks with stable IDs, severities and Slurm integration (see the folder's README)."""

__version__ = "0.1.0"
