# Composer + llm-foundry training image for GPU clusters, on the training base of
# 2.ami_and_containers/2.containers (CUDA, EFA with aws-ofi-nccl, NCCL, GDRCopy): the torch Composer 0.32.1
# supports (< 2.7.1; not this repository's python.torch), llm-foundry with flash-attn, yamls/.
# Build the base first (make -C ../../../2.ami_and_containers/2.containers base), then (from this folder):
# make container  — ARG defaults come from 2.ami_and_containers/versions.yaml.
ARG TRAINING_BASE_IMAGE=distributed-training-base:cuda12.9.1-efa1.47.0-nccl2.29.3-1
FROM ${TRAINING_BASE_IMAGE}

ARG COMPOSER_TORCH_VERSION=2.7.0
ARG MOSAICML_VERSION=0.32.1
ARG LLM_FOUNDRY_VERSION=0.22.0

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-dev \
 && rm -rf /var/lib/apt/lists/*

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

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG TRAINING_BASE_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["composer", "--help"]
