"""The repository's bad-input catalogue: every command a user runs in the project venv, against the same
bad inputs (the catalogue and its rules are in ``testbed/bad_input.py``).

Each (command, bad input) pair must end with exit code 2 (or the code the tool documents for the case),
exactly one line on stderr that says ``error:`` (argparse's usage lines may come before it), no Python
traceback, and no output written where the command was asked to write one. The test prints the figure
``bad inputs: N tried, N clean`` and fails below 100%, naming each pair that is not clean. The commands
that need a framework's venv have their own catalogue test in their test case, run in its nox session.
"""

from __future__ import annotations

from testbed import bad_input
from testbed.bad_input import (
    ALL_FILES,
    NUMBERS_AND_ZERO,
    OUT_INPUTS,
    PY,
    TEXTS,
    VALUES,
    Command,
)

VALIDATION = "4.validation_observability"
HYPERPOD = "1.architectures/5.sagemaker-hyperpod"
PCLUSTER = "1.architectures/2.aws-parallelcluster"
FSDP = "3.test_cases/pytorch/FSDP"
CPU_DDP = "3.test_cases/pytorch/cpu-ddp"
BIONEMO = "3.test_cases/pytorch/bionemo"
NCCL_TESTS = f"{VALIDATION}/6.nccl-tests"
NO_SLURM = {"SLURM_CONF": "/nonexistent/slurm.conf"}  # no scontrol call can reach a cluster
FOLDERS = ("missing folder", "a file")
TRAIN_FAST = ("--max-steps", "1", "--run-dir", "{fresh_out}")

