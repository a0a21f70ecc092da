"""Fetch the schemas listed in SOURCES.json from their projects' release tags (or check them).

    python testbed/schemas/refresh.py                 # download from raw.githubusercontent.com
    python testbed/schemas/refresh.py --check         # exit 1 when a stored file differs from its tag
    python testbed/schemas/refresh.py --git kubeflow/trainer=/src/trainer ...   # from local clones

The tag of each source is its pin in ``2.ami_and_containers/versions.yaml`` (``components.<pin>``)
when versions.yaml has one, else the tag SOURCES.json records: bump the pin, run this, run the tests.
A CustomResourceDefinition (YAML upstream) is stored as JSON with the same content (``document``
"Kind/name" picks it out of a multi-document install manifest); a JSON schema is stored byte for
byte. SOURCES.json keeps the commit and the sha256 of the upstream file.
Exit status: 0 written or up to date; 1 ``--check`` found a difference; 2 a file could not be fetched
(then nothing is written).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "SOURCES.json"
VERSIONS = HERE.parents[1] / "2.ami_and_containers" / "versions.yaml"
RAW_URL = "https://raw.githubusercontent.com/{repository}/{tag}/{path}"
GIT_URL = "https://github.com/{repository}"


def stored_form(name: str, upstream: bytes, document: str | None = None) -> bytes:
    """What is kept under testbed/schemas/ for the upstream bytes of ``name``; ``document``
    ("Kind/name") picks one document of a multi-document file, such as a release's install manifest."""
    if upstream.lstrip().startswith(b"{"):
        return upstream
    documents = [doc for doc in yaml.safe_load_all(upstream) if doc is not None]
    if document is not None:
        kind, _, object_name = document.partition("/")
        documents = [
            d for d in documents if (d.get("kind"), d.get("metadata", {}).get("name")) == (kind, object_name)
        ]
    if len(documents) != 1 or documents[0].get("kind") != "CustomResourceDefinition":
        raise ValueError(f"{name}: expected one CustomResourceDefinition document")
    return (json.dumps(documents[0], indent=1, ensure_ascii=False) + "\n").encode()


def fetch(repository: str, tag: str, path: str, clones: dict[str, Path]) -> tuple[bytes, str]:
    """(upstream bytes, commit) of ``path`` at ``tag``."""
    if repository in clones:
        git = ["git", "-C", str(clones[repository])]
        data = subprocess.run([*git, "show", f"{tag}:{path}"], capture_output=True, check=True).stdout
        commit = subprocess.run(
            [*git, "rev-parse", f"{tag}^{{commit}}"], capture_output=True, text=True, check=True
        ).stdout.strip()
        return data, commit
    url = RAW_URL.format(repository=repository, tag=tag, path=path)
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (https; file:// in tests)
        data = response.read()
    refs = subprocess.run(
        [
            "git",
            "ls-remote",
            GIT_URL.format(repository=repository),
            f"refs/tags/{tag}",
            f"refs/tags/{tag}^{{}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    commits = {ref: sha for sha, _, ref in (line.partition("\t") for line in refs if line)}
    return data, commits.get(f"refs/tags/{tag}^{{}}") or commits[f"refs/tags/{tag}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing; exit 1 on a difference")
    parser.add_argument(
        "--git", action="append", default=[], metavar="OWNER/NAME=DIR", help="read OWNER/NAME from a clone"
    )
    args = parser.parse_args(argv)
    manifest = json.loads(SOURCES.read_text(encoding="utf-8"))
    known = sorted(
        {s["repository"].removeprefix("https://github.com/") for s in manifest["sources"].values()}
    )
    clones = {}
    for item in args.git:  # every --git is checked before anything is fetched
        repository, sep, folder = item.partition("=")
        if not sep or not folder:
            parser.error(f"bad --git {item!r}: expected OWNER/NAME=DIR")
        if repository not in known:
            parser.error(f"bad --git {item!r}: {repository!r} is not a source; use one of {', '.join(known)}")
        if not Path(folder).is_dir():
            parser.error(
                f"bad --git {item!r}: {folder} is not a folder; give the path of a clone of {repository}"
            )
        inside = subprocess.run(
            ["git", "-C", folder, "rev-parse", "--git-dir"], capture_output=True, text=True, check=False
        )
        if inside.returncode != 0:
            parser.error(
                f"bad --git {item!r}: {folder} is not a git clone; "
                f"git clone {GIT_URL.format(repository=repository)} first"
            )
        clones[repository] = Path(folder)
    pins = yaml.safe_load(VERSIONS.read_text(encoding="utf-8")).get("components", {})
    updates = {}
    for name, source in manifest["sources"].items():
        tag = pins.get(source.get("pin"), source["tag"])
        repository = source["repository"].removeprefix("https://github.com/")
        where = f"{repository} {tag} {source['path']}"
        try:
            upstream, commit = fetch(repository, tag, source["path"], clones)
            stored = stored_form(name, upstream, source.get("document"))
        except (OSError, KeyError, ValueError, subprocess.CalledProcessError) as exc:
            detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
            print(f"error: cannot fetch {where}: {detail}; nothing written", file=sys.stderr)
            return 2
        recorded = {"tag": tag, "commit": commit, "sha256": hashlib.sha256(upstream).hexdigest()}
        target = HERE / name
        same = target.exists() and target.read_bytes() == stored
        if same and all(source[key] == value for key, value in recorded.items()):
            print(f"{name}: up to date ({where})")
            continue
        print(f"{name}: {'differs from' if args.check else 'updated to'} {where}")
        updates[name] = (stored, recorded)
    if args.check or not updates:
        return 1 if updates else 0
    for name, (stored, recorded) in updates.items():
        write_atomic(HERE / name, stored)
        manifest["sources"][name].update(recorded)
    write_atomic(SOURCES, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
    return 0


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
