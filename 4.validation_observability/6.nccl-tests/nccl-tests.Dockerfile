# nccl-tests for EFA instances: NCCL and nccl-tests built from source, GDRCopy, and the EFA user space
# (libfabric, rdma-core, Open MPI and aws-ofi-nccl from the EFA installer). Used by slurm/nccl-tests.sbatch
# (pyxis/enroot), kubernetes/nccl-tests.yaml-template (MPIJob) and the AWS Batch multi-node job definition of
# 1.architectures/3.aws-batch (batch_mnp.py: one mpirun across the job's nodes).
# Build (from this folder): make container   — ARG defaults come from 2.ami_and_containers/versions.yaml.
ARG CUDA_DEVEL_IMAGE=nvidia/cuda:12.9.1-devel-ubuntu22.04
FROM ${CUDA_DEVEL_IMAGE}

ARG EFA_INSTALLER_VERSION=1.47.0
ARG NCCL_VERSION=v2.29.3-1
ARG NCCL_TESTS_VERSION=v2.17.9
ARG GDRCOPY_VERSION=v2.5.1
# GPU architectures to compile for (not a version, so no default here: see the NCCL build below).
ARG NVCC_GENCODE

ENV DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Build tools and sshd (MPIJob workers are reached over ssh). Debian revisions are not pinned: the
# CUDA base pins the distribution, and pinning each revision breaks the build when the archive rotates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends autoconf automake ca-certificates curl g++ gcc git libtool \
      make openssh-client openssh-server pkg-config python3 \
 && mkdir -p /var/run/sshd \
 && rm -rf /var/lib/apt/lists/*

# GDRCopy user library (the gdrdrv kernel module comes with the host AMI).
RUN git clone --depth 1 --branch "${GDRCOPY_VERSION}" https://github.com/NVIDIA/gdrcopy.git /tmp/gdrcopy \
 && make -C /tmp/gdrcopy prefix=/opt/gdrcopy lib_install \
 && rm -rf /tmp/gdrcopy

# EFA user space only: no kernel module and no limits inside a container.
# hadolint ignore=DL3003
RUN curl -fsSL "https://efa-installer.amazonaws.com/aws-efa-installer-${EFA_INSTALLER_VERSION}.tar.gz" \
      -o /tmp/aws-efa-installer.tar.gz \
 && tar -xzf /tmp/aws-efa-installer.tar.gz -C /tmp \
 && cd /tmp/aws-efa-installer \
 && ./efa_installer.sh -y -g -d --skip-kmod --skip-limit-conf --no-verify \
 && rm -rf /tmp/aws-efa-installer /tmp/aws-efa-installer.tar.gz

# NCCL, then nccl-tests against it with MPI=1 (without MPI every srun/mpirun rank runs a test of its own).
# Default architectures: A100 (sm_80), A10G (sm_86), H100/H200 (sm_90), B200 (sm_100).
RUN gencode="${NVCC_GENCODE:--gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_100,code=sm_100}" \
 && git clone --depth 1 --branch "${NCCL_VERSION}" https://github.com/NVIDIA/nccl.git /tmp/nccl \
 && make -C /tmp/nccl -j "$(nproc)" src.build NVCC_GENCODE="${gencode}" \
 && cp -a /tmp/nccl/build /opt/nccl \
 && git clone --depth 1 --branch "${NCCL_TESTS_VERSION}" https://github.com/NVIDIA/nccl-tests.git /tmp/nccl-tests \
 && make -C /tmp/nccl-tests -j "$(nproc)" MPI=1 MPI_HOME=/opt/amazon/openmpi NCCL_HOME=/opt/nccl \
      CUDA_HOME=/usr/local/cuda NVCC_GENCODE="${gencode}" \
 && cp -a /tmp/nccl-tests/build /opt/nccl-tests \
 && rm -rf /tmp/nccl /tmp/nccl-tests

ENV LD_LIBRARY_PATH=/opt/nccl/lib:/opt/amazon/ofi-nccl/lib:/opt/amazon/efa/lib:/opt/amazon/openmpi/lib:/opt/gdrcopy/lib:/usr/local/cuda/lib64:/usr/local/nvidia/lib:/usr/local/nvidia/lib64
ENV PATH=/opt/nccl-tests:/opt/amazon/openmpi/bin:/opt/amazon/efa/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The AWS Batch multi-node launcher (python3 from the system, standard library only). Last, so editing it
# rebuilds one small layer.
COPY --chmod=755 batch_mnp.py /usr/local/bin/batch_mnp.py

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG CUDA_DEVEL_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a benchmark job has no service to health-check; Slurm and the MPI operator watch the processes
# checkov:skip=CKV_DOCKER_3:MPIJob workers and Batch child nodes run sshd, which needs root; pyxis/enroot run the container as the submitting user
CMD ["all_reduce_perf", "-b", "8", "-e", "1G", "-f", "2", "-g", "1"]
