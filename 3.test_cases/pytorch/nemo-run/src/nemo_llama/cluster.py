"""The cluster file a user edits (configs/cluster.yaml): where jobs go and what they mount.

Loaded and checked before nemo-run or NeMo is imported, so a typo costs a second, not a job submission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

_MOUNT = re.compile(r"^/[^:,\s]*:/[^:,\s]*(:(ro|rw))?$")
_TIME = re.compile(r"^(\d+-)?\d{1,2}:\d{2}:\d{2}$")


class ConfigError(ValueError):
    """A value in the cluster file or on the command line that cannot work; the message names the fix."""


@dataclass(frozen=True)
class Cluster:
    """One Slurm cluster as nemo-run's SlurmExecutor needs it."""

    partition: str | None = None
    account: str | None = None
    container_image: str = ""
    container_mounts: list[str] = field(default_factory=list)
    job_dir: str = "/fsx/nemo-run"
    gpus_per_node: int = 8
    time: str = "04:00:00"
    exclusive: bool = True
    job_name_prefix: str = "nemo-"

    def check(self, source: str) -> Cluster:
        """Raise ConfigError naming the key and the fix for the first value that cannot work."""
        if not isinstance(self.gpus_per_node, int) or isinstance(self.gpus_per_node, bool):
            raise ConfigError(f"{source}: gpus_per_node must be a whole number, got {self.gpus_per_node!r}")
        if self.gpus_per_node < 0:
            raise ConfigError(
                f"{source}: gpus_per_node must be 0 (CPU nodes) or more, got {self.gpus_per_node}"
            )
        if not isinstance(self.container_mounts, list) or not all(
            isinstance(m, str) and _MOUNT.match(m) for m in self.container_mounts
        ):
            raise ConfigError(
                f"{source}: container_mounts must be a list of 'HOST_PATH:CONTAINER_PATH' absolute paths, "
                f"got {self.container_mounts!r}"
            )
        if not isinstance(self.time, str) or not _TIME.match(self.time):
            raise ConfigError(f"{source}: time must look like HH:MM:SS or D-HH:MM:SS, got {self.time!r}")
        if not isinstance(self.job_dir, str) or not self.job_dir.startswith("/"):
            raise ConfigError(
                f"{source}: job_dir must be an absolute path on shared storage, got {self.job_dir!r}"
            )
        for name in ("partition", "account", "container_image", "job_name_prefix"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or any(c.isspace() for c in value)):
                raise ConfigError(f"{source}: {name} must be one word without spaces, got {value!r}")
        if not isinstance(self.exclusive, bool):
            raise ConfigError(f"{source}: exclusive must be true or false, got {self.exclusive!r}")
        return self


def load_cluster(path: str | Path) -> Cluster:
    """The cluster file as a checked Cluster; ConfigError for a missing, malformed or misspelled file."""
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file; copy configs/cluster.yaml and edit it") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a folder; pass the cluster YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text; pass the cluster YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{source}: not valid YAML{where}; fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping of keys to values, got {type(data).__name__}")
    known = {f.name for f in fields(Cluster)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; the keys are {', '.join(sorted(known))}")
    return Cluster(**data).check(source)
