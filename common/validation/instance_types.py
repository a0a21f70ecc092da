"""Instance facts from ``1.architectures/instance-types.yaml``: lookup, detection, expected busbw bands.

The validation tools that need instance facts each carry a copy of this module (so every folder stays
copyable on its own), written from common/validation/ by common/sync.py. PyYAML is needed only when the
file is read.

Where the file is: ``--instance-types PATH``, else ``$INSTANCE_TYPES_FILE``, else the nearest
``1.architectures/instance-types.yaml`` above the tool (the repository layout).
Which instance this is: ``--instance-type``, else ``$INSTANCE_TYPE``, else the DMI product name that
EC2 Nitro instances report (``/sys/devices/virtual/dmi/id/product_name``, e.g. ``p5.48xlarge``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RELATIVE_PATH = Path("1.architectures") / "instance-types.yaml"
FILE_ENV = "INSTANCE_TYPES_FILE"
TYPE_ENV = "INSTANCE_TYPE"
DMI_PRODUCT_NAME = Path("sys/devices/virtual/dmi/id/product_name")
DEFAULT_JUDGE_MIN_BYTES = 1 << 30


class InstanceTypesError(ValueError):
    """instance-types.yaml missing, unreadable or without the requested type; the message says the fix."""


@dataclass(frozen=True)
class Band:
    """An expected range of all-reduce bus bandwidth, GB/s."""

    low: float
    high: float

    def judge(self, value: float) -> str:
        """'below', 'within' or 'above' the band."""
        if value < self.low:
            return "below"
        return "above" if value > self.high else "within"

    def __str__(self) -> str:
        return f"{self.low:g}-{self.high:g} GB/s"


@dataclass(frozen=True)
class InstanceType:
    """The facts of one instance type that the tools check against."""

    name: str
    accelerator_kind: str
    accelerator_model: str
    accelerator_count: int
    bf16_dense_tflops: float | None
    efa_devices: int
    efa_gbps: int
    device_rdma: bool
    nvlink_gbytes_per_s_per_gpu: float | None
    busbw_single_node: Band | None
    busbw_two_node: Band | None
    judge_min_bytes: int = DEFAULT_JUDGE_MIN_BYTES

    @property
    def gpus(self) -> int:
        """NVIDIA GPUs of the instance (0 on Trainium)."""
        return self.accelerator_count if self.accelerator_kind == "gpu" else 0

    def busbw_band(self, nodes: int) -> Band | None:
        """The expected all-reduce busbw band for ``nodes`` instances (2 or more use the two-node band)."""
        return self.busbw_single_node if nodes <= 1 else self.busbw_two_node


def find_file(explicit: str | Path | None = None, start: Path | None = None) -> Path:
    """The instance-types.yaml to read (see the module docstring); InstanceTypesError if none."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise InstanceTypesError(
                f"--instance-types {path} does not exist; pass the path of instance-types.yaml"
            )
        return path
    if os.environ.get(FILE_ENV):
        path = Path(os.environ[FILE_ENV])
        if not path.is_file():
            raise InstanceTypesError(f"{FILE_ENV}={path} does not exist; point it at instance-types.yaml")
        return path
    here = (start or Path(__file__)).resolve()
    for folder in [here, *here.parents]:
        if (folder / RELATIVE_PATH).is_file():
            return folder / RELATIVE_PATH
    raise InstanceTypesError(
        f"instance-types.yaml not found above {here}; pass --instance-types PATH or set {FILE_ENV}"
    )


def _band(value: Any, where: str) -> Band | None:
    if value is None:
        return None
    try:
        band = Band(float(value["low"]), float(value["high"]))
    except (KeyError, TypeError, ValueError):
        raise InstanceTypesError(f"{where} must be null or {{low: N, high: N}}; got {value!r}") from None
    if not 0 < band.low <= band.high:
        raise InstanceTypesError(f"{where}: low {band.low:g} must be > 0 and <= high {band.high:g}")
    return band


