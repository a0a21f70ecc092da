"""The NeMo Framework Launcher's Hydra overrides for one run: conf/cluster.overrides, then the preset's, then
EFA/NCCL variables as ``env_vars``, then the user's; checked by composing them against the launcher's own
config tree when one is given (``--conf <launcher_scripts>/conf``), as its main.py would.

    python3 src/launcher_overrides.py --preset gpt3_5b [--conf DIR] [--env NAME=VALUE ...] [-- OVERRIDE ...]

Prints one override per line (slurm/launch.sh passes them to main.py). Bad input: one ``error:`` line on
stderr, exit 2. Needs hydra-core only with ``--conf``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

CASE_DIR = Path(__file__).resolve().parents[1]
PRESETS_DIR = CASE_DIR / "conf" / "presets"
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_OVERRIDE = re.compile(r"^[~+]{0,2}[A-Za-z_][\w./@-]*=")


class OverrideError(ValueError):
    """An override file, preset or value that cannot work; the message names it and the fix."""


def presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.overrides"))


def read_overrides(path: Path) -> list[str]:
    """The override lines of ``path``: blank lines and ``#`` comment lines left out."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, IsADirectoryError):
        raise OverrideError(f"{path}: no such override file") from None
    except UnicodeDecodeError:
        raise OverrideError(f"{path}: not UTF-8 text") from None
    found = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not _OVERRIDE.match(line):
            raise OverrideError(
                f"{path}:{number}: {line!r} is not KEY=VALUE; write one Hydra override a line"
            )
        found.append(line)
    return found


def env_overrides(pairs: list[str]) -> list[str]:
    """``NAME=VALUE`` pairs as ``++env_vars.NAME="VALUE"`` (quoted: NCCL_SOCKET_IFNAME holds commas)."""
    result = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _ENV_NAME.match(name):
            raise OverrideError(f"--env {pair!r}: expected NAME=VALUE with an upper-case variable name")
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        result.append(f'++env_vars.{name}="{escaped}"')
    return result


def build(preset: str, env: list[str], extra: list[str]) -> list[str]:
    """Every override of the run, in the order main.py gets them (later ones win)."""
    if preset not in presets():
        raise OverrideError(f"unknown preset {preset!r}; choose one of {', '.join(presets())}")
    for override in extra:
        if not _OVERRIDE.match(override):
            raise OverrideError(f"{override!r} is not a Hydra override; write KEY=VALUE")
    return (
        read_overrides(CASE_DIR / "conf" / "cluster.overrides")
        + read_overrides(PRESETS_DIR / f"{preset}.overrides")
        + env_overrides(env)
        + extra
    )


def compose(conf: Path, overrides: list[str]):
    """The launcher's config for ``overrides``, composed from ``conf`` like main.py (version_base 1.2)."""
    if not (conf / "config.yaml").is_file():
        raise OverrideError(
            f"--conf {conf}: no config.yaml; pass the launcher's launcher_scripts/conf folder"
        )
    from hydra import compose as hydra_compose  # noqa: PLC0415 - only with --conf
    from hydra import initialize_config_dir  # noqa: PLC0415
    from hydra.errors import HydraException  # noqa: PLC0415
    from omegaconf import OmegaConf  # noqa: PLC0415
    from omegaconf.errors import OmegaConfBaseException  # noqa: PLC0415

    try:
        with initialize_config_dir(config_dir=str(conf.resolve()), version_base="1.2"):
            cfg = hydra_compose(config_name="config", overrides=overrides)
        missing = sorted(
            OmegaConf.missing_keys(OmegaConf.masked_copy(cfg, ["launcher_scripts_path", "container"]))
        )
    except (HydraException, OmegaConfBaseException) as exc:
        raise OverrideError(one_line(str(exc))) from None
    if missing:
        raise OverrideError(f"{', '.join(missing)} not set; set it in conf/cluster.overrides")
    return cfg


def one_line(message: str) -> str:
    """Hydra's multi-line message as one line, without its full-traceback hint."""
    lines = [line.strip() for line in message.splitlines() if line.strip() and "HYDRA_FULL_ERROR" not in line]
    return " ".join(lines).split(" Config search path:")[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument(
        "--conf", type=Path, help="the launcher's launcher_scripts/conf folder: compose to check"
    )
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE pairs for the launcher's env_vars")
    parser.add_argument("extra", nargs="*", help="more overrides (after --)")
    args = parser.parse_args(argv)
    try:
        overrides = build(args.preset, args.env, args.extra)
        if args.conf is not None:
            cfg = compose(args.conf, overrides)
            print(
                f"checked against {args.conf}: training {cfg.training.run.name} on "
                f"{cfg.training.trainer.num_nodes} nodes x {cfg.cluster.gpus_per_node} GPUs, stages "
                f"{list(cfg.stages)}, container {cfg.container}",
                file=sys.stderr,
            )
    except OverrideError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
