"""``python -m testbed.slurm up | status | down``."""

import sys

from testbed.slurm.cli import main

sys.exit(main())
