# FSDP training image for GPU clusters: torch and transformers on the training base of
# 2.ami_and_containers/2.containers (CUDA, EFA with aws-ofi-nccl, NCCL, GDRCopy, Python 3.10).
# Build the base first (make -C ../../../2.ami_and_containers/2.containers base), then (from this folder):
# make container  — ARG defaults come from 2.ami_and_containers/versions.yaml.
ARG TRAINING_BASE_IMAGE=distributed-training-base:cuda12.9.1-efa1.47.0-nccl2.29.3-1
FROM ${TRAINING_BASE_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG NUMPY_VERSION=2.4.6
ARG TRANSFORMERS_VERSION=5.24.0

ENV PYTHONUNBUFFERED=1

RUN python3 -m pip install --no-cache-dir "torch==${TORCH_VERSION}" \
 && python3 -m pip install --no-cache-dir "numpy==${NUMPY_VERSION}" "transformers==${TRANSFORMERS_VERSION}"

WORKDIR /workspace/fsdp
COPY src/ src/

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG TRAINING_BASE_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["python3", "src/train.py", "--help"]
