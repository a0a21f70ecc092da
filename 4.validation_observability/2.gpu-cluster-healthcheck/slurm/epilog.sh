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
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -f $here/healthcheck.env ]]; then
    # shellcheck source=/dev/null  # site settings, see healthcheck.env.example
    source "$here/healthcheck.env"
fi
results=()
if [[ -n ${HEALTHCHECK_RESULTS:-} ]]; then
    results=(--json-out "$HEALTHCHECK_RESULTS/${SLURMD_NODENAME:-$(hostname -s)}-epilog.json")
fi
exec "${HEALTHCHECK_PYTHON:-python3}" "$here/../healthcheck.py" run --checks "${EPILOG_CHECKS:-fast}" --drain \
    --after-job-exit "${SLURM_JOB_EXIT_CODE2:-0:0}" "${results[@]}"
