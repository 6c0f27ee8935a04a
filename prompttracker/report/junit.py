"""JUnit XML for CI: one ``<testcase>`` per test run, failures carry the evaluators' feedback."""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from prompttracker.config.settings import CISettings
from prompttracker.evidence import Evidence, RunComparison
from prompttracker.report.summary import wall_time_ms
from prompttracker.report.transcript import transcript_text
from prompttracker.results import (
    UNDECIDED,
    RunRecord,
    TestRunOutcome,
    TestRunRow,
    TestStatus,
    failing_statuses,
)

# XML 1.0 forbids most control characters even when escaped; LLM text can contain them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def write_junit(
    outcomes: Sequence[TestRunRow],
    path: Path,
    *,
    suite_name: str = "prompttracker",
    run: RunRecord | None = None,
    evidence: Evidence | None = None,
    skipped: Sequence[str] = (),
    ci: CISettings | None = None,
) -> None:
    """Write a JUnit report to ``path`` atomically, creating parent directories."""
    tree = ET.ElementTree(
        junit_element(
            outcomes, suite_name=suite_name, run=run, evidence=evidence, skipped=skipped, ci=ci
        )
    )
    ET.indent(tree)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a CI job never reads half a file.
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp:
            tree.write(temp, encoding="utf-8", xml_declaration=True)
        os.chmod(temp_name, 0o644)  # for the CI that reads it (mkstemp makes it 0600)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def junit_element(
    outcomes: Sequence[TestRunRow],
    *,
    suite_name: str = "prompttracker",
    run: RunRecord | None = None,
    evidence: Evidence | None = None,
    skipped: Sequence[str] = (),
    ci: CISettings | None = None,
) -> ET.Element:
    """The ``<testsuites>`` element holding one ``<testsuite>``; pure, for tests and callers.

    With ``evidence``: each test case of a repeated row carries its ``repeat``, ``pass_rate``
    and ``flaky`` properties, and a comparison with a baseline is a second suite, one test case
    per compared test version, failed when it regressed. ``skipped``: ``prompt::test`` of the
    tests that are ``enabled: false``, one skipped test case each. An ``invalid`` or
    ``inconclusive`` test run is a failure where ``ci`` says it fails the gate, else skipped.
    """
    failing = failing_statuses(ci or CISettings())
    undecided = sum(1 for o in outcomes if o.status in UNDECIDED and o.status not in failing)
    counts = {
        "tests": str(len(outcomes) + len(skipped)),  # JUnit counts skipped cases as tests
        "failures": str(sum(1 for o in outcomes if o.status in ("failed", *failing))),
        "errors": str(sum(1 for o in outcomes if o.status == "error")),
        "skipped": str(len(skipped) + undecided),
        "time": _seconds(wall_time_ms(outcomes, run) / 1000),
    }
    root = ET.Element("testsuites", {"name": _clean(suite_name), **counts})
    suite = ET.SubElement(root, "testsuite", {"name": _clean(suite_name), **counts})
    started = _started(outcomes, run)
    if started:
        suite.set("timestamp", started.isoformat(timespec="seconds"))
    if run:
        properties = ET.SubElement(suite, "properties")
        for name, value in (("run_id", run.id), ("mock", str(run.mock).lower())):
            ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})
    rows = {
        (r.prompt_slug, r.test_name, r.version, r.dataset, r.row_name): r
        for v in (evidence.versions if evidence else [])
        for r in v.rows
    }
    for outcome in outcomes:
        case = _testcase(outcome, failing)
        key = (outcome.prompt_slug, outcome.test_name, outcome.version, outcome.dataset)
        row = rows.get((*key, outcome.row_name))
        if row is not None and outcome.repeats > 1:
            _properties(
                case,
                repeat=f"{outcome.repeat + 1}/{outcome.repeats}",
                pass_rate=f"{row.passes}/{row.trials}",
                flaky=str(row.flaky).lower(),
            )
        suite.append(case)
    for name in skipped:
        slug, _, test = name.partition("::")
        case = ET.SubElement(suite, "testcase", {"classname": _clean(slug), "name": _clean(test)})
        ET.SubElement(case, "skipped", {"message": "enabled: false"})
    if evidence is not None and evidence.baseline is not None:
        root.append(_gate_suite(evidence.baseline))
    return root


def _properties(element: ET.Element, **values: str) -> None:
    properties = ET.SubElement(element, "properties")
    for name, value in values.items():
        ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})


def _gate_suite(comparison: RunComparison) -> ET.Element:
    """One test case per test version compared with the baseline; failed when it regressed."""
    cases = comparison.comparisons
    failed = sum(1 for c in cases if c.regressions)
    suite = ET.Element(
        "testsuite",
        {
            "name": "regression gate",
            "tests": str(len(cases)),
            "failures": str(failed),
            "errors": "0",
            "skipped": "0",
        },
    )
    _properties(suite, baseline=comparison.baseline_id)
    for c in cases:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": _clean(c.b.prompt_slug),
                "name": _clean(f"{c.b.test_name} v{c.b.version} against the baseline"),
            },
        )
        difference = c.difference
        if difference is not None:
            _properties(
                case,
                pass_rate_baseline=f"{difference.mean_a:.3f}",
                pass_rate=f"{difference.mean_b:.3f}",
                difference=f"{difference.difference:+.3f}",
                interval=f"{difference.low:+.3f} to {difference.high:+.3f}",
            )
        if c.regressions:
            failure = ET.SubElement(case, "failure", {"message": _clean("; ".join(c.regressions))})
            failure.text = _clean("\n".join(c.regressions))
    return suite


def failure_message(outcome: TestRunOutcome) -> str:
    """The failing evaluators' feedback, e.g. ``keyword: missing 'refund'; judge: off-topic``."""
    parts = []
    for evaluation in outcome.evaluations:
        if evaluation.error:
            parts.append(f"{evaluation.evaluator}: error: {evaluation.error}")
        elif not evaluation.passed:
            parts.append(f"{evaluation.evaluator}: {evaluation.feedback or 'failed'}")
    return "; ".join(parts) or "test failed"


def _testcase(outcome: TestRunRow, failing: tuple[TestStatus, ...] = ()) -> ET.Element:
    case = ET.Element(
        "testcase",
        {
            "classname": _clean(outcome.prompt_slug),
            "name": _clean(f"{outcome.test_name} v{outcome.version} [{outcome.row_name}]"),
            "time": _seconds(outcome.duration_ms / 1000),
        },
    )
    if not isinstance(outcome, TestRunOutcome):  # a passed test run of a big run: its line
        return case
    if outcome.status == "failed":
        failure = ET.SubElement(case, "failure", {"message": _clean(failure_message(outcome))})
        failure.text = _clean(transcript_text(outcome))
    elif outcome.status == "error":
        error_text = outcome.error or (outcome.conversation and outcome.conversation.error)
        error = ET.SubElement(case, "error", {"message": _clean(error_text or "error")})
        error.text = _clean(transcript_text(outcome))
    elif outcome.status in UNDECIDED:  # neither a pass nor a failure: the settings' ci decides
        message = f"{outcome.status}: {outcome.error or 'no reason given'}"
        kind = "failure" if outcome.status in failing else "skipped"
        undecided = ET.SubElement(case, kind, {"message": _clean(message)})
        undecided.text = _clean(transcript_text(outcome))
    return case


def _clean(text: str) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _started(outcomes: Sequence[TestRunRow], run: RunRecord | None) -> datetime | None:
    if run:
        return run.started_at
    return min((o.started_at for o in outcomes), default=None)
