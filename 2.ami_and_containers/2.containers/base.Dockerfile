# The base of every GPU training image: CUDA (devel), the EFA user space (libfabric, rdma-core, Open MPI and
# aws-ofi-nccl from the EFA installer), NCCL built from source and GDRCopy, one version each. Test-case
# images and the nccl-tests image build FROM it (ARG TRAINING_BASE_IMAGE), so a version changes here only.
# Build (from this folder): make base   — ARG defaults come from ../versions.yaml; the tag is
# images.training-base there.
ARG CUDA_DEVEL_IMAGE=nvidia/cuda:12.9.1-devel-ubuntu22.04
FROM ${CUDA_DEVEL_IMAGE}

ARG EFA_INSTALLER_VERSION=1.47.0
ARG NCCL_VERSION=v2.29.3-1
ARG GDRCOPY_VERSION=v2.5.1
# GPU architectures to compile NCCL for (not a version, so no default here: see the NCCL build below).
ARG NVCC_GENCODE

ENV DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Build tools, and sshd for MPI launchers (MPIJob workers are reached over ssh). Debian revisions are not
# pinned: the CUDA base pins the distribution, and pinning each revision breaks when the archive rotates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends autoconf automake ca-certificates curl g++ gcc git libtool \
      make openssh-client openssh-server pkg-config python3 python3-pip python3-venv \
 && mkdir -p /var/run/sshd \
 && rm -rf /var/lib/apt/lists/*

# GDRCopy user library (the gdrdrv kernel module comes with the host's machine image).
RUN git clone --depth 1 --branch "${GDRCOPY_VERSION}" https://github.com/NVIDIA/gdrcopy.git /tmp/gdrcopy \
 && make -C /tmp/gdrcopy prefix=/opt/gdrcopy lib_install \
 && rm -rf /tmp/gdrcopy

# EFA user space only: the kernel module and the limits belong to the host.
# hadolint ignore=DL3003
RUN curl -fsSL "https://efa-installer.amazonaws.com/aws-efa-installer-${EFA_INSTALLER_VERSION}.tar.gz" \
      -o /tmp/aws-efa-installer.tar.gz \
 && tar -xzf /tmp/aws-efa-installer.tar.gz -C /tmp \
 && cd /tmp/aws-efa-installer \
 && ./efa_installer.sh -y -g -d --skip-kmod --skip-limit-conf --no-verify \
 && rm -rf /tmp/aws-efa-installer /tmp/aws-efa-installer.tar.gz

# NCCL. Default architectures: A100 (sm_80), A10G (sm_86), H100/H200 (sm_90), B200 (sm_100).
RUN gencode="${NVCC_GENCODE:--gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_100,code=sm_100}" \
 && git clone --depth 1 --branch "${NCCL_VERSION}" https://github.com/NVIDIA/nccl.git /tmp/nccl \
 && make -C /tmp/nccl -j "$(nproc)" src.build NVCC_GENCODE="${gencode}" \
 && cp -a /tmp/nccl/build /opt/nccl \
 && rm -rf /tmp/nccl

ENV LD_LIBRARY_PATH=/opt/nccl/lib:/opt/amazon/ofi-nccl/lib:/opt/amazon/efa/lib:/opt/amazon/openmpi/lib:/opt/gdrcopy/lib:/usr/local/cuda/lib64:/usr/local/nvidia/lib:/usr/local/nvidia/lib64
ENV PATH=/opt/amazon/openmpi/bin:/opt/amazon/efa/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# What a derived image's launcher reads to find the NCCL network plugin and its tuner.
ENV NCCL_HOME=/opt/nccl \
    OFI_NCCL_HOME=/opt/amazon/ofi-nccl

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG CUDA_DEVEL_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a base image runs nothing itself; the images built from it and their schedulers decide health
# checkov:skip=CKV_DOCKER_3:MPI launchers need root for sshd; pyxis/enroot run containers as the submitting user, EKS pods set their user
CMD ["bash"]
