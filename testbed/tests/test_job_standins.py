"""The srun, docker, enroot and nvidia-smi stand-ins: what they check, refuse, record and print; and a
batch script on the GPU-shaped local Slurm whose srun is the stand-in."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testbed.job_standins import images, launches, node_env
from testbed.standins import JOB_TOOLS, calls, write_standins


@pytest.fixture
def tools(tmp_path: Path):
    """Run a stand-in from tmp_path (a build context with a Dockerfile) with the bin folder first on PATH."""
    bin_dir = tmp_path / "bin"
    log = write_standins(bin_dir, tools=JOB_TOOLS, instance_type="p5.48xlarge")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print('train')\n")
    (tmp_path / "app.Dockerfile").write_text(
        "ARG BASE_IMAGE=base:1.0\nFROM ${BASE_IMAGE}\nARG TORCH_VERSION=2.13.0\nCOPY src/ /workspace/src/\n"
    )

    def run(*argv: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
        environment = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"} | env
        return subprocess.run(
            argv, cwd=tmp_path, env=environment, input=stdin, capture_output=True, text=True, check=False
        )

    run.log = log
    return run


def test_docker_build_tag_push_and_enroot_import_need_what_came_before(tools):
    assert tools("docker", "push", "repo/app:dev").stderr.strip() == (
        "An image does not exist locally with the tag: repo/app"
    )
    assert tools("enroot", "import", "-o", "app.sqsh", "dockerd://app:dev").returncode == 1
    built = tools("docker", "build", "-f", "app.Dockerfile", "-t", "app:dev", "--build-arg", "NOPE=1", ".")
    assert built.returncode == 0, built.stderr
    assert "[Warning] One or more build-args ['NOPE'] were not consumed" in built.stderr
    assert tools("docker", "tag", "app:dev", "repo/app:dev").returncode == 0
    assert tools("docker", "push", "repo/app:dev").returncode == 0
    assert tools("enroot", "import", "-o", "app.sqsh", "dockerd://app:dev").returncode == 0
    login = tools("docker", "login", "--username", "AWS", "--password-stdin", "registry", stdin="secret\n")
    assert login.stdout.strip() == "Login Succeeded"
    state = images(tools.log)
    assert state["built"]["app:dev"]["from"] == ["base:1.0"] and "repo/app:dev" in state["built"]
    assert state["pushed"] == ["repo/app:dev"] and state["imported"] == {"app.sqsh": "dockerd://app:dev"}
    assert state["logins"] == ["registry"]
    assert calls(tools.log)[0] == "docker push repo/app:dev"


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        ("FROM base:1.0\nCOPY missing.txt /x\n", '"/missing.txt": not found'),
        ("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n", "base name (${BASE_IMAGE}) should not be blank"),
    ],
)
def test_docker_build_refuses_what_a_real_build_would(tools, tmp_path, dockerfile, message):
    (tmp_path / "bad.Dockerfile").write_text(dockerfile)
    done = tools("docker", "build", "-f", "bad.Dockerfile", "-t", "bad:1", ".")
    assert done.returncode == 1 and message in done.stderr
    assert tools("docker", "build", "-f", "none.Dockerfile", ".").returncode == 1
    assert "bad:1" not in images(tools.log)["built"]


def test_srun_records_a_launch_inside_a_job_and_refuses_what_srun_would(tools, tmp_path):
    job = {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "n[1-2]"}
    assert "--container-image" in tools("srun", "--help").stdout
    assert "only inside a job" in tools("srun", "true").stderr
    too_many = tools("srun", "--nodes=3", "true", **job)
    assert too_many.returncode == 1 and "Only allocated 2 nodes asked for 3" in too_many.stderr
    assert "execve(): /no/venv/bin/torchrun" in tools("srun", "/no/venv/bin/torchrun", **job).stderr
    assert "can't open file 'src/none.py'" in tools("srun", "python3", "src/none.py", **job).stderr
    missing = tools("srun", "--container-image=/fsx/app.sqsh", "torchrun", "x.py", **job)
    assert missing.returncode == 1 and "squashfs /fsx/app.sqsh does not exist" in missing.stderr
    done = tools(
        "srun",
        "-N",
        "2",
        "--ntasks-per-node=1",
        "python3",
        "src/train.py",
        "--lr",
        "1",
        **job,
        FI_PROVIDER="efa",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "srun stand-in: job 7, 2 nodes x 1 tasks: python3 src/train.py --lr 1"
    assert done.stdout == ""  # the note is not the program's output
    (launch,) = launches(tools.log)
    assert launch["options"] == {"-N": "2", "--ntasks-per-node": "1"} and launch["num_nodes"] == 2
    assert (
        launch["command"] == ["python3", "src/train.py", "--lr", "1"]
        and launch["env"]["FI_PROVIDER"] == "efa"
    )


def test_srun_gives_a_probe_its_recorded_status_or_the_real_programs_answer(tmp_path):
    bin_dir = tmp_path / "bin"
    log = write_standins(bin_dir, tools=["srun"], outputs={"hostname": True, "grep": 1})
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "3"}

    def srun(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(["srun", *argv], env=env, capture_output=True, text=True, check=False)

    real = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout
    node = srun("--nodes=1", "-w", "n1", "hostname")  # as in `head_ip=$(srun ... hostname --ip-address)`
    assert node.returncode == 0 and node.stdout == real and node.stderr == ""
    probe = srun("grep", "-q", "x", "/etc/hostname")
    assert probe.returncode == 1 and probe.stdout == probe.stderr == ""
    assert [launch["command"][0] for launch in launches(log)] == ["hostname", "grep"]


def test_nvidia_smi_lists_the_instance_types_gpus_and_node_env_its_efa_devices(tools, tmp_path):
    listed = tools("nvidia-smi", "-L").stdout.splitlines()
    assert len(listed) == 8 and listed[0].startswith("GPU 0: NVIDIA H100")
    env = node_env("p5.48xlarge", tmp_path)
    assert env["INSTANCE_TYPE"] == "p5.48xlarge" and len(os.listdir(env["EFA_SYSFS"])) == 32
    assert os.listdir(node_env("c5.xlarge", tmp_path / "c5")["EFA_SYSFS"]) == []
    with pytest.raises(ValueError, match=r"not-a-type is not in instance-types\.yaml"):
        node_env("not-a-type", tmp_path)
    with pytest.raises(ValueError, match="no stand-in for 'ssh'"):
        write_standins(tmp_path / "other", tools=["ssh"])


@pytest.mark.slurm
def test_a_batch_script_on_the_gpu_shaped_slurm_launches_through_the_srun_stand_in(
    gpu_slurm, tools, tmp_path
):
    script = tmp_path / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --gpus-per-node=8\n#SBATCH --ntasks-per-node=8\n"
        "#SBATCH --exclusive\n"
        'srun --ntasks-per-node=8 python3 src/train.py --gpus "$SLURM_GPUS_ON_NODE"\n'
    )
    env = {"PATH": f"{tools.log.parent}{os.pathsep}{os.environ['PATH']}"}
    job = gpu_slurm.submit(script, env=env, cwd=tmp_path)
    assert job.wait(60) == "COMPLETED", job.output()
    (launch,) = launches(tools.log)
    assert launch["job"] == str(job.id) and launch["num_nodes"] == 2 and len(job.nodes) == 2
    assert launch["command"][-2:] == ["--gpus", "8"]
    assert "srun stand-in: job" in job.output()


def test_docker_run_needs_a_built_or_present_image_and_records_the_run(tmp_path):
    bin_dir = tmp_path / "bin"
    log = write_standins(bin_dir, tools=JOB_TOOLS, images_present=["nvcr.io/nvidia/nemo:25.11"])
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def docker(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *argv], env=env, capture_output=True, text=True, check=False)

    missing = docker("run", "--rm", "app:dev", "python3", "x.py")
    assert missing.returncode == 1 and "Unable to find image 'app:dev' locally" in missing.stderr
    mount = docker("run", "-v", "/no/such:/d", "nvcr.io/nvidia/nemo:25.11")
    assert "bind source path does not exist: /no/such" in mount.stderr
    done = docker("run", "--rm", "--gpus", "all", "-e", "A=1", "nvcr.io/nvidia/nemo:25.11", "python3", "-V")
    assert done.returncode == 0, done.stderr
    (run,) = images(log)["runs"]
    assert run == {
        "image": "nvcr.io/nvidia/nemo:25.11",
        "options": ["--rm", "--gpus", "all", "-e", "A=1"],
        "command": ["python3", "-V"],
    }


def test_srun_prints_a_recorded_output_or_returns_a_recorded_status(tmp_path):
    recorded = tmp_path / "all_reduce.log"
    recorded.write_text("# nccl-tests output\n")
    bin_dir = tmp_path / "bin"
    write_standins(bin_dir, tools=JOB_TOOLS, outputs={"all_reduce_perf": recorded, "grep": 1})
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "3"}
    image = ["--container-image=nccl:1"]
    done = subprocess.run(
        ["srun", *image, "/opt/nccl-tests/all_reduce_perf", "-b", "8"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == "# nccl-tests output\n"
    assert done.stderr.endswith("all_reduce_perf -b 8\n")
    probe = subprocess.run(
        ["srun", *image, "grep", "-q", "x", "y"], env=env, capture_output=True, text=True, check=False
    )
    assert probe.returncode == 1 and probe.stdout == ""
