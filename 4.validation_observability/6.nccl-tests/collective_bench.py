#!/usr/bin/env python3
"""Collective benchmark over torch.distributed with nccl-tests' output (see nccl_bench/bench.py).

torchrun --nproc-per-node 2 collective_bench.py -b 8 -e 32M -f 2          # CPU: gloo
torchrun --nproc-per-node 8 collective_bench.py -b 8 -e 8G --instance-type p5.48xlarge
"""

import sys

from nccl_bench.bench import main

if __name__ == "__main__":
    sys.exit(main())
