# picotron training image for GPU clusters, on the training base of 2.ami_and_containers/2.containers (CUDA,
# EFA with aws-ofi-nccl, NCCL, GDRCopy): picotron at a pinned commit with that commit's own requirements
# (torch 2.1.0, flash-attn 2.5.0, ...), and configs/.
# Build the base first (make -C ../../../2.ami_and_containers/2.containers base), then (from this folder):
# make container  — ARG defaults come from 2.ami_and_containers/versions.yaml.
ARG TRAINING_BASE_IMAGE=distributed-training-base:cuda12.9.1-efa1.47.0-nccl2.29.3-1
FROM ${TRAINING_BASE_IMAGE}

# A commit, never a branch: picotron has no releases and its main branch moves.
ARG PICOTRON_VERSION=59714b1bf25541dbeb6f5a721ed15f6d0768e786

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-dev \
 && rm -rf /var/lib/apt/lists/*

# picotron at the pinned commit (not on PyPI). Its requirements.txt pins torch, triton, numpy, datasets,
# transformers and flash-attn; ours pins the two it leaves open (wandb, huggingface_hub), hf_transfer and
# flash-attn's build tools.
WORKDIR /opt/picotron
RUN git init -q . \
 && git fetch -q --depth 1 https://github.com/huggingface/picotron.git "${PICOTRON_VERSION}" \
 && git checkout -q --detach FETCH_HEAD \
 && test "$(git rev-parse HEAD)" = "${PICOTRON_VERSION}"
COPY requirements.txt /opt/picotron-case/requirements.txt
# flash-attn builds against the installed torch: torch (and the rest of the commit's pins) first, then
# flash-attn without build isolation (its setup fetches the matching prebuilt wheel when one exists).
RUN grep -v '^flash-attn' requirements.txt > /tmp/picotron-requirements.txt \
 && python3 -m pip install --no-cache-dir -r /tmp/picotron-requirements.txt -r /opt/picotron-case/requirements.txt \
 && python3 -m pip install --no-cache-dir --no-build-isolation "$(grep '^flash-attn==' requirements.txt)" \
 && python3 -m pip install --no-cache-dir --no-deps -e /opt/picotron \
 && rm /tmp/picotron-requirements.txt

WORKDIR /workspace/picotron
COPY configs/ configs/
COPY src/ src/

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG TRAINING_BASE_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["python3", "src/picotron_config.py", "--list"]
