"""Kubernetes manifests: strict rendering of ``${NAME}`` templates and offline schema validation.

Rendering (:func:`render_manifest`) does what ``envsubst '${A} ${B}'`` does for the listed names,
but refuses to leave a placeholder empty: every ``${NAME}`` (``NAME`` = ``[A-Z_][A-Z0-9_]*``) needs
a non-empty value, and all missing names are reported at once. Everything else passes through
untouched: ``$PATH``, ``$(hostname)``, ``$(VAR)`` references that Kubernetes expands, lower-case
``${name}``. A literal ``${X}`` meant for a shell inside a container is written ``$${X}`` and renders
to ``${X}``. (``envsubst`` leaves ``$${X}`` as is; in ``command``, ``args`` and ``env`` values
Kubernetes itself turns ``$$`` into ``$``, so the shell sees ``${X}`` either way.)

Validation (:func:`validate_manifest`) checks every YAML document offline:

- core kinds (Pod, Deployment, Job, Service, ConfigMap, ...) against the strict JSON schemas that
  the ``kubernetes-validate`` package bundles for each Kubernetes minor version (unknown fields,
  wrong types and bad enums are errors), plus a check for null values, which those schemas allow
  everywhere but which are what an unset variable leaves behind (``replicas:``);
- custom kinds against the small schemas in ``testbed/schemas/`` (one per kind, each naming the
  release it was written from: Kubeflow PyTorchJob and MPIJob, eksctl ClusterConfig), found by
  their ``x-kubernetes-group-version-kind`` annotation; pod templates point at the core
  ``PodTemplateSpec`` of the same Kubernetes version;
- any other kind is an error saying no schema is known, never a silent pass;
- a duplicate mapping key is an error (YAML loaders keep one of the two values silently).

CLI::

    python -m testbed.kube render TEMPLATE --set IMAGE=repo/img:1.0 [--set K=V ...] [--out FILE]
    python -m testbed.kube validate FILE... [--kubernetes-version 1.32]

Exit status: 0 success; 1 invalid manifest or a placeholder without a value; 2 bad input (a file
that cannot be read, a malformed ``--set``, an unsupported Kubernetes version).
"""

from __future__ import annotations

import argparse
import difflib
import functools
import importlib.metadata
import importlib.resources
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

DEFAULT_KUBERNETES_VERSION = "1.32"  # EKS 1.32 (FACTS.md §3)
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
K8S_DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"
VARIABLE_NAME = r"[A-Z_][A-Z0-9_]*"
# `$${NAME}` is the escape (renders `${NAME}`); `${NAME}` is a placeholder.
_PLACEHOLDER = re.compile(rf"\$(?:\$\{{(?P<escaped>{VARIABLE_NAME})\}}|\{{(?P<name>{VARIABLE_NAME})\}})")
_SET_ARGUMENT = re.compile(rf"^(?P<key>{VARIABLE_NAME})=(?P<value>.*)$", re.DOTALL)
_MAX_MESSAGE = 240


class MissingVariableError(ValueError):
    """Placeholders of a template that have no (or an empty) value; names all of them."""

    def __init__(self, template: str, missing: Sequence[str]) -> None:
        self.template = template
        self.missing = list(missing)
        settings = " ".join(f"{name}=..." for name in self.missing)
        super().__init__(f"{template}: no value for {', '.join(self.missing)}; set {settings} (non-empty)")


class ManifestSyntaxError(ValueError):
    """A manifest that is not valid YAML (including a duplicate key); the message has the line."""


class UnsupportedVersionError(ValueError):
    """A Kubernetes version that kubernetes-validate has no schemas for."""


# --------------------------------------------------------------------------- rendering


def template_variables(text: str) -> set[str]:
    """The placeholder names used in ``text`` (escaped ``$${NAME}`` excluded)."""
    return {match["name"] for match in _PLACEHOLDER.finditer(text) if match["name"]}


def render_text(text: str, values: Mapping[str, str], *, source: str = "<template>") -> str:
    """Substitute every ``${NAME}`` in ``text`` from ``values``; ``$${NAME}`` renders ``${NAME}``.

    Raises :class:`MissingVariableError` naming ``source`` and every placeholder whose value is
    missing or empty.
    """
    missing = sorted(name for name in template_variables(text) if not str(values.get(name, "")))
    if missing:
        raise MissingVariableError(source, missing)

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "${" + match["escaped"] + "}"
        return str(values[match["name"]])

    return _PLACEHOLDER.sub(substitute, text)


def render_manifest(template: str | Path, values: Mapping[str, str]) -> str:
    """Render the template file at ``template`` (a path) with ``values``; see :func:`render_text`."""
    path = Path(template)
    return render_text(path.read_text(encoding="utf-8"), values, source=str(path))


