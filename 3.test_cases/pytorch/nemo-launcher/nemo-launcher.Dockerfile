# NeMo 1.0 image for the NeMo Framework Launcher: NVIDIA's NeMo container (CUDA, NCCL, EFA-ready
# libfabric and aws-ofi-nccl, NeMo 1.0 training scripts, the launcher at /opt/NeMo-Framework-Launcher)
# plus this folder's overrides and EFA environment at /workspace/nemo-launcher.
# Build (from this folder): make container — ARG defaults come from 2.ami_and_containers/versions.yaml.
# NVIDIA's NeMo container is the base, not the training base of 2.ami_and_containers/2.containers.
ARG NEMO_LAUNCHER_IMAGE=nvcr.io/nvidia/nemo:24.09
FROM ${NEMO_LAUNCHER_IMAGE}

# The launcher tag whose conf/ keys the overrides were written and tested against.
ARG NEMO_FRAMEWORK_LAUNCHER_VERSION=24.12
LABEL org.opencontainers.image.description="NeMo 1.0 launcher overrides (checked against launcher ${NEMO_FRAMEWORK_LAUNCHER_VERSION})"

WORKDIR /workspace/nemo-launcher
COPY conf/ conf/
COPY src/ src/
COPY slurm/ slurm/

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG NEMO_LAUNCHER_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["python3", "/opt/NeMo-Framework-Launcher/launcher_scripts/main.py", "--help"]
