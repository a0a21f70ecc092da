# torchtitan image for GPU clusters: Python 3.11, torch and torchtitan on the training base of
# 2.ami_and_containers/2.containers (CUDA, EFA with aws-ofi-nccl, NCCL, GDRCopy).
# Build the base first (make -C ../../../2.ami_and_containers/2.containers base), then (from this folder):
# make container  — ARG defaults come from 2.ami_and_containers/versions.yaml.
ARG TRAINING_BASE_IMAGE=distributed-training-base:cuda12.9.1-efa1.47.0-nccl2.29.3-1
FROM ${TRAINING_BASE_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG TORCHTITAN_VERSION=0.3.0
ARG TORCHAO_VERSION=0.18.0

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:${PATH}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# torchtitan needs Python 3.11 or later; Ubuntu 22.04's python3 is 3.10, python3.11 is packaged beside it.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
 && rm -rf /var/lib/apt/lists/*

# torch first (its CUDA build, with triton), then torchtitan and torchao (float8) against it.
RUN python3.11 -m venv /opt/venv \
 && pip install --no-cache-dir "torch==${TORCH_VERSION}" \
 && pip install --no-cache-dir "torchtitan==${TORCHTITAN_VERSION}" "torchao==${TORCHAO_VERSION}"

WORKDIR /workspace/torchtitan
COPY src/ src/
COPY slurm/ slurm/
# The presets read tokenizers from assets/ (relative): in the image that is shared storage.
RUN ln -s /fsx/torchtitan/assets assets
ENV PYTHONPATH=/workspace/torchtitan/src

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG TRAINING_BASE_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["python", "src/check_config.py", "--config", "llama3_8b_fsdp"]
