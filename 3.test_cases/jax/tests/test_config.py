"""Config validation before JAX is imported (so these run in the project venv, which has no JAX): bad
input ends in one `error:` line and exit 2 with nothing written; the MaxText configs use only keys
MaxText's base config defines, at the pinned MaxText version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testbed.ports import free_port

FOLDER = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(FOLDER / "src"))
from jax_llm.config import PRESETS, ConfigError, config_from_args, validate_world  # noqa: E402

VERSIONS = yaml.safe_load((FOLDER.parents[1] / "2.ami_and_containers" / "versions.yaml").read_text())
MAXTEXT = json.loads((FOLDER / "tests" / "maxtext_base_keys.json").read_text())


def run(script: str, *args: str, cwd: Path = FOLDER) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "SLURM_"))}
    return subprocess.run(
        [sys.executable, str(FOLDER / "src" / script), *args],
        cwd=cwd,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "unknown preset 'nope'; use one of: tiny, small"),
        (["--seq-len", "4096"], "--seq-len=4096 exceeds tiny's 256 positions; use --seq-len 256 or less"),
        (["--num-heads", "3"], "--num-heads=3 does not divide --hidden-size=64"),
        (["--model-parallel", "3"], "--model-parallel=3 does not divide --num-heads=4; use a divisor"),
        (["--dtype", "float16"], "--dtype='float16' is not one of float32, bfloat16"),
        (["--max-steps", "-1"], "--max-steps=-1 must be positive"),
        (["--max-steps", "ten"], "--max-steps='ten' is not an integer"),
        (["--lr", "nan"], "--lr='nan' is not a finite number"),
        (["--remat", "maybe"], "--remat='maybe' is not a boolean; use true or false"),
        (["--data-path", "missing.txt"], "--data-path='missing.txt' is not a file"),
        (["--fault-kill-at-step", "15"], "--fault-kill-at-step='15' is not PROCESS:STEP"),
        (["--colour", "blue"], "unknown option '--colour'"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path, args, message):
    result = run("train.py", "--run-dir", str(tmp_path / "run"), *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing written


def test_run_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "run").write_text("")
    result = run("train.py", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and "exists and is not a folder" in result.stderr


def test_only_process_zero_reports(tmp_path):
    env = {**os.environ, "JAX_PROCESS_ID": "1"}
    result = subprocess.run(
        [sys.executable, "src/train.py", "--preset", "nope"],
        cwd=FOLDER,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nproc", "0", "--", "src/train.py"], "--nproc=0 must be at least 1"),
        (["--port", "70000", "--", "src/train.py"], "--port=70000 is not a TCP port"),
        (["--nproc", "2"], "no command; add '-- src/train.py --preset tiny'"),
    ],
)
def test_launcher_bad_arguments(args, message):
    result = run("launch.py", *args)
    assert result.returncode == 2 and result.stderr.startswith(f"error: {message}"), result.stderr


def test_launcher_passes_the_first_failure_and_each_process_gets_its_id(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, pathlib, sys, time\n"
        "e = os.environ\n"
        # one write per line: two processes share the pipe (print may write each item on its own)
        "line = ' '.join([e['JAX_PROCESS_ID'], e['JAX_NUM_PROCESSES'], e['JAX_COORDINATOR_ADDRESS']])\n"
        "os.write(1, (line + '\\n').encode())\n"
        f"done = pathlib.Path({str(tmp_path / 'done')!r})\n"
        "if e['JAX_PROCESS_ID'] == '0':\n"
        "    done.touch()\n"
        "else:\n"
        "    while not done.exists(): time.sleep(0.05)\n"
        "    sys.exit(3)\n"
    )
    port = free_port()
    result = run("launch.py", "--nproc", "2", "--port", str(port), "--", str(script))
    assert result.returncode == 3
    assert sorted(result.stdout.splitlines()) == [f"0 2 127.0.0.1:{port}", f"1 2 127.0.0.1:{port}"]


def test_overrides_and_presets():
    config = config_from_args(["--preset", "tiny", "--global-batch", "16", "--remat", "true", "--lr", "1e-3"])
    assert config.training.global_batch == 16 and config.training.remat and config.training.lr == 1e-3
    assert json.loads(config.to_json())["arch"]["hidden_size"] == 64
    for name, (arch, training) in PRESETS.items():
        config = config_from_args(["--preset", name])  # every preset passes its own validation
        assert arch.hidden_size % arch.num_heads == 0 and training.seq_len <= arch.max_seq_len, name


def test_llama_presets_have_the_published_shapes():
    arch = PRESETS["llama3_1_8b"][0]
    assert (arch.hidden_size, arch.num_layers, arch.num_heads, arch.num_kv_heads) == (4096, 32, 32, 8)
    assert (arch.intermediate_size, arch.vocab_size, arch.rope_theta) == (14336, 128256, 500000.0)
    small = PRESETS["llama3_2_1b"][0]
    assert (small.hidden_size, small.num_layers, small.intermediate_size, small.tie_embeddings) == (
        2048,
        16,
        8192,
        True,
    )


def test_world_checks_name_the_fix():
    config = config_from_args(["--preset", "tiny", "--global-batch", "6"])
    validate_world(config, num_devices=4, num_processes=2)  # 2 data groups x 3 rows
    with pytest.raises(ConfigError, match="--global-batch=6 does not split over 4 data-parallel groups"):
        validate_world(dataclass_replace(config, model_parallel=1), num_devices=4, num_processes=2)
    with pytest.raises(ConfigError, match="--model-parallel=2 does not divide the 3 devices"):
        validate_world(config, num_devices=3, num_processes=1)


def dataclass_replace(config, **training):
    import dataclasses  # noqa: PLC0415

    return dataclasses.replace(config, training=dataclasses.replace(config.training, **training))


# --- MaxText: its configs use MaxText's own keys (vendored from the pinned tag's base config) ----------


def maxtext_configs() -> list[Path]:
    return sorted((FOLDER / "maxtext").glob("*.yml"))


def test_vendored_keys_are_from_the_pinned_maxtext():
    assert MAXTEXT["tag"] == f"maxtext-v{VERSIONS['python']['maxtext']}"
    assert len(MAXTEXT["keys"]) > 500 and "ici_fsdp_parallelism" in MAXTEXT["keys"]


@pytest.mark.parametrize("path", maxtext_configs(), ids=lambda p: p.name)
def test_maxtext_config_keys_exist_in_maxtext(path):
    config = yaml.safe_load(path.read_text())
    unknown = sorted(set(config) - set(MAXTEXT["keys"]) - {"base_config"})  # the loader's own key
    assert unknown == [], f"{path.name}: keys MaxText {MAXTEXT['tag']} does not define: {unknown}"
    assert config["base_config"] == "base.yml"
    assert config["model_name"] in MAXTEXT["models"]
    assert config["hardware"] in {"gpu", "gpu_multiprocess"}


@pytest.mark.parametrize("path", maxtext_configs(), ids=lambda p: p.name)
def test_maxtext_mesh_fills_a_p5_node(path):
    config = yaml.safe_load(path.read_text())
    ici = [v for k, v in config.items() if k.startswith("ici_") and k.endswith("_parallelism")]
    product = 1
    for value in ici:
        product *= value
    assert product == 8, f"{path.name}: the ici_* axes multiply to {product}, not the 8 GPUs of a p5 node"
    assert config.get("dcn_data_parallelism", -1) == -1  # the nodes: whatever the allocation has


def test_maxtext_sbatch_overrides_are_maxtext_keys():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    result = subprocess.run(
        ["bash", "slurm/maxtext.sbatch", "steps=50"],
        cwd=FOLDER,
        env={**env, "DRY_RUN": "1", "INSTANCE_TYPE": "cpu", "EFA_SYSFS": "/nonexistent"},
        capture_output=True,
        text=True,
        check=True,
    )
    overrides = [
        word.split("=", 1)[0] for word in result.stdout.split() if "=" in word and not word.startswith("--")
    ]
    assert overrides == ["run_name", "base_output_directory", "steps"]
    assert set(overrides) <= set(MAXTEXT["keys"])
    assert "-m maxtext.trainers.pre_train.train /workspace/jax/maxtext/llama3_1_8b_p5.yml" in result.stdout
