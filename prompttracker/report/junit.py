"""JUnit XML for CI: one ``<testcase>`` per test run, failures carry the evaluators' feedback."""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from prompttracker.report.summary import wall_time_ms
from prompttracker.report.transcript import transcript_text
from prompttracker.results import RunRecord, TestRunOutcome, TestRunRow

# XML 1.0 forbids most control characters even when escaped; LLM text can contain them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def write_junit(
    outcomes: Sequence[TestRunRow],
    path: Path,
    *,
    suite_name: str = "prompttracker",
    run: RunRecord | None = None,
) -> None:
    """Write a JUnit report to ``path`` atomically, creating parent directories."""
    tree = ET.ElementTree(junit_element(outcomes, suite_name=suite_name, run=run))
    ET.indent(tree)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a CI job never reads half a file.
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp:
            tree.write(temp, encoding="utf-8", xml_declaration=True)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def junit_element(
    outcomes: Sequence[TestRunRow],
    *,
    suite_name: str = "prompttracker",
    run: RunRecord | None = None,
) -> ET.Element:
    """The ``<testsuites>`` element holding one ``<testsuite>``; pure, for tests and callers."""
    counts = {
        "tests": str(len(outcomes)),
        "failures": str(sum(1 for o in outcomes if o.status == "failed")),
        "errors": str(sum(1 for o in outcomes if o.status == "error")),
        "skipped": "0",
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
    for outcome in outcomes:
        suite.append(_testcase(outcome))
    return root


def failure_message(outcome: TestRunOutcome) -> str:
    """The failing evaluators' feedback, e.g. ``keyword: missing 'refund'; judge: off-topic``."""
    parts = []
    for evaluation in outcome.evaluations:
        if evaluation.error:
            parts.append(f"{evaluation.evaluator}: error: {evaluation.error}")
        elif not evaluation.passed:
            parts.append(f"{evaluation.evaluator}: {evaluation.feedback or 'failed'}")
    return "; ".join(parts) or "test failed"


def _testcase(outcome: TestRunRow) -> ET.Element:
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
    return case


def _clean(text: str) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _started(outcomes: Sequence[TestRunRow], run: RunRecord | None) -> datetime | None:
    if run:
        return run.started_at
    return min((o.started_at for o in outcomes), default=None)
