#!/usr/bin/env python3
"""Validate a node's PyTorch environment with verdicts (see README.md and env_validation/checks.py).

python validate_env.py                                  # this node: table, OK/FAILED, exit code
python validate_env.py --instance-type p5.48xlarge --json
python validate_env.py --summarize results/ --expect-nodes n1,n2
"""

import sys

from env_validation.cli import main

if __name__ == "__main__":
    sys.exit(main())
