# The Packer and plugin versions this template is written for. The plugin versions repeat
# versions.yaml (components.packer-plugin-amazon and -ansible; Packer wants literals here) and a test
# fails when they differ. `packer init .` installs them.
packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      version = "= 1.3.6"
      source  = "github.com/hashicorp/amazon"
    }
    ansible = {
      version = "= 1.1.2"
      source  = "github.com/hashicorp/ansible"
    }
  }
}