# --------------------------------------------------------------------------- parsing


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys: one of the two values would be lost silently."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            raise ManifestSyntaxError(
                f"duplicate key {key_node.value!r} at line {line} (first at line {seen[key_node.value]})"
            )
        seen[key_node.value] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_documents(text: str) -> list[Any]:
    """All non-empty YAML documents of ``text``; raises :class:`ManifestSyntaxError` with the line."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ManifestSyntaxError(f"YAML syntax error{where}: {exc.problem or exc.context}") from None


# --------------------------------------------------------------------------- schemas


def _bundled_schema_root() -> Any:
    return importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"


@functools.cache
def supported_versions() -> tuple[str, ...]:
    """Kubernetes minor versions (``"1.25"``, ...) with strict schemas bundled in kubernetes-validate."""
    found = []
    for entry in _bundled_schema_root().iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+-local-strict", entry.name)
        if match:
            found.append((int(match[1]), int(match[2])))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def _minor(version: str) -> str:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", version.strip())
    minor = f"{match[1]}.{match[2]}" if match else version
    if minor not in supported_versions():
        known = supported_versions()
        raise UnsupportedVersionError(
            f"Kubernetes version {version!r} has no bundled schemas in kubernetes-validate "
            f"{_package_version()}; use one of {known[0]}..{known[-1]}, e.g. {DEFAULT_KUBERNETES_VERSION}"
        )
    return minor


def _package_version() -> str:
    return importlib.metadata.version("kubernetes-validate")


def _strict_dir(minor: str) -> Any:
    return _bundled_schema_root() / f"v{minor}.0-local-strict"


@functools.cache
def custom_schemas() -> dict[tuple[str, str], dict]:
    """The schemas in ``testbed/schemas/``, keyed by (apiVersion, kind) from their GVK annotation."""
    schemas = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            schemas[(f"{gvk['group']}/{gvk['version']}", gvk["kind"])] = schema
    return schemas


@functools.cache
def _registry(minor: str) -> Registry:
    definitions = json.loads((_strict_dir(minor) / "_definitions.json").read_text(encoding="utf-8"))
    resources = [(K8S_DEFINITIONS_URI, Resource.from_contents(definitions))]
    resources += [(schema["$id"], Resource.from_contents(schema)) for schema in custom_schemas().values()]
    return Registry().with_resources(resources)


def _core_schema(minor: str, api_version: str, kind: str) -> dict | None:
    """The bundled strict schema for a core kind, or None when the group/version/kind is not core."""
    group, _, version = api_version.rpartition("/")
    prefix = f"-{group.split('.')[0]}" if group else ""
    path = _strict_dir(minor) / f"{kind.lower()}{prefix}-{version}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    wanted = {"group": group, "version": version, "kind": kind}
    # File names drop the group's domain (apps.example.com/v1 would map to apps/v1): check the GVK.
    return schema if wanted in schema.get("x-kubernetes-group-version-kind", []) else None


@functools.cache
def _validator(minor: str, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    schema = custom_schemas().get((api_version, kind)) or _core_schema(minor, api_version, kind)
    if schema is None:
        return None
    return jsonschema.Draft202012Validator(schema, registry=_registry(minor))


# --------------------------------------------------------------------------- validation


def validate_manifest(text: str, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> list[str]:
    """Validate every YAML document in ``text``; return human-readable errors (empty: valid).

    Each error names the document (1-based index, kind/name), the JSON path and the problem.
    Raises :class:`UnsupportedVersionError` for a Kubernetes version without bundled schemas.
    """
    minor = _minor(kubernetes_version)
    try:
        documents = parse_documents(text)
    except ManifestSyntaxError as exc:
        return [str(exc)]
    return validate_documents(documents, minor)


def validate_documents(
    documents: Sequence[Any], kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
) -> list[str]:
    """Validate already-parsed documents; see :func:`validate_manifest`."""
    minor = _minor(kubernetes_version)
    errors: list[str] = []
    for index, document in enumerate(documents, start=1):
        errors += _validate_document(index, document, minor)
    return errors


def _validate_document(index: int, document: Any, minor: str) -> list[str]:
    label = _label(index, document)
    if not isinstance(document, dict):
        return [f"{label}: expected a mapping with apiVersion and kind, got {type(document).__name__}"]
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"{label}: apiVersion and kind must both be set (strings), e.g. apiVersion: v1, kind: Pod"]
    validator = _validator(minor, api_version, kind)
    if validator is None:
        return [f"{label}: no schema known for apiVersion {api_version} kind {kind}: {_known_kinds(minor)}"]
    # kubernetes-validate's schemas accept null for every field; our own schemas do not.
    found = [] if (api_version, kind) in custom_schemas() else _null_values(document, [])
    for error in validator.iter_errors(document):
        found += _describe(error)
    return [f"{label}: {path}: {message}" for path, message in sorted(set(found))]


def _null_values(node: Any, path: list[Any]) -> list[tuple[str, str]]:
    """Null values (``key:`` with nothing after it), which the core schemas let through.

    An unset variable rendered by envsubst leaves exactly that, and the API server then silently
    applies a default (``replicas:`` becomes 1). ``creationTimestamp: null`` (kubectl output) is fine.
    """
    if node is None:
        return [(_json_path(path), "null value (an empty template variable?); set a value or remove the key")]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    found = []
    for key, value in items:
        if key != "creationTimestamp":
            found += _null_values(value, [*path, key])
    return found


def _label(index: int, document: Any) -> str:
    if not isinstance(document, dict):
        return f"document {index}"
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f"document {index} ({document.get('kind', '?')}/{name or '<no name>'})"


def _known_kinds(minor: str) -> str:
    custom = ", ".join(f"{api} {kind}" for api, kind in sorted(custom_schemas()))
    return (
        f"core kinds come from kubernetes-validate {_package_version()} (Kubernetes {minor}), "
        f"custom kinds from testbed/schemas/ ({custom}); add a schema there for a new kind"
    )


def _json_path(parts: Iterable[Any]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(part)):
            path += f".{part}" if path else str(part)
        else:
            path += f"[{json.dumps(part)}]"
    return path or "(document)"


def _describe(error: jsonschema.ValidationError) -> list[tuple[str, str]]:
    """(path, message) pairs for one schema error, worded for a person editing the manifest."""
    path = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        return [(_json_path([*path, key]), message) for key, message in _unknown_fields(error, schema)]
    if "errorMessage" in schema:
        got = "" if isinstance(error.instance, dict | list) else f" (got {_short(error.instance)})"
        return [(_json_path(path), schema["errorMessage"] + got)]
    if error.validator == "type":
        return [
            (_json_path(path), f"expected {_type_names(error.validator_value)}, got {_short(error.instance)}")
        ]
    if error.validator in ("oneOf", "anyOf") and error.context:
        types = [sub.validator_value for sub in error.context if sub.validator == "type"]
        if len(types) == len(error.context):
            return [(_json_path(path), f"expected {_type_names(types)}, got {_short(error.instance)}")]
    return [(_json_path(path), _truncate(error.message))]


def _unknown_fields(error: jsonschema.ValidationError, schema: dict) -> list[tuple[str, str]]:
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key for key in error.instance if key not in known and not any(re.search(p, key) for p in patterns)
    ]
    results = []
    for key in extras:
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if not close and len(known) <= 8:
            hint = f" (allowed: {', '.join(sorted(known))})"
        results.append((key, f"unknown field {key!r}{hint}"))
    return results


def _type_names(expected: Any) -> str:
    names: list[str] = []
    for item in expected if isinstance(expected, list) else [expected]:
        for name in item if isinstance(item, list) else [item]:
            if name != "null" and name not in names:
                names.append(name)
    return " or ".join(names)


def _short(value: Any) -> str:
    if value is None:
        return "null"
    kind = {dict: "mapping", list: "list", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )
    text = json.dumps(value, default=str)
    return f"{kind} {_truncate(text, 80)}"


def _truncate(text: str, limit: int = _MAX_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- CLI


class _BadInput(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


def _parse_sets(settings: Sequence[str]) -> dict[str, str]:
    values = {}
    for setting in settings:
        match = _SET_ARGUMENT.match(setting)
        if not match:
            raise _BadInput(f"bad --set {setting!r}: expected KEY=VALUE with KEY like IMAGE or NUM_NODES")
        values[match["key"]] = match["value"]
    return values


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _BadInput(f"cannot read {path}: {reason}") from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _cmd_render(args: argparse.Namespace) -> int:
    values = _parse_sets(args.set)
    text = render_text(_read(args.template), values, source=args.template)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomic(Path(args.out), text)
    except OSError as exc:
        raise _BadInput(f"cannot write {args.out}: {exc.strerror or exc}") from None
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    minor = _minor(args.kubernetes_version)
    texts = {path: _read(path) for path in args.files}
    count, errors = 0, []
    for path, text in texts.items():
        try:
            documents = parse_documents(text)
        except ManifestSyntaxError as exc:
            errors.append(f"{path}: {exc}")
            continue
        count += len(documents)
        if not documents:
            errors.append(f"{path}: no Kubernetes documents in the file")
        errors += [f"{path}: {error}" for error in validate_documents(documents, minor)]
    for error in errors:
        print(error)
    print(f"FAILED {len(errors)} errors in {count} documents" if errors else f"OK {count} documents")
    return 1 if errors else 0


def _parser() -> argparse.ArgumentParser:
    summary = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m testbed.kube", description=summary)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="render a ${NAME} template strictly")
    render.add_argument("template", help="template file, e.g. kubernetes/cpu-ddp.yaml-template")
    render.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a value (repeatable)"
    )
    render.add_argument("--out", help="write here (atomically, only on success) instead of stdout")
    render.set_defaults(func=_cmd_render)
    validate = commands.add_parser("validate", help="validate manifests against Kubernetes/Kubeflow schemas")
    validate.add_argument("files", nargs="+", help="manifest files (YAML, several documents allowed)")
    validate.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION, help="e.g. 1.32")
    validate.set_defaults(func=_cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except MissingVariableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (_BadInput, UnsupportedVersionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
