#!/bin/bash
# HyperPod runs this on every node when it is created (LifeCycleConfig.OnCreate). It only finds
# the inputs and hands over to the lifecycle program; all logic, retries and status lines live there.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RESOURCE_CONFIG="${RESOURCE_CONFIG:-/opt/ml/config/resource_config.json}"
LOG="${LIFECYCLE_LOG:-/var/log/provision/provisioning.log}"

mkdir -p "$(dirname "$LOG")"
echo "on_create: $(date -u +%FT%TZ) running lifecycle.py (log: $LOG)"
python3 "$HERE/lifecycle.py" \
  --resource-config "$RESOURCE_CONFIG" \
  --provisioning-parameters "$HERE/provisioning_parameters.json" \
  "$@" 2>&1 | tee -a "$LOG"
