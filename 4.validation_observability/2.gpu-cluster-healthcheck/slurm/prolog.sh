#!/bin/bash
# Slurm Prolog: the fast health checks on every node of a new allocation. A failed check drains the
# node with a reason that names it ("healthcheck GPU003 isolate: Xid 79 ..."), and the non-zero exit
# makes Slurm requeue the job onto other nodes.
#
#   slurm.conf:  Prolog=/opt/gpu-healthcheck/slurm/prolog.sh
#                PrologFlags=Alloc        # run at allocation, on every node of the job
#
# Site settings live in healthcheck.env next to this script (see healthcheck.env.example).
set -uo pipefail
# slurmd runs prologs with an almost empty environment (no PATH).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/amazon/efa/bin
# shellcheck source=/dev/null  # hook-common.sh: healthcheck.env, run_healthcheck
source "$(dirname "${BASH_SOURCE[0]}")/hook-common.sh"
run_healthcheck prolog --checks "${PROLOG_CHECKS:-fast}" --drain
