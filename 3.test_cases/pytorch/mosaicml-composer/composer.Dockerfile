# Composer + llm-foundry training image for GPU clusters: CUDA, EFA (libfabric + aws-ofi-nccl), the torch
# Composer 0.32.1 supports (< 2.7.1; not this repository's python.torch), llm-foundry with flash-attn, yamls/.
# Build (from this folder): make container  — ARG defaults come from 2.ami_and_containers/versions.yaml.
ARG CUDA_DEVEL_IMAGE=nvidia/cuda:12.9.1-devel-ubuntu22.04
FROM ${CUDA_DEVEL_IMAGE}

ARG EFA_INSTALLER_VERSION=1.47.0
ARG COMPOSER_TORCH_VERSION=2.7.0
ARG MOSAICML_VERSION=0.32.1
ARG LLM_FOUNDRY_VERSION=0.22.0

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 \
    LD_LIBRARY_PATH=/opt/amazon/efa/lib:/opt/amazon/ofi-nccl/lib:${LD_LIBRARY_PATH} \
    PATH=/opt/amazon/efa/bin:${PATH}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-dev git curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# EFA user space for containers: no kernel module, no limits file, no self-test (no device at build time).
WORKDIR /tmp/efa
RUN curl -fsSL "https://efa-installer.amazonaws.com/aws-efa-installer-${EFA_INSTALLER_VERSION}.tar.gz" | tar xz
WORKDIR /tmp/efa/aws-efa-installer
RUN ./efa_installer.sh -y -g -d --skip-kmod --skip-limit-conf --no-verify \
 && rm -rf /tmp/efa /var/lib/apt/lists/*

# torch first and held by a constraint, so nothing below moves it; then Composer and llm-foundry; then
# llm-foundry's gpu extra (flash-attn, pinned by llm-foundry) built without isolation against that torch.
WORKDIR /workspace/composer
COPY requirements.txt ./
RUN echo "torch==${COMPOSER_TORCH_VERSION}" > /tmp/torch-constraint.txt \
 && python3 -m pip install --no-cache-dir -c /tmp/torch-constraint.txt "torch==${COMPOSER_TORCH_VERSION}" \
 && python3 -m pip install --no-cache-dir -c /tmp/torch-constraint.txt -r requirements.txt \
    "mosaicml==${MOSAICML_VERSION}" "llm-foundry==${LLM_FOUNDRY_VERSION}" \
 && MAX_JOBS=8 python3 -m pip install --no-cache-dir --no-build-isolation -c /tmp/torch-constraint.txt \
    "llm-foundry[gpu]==${LLM_FOUNDRY_VERSION}" \
 && rm /tmp/torch-constraint.txt

COPY yamls/ yamls/

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG CUDA_DEVEL_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["composer", "--help"]
