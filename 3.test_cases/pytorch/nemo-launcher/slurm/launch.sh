#!/bin/bash
# Run the NeMo Framework Launcher (NeMo 1.0) for PRESET on the login node: it writes one sbatch per stage
# and submits it (pyxis/enroot run the NeMo container on the compute nodes).
#
#   PRESET=gpt3_5b bash slurm/launch.sh                              # stages from conf/cluster.overrides
#   PRESET=llama3_8b bash slurm/launch.sh stages=[data_preparation]  # extra Hydra overrides after the script
#   DRY_RUN=1 bash slurm/launch.sh                                   # print the command, run nothing
#   NEMO_LAUNCHER_DEBUG=1 bash slurm/launch.sh                       # the launcher writes the sbatch only
#
# Environment (all optional): PRESET (default gpt3_5b; conf/presets/), LAUNCHER_DIR (the launcher_scripts
# folder bootstrap.sbatch copied out of the container, default $SHARED_DIR/nemo-launcher/launcher_scripts),
# SHARED_DIR (default /fsx), PYTHON (default python3: the venv of `make venv`), INSTANCE_TYPE (the compute
# nodes' type, for the EFA/NCCL variables; default p5.48xlarge), EFA (default 1; 0: none).
set -euo pipefail

case_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRESET=${PRESET:-gpt3_5b}
SHARED_DIR=${SHARED_DIR:-/fsx}
LAUNCHER_DIR=${LAUNCHER_DIR:-$SHARED_DIR/nemo-launcher/launcher_scripts}
PYTHON=${PYTHON:-python3}
INSTANCE_TYPE=${INSTANCE_TYPE:-p5.48xlarge}

# The EFA/NCCL variables slurm/efa-env.sh sets on an EFA node of INSTANCE_TYPE, for the launcher's
# env_vars (the launcher writes them into each stage's sbatch). This login node has no EFA device, so the
# script is asked about one (EFA_SYSFS pointing at a folder holding one device entry).
efa_env=()
if [[ ${EFA:-1} == 1 ]]; then
    probe=$(mktemp -d)
    mkdir "$probe/efa0"
    # shellcheck disable=SC2016  # $1 expands in the inner bash
    mapfile -t efa_env < <(env -i PATH="$PATH" INSTANCE_TYPE="$INSTANCE_TYPE" EFA_SYSFS="$probe" \
        bash -c 'source "$1" && env' _ "$case_dir/slurm/efa-env.sh" | grep -E '^(FI|NCCL)_' | sort)
    rm -rf "$probe"
fi

check=()
if [[ -f $LAUNCHER_DIR/conf/config.yaml ]]; then
    check=(--conf "$LAUNCHER_DIR/conf")  # compose against the launcher's own configs before submitting
fi
overrides=$("$PYTHON" "$case_dir/src/launcher_overrides.py" --preset "$PRESET" "${check[@]}" \
    --env "${efa_env[@]}" -- "$@")
mapfile -t overrides <<<"$overrides"
command=("$PYTHON" "$LAUNCHER_DIR/main.py" "${overrides[@]}")

if [[ ${DRY_RUN:-0} == 1 ]]; then
    printf '%q ' "${command[@]}"
    echo
    exit 0
fi
if [[ ! -f $LAUNCHER_DIR/main.py ]]; then
    echo "error: no launcher at $LAUNCHER_DIR/main.py; run 'sbatch slurm/bootstrap.sbatch' first or set LAUNCHER_DIR" >&2
    exit 2
fi
HYDRA_FULL_ERROR=1 exec "${command[@]}"
