#!/usr/bin/env python3
"""GPU node health checks with stable IDs (see README.md and gpu_healthcheck/checks.py).

python3 healthcheck.py run                        # the fast checks on this node
python3 healthcheck.py run --checks all --instance-type p5.48xlarge --json-out results/$(hostname).json
python3 healthcheck.py list
python3 healthcheck.py aggregate results/*.json
"""

import sys

from gpu_healthcheck.cli import main

if __name__ == "__main__":
    sys.exit(main())
