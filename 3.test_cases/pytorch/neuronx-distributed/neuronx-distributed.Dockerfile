# Llama pretraining with neuronx-distributed on Trainium: AWS's Neuron deep learning container for PyTorch
# training (torch-neuronx, neuronx-cc, neuronx-distributed, the Neuron runtime and EFA user space), plus
# neuronx-distributed's Llama examples at the tag matching its SDK and their own requirements, plus this
# folder's glue (src/, configs/). Build (from this folder): make container. ARG defaults come from
# 2.ami_and_containers/versions.yaml.
# AWS's Neuron container is the base (Trainium: no CUDA), not the training base of 2.ami_and_containers.
ARG NEURON_PYTORCH_TRAINING_IMAGE=public.ecr.aws/neuron/pytorch-training-neuronx:2.9.0-neuronx-py312-sdk2.28.0-ubuntu24.04
FROM ${NEURON_PYTORCH_TRAINING_IMAGE}

ARG NEURONX_DISTRIBUTED_EXAMPLES_VERSION=v2.28.0

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONUNBUFFERED=1 PYTHONPATH=/workspace/neuronx-distributed/examples/training/llama

WORKDIR /workspace
# The examples pin their own transformers/datasets (requirements.txt of the tag): what their scripts were tested with.
RUN git clone --depth 1 --branch "${NEURONX_DISTRIBUTED_EXAMPLES_VERSION}" \
        https://github.com/aws-neuron/neuronx-distributed.git neuronx-distributed \
 && python3 -m pip install --no-cache-dir -r neuronx-distributed/examples/training/llama/requirements.txt

WORKDIR /workspace/nxd-llama
COPY src/ src/
COPY configs/ configs/

# checkov:skip=CKV_DOCKER_7:the base tag comes from ARG NEURON_PYTORCH_TRAINING_IMAGE, pinned in versions.yaml (a test rejects latest)
# checkov:skip=CKV_DOCKER_2:a batch training job has no service to health-check; the scheduler watches the process
# checkov:skip=CKV_DOCKER_3:pyxis/enroot run the container as the submitting user; on EKS the pod securityContext sets it
CMD ["python3", "src/nxd_args.py", "--help"]
