#!/bin/bash
# A stand-in for the python:3.11-slim base image, made from Debian packages, for build hosts that reach a
# Debian mirror and PyPI but not Docker Hub (air-gapped builders, the test bed of this repository):
#   sudo ./local-python-base.sh distributed-training-local/python:3.11-bookworm [MINBASE]
#   docker build --network host --build-arg PYTHON_SLIM_IMAGE=distributed-training-local/python:3.11-bookworm ...
# MINBASE: a tree made before with `debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,
# ca-certificates`, copied instead of running debootstrap again. Needs root, debootstrap and a Docker daemon.
# The build host's extra certificate authorities (/usr/local/share/ca-certificates) are trusted inside too,
# as a build behind a TLS-inspecting proxy needs.
set -euo pipefail

tag=${1:-}
minbase=${2:-}
mirror=${DEBOOTSTRAP_MIRROR:-http://deb.debian.org/debian}
suite=${DEBOOTSTRAP_SUITE:-bookworm}
if [[ -z $tag || $tag != *:* ]]; then
    echo "error: give the image tag to create, e.g. $0 distributed-training-local/python:3.11-bookworm" >&2
    exit 2
fi
for program in debootstrap docker; do
    if ! command -v "$program" >/dev/null; then
        echo "error: $program is not installed; install it (make system-deps) and run again" >&2
        exit 2
    fi
done
if [[ -n $minbase && ! -x $minbase/usr/bin/pip3 ]]; then
    echo "error: $minbase has no usr/bin/pip3; give a minbase tree with python3-pip, or leave it out" >&2
    exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "error: debootstrap needs root; run: sudo $0 $tag" >&2
    exit 2
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
if [[ -n $minbase ]]; then
    cp -a "$minbase/." "$root/"
else
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates "$suite" "$root" "$mirror" >/dev/null
fi
# mktemp makes the folder 0700; it becomes the image's / and non-root users must traverse it.
chmod 0755 "$root"
# python:slim has `python` and lets pip install into the system interpreter (no PEP 668 marker).
ln -sf python3 "$root/usr/bin/python"
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
shopt -s nullglob
extra=(/usr/local/share/ca-certificates/*.crt)
if [[ ${#extra[@]} -gt 0 ]]; then
    cp "${extra[@]}" "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null
fi
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
tar -C "$root" -c . | docker import --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "$tag"
