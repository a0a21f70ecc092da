#!/usr/bin/env python3
"""SageMaker HyperPod (Slurm) lifecycle program: python3 lifecycle.py --help (standard library only)."""

import sys

from hyperpod_lifecycle.cli import main

if __name__ == "__main__":
    sys.exit(main())