def _instance(name: str, entry: dict, judge_min_bytes: int, path: Path) -> InstanceType:
    where = f"{path}: {name}"
    try:
        accelerator, efa = entry["accelerator"], entry["efa"]
        bands = entry["allreduce_busbw_gbytes_per_s"]
        return InstanceType(
            name=name,
            accelerator_kind=str(accelerator["kind"]),
            accelerator_model=str(accelerator["model"]),
            accelerator_count=int(accelerator["count"]),
            bf16_dense_tflops=accelerator.get("bf16_dense_tflops"),
            efa_devices=int(efa["devices"]),
            efa_gbps=int(efa["gbps"]),
            device_rdma=bool(efa["device_rdma"]),
            nvlink_gbytes_per_s_per_gpu=entry.get("nvlink_gbytes_per_s_per_gpu"),
            busbw_single_node=_band(bands.get("single_node"), f"{where}.single_node"),
            busbw_two_node=_band(bands.get("two_node"), f"{where}.two_node"),
            judge_min_bytes=judge_min_bytes,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InstanceTypesError(f"{where} lacks or mistypes {exc}; compare it with p5.48xlarge") from None


def load(path: Path) -> dict[str, InstanceType]:
    """Every instance type of the file, by name."""
    try:
        import yaml  # noqa: PLC0415 - only tools that read the file need PyYAML
    except ImportError:
        raise InstanceTypesError("reading instance-types.yaml needs PyYAML; pip install pyyaml") from None
    try:
        data = yaml.safe_load(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InstanceTypesError(
            f"{path} is not UTF-8 text (byte {exc.start}); is it instance-types.yaml?"
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise InstanceTypesError(f"cannot read {path}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict) or not isinstance(data.get("instance_types"), dict):
        raise InstanceTypesError(f"{path} has no 'instance_types' mapping; is it instance-types.yaml?")
    judge_min_bytes = int(data.get("judge_min_bytes", DEFAULT_JUDGE_MIN_BYTES))
    return {
        name: _instance(name, entry, judge_min_bytes, path) for name, entry in data["instance_types"].items()
    }


ENVIRONMENT_GROUPS = ("efa", "device_rdma", "tuner", "gpu", "socket_ifname")


def environment_table(path: Path) -> dict[str, dict[str, str]]:
    """The file's ``efa_nccl_environment``: variable groups by when they apply (see the file)."""
    import yaml  # noqa: PLC0415 - only tools that read the file need PyYAML

    try:
        table = yaml.safe_load(Path(path).read_bytes().decode("utf-8")).get("efa_nccl_environment")
    except (OSError, AttributeError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InstanceTypesError(f"cannot read {path}: {exc}".splitlines()[0]) from None
    if not isinstance(table, dict) or any(not isinstance(table.get(g), dict) for g in ENVIRONMENT_GROUPS):
        raise InstanceTypesError(
            f"{path} lacks efa_nccl_environment with the groups {', '.join(ENVIRONMENT_GROUPS)}"
        )
    return {group: {str(k): str(v) for k, v in table[group].items()} for group in ENVIRONMENT_GROUPS}


def detect_name(explicit: str | None = None, root: Path = Path("/")) -> str | None:
    """This host's instance type name from the flag, $INSTANCE_TYPE or DMI (None when unknown)."""
    if explicit:
        return explicit
    if os.environ.get(TYPE_ENV):
        return os.environ[TYPE_ENV]
    try:
        product = (root / DMI_PRODUCT_NAME).read_text().strip()
    except OSError:
        return None
    return product if "." in product else None


def resolve(
    name: str | None,
    types_file: str | Path | None = None,
    start: Path | None = None,
    root: Path = Path("/"),
) -> InstanceType | None:
    """The facts of this host's instance type, or None when it is unknown.

    An instance type named by flag or environment must be in the file (InstanceTypesError naming the
    known ones otherwise); one read from DMI that the file does not list counts as unknown.
    """
    chosen = detect_name(name, root)
    if chosen is None:
        return None
    named = bool(name or os.environ.get(TYPE_ENV))
    try:
        types = load(find_file(types_file, start))
    except InstanceTypesError:
        if named:
            raise
        return None
    if chosen in types:
        return types[chosen]
    if named:
        raise InstanceTypesError(f"unknown instance type {chosen!r}; known: {', '.join(sorted(types))}")
    return None
