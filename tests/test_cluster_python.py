"""The cluster-python check (nox -s cluster-python) reads the Makefiles right and fails where it should.
Resolving needs the package index, so the session does it; these tests use a stand-in resolver."""

from __future__ import annotations

from testbed import cluster_python
from testbed.cluster_python import (
    OS_PYTHONS,
    Pair,
    check,
    cluster_requirements,
    extra_index,
    pairs,
    table,
    venv_python,
)

MAKEFILE = """VENV_PYTHON ?= 3.11
NEURON_PIP_INDEX ?= https://pip.repos.neuron.amazonaws.com
venv:
\ttest -x $(VENV)/bin/python || uv venv --seed --python $(VENV_PYTHON) $(VENV)
\t$(VENV)/bin/pip install --extra-index-url $(NEURON_PIP_INDEX) -r requirements.txt
"""


def test_makefile_python_and_index_are_read():
    assert venv_python(MAKEFILE) == "3.11"
    assert venv_python("venv:\n\tpython3 -m venv .venv\n") is None
    assert extra_index(MAKEFILE) == "https://pip.repos.neuron.amazonaws.com"


def test_the_cluster_venvs_are_found_and_the_pinned_python_is_used():
    found = cluster_requirements()
    assert "3.test_cases/pytorch/FSDP/requirements.txt" in found
    assert "4.validation_observability/1.pytorch-env-validation/requirements.txt" in found
    assert not any(path.endswith("requirements-cpu.txt") for path in found)
    fsdp = pairs(["3.test_cases/pytorch/FSDP/requirements.txt"])
    assert [p.os_name for p in fsdp] == list(OS_PYTHONS) and {p.pythons for p in fsdp} == {("3.11",)}
    validation = pairs(["4.validation_observability/1.pytorch-env-validation/requirements.txt"])
    assert [p.pythons for p in validation] == list(OS_PYTHONS.values())


def test_an_os_passes_when_one_of_its_pythons_resolves(monkeypatch):
    calls = []

    def fake_resolve(uv, requirements, python):
        calls.append(python)
        return (python != "3.10", "" if python != "3.10" else "numpy==2.4.6 has no usable wheels")

    monkeypatch.setattr(cluster_python, "resolve", fake_resolve)
    monkeypatch.setattr(cluster_python, "_RESOLVED", {})
    ubuntu = check(Pair("x/requirements.txt", "ubuntu2204", ("3.10",)), "uv")
    alinux = check(Pair("x/requirements.txt", "alinux2023", ("3.11", "3.9")), "uv")
    pinned = check(Pair("z/requirements.txt", "ubuntu2204", ("3.11",)), "uv")
    assert ubuntu.resolved is None and "3.10: numpy==2.4.6 has no usable wheels" in ubuntu.why
    assert alinux.resolved == "3.11" and pinned.resolved == "3.11"
    assert calls == ["3.10", "3.11", "3.11"]  # each (requirements, Python) resolved once
    lines = table([ubuntu, alinux, pinned])
    assert lines[1].split() == ["x/requirements.txt", "FAILS", "-", "ok", "(3.11)"]
    assert lines[2].split() == ["z/requirements.txt", "ok", "(3.11,", "Makefile", "venv)", "-", "-"]


def test_a_private_index_is_reported_not_failed():
    pair = check(Pair("y/requirements.txt", "ubuntu2204", ("3.10",), index="https://example.invalid"), "uv")
    assert pair.resolved is None and "cannot reach" in pair.why
