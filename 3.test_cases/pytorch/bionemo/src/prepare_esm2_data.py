#!/usr/bin/env python3
"""ESM-2 pretraining data in the layout BioNeMo's ``train_esm2`` reads, from a FASTA file and a cluster table.

The format is bionemo-framework v2.7's (the pinned container), ``sub-packages/bionemo-esm2/src/bionemo/
esm2/data/dataset.py``: training samples one UniRef90 sequence from a UniRef50 cluster per step, so

- ``train_clusters.parquet``: a column ``ur90_id``, one row per UniRef50 cluster holding the list of its
  UniRef90 member ids (and ``ur50_id``, for reference);
- ``train.db``: SQLite, table ``protein(id, sequence)`` with every training member;
- ``valid_clusters.parquet``: a column ``ur50_id``, one held-out cluster per row;
- ``validation.db``: SQLite ``protein(id, sequence)`` keyed by those UniRef50 ids (the representative's
  sequence: the member with the cluster's accession, else the first member);
- ``prepare_info.json``: counts, seed and the source version of this format.

    python3 src/prepare_esm2_data.py --fasta uniref90_members.fasta --clusters clusters.csv \\
        --valid-fraction 0.01 --output /fsx/bionemo/esm2-data

``--clusters`` is a CSV with a header and the columns ``ur50_id,ur90_id`` (one row per member). Whole
clusters are held out (no cluster is in both splits), chosen with ``--seed``. FASTA records in no cluster
are left out and counted. The output folder appears only when complete.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sqlite3
import sys
import tempfile
from pathlib import Path

SOURCE = "bionemo-framework v2.7, sub-packages/bionemo-esm2/src/bionemo/esm2/data/dataset.py"
RESIDUES = re.compile(r"[A-Z]+")


class DataError(ValueError):
    """Bad input; the message names it and the fix."""


def read_text(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{option} {path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{option} {path} is a folder; pass the file") from None
    except UnicodeDecodeError:
        raise DataError(f"{option} {path} is not UTF-8 text; pass a text FASTA/CSV file") from None


def read_fasta(path: Path) -> dict[str, str]:
    """id (the header's first word) -> sequence (upper case, lines joined)."""
    sequences: dict[str, str] = {}
    current: str | None = None
    parts: list[str] = []

    def close() -> None:
        if current is None:
            return
        sequence = "".join(parts).upper()
        if not RESIDUES.fullmatch(sequence):
            bad = sorted(set(re.sub(r"[A-Z]", "", sequence))) or ["(empty)"]
            raise DataError(
                f"--fasta {path}: record {current!r} has {''.join(bad)!r}; amino-acid letters only"
            )
        sequences[current] = sequence

    for number, raw in enumerate(read_text(path, "--fasta").splitlines(), start=1):
        line = raw.strip()
        if line.startswith(">"):
            close()
            words = line[1:].split()
            if not words:
                raise DataError(f"--fasta {path}:{number}: a header without an id; write '>ID description'")
            if words[0] in sequences:
                raise DataError(f"--fasta {path}:{number}: id {words[0]!r} appears twice; ids must be unique")
            current, parts = words[0], []
        elif line:
            if current is None:
                raise DataError(
                    f"--fasta {path}:{number}: sequence before the first '>' header; is it FASTA?"
                )
            parts.append(line)
    close()
    if not sequences:
        raise DataError(f"--fasta {path} holds no records; pass a FASTA file ('>ID' lines, then sequence)")
    return sequences


def read_clusters(path: Path) -> dict[str, list[str]]:
    """UniRef50 id -> its UniRef90 member ids, from a CSV with ur50_id and ur90_id columns."""
    rows = csv.DictReader(read_text(path, "--clusters").splitlines())
    if not rows.fieldnames or not {"ur50_id", "ur90_id"} <= set(rows.fieldnames):
        raise DataError(f"--clusters {path}: the header must name ur50_id and ur90_id; got {rows.fieldnames}")
    clusters: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        ur50, ur90 = (row["ur50_id"] or "").strip(), (row["ur90_id"] or "").strip()
        if not ur50 or not ur90:
            raise DataError(f"--clusters {path}:{number}: empty ur50_id or ur90_id; every row needs both")
        if owner.setdefault(ur90, ur50) != ur50:
            raise DataError(
                f"--clusters {path}:{number}: {ur90} is in {owner[ur90]} and {ur50}; one cluster each"
            )
        clusters.setdefault(ur50, []).append(ur90)
    if len(clusters) < 2:
        raise DataError(
            f"--clusters {path}: {len(clusters)} cluster(s); training and validation need at least 2"
        )
    return {ur50: sorted(set(members)) for ur50, members in clusters.items()}


def split(clusters: dict[str, list[str]], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(training, validation) UniRef50 ids: whole clusters, a seeded shuffle, at least one on each side."""
    if not 0 < fraction < 1:
        raise DataError(f"--valid-fraction {fraction}: a fraction between 0 and 1 (e.g. 0.01)")
    names = sorted(clusters)
    random.Random(seed).shuffle(names)
    held_out = min(len(names) - 1, max(1, round(fraction * len(names))))
    return sorted(names[held_out:]), sorted(names[:held_out])


def representative(ur50: str, members: list[str]) -> str:
    """The member with the cluster's accession (UniRef50_X -> UniRef90_X), else the first member."""
    accession = ur50.split("_", 1)[-1]
    same = [m for m in members if m.split("_", 1)[-1] == accession]
    return (same or members)[0]


def write_db(path: Path, rows: list[tuple[str, str]]) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE protein (id TEXT PRIMARY KEY, sequence TEXT NOT NULL)")
        db.executemany("INSERT INTO protein (id, sequence) VALUES (?, ?)", rows)
    db.close()


def prepare(options: argparse.Namespace) -> str:
    output = Path(options.output)
    if output.exists():
        raise DataError(f"--output {output} exists; remove it or choose another folder")
    if not output.parent.is_dir():
        raise DataError(f"--output {output}: the folder {output.parent} does not exist; create it first")
    sequences = read_fasta(Path(options.fasta))
    clusters = read_clusters(Path(options.clusters))
    missing = sorted({m for members in clusters.values() for m in members} - set(sequences))
    if missing:
        raise DataError(
            f"--clusters names {len(missing)} id(s) the FASTA lacks (first: {missing[0]}); "
            "pass the FASTA of every member or drop those rows"
        )
    train, valid = split(clusters, options.valid_fraction, options.seed)
    import pyarrow as pa  # noqa: PLC0415 - after the cheap checks
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        scratch = Path(tempfile.mkdtemp(prefix=".prepare-", dir=output.parent))
    except PermissionError:
        raise DataError(
            f"--output {output}: {output.parent} is not writable; choose another folder"
        ) from None
    try:
        train_table = {"ur50_id": train, "ur90_id": [clusters[c] for c in train]}
        pq.write_table(pa.table(train_table), scratch / "train_clusters.parquet")
        pq.write_table(pa.table({"ur50_id": valid}), scratch / "valid_clusters.parquet")
        members = [(m, sequences[m]) for c in train for m in clusters[c]]
        write_db(scratch / "train.db", members)
        write_db(scratch / "validation.db", [(c, sequences[representative(c, clusters[c])]) for c in valid])
        unclustered = len(set(sequences) - {m for ms in clusters.values() for m in ms})
        info = {
            "format": SOURCE,
            "seed": options.seed,
            "valid_fraction": options.valid_fraction,
            "train_clusters": len(train),
            "train_sequences": len(members),
            "valid_clusters": len(valid),
            "unclustered_sequences_left_out": unclustered,
        }
        (scratch / "prepare_info.json").write_text(json.dumps(info, indent=2) + "\n")
        scratch.rename(output)
    except BaseException:
        for path in scratch.glob("*"):
            path.unlink()
        scratch.rmdir()
        raise
    return (
        f"wrote {output}: {len(train)} training clusters ({len(members)} sequences), {len(valid)} validation "
        f"clusters, {unclustered} sequences in no cluster left out"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fasta", required=True, help="member sequences, '>ID ...' headers")
    parser.add_argument("--clusters", required=True, help="CSV with ur50_id,ur90_id columns")
    parser.add_argument("--valid-fraction", type=float, default=0.01, help="share of clusters held out")
    parser.add_argument("--seed", type=int, default=0, help="which clusters are held out")
    parser.add_argument("--output", required=True, help="the folder to write (must not exist)")
    options = parser.parse_args(argv)
    try:
        print(prepare(options))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
