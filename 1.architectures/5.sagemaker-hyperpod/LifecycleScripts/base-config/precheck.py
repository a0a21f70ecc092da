#!/usr/bin/env python3
"""Check a live HyperPod node (docker, enroot, /fsx, pyxis, slurmd, /home): python3 precheck.py [--json]."""

import sys

from hyperpod_lifecycle.precheck import main

if __name__ == "__main__":
    sys.exit(main())
