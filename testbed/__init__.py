"""Local stand-ins for a cluster and a cloud, used to run the reference assets as users do.

Nothing here is reference logic: the modules start real components (Slurm, an AWS emulator,
Prometheus) on loopback and drive the repository's own scripts as subprocesses.
"""