COMMANDS: list[Command] = [
    # 4.validation_observability
    Command(
        "validate_env --instance-types",
        (PY, f"{VALIDATION}/1.pytorch-env-validation/validate_env.py", "--instance-types", "{file}"),
        ALL_FILES,
        env={"INSTANCE_TYPE": "p5.48xlarge"},
    ),
    Command(
        "validate_env --summarize",
        (PY, f"{VALIDATION}/1.pytorch-env-validation/validate_env.py", "--summarize", "{dir}"),
        (*FOLDERS, "empty folder"),
    ),
    Command(
        "validate_env --summarize (a bad result inside)",
        (PY, f"{VALIDATION}/1.pytorch-env-validation/validate_env.py", "--summarize", "{file_dir}"),
        ("binary bytes", "non-UTF-8 text", "malformed JSON", "JSON list", "JSON number", "empty file"),
    ),
    Command(
        "healthcheck aggregate",
        (PY, f"{VALIDATION}/2.gpu-cluster-healthcheck/healthcheck.py", "aggregate", "{file}"),
        ALL_FILES,
    ),
    Command(
        "healthcheck run --json-out",
        (
            PY,
            f"{VALIDATION}/2.gpu-cluster-healthcheck/healthcheck.py",
            "run",
            "--checks",
            "GPU001",
            "--instance-type",
            "p5.48xlarge",
            "--json-out",
            "{out}",
        ),
        ("a folder", *OUT_INPUTS),
        codes=frozenset({2}),
    ),
    Command(
        "healthcheck run --min-busbw",
        (
            PY,
            f"{VALIDATION}/2.gpu-cluster-healthcheck/healthcheck.py",
            "run",
            "--checks",
            "GPU001",
            "--min-busbw",
            "{value}",
        ),
        tuple(VALUES),
    ),
    Command(
        "efa_exporter --once --sysfs-root",
        (PY, f"{VALIDATION}/3.efa-node-exporter/efa_exporter.py", "--once", "--sysfs-root", "{dir}"),
        FOLDERS,
    ),
    Command(
        "efa_exporter --port",
        (PY, f"{VALIDATION}/3.efa-node-exporter/efa_exporter.py", "--port", "{value}"),
        tuple(VALUES),
    ),
    Command(
        "training_textfile",
        (
            PY,
            f"{VALIDATION}/4.prometheus-grafana/training_textfile.py",
            "{file}",
            "--textfile-dir",
            "{fresh_dir}",
        ),
        ALL_FILES,
    ),
    Command(
        "training_textfile --interval",
        (
            PY,
            f"{VALIDATION}/4.prometheus-grafana/training_textfile.py",
            "--follow",
            "--interval",
            "{value}",
            "--textfile-dir",
            "{fresh_dir}",
            "{sample_log}",
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "slurm_targets --node-port",
        (
            PY,
            f"{VALIDATION}/4.prometheus-grafana/slurm_targets.py",
            "--node-port",
            "{value}",
            "--out",
            "{fresh_dir}",
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "amp_remote_write --remote-write-url",
        (
            PY,
            f"{VALIDATION}/4.prometheus-grafana/managed/amp_remote_write.py",
            "--remote-write-url",
            "{text}",
            "--out",
            "{fresh_out}",
        ),
        ("newline", "hash", "quotes", "empty"),
    ),
    Command(
        "nccl_kernel_stats",
        (PY, f"{VALIDATION}/5.nsight/nccl_kernel_stats.py", "{file}"),
        ALL_FILES,
    ),
    Command(
        "nccl_kernel_stats (a .csv export)",
        (PY, f"{VALIDATION}/5.nsight/nccl_kernel_stats.py", "{file}"),
        ("a folder", "empty file", "binary bytes", "non-UTF-8 text", "Markdown", "JSON list"),
        suffix="_cuda_gpu_kern_sum.csv",
    ),
    Command(
        "nccl_kernel_stats --plot",
        (PY, f"{VALIDATION}/5.nsight/nccl_kernel_stats.py", "--plot", "{out}", "{sample_csv}"),
        ("a folder", *OUT_INPUTS),
    ),
    Command(
        "nccl_kernel_stats --max-nccl-share",
        (PY, f"{VALIDATION}/5.nsight/nccl_kernel_stats.py", "--max-nccl-share", "{value}", "{sample_csv}"),
        tuple(VALUES),
    ),
    Command(
        "nccl_report",
        (PY, f"{VALIDATION}/6.nccl-tests/nccl_report.py", "{file}"),
        ALL_FILES,
    ),
    Command(
        "nccl_report --min-busbw",
        (PY, f"{VALIDATION}/6.nccl-tests/nccl_report.py", "--min-busbw", "{value}", "{sample_log}"),
        tuple(VALUES),
    ),
    Command(
        "nccl_report MIN_BUSBW=",
        (PY, f"{VALIDATION}/6.nccl-tests/nccl_report.py", "{sample_log}"),
        tuple(VALUES),
        env={"MIN_BUSBW": "{value}"},
    ),
    Command(
        "nccl_report --instance-types",
        (
            PY,
            f"{VALIDATION}/6.nccl-tests/nccl_report.py",
            "--instance-type",
            "p5.48xlarge",
            "--instance-types",
            "{file}",
            "{sample_log}",
        ),
        ALL_FILES,
    ),
    Command(
        "nccl_report --csv",
        (PY, f"{VALIDATION}/6.nccl-tests/nccl_report.py", "--csv", "{out}", "{sample_log}"),
        ("a folder", *OUT_INPUTS),
    ),
    Command(
        "nccl_report --plot",
        (PY, f"{VALIDATION}/6.nccl-tests/nccl_report.py", "--plot", "{out}", "{sample_log}"),
        ("a folder", *OUT_INPUTS),
    ),
    Command(
        "efa-versions --root",
        (PY, f"{VALIDATION}/efa-versions.py", "--root", "{dir}"),
        FOLDERS,
    ),
    # 3.test_cases trainers and data tools
    Command(
        "FSDP train --lr",
        (PY, f"{FSDP}/src/train.py", "--lr", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "FSDP train --grad-clip",
        (PY, f"{FSDP}/src/train.py", "--grad-clip", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "FSDP train --weight-decay",
        (PY, f"{FSDP}/src/train.py", "--weight-decay", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "FSDP train --step-delay-s",
        (PY, f"{FSDP}/src/train.py", "--step-delay-s", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "FSDP train --data-path",
        (PY, f"{FSDP}/src/train.py", "--data-path", "{file}", *TRAIN_FAST),
        ("missing file", "a folder", "empty file", "binary bytes", "non-UTF-8 text", "Markdown", "JSON list"),
    ),
    Command(
        "FSDP train --data-path (jsonl)",
        (PY, f"{FSDP}/src/train.py", "--data-path", "{jsonl}", *TRAIN_FAST),
        ("no text key", "text not a string", "not JSON"),
    ),
    Command(
        "FSDP stage --input",
        (PY, f"{FSDP}/src/stage.py", "--input", "{file}", "--out", "{fresh_out}"),
        ("missing file", "a folder", "empty file", "binary bytes", "non-UTF-8 text"),
    ),
    Command(
        "cpu-ddp train --lr",
        (PY, f"{CPU_DDP}/src/train.py", "--lr", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "cpu-ddp train --momentum",
        (PY, f"{CPU_DDP}/src/train.py", "--momentum", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "cpu-ddp train --weight-decay",
        (PY, f"{CPU_DDP}/src/train.py", "--weight-decay", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "cpu-ddp train --step-delay-s",
        (PY, f"{CPU_DDP}/src/train.py", "--step-delay-s", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    # 1.architectures generators and the lifecycle program
    Command(
        "HyperPod lifecycle --provisioning-parameters",
        (
            PY,
            f"{HYPERPOD}/LifecycleScripts/base-config/lifecycle.py",
            "--dry-run",
            "--resource-config",
            f"{HYPERPOD}/tests/fixtures/resource_config.json",
            "--provisioning-parameters",
            "{file}",
        ),
        ALL_FILES,
    ),
    Command(
        "HyperPod lifecycle --provisioning-parameters (values)",
        (
            PY,
            f"{HYPERPOD}/LifecycleScripts/base-config/lifecycle.py",
            "--dry-run",
            "--resource-config",
            f"{HYPERPOD}/tests/fixtures/resource_config.json",
            "--provisioning-parameters",
            "{doc}",
        ),
        (
            "partition name with a newline",
            "mount name with a newline",
            "DNS name with a space",
            "login group as a list",
            "group name of 80 characters",
        ),
    ),
    Command(
        "HyperPod lifecycle --resource-config",
        (
            PY,
            f"{HYPERPOD}/LifecycleScripts/base-config/lifecycle.py",
            "--dry-run",
            "--provisioning-parameters",
            f"{HYPERPOD}/tests/fixtures/provisioning_parameters.json",
            "--resource-config",
            "{resources}",
        ),
        ("instances as numbers",),
    ),
    Command(
        "HyperPod create_config --groups",
        (
            PY,
            f"{HYPERPOD}/create_config.py",
            "--stack",
            "s",
            "--groups",
            "{file}",
            "--out-dir",
            "{fresh_out}",
        ),
        ALL_FILES,
    ),
    Command(
        "HyperPod create_config --cluster-name",
        (
            PY,
            f"{HYPERPOD}/create_config.py",
            "--stack",
            "s",
            "--controller",
            "ml.c5.xlarge",
            "--worker",
            "ml.p5.48xlarge:2",
            "--cluster-name",
            "{text}",
            "--out-dir",
            "{fresh_out}",
        ),
        tuple(TEXTS),
    ),
    Command(
        "HyperPod create_config --out-dir",
        (
            PY,
            f"{HYPERPOD}/create_config.py",
            "--stack",
            "s",
            "--controller",
            "ml.c5.xlarge",
            "--worker",
            "ml.p5.48xlarge:2",
            "--cluster-name",
            "ok",
            "--out-dir",
            "{out}",
        ),
        tuple(OUT_INPUTS),
    ),
    Command(
        "HyperPod validate_config --cluster-config",
        (PY, f"{HYPERPOD}/validate_config.py", "--cluster-config", "{file}"),
        ALL_FILES,
    ),
    Command(
        "HyperPod validate_config --cluster-config (values)",
        (PY, f"{HYPERPOD}/validate_config.py", "--cluster-config", "{doc}"),
        ("execution role as a bare name", "execution role as a number"),
    ),
    Command(
        "ParallelCluster create_config --key-name",
        (
            PY,
            f"{PCLUSTER}/create_config.py",
            "--stack",
            "s",
            "--cluster",
            "cpu-small",
            "--key-name",
            "{text}",
            "--out",
            "{fresh_out}",
        ),
        ("newline", "over-long", "empty"),  # '#' and quotes are valid key pair names
    ),
    # The framework cases' own commands (those that run in the project venv)
    Command(
        "picotron_config --verify",
        (
            PY,
            "3.test_cases/pytorch/picotron/src/picotron_config.py",
            "--verify",
            "{file}",
            "--world-size",
            "16",
        ),
        ALL_FILES,
    ),
    Command(
        "picotron_config --world-size",
        (
            PY,
            "3.test_cases/pytorch/picotron/src/picotron_config.py",
            "--verify",
            "3.test_cases/pytorch/picotron/configs/llama3_1_8b-2nodes.json",
            "--world-size",
            "{value}",
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "jax train --lr",
        (PY, "3.test_cases/jax/src/train.py", "--lr", "{value}", *TRAIN_FAST),
        tuple(VALUES),
    ),
    Command(
        "nemo-run launch --cluster",
        (
            PY,
            "3.test_cases/pytorch/nemo-run/src/launch.py",
            "--preset",
            "tiny",
            "--dryrun",
            "--cluster",
            "{file}",
        ),
        ALL_FILES,
    ),
    Command(
        "nemo-launcher launcher_overrides --conf",
        (
            PY,
            "3.test_cases/pytorch/nemo-launcher/src/launcher_overrides.py",
            "--preset",
            "gpt3_5b",
            "--conf",
            "{dir}",
        ),
        (*FOLDERS, "empty folder"),
    ),
    Command(
        "neuronx-distributed nxd_args --nodes",
        (
            PY,
            "3.test_cases/pytorch/neuronx-distributed/src/nxd_args.py",
            "args",
            "--preset",
            "llama3-8b",
            "--data-dir",
            "/fsx/data",
            "--run-dir",
            "{fresh_out}",
            "--nodes",
            "{value}",
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "torchtitan metrics_jsonl",
        (PY, "3.test_cases/pytorch/torchtitan/src/metrics_jsonl.py", "{dir}"),
        (*FOLDERS, "empty folder"),
    ),
    Command(
        "HyperPod precheck --root",
        (PY, "-m", "hyperpod_lifecycle.precheck", "--root", "{dir}"),
        FOLDERS,
        cwd=f"{HYPERPOD}/LifecycleScripts/base-config",
    ),
    # More validation tools: the collective benchmark, its environment, the quarantine of nodes
    Command(
        "collective_bench --iters",
        (PY, f"{NCCL_TESTS}/collective_bench.py", "-e", "64", "--iters", "{value}"),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "collective_bench --minbytes",
        (PY, f"{NCCL_TESTS}/collective_bench.py", "-e", "64", "--minbytes", "{text}"),
        ("newline", "hash", "colon", "empty"),
    ),
    Command(
        "collective_bench --json-out",
        (PY, f"{NCCL_TESTS}/collective_bench.py", "-e", "64", "--json-out", "{out}"),
        ("a folder", *OUT_INPUTS),
    ),
    Command(
        "collective_bench --instance-types",
        (
            PY,
            f"{NCCL_TESTS}/collective_bench.py",
            *("-e", "64", "--judge-min-bytes", "64", "--instance-type", "p5.48xlarge"),
            *("--instance-types", "{file}"),
        ),
        ("missing file", "a folder", "binary bytes", "malformed YAML", "JSON list", "Markdown"),
    ),
    Command(
        "nccl_bench.instance_env --instance-types",
        (PY, "-m", "nccl_bench.instance_env", "--instance-types", "{file}"),
        ALL_FILES,
        cwd=NCCL_TESTS,
    ),
    Command(
        "batch_mnp --slots",
        (PY, f"{NCCL_TESTS}/batch_mnp.py", "--slots", "{value}", "--", "true"),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "quarantine drain NODE",
        (PY, f"{VALIDATION}/2.gpu-cluster-healthcheck/quarantine.py", "drain", "{text}", "--reason", "x"),
        ("newline", "64 characters with hyphens", "hash", "colon", "quotes", "over-long", "empty"),
        env=NO_SLURM,
        mentions=("node",),
    ),
    Command(
        "quarantine drain --reason",
        (PY, f"{VALIDATION}/2.gpu-cluster-healthcheck/quarantine.py", "drain", "n1", "--reason", "{text}"),
        ("empty",),
        env=NO_SLURM,
    ),
    Command(
        "quarantine resume NODE",
        (PY, f"{VALIDATION}/2.gpu-cluster-healthcheck/quarantine.py", "resume", "{text}"),
        ("newline", "quotes", "empty"),
        env=NO_SLURM,
        mentions=("node",),
    ),
    # Framework cases' helpers that run in the project venv
    Command(
        "bionemo_args --nodes",
        (
            PY,
            f"{BIONEMO}/src/bionemo_args.py",
            "run",
            "--preset",
            "esm2-8m",
            "--result-dir",
            "/r",
            "--nodes",
            "{value}",
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "bionemo_args --preset",
        (PY, f"{BIONEMO}/src/bionemo_args.py", "run", "--result-dir", "/r", "--preset", "{text}"),
        tuple(TEXTS),
    ),
    Command(
        "megatron-lm sample_data --output",
        (PY, "3.test_cases/pytorch/megatron-lm/src/sample_data.py", "--output", "{out}"),
        tuple(OUT_INPUTS),
    ),
    Command(
        "megatron-lm sample_data --vocab-size",
        (
            PY,
            "3.test_cases/pytorch/megatron-lm/src/sample_data.py",
            *("--output", "{fresh_out}", "--vocab-size", "{value}"),
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "torchtitan make_tiny_assets --out",
        (PY, "3.test_cases/pytorch/torchtitan/src/make_tiny_assets.py", "--out", "{out}"),
        tuple(OUT_INPUTS),
    ),
    Command(
        "torchtitan make_tiny_assets --vocab-size",
        (
            PY,
            "3.test_cases/pytorch/torchtitan/src/make_tiny_assets.py",
            *("--out", "{fresh_out}", "--vocab-size", "{value}"),
        ),
        tuple(NUMBERS_AND_ZERO),
    ),
    # Repository tools
    Command(
        "benchmarks/gpu_check --steps", (PY, "benchmarks/gpu_check.py", "--steps", "{value}"), tuple(VALUES)
    ),
    Command(
        "benchmarks/gpu_check --out", (PY, "benchmarks/gpu_check.py", "--out", "{out}"), tuple(OUT_INPUTS)
    ),
    Command("benchmarks/run --out", (PY, "benchmarks/run.py", "--out", "{out}"), tuple(OUT_INPUTS)),
    Command(
        "benchmarks/run --steps", (PY, "benchmarks/run.py", "--steps", "{value}"), tuple(NUMBERS_AND_ZERO)
    ),
    Command("benchmarks/fsdp --out", (PY, "benchmarks/fsdp.py", "--out", "{out}"), tuple(OUT_INPUTS)),
    Command(
        "benchmarks/fsdp --rounds", (PY, "benchmarks/fsdp.py", "--rounds", "{value}"), tuple(NUMBERS_AND_ZERO)
    ),
    Command(
        "benchmarks/fsdp_data --out", (PY, "benchmarks/fsdp_data.py", "--out", "{out}"), tuple(OUT_INPUTS)
    ),
    Command(
        "benchmarks/fsdp_data --repeats",
        (PY, "benchmarks/fsdp_data.py", "--repeats", "{value}"),
        tuple(NUMBERS_AND_ZERO),
    ),
    Command(
        "common/sync (a bad instance-types.yaml)",
        (PY, "common/sync.py", "--root", "{tree}"),
        ALL_FILES,
        tree=("common",),
        bad_path="1.architectures/instance-types.yaml",
    ),
    Command(
        "common/sync --check (a bad source module)",
        (PY, "common/sync.py", "--check", "--root", "{tree}"),
        ("missing file", "a folder", "binary bytes", "non-UTF-8 text"),
        tree=("common", "1.architectures/instance-types.yaml"),
        bad_path="common/trainer/faults.py",
    ),
    Command(
        "common/sync --check (a bad efa-env template)",
        (PY, "common/sync.py", "--check", "--root", "{tree}"),
        ("a folder", "binary bytes"),
        tree=("common", "1.architectures/instance-types.yaml"),
        bad_path="common/slurm/efa-env.sh.template",
    ),
    Command(
        "common/sync --root", (PY, "common/sync.py", "--check", "--root", "{dir}"), (*FOLDERS, "empty folder")
    ),
    Command(
        "testbed/schemas/refresh --git DIR",
        (PY, "testbed/schemas/refresh.py", "--check", "--git", "kubeflow/trainer={dir}"),
        (*FOLDERS, "empty folder"),
    ),
    Command(
        "hyperpod resource_config --cluster-name",
        (PY, f"{HYPERPOD}/resource_config.py", "--cluster-name", "{text}", "--out", "{fresh_out}"),
        ("newline", "64 characters with hyphens", "hash", "colon", "quotes", "over-long", "empty"),
    ),
    Command(
        "hyperpod resource_config --out",
        (PY, f"{HYPERPOD}/resource_config.py", "--cluster-name", "ml-hp", "--out", "{out}"),
        ("a folder", "output under a file"),
    ),
    Command("testbed.k8s_pods OUT_DIR", (PY, "-m", "testbed.k8s_pods", "{out}"), ("output under a file",)),
    *(
        Command(
            f"testbed.{service} status --state-dir",
            (PY, "-m", f"testbed.{service}", "status", "--state-dir", "{dir}"),
            FOLDERS,
        )
        for service in ("slurm", "aws", "docker")
    ),
    Command(
        "testbed/shared_storage --root",
        (PY, "testbed/shared_storage.py", "--root", "{dir}", "--", "true"),
        (*FOLDERS, "non-empty folder"),
    ),
    Command(
        "testbed/shared_storage --bind",
        (PY, "testbed/shared_storage.py", "--root", "{fresh_dir}", "--bind", "{text}", "--", "true"),
        tuple(TEXTS),
    ),
    Command(
        "docs/check_site --site", (PY, "docs/check_site.py", "--site", "{dir}"), (*FOLDERS, "empty folder")
    ),
    Command(
        "testbed/schemas/refresh --git NAME",
        (PY, "testbed/schemas/refresh.py", "--check", "--git", "{text}=."),
        tuple(TEXTS),
    ),
]


def test_every_command_ends_every_bad_input_cleanly(tmp_path):
    bad_input.check(COMMANDS, tmp_path)
