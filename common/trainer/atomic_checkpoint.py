"""Atomic, verified checkpoint folders: every trainer of this repository carries a copy.

Layout: ``<checkpoint_dir>/step-00000040/`` holds what the trainer writes (its ``write_payload``), each
rank's RNG state ``rng-rank<R>.pt`` and, last, ``COMPLETE``: a JSON marker with the step, the world size
and a manifest (every file's relative path, size and CRC-32). Everything is written into
``.step-00000040.tmp`` first and renamed into place before the marker is written, so a folder without the
marker is an interrupted save. On resume a checkpoint is used only when its marker is present and every
file of the manifest is there with its size and checksum; otherwise it is skipped, with a warning naming
what is wrong, for the previous one. All ranks compute and verify the checksums together (each reads
every world-size-th file), so the cost does not pile up on rank 0.

A save that fails on any rank (disk full, read-only storage) ends on every rank with one
``CheckpointError`` that says what happened and which checkpoint is still intact; the half-written
folder is removed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.api import CheckpointException

from .distributed import broadcast_outcome

MARKER = "COMPLETE"
PREFIX = "step-"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or used; the message says what to do."""


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def step_folder(checkpoint_dir: Path, step: int) -> Path:
    return checkpoint_dir / f"{PREFIX}{step:08d}"


def payload_files(folder: Path) -> list[str]:
    """Every file under ``folder`` except the marker, relative and sorted (the same list on every rank)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MARKER)


def crc32(path: Path) -> str:
    value = 0
    with path.open("rb") as handle:
        while chunk := handle.read(8 << 20):
            value = zlib.crc32(chunk, value)
    return f"{value:08x}"


def _share(names: list[str]) -> list[str]:
    """This rank's share of ``names``: every world-size-th one."""
    return names[dist.get_rank() :: dist.get_world_size()]


def _first_failure(message: str | None) -> str | None:
    """Collective. The first failure of any rank (in rank order), or None when every rank succeeded."""
    messages: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(messages, message)
    return next((m for m in messages if m), None)


def manifest(folder: Path) -> dict[str, dict]:
    """Collective. Every file under ``folder`` except the marker: relative path -> size and CRC-32."""
    mine = {
        name: {"size": (folder / name).stat().st_size, "crc32": crc32(folder / name)}
        for name in _share(payload_files(folder))
    }
    parts: list[dict] = [{} for _ in range(dist.get_world_size())]
    dist.all_gather_object(parts, mine)
    return dict(sorted((name, entry) for part in parts for name, entry in part.items()))


def save(
    checkpoint_dir: Path,
    step: int,
    write_payload: Callable[[Path], None],
    keep: int,
    before_marker: Callable[[], None] | None = None,
) -> Path:
    """Collective. Every rank calls ``write_payload(tmp_folder)``; rank 0 renames the folder into place,
    writes the marker with the manifest, and keeps the newest ``keep`` complete checkpoints."""
    rank = dist.get_rank()
    final = step_folder(checkpoint_dir, step)
    tmp = checkpoint_dir / f".{final.name}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    failure = None
    try:
        write_payload(tmp)
        torch.save(torch.get_rng_state(), tmp / f"rng-rank{rank}.pt")
    except (OSError, RuntimeError, CheckpointException) as exc:
        # torch.save reports a full disk as a RuntimeError; distributed checkpoint wraps each rank's error
        # in a CheckpointException (a BaseException).
        failure = save_failure(exc, final)
    failure = _first_failure(failure)
    if failure is not None:
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        dist.barrier()
        intact = complete_checkpoints(checkpoint_dir)
        raise CheckpointError(
            f"{failure}; {f'{intact[0].name} is intact' if intact else 'no earlier checkpoint'}"
        )
    files = manifest(tmp)
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)  # an incomplete leftover of an earlier attempt
        os.replace(tmp, final)
        if before_marker is not None:
            before_marker()
        marker = {"step": step, "world_size": dist.get_world_size(), "time": time.time(), "files": files}
        marker_tmp = final / f".{MARKER}.tmp"
        marker_tmp.write_text(json.dumps(marker) + "\n")
        os.replace(marker_tmp, final / MARKER)
        for old in complete_checkpoints(checkpoint_dir)[keep:]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()
    return final


