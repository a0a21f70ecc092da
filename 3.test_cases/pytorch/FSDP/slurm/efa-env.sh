#!/bin/bash
# EFA / NCCL environment, sourced by the sbatch scripts. It sets only what this node needs:
# nothing NCCL-related without GPUs, nothing EFA-related without EFA devices, and
# FI_EFA_USE_DEVICE_RDMA=1 only on instance types with GPUDirect RDMA (libfabric aborts elsewhere).
# Overrides for testing or odd AMIs: EFA_SYSFS (default /sys/class/infiniband), INSTANCE_TYPE.

efa_sysfs=${EFA_SYSFS:-/sys/class/infiniband}
if [[ -z ${INSTANCE_TYPE:-} ]]; then
    imds_token=$(curl -s -m 1 -X PUT http://169.254.169.254/latest/api/token \
        -H "X-aws-ec2-metadata-token-ttl-seconds: 60" 2>/dev/null || true)
    INSTANCE_TYPE=$(curl -s -m 1 -H "X-aws-ec2-metadata-token: $imds_token" \
        http://169.254.169.254/latest/meta-data/instance-type 2>/dev/null || true)
fi
export INSTANCE_TYPE

if command -v nvidia-smi >/dev/null 2>&1; then
    export TORCH_NCCL_ASYNC_ERROR_HANDLING=1 TORCH_NCCL_AVOID_RECORD_STREAMS=1
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
fi

if compgen -G "$efa_sysfs/*" >/dev/null; then
    export FI_PROVIDER=efa FI_EFA_USE_HUGE_PAGE=0 FI_EFA_SET_CUDA_SYNC_MEMOPS=0
    export NCCL_SOCKET_IFNAME=^docker,lo,veth NCCL_BUFFSIZE=8388608 NCCL_P2P_NET_CHUNKSIZE=524288
    case $INSTANCE_TYPE in
        p4d.* | p4de.* | p5.* | p5e.* | p5en.* | p6-*) export FI_EFA_USE_DEVICE_RDMA=1 ;;
        *) unset FI_EFA_USE_DEVICE_RDMA ;;
    esac
    if [[ -f /opt/amazon/ofi-nccl/lib/libnccl-ofi-tuner.so ]]; then
        export NCCL_TUNER_PLUGIN=/opt/amazon/ofi-nccl/lib/libnccl-ofi-tuner.so
    fi
fi
