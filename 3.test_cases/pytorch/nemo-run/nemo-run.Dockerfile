# NeMo 2.x training image: NVIDIA's NeMo Framework container (CUDA, NCCL, EFA-ready libfabric and
# aws-ofi-nccl, NeMo, megatron-core) plus the nemo-run pins and this folder's launch glue.
# Build (from this folder): make container — ARG defaults come from 2.ami_and_containers/versions.yaml.
# NVIDIA's NeMo container is the base, not the training base of 2.ami_and_containers/2.containers.
ARG NEMO_IMAGE=nvcr.io/nvidia/nemo:25.11
FROM ${NEMO_IMAGE}

ARG NEMO_RUN_VERSION=0.11.1
ARG LEPTONAI_VERSION=0.27.3

ENV PYTHONUNBUFFERED=1 PYTHONPATH=/workspace/nemo-run/src

# nemo-run 0.11.1 imports an API that later leptonai releases dropped: pin both.
RUN python3 -m pip install --no-cache-dir "nemo-run==${NEMO_RUN_VERSION}" "leptonai==${LEPTONAI_VERSION}"

WORKDIR /workspace/nemo-run
COPY src/ src/
COPY configs/ configs/
COPY slurm/efa-env.sh slurm/efa-env.sh

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG NEMO_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["python3", "src/launch.py", "--help"]
