# cpu-ddp training image: CPU torch + scikit-learn, code in /workspace/cpu-ddp.
# Build (from this folder): make container   — ARG defaults come from 2.ami_and_containers/versions.yaml.
# A CPU image: its base is python:slim (PYTHON_SLIM_IMAGE), not the CUDA training base of 2.ami_and_containers.
ARG PYTHON_SLIM_IMAGE=python:3.11.14-slim-bookworm
FROM ${PYTHON_SLIM_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG NUMPY_VERSION=2.4.6
ARG SCIKIT_LEARN_VERSION=1.9.1

# Where torch's CPU wheel comes from: PyTorch's CPU index, unless TORCH_FIND_LINKS names a page or folder of
# wheels that holds torch==TORCH_VERSION+cpu (an air-gapped builder serving the wheel it has). Never a CUDA build.
ARG TORCH_FIND_LINKS

ENV PYTHONUNBUFFERED=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# torch first, on its own (its +cpu build outranks PyPI's CUDA build of the same version; the build stops if
# a CUDA build came anyway); then the rest from PyPI.
RUN if [[ -n "${TORCH_FIND_LINKS}" ]]; then export PIP_FIND_LINKS="${TORCH_FIND_LINKS}"; \
    else export PIP_INDEX_URL=https://download.pytorch.org/whl/cpu; fi \
 && pip install --no-cache-dir "torch==${TORCH_VERSION}" \
 && python -c 'import sys, torch; sys.exit(torch.version.cuda is not None)' \
 && unset PIP_FIND_LINKS PIP_INDEX_URL \
 && pip install --no-cache-dir "numpy==${NUMPY_VERSION}" "scikit-learn==${SCIKIT_LEARN_VERSION}"

WORKDIR /workspace/cpu-ddp
COPY src/ src/

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG PYTHON_SLIM_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user, and on EKS the pod securityContext sets the user
CMD ["torchrun", "--nproc-per-node", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:29500", "src/train.py", "--preset", "tiny"]
