"""The ESM-2 data step (src/prepare_esm2_data.py through `make data`) on a FASTA/CSV fixture made here,
its output read back the way BioNeMo v2.7's ESM-2 dataset reads it (vendored in tests/upstream/: the
Parquet columns, the SQLite query), and bad input. Needs pyarrow: the case's nox session runs it."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.framework
FOLDER = Path(__file__).resolve().parents[1]
UPSTREAM = json.loads((FOLDER / "tests" / "upstream" / "bionemo-framework-v2.7.json").read_text())[
    "esm2_data"
]
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def fixture(root: Path, clusters: int = 40) -> dict[str, dict[str, str]]:
    """UniRef-like FASTA (60-residue lines, the cluster's representative among its members) and the
    ur50_id,ur90_id table, plus two sequences in no cluster. Returns {ur50: {ur90: sequence}}."""
    rng = random.Random(7)
    table: dict[str, dict[str, str]] = {}
    for c in range(clusters):
        accession = f"P{c:05d}"
        members = [f"UniRef90_{accession}"] + [f"UniRef90_Q{c:03d}{m}" for m in range(rng.randint(0, 4))]
        table[f"UniRef50_{accession}"] = {
            m: "".join(rng.choices(AMINO, k=rng.randint(30, 200))) for m in members
        }
    fasta, rows = [], ["ur50_id,ur90_id"]
    for ur50, members in table.items():
        for ur90, sequence in members.items():
            fasta.append(f">{ur90} n=1 Tax=Homo sapiens")
            fasta += [sequence[i : i + 60] for i in range(0, len(sequence), 60)]
            rows.append(f"{ur50},{ur90}")
    fasta += [">UniRef90_ORPHAN1", "MKV", ">UniRef90_ORPHAN2", "mkl"]
    (root / "members.fasta").write_text("\n".join(fasta) + "\n")
    (root / "clusters.csv").write_text("\n".join(rows) + "\n")
    return table


def make_data(
    output: Path, fasta: Path, clusters: Path, fraction: str = "0.1"
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "data",
            f"VENV={sys.prefix}",
            f"FASTA={fasta}",
            f"CLUSTERS={clusters}",
            f"VALID_FRACTION={fraction}",
            f"DATA_DIR={output}",
        ],
        cwd=FOLDER,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_output_is_what_the_esm2_dataset_reads(tmp_path):
    import pyarrow.parquet as pq  # noqa: PLC0415 - the nox session has it, the project venv not

    table = fixture(tmp_path)
    out = tmp_path / "esm2-data"
    done = make_data(out, tmp_path / "members.fasta", tmp_path / "clusters.csv")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*UPSTREAM["file_names"], "prepare_info.json"])
    train = pq.read_table(out / "train_clusters.parquet")
    valid = pq.read_table(out / "valid_clusters.parquet")
    train_clusters = train.column(UPSTREAM["train_cluster_column"]).to_pylist()  # a list of ids per row
    valid_ids = valid.column(UPSTREAM["valid_cluster_column"]).to_pylist()  # one id per row
    assert len(valid_ids) == 4 and len(train_clusters) == 36
    train_ur50 = train.column("ur50_id").to_pylist()
    assert not set(train_ur50) & set(valid_ids)  # whole clusters: nothing held out is trained on
    with sqlite3.connect(out / "train.db") as db:
        assert db.execute(UPSTREAM["sqlite_count"]).fetchone()[0] == sum(len(c) for c in train_clusters)
        for ur50, members in zip(train_ur50, train_clusters, strict=True):
            assert sorted(members) == sorted(table[ur50])
            for ur90 in members:
                assert db.execute(UPSTREAM["sqlite_query"], (ur90,)).fetchone()[0] == table[ur50][ur90]
    with sqlite3.connect(out / "validation.db") as db:
        for ur50 in valid_ids:  # the representative: the member with the cluster's accession
            expected = table[ur50]["UniRef90_" + ur50.split("_", 1)[1]]
            assert db.execute(UPSTREAM["sqlite_query"], (ur50,)).fetchone()[0] == expected
    info = json.loads((out / "prepare_info.json").read_text())
    assert info["format"].startswith("bionemo-framework v2.7") and info["unclustered_sequences_left_out"] == 2
    again = make_data(tmp_path / "again", tmp_path / "members.fasta", tmp_path / "clusters.csv")
    assert again.returncode == 0
    assert (
        pq.read_table(tmp_path / "again" / "valid_clusters.parquet").column("ur50_id").to_pylist()
        == valid_ids
    )


BAD = [
    ("missing", "--fasta {root}/nope.fasta does not exist"),
    ("not-fasta", "sequence before the first '>' header; is it FASTA?"),
    ("residues", "record 'UniRef90_X' has '*1'; amino-acid letters only"),
    ("duplicate", "id 'UniRef90_A' appears twice"),
    ("header", "the header must name ur50_id and ur90_id"),
    ("two-clusters", "UniRef90_A is in UniRef50_A and UniRef50_B; one cluster each"),
    ("unknown-member", "--clusters names 1 id(s) the FASTA lacks (first: UniRef90_Z)"),
    ("one-cluster", "1 cluster(s); training and validation need at least 2"),
    ("fraction", "--valid-fraction nan: a fraction between 0 and 1"),
    ("latin1", "is not UTF-8 text"),
]


@pytest.mark.parametrize(("case", "message"), BAD, ids=[c for c, _ in BAD])
def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, case, message):
    fasta, clusters = tmp_path / "in.fasta", tmp_path / "in.csv"
    fasta.write_text(">UniRef90_A\nMKV\n>UniRef90_B\nMKL\n")
    clusters.write_text("ur50_id,ur90_id\nUniRef50_A,UniRef90_A\nUniRef50_B,UniRef90_B\n")
    fraction = "0.5"
    if case == "missing":
        fasta = tmp_path / "nope.fasta"
    elif case == "not-fasta":
        fasta.write_text("MKV\n")
    elif case == "residues":
        fasta.write_text(">UniRef90_X\nMK1*\n")
    elif case == "duplicate":
        fasta.write_text(">UniRef90_A\nMKV\n>UniRef90_A\nMKV\n")
    elif case == "header":
        clusters.write_text("cluster,member\nA,B\n")
    elif case == "two-clusters":
        clusters.write_text("ur50_id,ur90_id\nUniRef50_A,UniRef90_A\nUniRef50_B,UniRef90_A\n")
    elif case == "unknown-member":
        clusters.write_text("ur50_id,ur90_id\nUniRef50_A,UniRef90_A\nUniRef50_B,UniRef90_Z\n")
    elif case == "one-cluster":
        clusters.write_text("ur50_id,ur90_id\nUniRef50_A,UniRef90_A\nUniRef50_A,UniRef90_B\n")
    elif case == "fraction":
        fraction = "nan"
    elif case == "latin1":
        clusters.write_bytes("ur50_id,ur90_id\nUniRef50_\xe9,UniRef90_A\n".encode("latin-1"))
    out = tmp_path / "out"
    done = make_data(out, fasta, clusters, fraction)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode != 0 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert message.format(root=tmp_path) in errors[0]
    assert not out.exists() and not list(tmp_path.glob(".prepare-*"))
