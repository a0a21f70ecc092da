# torchtitan image for GPU clusters: CUDA, EFA (libfabric + aws-ofi-nccl), Python 3.11, torch, torchtitan.
# Build (from this folder): make container  — ARG defaults come from 2.ami_and_containers/versions.yaml.
ARG CUDA_DEVEL_IMAGE=nvidia/cuda:12.9.1-devel-ubuntu22.04
FROM ${CUDA_DEVEL_IMAGE}

ARG EFA_INSTALLER_VERSION=1.47.0
ARG TORCH_VERSION=2.13.0
ARG TORCHTITAN_VERSION=0.3.0
ARG TORCHAO_VERSION=0.18.0

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 \
    LD_LIBRARY_PATH=/opt/amazon/efa/lib:/opt/amazon/ofi-nccl/lib:${LD_LIBRARY_PATH} \
    PATH=/opt/venv/bin:/opt/amazon/efa/bin:${PATH}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# torchtitan needs Python 3.11 or later; Ubuntu 22.04's python3 is 3.10, python3.11 is packaged beside it.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# EFA user space for containers: no kernel module, no limits file, no self-test (no device at build time).
WORKDIR /tmp/efa
RUN curl -fsSL "https://efa-installer.amazonaws.com/aws-efa-installer-${EFA_INSTALLER_VERSION}.tar.gz" | tar xz
WORKDIR /tmp/efa/aws-efa-installer
RUN ./efa_installer.sh -y -g -d --skip-kmod --skip-limit-conf --no-verify \
 && rm -rf /tmp/efa /var/lib/apt/lists/*

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

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG CUDA_DEVEL_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["python", "src/check_config.py", "--config", "llama3_8b_fsdp"]
