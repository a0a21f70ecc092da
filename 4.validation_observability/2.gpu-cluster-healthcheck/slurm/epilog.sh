#!/bin/bash
# Slurm Epilog: after a job that failed (non-zero exit or a signal, SLURM_JOB_EXIT_CODE2), run the fast
# health checks on each of its nodes and drain a node whose check fails, with the reason. A job that
# succeeded costs nothing: the checks are skipped.
#
#   slurm.conf:  Epilog=/opt/gpu-healthcheck/slurm/epilog.sh
#
# Site settings live in healthcheck.env next to this script (see healthcheck.env.example).
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/amazon/efa/bin
# shellcheck source=/dev/null  # hook-common.sh: healthcheck.env, run_healthcheck
source "$(dirname "${BASH_SOURCE[0]}")/hook-common.sh"
run_healthcheck epilog --checks "${EPILOG_CHECKS:-fast}" --drain --after-job-exit "${SLURM_JOB_EXIT_CODE2:-0:0}"
