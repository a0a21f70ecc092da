# Megatron-Core training image for GPU clusters: NVIDIA's PyTorch container (torch, Transformer Engine,
# cuDNN, NCCL) + EFA (libfabric, aws-ofi-nccl) + megatron-core and this folder's trainer.
# Build (from this folder): make container  — ARG defaults come from 2.ami_and_containers/versions.yaml.
# The NGC container is the base (its torch, Transformer Engine and NCCL are what megatron-core is tested
# with), not the training base of 2.ami_and_containers/2.containers.
ARG NGC_PYTORCH_IMAGE=nvcr.io/nvidia/pytorch:25.12-py3
FROM ${NGC_PYTORCH_IMAGE}

ARG EFA_INSTALLER_VERSION=1.47.0
ARG MEGATRON_CORE_VERSION=0.16.1
ARG TRANSFORMERS_VERSION=5.24.0
ARG TQDM_VERSION=4.70.1
ARG PSUTIL_VERSION=7.2.2

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 CUDA_DEVICE_MAX_CONNECTIONS=1 \
    LD_LIBRARY_PATH=/opt/amazon/efa/lib:/opt/amazon/ofi-nccl/lib:${LD_LIBRARY_PATH} \
    PATH=/opt/amazon/efa/bin:${PATH}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# EFA user space for containers: no kernel module, no limits file, no self-test (no device at build time).
WORKDIR /tmp/efa
RUN curl -fsSL "https://efa-installer.amazonaws.com/aws-efa-installer-${EFA_INSTALLER_VERSION}.tar.gz" | tar xz
WORKDIR /tmp/efa/aws-efa-installer
RUN ./efa_installer.sh -y -g -d --skip-kmod --skip-limit-conf --no-verify \
 && rm -rf /tmp/efa /var/lib/apt/lists/*

# The container's own torch and Transformer Engine stay: megatron-core's requirement (torch>=2.6) is met.
RUN python3 -m pip install --no-cache-dir "megatron-core==${MEGATRON_CORE_VERSION}" \
    "transformers==${TRANSFORMERS_VERSION}" "tqdm==${TQDM_VERSION}" "psutil==${PSUTIL_VERSION}"

WORKDIR /workspace/megatron-lm
COPY src/ src/

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG NGC_PYTORCH_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["python3", "src/train.py", "--help"]
