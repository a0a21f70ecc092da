# JAX training image for GPU clusters: CUDA 12, EFA (libfabric + aws-ofi-nccl), JAX with its CUDA plugin and
# NVIDIA's CUDA/cuDNN/NCCL wheels, Flax, Optax, Orbax, and MaxText. Ubuntu 24.04 for its Python 3.12: MaxText
# needs Python >= 3.12. Build (from this folder): make container — ARG defaults come from
# 2.ami_and_containers/versions.yaml (a test checks).
# Not FROM the training base of 2.ami_and_containers/2.containers: that is Ubuntu 22.04 (Python 3.10).
ARG CUDA_DEVEL_UBUNTU24_IMAGE=nvidia/cuda:12.9.1-devel-ubuntu24.04
FROM ${CUDA_DEVEL_UBUNTU24_IMAGE}

ARG EFA_INSTALLER_VERSION=1.47.0
ARG JAX_VERSION=0.10.2
ARG FLAX_VERSION=0.12.8
ARG OPTAX_VERSION=0.2.8
ARG ORBAX_CHECKPOINT_VERSION=0.12.8
ARG NUMPY_VERSION=2.4.6
ARG MAXTEXT_VERSION=0.2.4

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 \
    LD_LIBRARY_PATH=/opt/amazon/efa/lib:/opt/amazon/ofi-nccl/lib:${LD_LIBRARY_PATH} \
    PATH=/opt/venv/bin:/opt/amazon/efa/bin:${PATH}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# EFA user space for containers: no kernel module, no limits file, no self-test (no device at build time).
WORKDIR /tmp/efa
RUN curl -fsSL "https://efa-installer.amazonaws.com/aws-efa-installer-${EFA_INSTALLER_VERSION}.tar.gz" | tar xz
WORKDIR /tmp/efa/aws-efa-installer
RUN ./efa_installer.sh -y -g -d --skip-kmod --skip-limit-conf --no-verify \
 && rm -rf /tmp/efa /var/lib/apt/lists/*

# A venv: Ubuntu 24.04's Python refuses system-wide pip installs (PEP 668). jax[cuda12] brings the CUDA
# plugin and NVIDIA's CUDA, cuDNN and NCCL wheels; NCCL finds aws-ofi-nccl through LD_LIBRARY_PATH.
RUN python3 -m venv /opt/venv \
 && pip install --no-cache-dir "jax[cuda12]==${JAX_VERSION}" "flax==${FLAX_VERSION}" "optax==${OPTAX_VERSION}" \
    "orbax-checkpoint==${ORBAX_CHECKPOINT_VERSION}" "numpy==${NUMPY_VERSION}" \
 && pip install --no-cache-dir "maxtext[cuda12]==${MAXTEXT_VERSION}" "jax[cuda12]==${JAX_VERSION}"

WORKDIR /workspace/jax
COPY src/ src/
COPY maxtext/ maxtext/
COPY slurm/efa-env.sh slurm/efa-env.sh

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG CUDA_DEVEL_UBUNTU24_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["python3", "src/train.py", "--help"]
