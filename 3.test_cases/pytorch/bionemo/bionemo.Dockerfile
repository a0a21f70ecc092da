# BioNeMo Framework for p5 clusters: NVIDIA's BioNeMo container (ESM-2, Geneformer, their training
# scripts and data tools) plus the EFA user space (libfabric and the aws-ofi-nccl plugin NCCL uses over
# EFA), plus this folder's glue (src/, configs/). Build (from this folder): make container. ARG defaults
# come from 2.ami_and_containers/versions.yaml.
# NVIDIA's BioNeMo container is the base, not the training base of 2.ami_and_containers/2.containers.
ARG BIONEMO_FRAMEWORK_IMAGE=nvcr.io/nvidia/clara/bionemo-framework:2.7
FROM ${BIONEMO_FRAMEWORK_IMAGE}

ARG EFA_INSTALLER_VERSION=1.47.0

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 \
    LD_LIBRARY_PATH=/opt/amazon/efa/lib:/opt/amazon/ofi-nccl/lib:${LD_LIBRARY_PATH} \
    PATH=/opt/amazon/efa/bin:${PATH}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# EFA user space for containers: no kernel module, no limits file, no self-test (no device at build time).
WORKDIR /tmp/efa
RUN curl -fsSL "https://efa-installer.amazonaws.com/aws-efa-installer-${EFA_INSTALLER_VERSION}.tar.gz" | tar xz
WORKDIR /tmp/efa/aws-efa-installer
RUN ./efa_installer.sh -y -g -d --skip-kmod --skip-limit-conf --no-verify \
 && rm -rf /tmp/efa /var/lib/apt/lists/*

WORKDIR /workspace/bionemo-aws
COPY src/ src/
COPY configs/ configs/

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG BIONEMO_FRAMEWORK_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["python", "src/bionemo_args.py", "--help"]
