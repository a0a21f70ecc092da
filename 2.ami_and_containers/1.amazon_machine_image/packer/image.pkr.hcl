# Machine images for distributed training, one source per kind; each runs the playbook of its name
# (../playbooks/<source>.yml) through Ansible. Build one with: make ami-pcluster-gpu (asks before it
# spends), or packer build -only 'amazon-ebs.pcluster-gpu' . from this folder after packer init .

locals {
  # Every version, from the one place versions are written.
  versions = yamldecode(file("${path.root}/../../versions.yaml"))

  # ParallelCluster's image names: aws-parallelcluster-<version>-<os>-hvm-<arch>-<date>.
  pcluster_image_os = {
    ubuntu2204 = "ubuntu-2204-lts"
    ubuntu2404 = "ubuntu-2404-lts"
    alinux2023 = "amzn2023"
  }
  pcluster_login_user = {
    ubuntu2204 = "ubuntu"
    ubuntu2404 = "ubuntu"
    alinux2023 = "ec2-user"
  }
  pcluster_root_device = {
    ubuntu2204 = "/dev/sda1"
    ubuntu2404 = "/dev/sda1"
    alinux2023 = "/dev/xvda"
  }
  pcluster_version = local.versions.python["aws-parallelcluster"]
  stamp            = formatdate("YYYYMMDDhhmmss", timestamp())
  pins             = "efa${local.versions.components["efa-installer"]}-nccl${local.versions.components["nccl"]}"

  tags = {
    "efa-installer"       = local.versions.components["efa-installer"]
    "nccl"                = local.versions.components["nccl"]
    "nvidia-driver"       = local.versions.components["nvidia-driver"]
    "cuda"                = local.versions.components["cuda-runfile"]
    "gdrcopy"             = local.versions.components["gdrcopy"]
    "enroot"              = local.versions.components["enroot"]
    "pyxis"               = local.versions.components["pyxis"]
    "built-by"            = "packer"
    "aws-parallelcluster" = local.pcluster_version
  }
}

source "amazon-ebs" "pcluster-gpu" {
  region        = var.region
  instance_type = var.gpu_build_instance_type
  subnet_id     = var.subnet_id
  ssh_username  = local.pcluster_login_user[var.pcluster_os]
  ami_name      = "${var.ami_name_prefix}-pcluster-gpu-${local.pcluster_version}-${var.pcluster_os}-${local.pins}-${local.stamp}"
  tags          = merge(local.tags, { "image" = "pcluster-gpu", "os" = var.pcluster_os })
  source_ami_filter {
    filters = {
      name                = "aws-parallelcluster-${local.pcluster_version}-${local.pcluster_image_os[var.pcluster_os]}-hvm-x86_64*"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  launch_block_device_mappings {
    device_name           = local.pcluster_root_device[var.pcluster_os]
    volume_size           = var.root_volume_gib
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 250
    delete_on_termination = true
  }
}

source "amazon-ebs" "pcluster-cpu" {
  region        = var.region
  instance_type = var.cpu_build_instance_type
  subnet_id     = var.subnet_id
  ssh_username  = local.pcluster_login_user[var.pcluster_os]
  ami_name      = "${var.ami_name_prefix}-pcluster-cpu-${local.pcluster_version}-${var.pcluster_os}-${local.pins}-${local.stamp}"
  tags          = merge(local.tags, { "image" = "pcluster-cpu", "os" = var.pcluster_os })
  source_ami_filter {
    filters = {
      name                = "aws-parallelcluster-${local.pcluster_version}-${local.pcluster_image_os[var.pcluster_os]}-hvm-x86_64*"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  launch_block_device_mappings {
    device_name           = local.pcluster_root_device[var.pcluster_os]
    volume_size           = var.root_volume_gib
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 250
    delete_on_termination = true
  }
}

source "amazon-ebs" "pcluster-neuron" {
  region        = var.region
  instance_type = var.neuron_build_instance_type
  subnet_id     = var.subnet_id
  ssh_username  = local.pcluster_login_user[var.pcluster_os]
  ami_name      = "${var.ami_name_prefix}-pcluster-neuron-${local.pcluster_version}-${var.pcluster_os}-${local.pins}-${local.stamp}"
  tags          = merge(local.tags, { "image" = "pcluster-neuron", "os" = var.pcluster_os, "aws-neuronx-runtime-lib" = local.versions.components["aws-neuronx-runtime-lib"] })
  source_ami_filter {
    filters = {
      name                = "aws-parallelcluster-${local.pcluster_version}-${local.pcluster_image_os[var.pcluster_os]}-hvm-x86_64*"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  launch_block_device_mappings {
    device_name           = local.pcluster_root_device[var.pcluster_os]
    volume_size           = var.root_volume_gib
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 250
    delete_on_termination = true
  }
}

source "amazon-ebs" "eks-gpu" {
  region        = var.region
  instance_type = var.gpu_build_instance_type
  subnet_id     = var.subnet_id
  ssh_username  = "ec2-user"
  ami_name      = "${var.ami_name_prefix}-eks-gpu-${local.versions.components["eks-kubernetes"]}-${local.pins}-${local.stamp}"
  tags          = merge(local.tags, { "image" = "eks-gpu", "eks-kubernetes" = local.versions.components["eks-kubernetes"] })
  source_ami_filter {
    filters = {
      name                = "amazon-eks-node-al2023-x86_64-nvidia-${local.versions.components["eks-kubernetes"]}-v*"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_gib
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 250
    delete_on_termination = true
  }
}

source "amazon-ebs" "dlami" {
  region        = var.region
  instance_type = var.gpu_build_instance_type
  subnet_id     = var.subnet_id
  ssh_username  = "ubuntu"
  ami_name      = "${var.ami_name_prefix}-dlami-${local.pins}-${local.stamp}"
  tags          = merge(local.tags, { "image" = "dlami" })
  source_ami_filter {
    filters = {
      name                = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = var.root_volume_gib
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 250
    delete_on_termination = true
  }
}

build {
  sources = [
    "source.amazon-ebs.pcluster-gpu",
    "source.amazon-ebs.pcluster-cpu",
    "source.amazon-ebs.pcluster-neuron",
    "source.amazon-ebs.eks-gpu",
    "source.amazon-ebs.dlami",
  ]

  provisioner "ansible" {
    playbook_file    = "${path.root}/../playbooks/${source.name}.yml"
    extra_arguments  = ["--extra-vars", "image_login_user=${build.User}"]
    ansible_env_vars = ["ANSIBLE_CONFIG=${path.root}/../ansible.cfg"]
  }
}
