#!/bin/bash
# Debian/Ubuntu packages the test bed needs: Slurm (slurmctld, slurmd, client) and munge for the
# local cluster, Prometheus (+ promtool) and the node exporter, gettext-base (envsubst, used by the
# Makefiles' k8s targets), systemd (systemd-analyze checks the exporter's unit file).
# Idempotent: installs only what is missing. Without root it prints the command to run and exits 0,
# so a developer laptop still gets the rest of `make test` (tests needing these skip with a reason).
set -euo pipefail

packages=(slurmctld slurmd slurm-client munge prometheus prometheus-node-exporter gettext-base systemd openmpi-bin)
# Machine images (2.ami_and_containers): debootstrap (the roles' throw-away root file system) and Packer
# (fmt and validate).
packages+=(debootstrap packer)
# Container builds (docker-marked tests): as root, testbed/docker.py starts Debian's dockerd for the session
# when no daemon answers; the images build FROM bases made here from Debian packages (no registry needed).
packages+=(docker.io)
# Node.js: the pcluster CLI (1.architectures/2.aws-parallelcluster) needs it for create-cluster (AWS CDK).
packages+=(nodejs)
# The docs session (make docs): Graphviz renders the architecture diagrams; Chromium and its driver
# check the built site in a headless browser.
packages+=(graphviz chromium chromium-driver)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "system-deps: all present (${packages[*]})"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "system-deps: missing ${missing[*]}; install with: sudo make system-deps" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "system-deps: missing ${missing[*]} and apt-get is not available; install them with your package manager" >&2
    exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
