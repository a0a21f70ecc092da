"""The figures that the ``lint`` and ``security`` nox sessions print and README.md records: parsing of
cfn-lint's and checkov's JSON, the gate on skips without a reason, and the README record itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WITH_REASONS = "(inline, with reasons)"


@pytest.fixture(scope="module")
def noxfile():
    spec = importlib.util.spec_from_file_location("noxfile_under_test", ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(check_id: str, path: str, result: dict, **extra) -> dict:
    return {
        "check_id": check_id,
        "check_name": f"name of {check_id}",
        "resource": "AWS::S3::Bucket.Bucket",
        "file_path": path,
        "file_line_range": [3, 9],
        "check_result": result,
        **extra,
    }


def report(check_type: str, passed: int, failed=(), skipped=(), parsing_errors=()) -> dict:
    return {
        "check_type": check_type,
        "results": {
            "passed_checks": [{}] * passed,
            "failed_checks": list(failed),
            "skipped_checks": list(skipped),
            "parsing_errors": list(parsing_errors),
        },
        "summary": {"passed": passed, "failed": len(failed), "skipped": len(skipped), "parsing_errors": 0},
    }


def test_clean_run_figures_add_up_over_frameworks(noxfile):
    skip = check("CKV_AWS_18", "/a.yaml", {"result": "SKIPPED", "suppress_comment": "logs go elsewhere"})
    results = [report("cloudformation", 10, skipped=[skip]), report("dockerfile", 5)]
    figures, problems = noxfile.checkov_figures(results, templates=2, docker=1, pods=3)
    assert problems == []
    assert figures == (
        f"checkov: 2 templates + 1 Dockerfiles + 3 Kubernetes pod specs, 15 passed, 0 failed, 1 skipped "
        f"{WITH_REASONS}"
    )


def test_single_report_object_and_empty_summary_are_read(noxfile):
    figures, _ = noxfile.checkov_figures(report("dockerfile", 4), templates=0, docker=2, pods=0)
    assert ", 4 passed, 0 failed, 0 skipped" in figures
    empty = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
    assert noxfile.checkov_figures(empty, 0, 0, 0) == (
        "checkov: 0 templates + 0 Dockerfiles + 0 Kubernetes pod specs, 0 passed, 0 failed, 0 skipped "
        "(inline, with reasons)",
        [],
    )


@pytest.mark.parametrize("reason", ["No comment provided", "", "  ", None])
def test_a_skip_without_reason_is_a_problem(noxfile, reason):
    skip = check("CKV_AWS_21", "/b.yaml", {"result": "SKIPPED", "suppress_comment": reason})
    _, problems = noxfile.checkov_figures([report("cloudformation", 1, skipped=[skip])], 1, 0, 0)
    assert len(problems) == 1 and problems[0].startswith("SKIP WITHOUT REASON CKV_AWS_21")
    assert "b.yaml" in problems[0] and "#checkov:skip=CKV_AWS_21:<reason>" in problems[0]


def test_a_kubernetes_skip_without_reason_names_the_annotation(noxfile):
    skip = check("CKV_K8S_43", "/pods/x--Pod-w.yaml", {"result": "SKIPPED", "suppress_comment": ""})
    _, problems = noxfile.checkov_figures([report("kubernetes", 2, skipped=[skip])], 0, 0, 1)
    assert len(problems) == 1 and problems[0].startswith("SKIP WITHOUT REASON CKV_K8S_43")
    assert "checkov.io/skip<N>: CKV_K8S_43=<reason>" in problems[0]
    assert "#checkov:skip" not in problems[0]


def test_failed_checks_and_parse_errors_are_listed_readably(noxfile):
    failed = check("CKV_SECRET_2", "/x.Dockerfile", {"result": "FAILED"}, guideline="https://docs/x")
    results = [report("secrets", 0, failed=[failed], parsing_errors=["bad.yaml"])]
    figures, problems = noxfile.checkov_figures(results, 0, 1, 0)
    assert ", 0 passed, 1 failed, 0 skipped" in figures
    assert problems == [
        "FAILED CKV_SECRET_2 name of CKV_SECRET_2: AWS::S3::Bucket.Bucket in x.Dockerfile:3-9 (https://docs/x)",
        "NOT PARSED (secrets): bad.yaml",
    ]


def test_cfn_lint_matches_become_one_line_each(noxfile):
    match = {
        "Filename": "t.yaml",
        "Location": {"Start": {"LineNumber": 6, "ColumnNumber": 7}},
        "Message": "Additional properties are not allowed",
        "Rule": {"Id": "E3002"},
    }
    assert noxfile.cfn_lint_findings([match]) == ["t.yaml:6:7: E3002 Additional properties are not allowed"]


README_TEXT = """intro

<!-- lint-figures -->
- `cfn-lint: 1 templates, 0 findings`
- `checkov: 1 templates + 0 Dockerfiles, 3 passed, 0 failed, 0 skipped (inline, with reasons)`

- `other: list, not part of the record`
"""


def test_record_is_read_and_rewritten_in_place(noxfile):
    assert noxfile.recorded_figures(README_TEXT) == {
        "cfn-lint": "cfn-lint: 1 templates, 0 findings",
        "checkov": f"checkov: 1 templates + 0 Dockerfiles, 3 passed, 0 failed, 0 skipped {WITH_REASONS}",
    }
    updated = noxfile.record_figures(README_TEXT, "cfn-lint: 2 templates, 0 findings")
    assert updated == README_TEXT.replace("1 templates, 0 findings", "2 templates, 0 findings")
    added = noxfile.record_figures(README_TEXT, "hadolint: 4 Dockerfiles, 0 findings")
    assert noxfile.recorded_figures(added)["hadolint"] == "hadolint: 4 Dockerfiles, 0 findings"
    assert "other" not in noxfile.recorded_figures(added)
    with pytest.raises(ValueError, match="no <!-- lint-figures --> line"):
        noxfile.record_figures("no mark here\n", "cfn-lint: 1 templates, 0 findings")


def test_readme_records_both_figure_lines_in_the_printed_format(noxfile):
    recorded = noxfile.recorded_figures((ROOT / "README.md").read_text())
    assert set(recorded) == {"cfn-lint", "checkov"}, recorded
    assert noxfile.re.fullmatch(r"cfn-lint: \d+ templates, 0 findings", recorded["cfn-lint"])
    assert noxfile.re.fullmatch(
        r"checkov: \d+ templates \+ \d+ Dockerfiles \+ \d+ Kubernetes pod specs, \d+ passed, 0 failed, "
        r"\d+ skipped "
        r"\(inline, with reasons\)",
        recorded["checkov"],
    )
