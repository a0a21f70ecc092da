# shellcheck shell=bash
# Sourced by prolog.sh and epilog.sh: site settings from healthcheck.env next to this file, then
# run_healthcheck HOOK ARGS... execs `healthcheck.py run ARGS...`, with --json-out
# $HEALTHCHECK_RESULTS/<node>-HOOK.json when HEALTHCHECK_RESULTS is set.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -f $here/healthcheck.env ]]; then
    # shellcheck source=/dev/null  # site settings, see healthcheck.env.example
    source "$here/healthcheck.env"
fi

run_healthcheck() {
    local hook=$1
    shift
    local results=()
    if [[ -n ${HEALTHCHECK_RESULTS:-} ]]; then
        results=(--json-out "$HEALTHCHECK_RESULTS/${SLURMD_NODENAME:-$(hostname -s)}-$hook.json")
    fi
    exec "${HEALTHCHECK_PYTHON:-python3}" "$here/../healthcheck.py" run "$@" "${results[@]}"
}
