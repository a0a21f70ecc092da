#!/usr/bin/env python3
"""Verdicts on nccl-tests logs: table, CSV, JSON and a busbw plot (see nccl_bench/report.py).

python nccl_report.py all_reduce.log --instance-type p5.48xlarge --plot busbw.png
"""

import sys

from nccl_bench.report import main

if __name__ == "__main__":
    sys.exit(main())
