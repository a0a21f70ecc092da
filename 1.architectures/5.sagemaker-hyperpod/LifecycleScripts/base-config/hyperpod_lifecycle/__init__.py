"""The HyperPod (Slurm) lifecycle program: standard library only, it runs before anything is installed."""

__version__ = "1.0.0"
