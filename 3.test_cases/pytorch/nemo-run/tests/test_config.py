"""The cluster file and the launcher's arguments: checked before nemo-run or NeMo is imported, so these
run in the project venv; bad input ends with one error line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from nemo_llama.cluster import Cluster, ConfigError, load_cluster
from nemo_llama.presets import PRESETS, get_preset

FOLDER = Path(__file__).resolve().parents[1]


def test_shipped_cluster_file_loads():
    cluster = load_cluster(FOLDER / "configs" / "cluster.yaml")
    assert cluster.container_image.startswith("nvcr.io/nvidia/nemo:")
    assert cluster.container_mounts == ["/fsx:/fsx"] and cluster.gpus_per_node == 8


def test_shipped_image_is_versions_yaml_pin():
    import yaml  # noqa: PLC0415

    versions = yaml.safe_load((FOLDER.parents[2] / "2.ami_and_containers" / "versions.yaml").read_text())
    assert load_cluster(FOLDER / "configs" / "cluster.yaml").container_image == versions["images"]["nemo"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gpus_per_nodes: 8\n", "unknown key 'gpus_per_nodes'"),
        ("container_mounts: /fsx\n", "container_mounts must be a list"),
        ("container_mounts: ['fsx:/fsx']\n", "container_mounts must be a list"),
        ("time: 4h\n", "time must look like HH:MM:SS"),
        ("job_dir: relative/dir\n", "job_dir must be an absolute path"),
        ("gpus_per_node: -1\n", "gpus_per_node must be 0"),
        ("gpus_per_node: eight\n", "gpus_per_node must be a whole number"),
        ("partition: 'gpu queue'\n", "partition must be one word"),
        ("exclusive: maybe\n", "exclusive must be true or false"),
        ("- a\n- b\n", "must be a mapping"),
        ("partition: [unclosed\n", "not valid YAML (line 2)"),
    ],
)
def test_bad_cluster_files_name_the_key(tmp_path, text, message):
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_cluster(path)


def test_missing_and_folder_cluster_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_cluster(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_cluster(tmp_path)
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_cluster(tmp_path / "bin.yaml")


def test_empty_cluster_file_takes_the_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("")
    assert load_cluster(tmp_path / "c.yaml") == Cluster()


def test_presets():
    assert {
        "llama3_8b_pretrain",
        "llama3_70b_pretrain",
        "llama3_8b_finetune",
        "llama3_70b_finetune",
        "tiny",
    } == set(PRESETS)
    assert get_preset("llama3_70b_pretrain").recipe == "llama3_70b"
    with pytest.raises(ValueError, match="unknown preset 'llama3_9b'; choose one of"):
        get_preset("llama3_9b")


def launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "src/launch.py", *args], cwd=FOLDER, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "llama3_9b"], "error: unknown preset 'llama3_9b'; choose one of llama3_8b_pretrain"),
        (["--preset", "tiny", "--nodes", "0"], "error: --nodes must be 1 or more, got 0"),
        (["--preset", "tiny", "--cluster", "nope.yaml"], "error: nope.yaml: no such file"),
        (["--preset", "tiny", "--executor", "local", "--sbatch-out", "x"], "error: --sbatch-out goes with"),
    ],
)
def test_launcher_bad_input_is_one_error_line(args, message):
    result = launch(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1


def test_launcher_refuses_an_empty_image_for_container_runs(tmp_path):
    (tmp_path / "c.yaml").write_text("container_image: ''\n")
    result = launch("--preset", "tiny", "--cluster", str(tmp_path / "c.yaml"), "--dryrun")
    assert result.returncode == 2 and "container_image is empty" in result.stderr