def save_failure(exc: BaseException, final: Path) -> str:
    """One line for a failed save: what happened, to which checkpoint, where."""
    if isinstance(exc, CheckpointException) and exc.failures:
        exc = next(iter(exc.failures.values()))[0]  # the first failing rank's own exception
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOSPC or "No space left" in text or "unexpected pos" in text:
        what = "no space left on device"
    elif code == errno.EROFS or "Read-only file system" in text:
        what = "read-only file system"
    elif "PytorchStreamWriter failed" in text or "file write failed" in text:
        what = "the write failed (disk full, a quota or a file-size limit: torch's writer gives no reason)"
    elif isinstance(exc, OSError) and exc.strerror:
        what = exc.strerror
    else:
        what = (text.strip().splitlines() or [type(exc).__name__])[-1]
    return f"{what} writing checkpoint {final.name} to {final.parent}"


def complete_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Folders with a completion marker, newest first (not yet verified)."""
    folders = sorted(checkpoint_dir.glob(f"{PREFIX}*"), reverse=True) if checkpoint_dir.is_dir() else []
    return [folder for folder in folders if (folder / MARKER).is_file()]


def _manifest_files(folder: Path) -> dict:
    files = json.loads((folder / MARKER).read_text())["files"]
    if not isinstance(files, dict):
        raise TypeError("no file list")
    return files


def problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be resumed from as far as its marker and the files' sizes tell, or None when
    they check out (the checksums are ``checksum_problem``'s, on every rank)."""
    if not (folder / MARKER).is_file():
        return f"no {MARKER} marker: the save was interrupted"
    try:
        files = _manifest_files(folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable {MARKER} marker ({exc})"
    for name, entry in files.items():
        size = entry.get("size") if isinstance(entry, dict) else entry  # older markers: sizes only
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {size}"
    return None


def checksum_problem(folder: Path) -> str | None:
    """Collective. The first file whose CRC-32 differs from the manifest's (each rank reads its share),
    as one line, or None."""
    files = _manifest_files(folder)
    names = sorted(name for name, entry in files.items() if isinstance(entry, dict) and "crc32" in entry)
    mine = None
    for name in _share(names):
        actual = crc32(folder / name)
        if actual != files[name]["crc32"]:
            mine = f"{name} has CRC-32 {actual}, the manifest says {files[name]['crc32']} (a damaged file)"
            break
    return _first_failure(mine)


def choose(resume: str, checkpoint_dir: Path) -> Path | None:
    """Collective. The checkpoint for ``--resume`` (auto | never | a folder), the same on every rank.
    ``auto`` takes the newest one whose marker, sizes and checksums check out, warning about each one it
    skips; a named folder that does not check out is an error."""
    if resume == "never":
        return None
    candidates = _candidates(checkpoint_dir) if resume == "auto" else [Path(resume)]
    for folder in candidates:
        reason = broadcast_outcome(problem(folder) if dist.get_rank() == 0 else None)
        if reason is None:
            reason = checksum_problem(folder)
        if reason is None:
            return folder
        if resume != "auto":
            raise CheckpointError(
                f"--resume {resume} is not a complete, readable checkpoint ({reason}); pass a step-* "
                f"folder with a {MARKER} marker, or --resume auto"
            )
        if dist.get_rank() == 0:
            warn(f"skipping checkpoint {folder}: {reason}")
    return None


def _candidates(checkpoint_dir: Path) -> list[Path]:
    return sorted(checkpoint_dir.glob(f"{PREFIX}*"), reverse=True) if checkpoint_dir.is_dir() else []


def restore_rng(folder: Path, step: int) -> None:
    """This rank's RNG as saved, or reseeded with a warning when the world size changed."""
    rng = folder / f"rng-rank{dist.get_rank()}.pt"
    if rng.is_file():
        torch.set_rng_state(torch.load(rng, weights_only=True))
    else:
        warn(f"{rng.name} not in {folder} (the world size changed); reseeding this rank")
        torch.manual_seed(step * 1000 + dist.get_rank())
