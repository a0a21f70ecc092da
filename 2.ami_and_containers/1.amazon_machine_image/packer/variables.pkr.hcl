# Everything a user chooses; versions come from versions.yaml (image.pkr.hcl), never from here.

variable "region" {
  type        = string
  description = "Region to build in and register the image in (defaults to AWS_REGION)."
  default     = env("AWS_REGION")
}

variable "pcluster_os" {
  type        = string
  description = "ParallelCluster base image: ubuntu2204, ubuntu2404 or alinux2023 (ParallelCluster's Image.Os names)."
  default     = "ubuntu2204"
}

variable "gpu_build_instance_type" {
  type        = string
  description = "Instance the GPU images are built on: any NVIDIA GPU will do; the image runs on all of them."
  default     = "g5.2xlarge"
}

variable "neuron_build_instance_type" {
  type        = string
  description = "Instance the Neuron image is built on (the driver builds for the image's kernel on any type)."
  default     = "trn1.2xlarge"
}

variable "cpu_build_instance_type" {
  type        = string
  description = "Instance the CPU image is built on."
  default     = "c6i.2xlarge"
}

variable "subnet_id" {
  type        = string
  description = "Subnet of the build instance (needs a route to the internet); empty: the default VPC."
  default     = ""
}

variable "root_volume_gib" {
  type        = number
  description = "Root volume of the image (CUDA, NCCL and the EFA stack need about 40 GiB)."
  default     = 100
}

variable "ami_name_prefix" {
  type        = string
  description = "First part of every image name; the image kind, the pins and a timestamp follow."
  default     = "distributed-training"
}
