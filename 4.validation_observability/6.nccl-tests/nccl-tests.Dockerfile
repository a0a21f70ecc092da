# nccl-tests for EFA instances, on the training base of 2.ami_and_containers/2.containers (CUDA, NCCL built
# from source, GDRCopy, and the EFA user space: libfabric, rdma-core, Open MPI and aws-ofi-nccl), so the
# benchmark runs exactly the NCCL and plugin the training images run. Used by slurm/nccl-tests.sbatch
# (pyxis/enroot), kubernetes/nccl-tests.yaml-template (MPIJob) and the AWS Batch multi-node job definition of
# 1.architectures/3.aws-batch (batch_mnp.py: one mpirun across the job's nodes).
# Build the base first (make -C ../../2.ami_and_containers/2.containers base), then (from this folder):
# make container   — ARG defaults come from 2.ami_and_containers/versions.yaml.
ARG TRAINING_BASE_IMAGE=distributed-training-base:cuda12.9.1-efa1.47.0-nccl2.29.3-1
FROM ${TRAINING_BASE_IMAGE}

ARG NCCL_TESTS_VERSION=v2.17.9
# GPU architectures to compile for (not a version, so no default here: see the build below).
ARG NVCC_GENCODE

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# nccl-tests against the base's NCCL with MPI=1 (without MPI every srun/mpirun rank runs a test of its own).
# Default architectures: A100 (sm_80), A10G (sm_86), H100/H200 (sm_90), B200 (sm_100).
RUN gencode="${NVCC_GENCODE:--gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_100,code=sm_100}" \
 && git clone --depth 1 --branch "${NCCL_TESTS_VERSION}" https://github.com/NVIDIA/nccl-tests.git /tmp/nccl-tests \
 && make -C /tmp/nccl-tests -j "$(nproc)" MPI=1 MPI_HOME=/opt/amazon/openmpi NCCL_HOME="${NCCL_HOME}" \
      CUDA_HOME=/usr/local/cuda NVCC_GENCODE="${gencode}" \
 && cp -a /tmp/nccl-tests/build /opt/nccl-tests \
 && rm -rf /tmp/nccl-tests

ENV PATH=/opt/nccl-tests:${PATH}

# The AWS Batch multi-node launcher (python3 from the system, standard library only). Last, so editing it
# rebuilds one small layer.
COPY --chmod=755 batch_mnp.py /usr/local/bin/batch_mnp.py

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG TRAINING_BASE_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a benchmark job has no service to health-check; Slurm and the MPI operator watch the processes
# checkov:skip=CKV_DOCKER_3:MPIJob workers and Batch child nodes run sshd, which needs root; pyxis/enroot run the container as the submitting user
CMD ["all_reduce_perf", "-b", "8", "-e", "1G", "-f", "2", "-g", "1"]
