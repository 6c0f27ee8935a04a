"""Report views render the right text; the JUnit file is valid XML with the right counts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType

from prompttracker.config.models import ModelConfig
from prompttracker.messages import ConversationResult, Message, ToolCall, Usage
from prompttracker.report import (
    runs_table,
    summary_table,
    totals_line,
    transcript_text,
    transcript_view,
    write_junit,
)
from prompttracker.results import EvaluationResult, RunRecord, TestRunOutcome

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CHAT = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini")


def render(renderable: RenderableType) -> str:
    console = Console(record=True, width=100)
    console.print(renderable)
    return console.export_text()


def cells(line: str) -> list[str]:
    """The words of one rendered table line, without the borders."""
    return line.replace("│", " ").split()


def conversation(*pairs: tuple[str, str], **kwargs: Any) -> ConversationResult:
    messages = []
    for turn, (user, assistant) in enumerate(pairs, 1):
        messages.append(Message(role="user", content=user, turn=turn))
        messages.append(
            Message(
                role="assistant",
                content=assistant,
                turn=turn,
                usage=Usage(input_tokens=10, output_tokens=5),
                latency_ms=300,
            )
        )
    kwargs.setdefault("stop_reason", "max_turns")
    return ConversationResult(
        messages=tuple(messages),
        turn_count=len(pairs),
        completed=kwargs.get("stop_reason") != "error",
        **kwargs,
    )


def evaluation(label: str, passed: bool, score: float, feedback: str = "", **kw: Any):
    return EvaluationResult(
        evaluator=label,
        type=kw.pop("type", label),
        score=score,
        passed=passed,
        feedback=feedback,
        **kw,
    )


def outcome(**overrides: Any) -> TestRunOutcome:
    values: dict[str, Any] = {
        "test_name": "double charge is refunded",
        "prompt_slug": "billing",
        "prompt_name": "Billing support",
        "version": 2,
        "dataset": "billing_conversations",
        "row_name": "angry double charge",
        "model_config": CHAT,
        "status": "passed",
        "conversation": conversation(
            ("I've been double-charged!", "Sorry! I have issued a refund."),
            ("Thanks, and the apology?", "We apologise for the trouble."),
        ),
        "evaluations": (evaluation("keyword", True, 100, "all keywords present"),),
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=2.5),
    }
    values.update(overrides)
    return TestRunOutcome(**values)


def failed_outcome(**overrides: Any) -> TestRunOutcome:
    values: dict[str, Any] = {
        "status": "failed",
        "row_name": "polite",
        "evaluations": (
            evaluation("keyword", False, 0, "missing 'refund'"),
            evaluation("tone", False, 40, "too curt", type="llm_judge"),
            evaluation("length", True, 100, "ok"),
        ),
    }
    return outcome(**{**values, **overrides})


def error_outcome(**overrides: Any) -> TestRunOutcome:
    values: dict[str, Any] = {
        "status": "error",
        "row_name": "timeout",
        "error": "openai/chat_completions: 503 Service Unavailable after 3 retries",
        "conversation": conversation(
            ("Hello?", "Hi, how can I help?"),
            stop_reason="error",
            error="openai/chat_completions: 503 Service Unavailable after 3 retries",
        ),
        "evaluations": (),
    }
    return outcome(**{**values, **overrides})


# --- transcript -------------------------------------------------------------------------------


def test_transcript_shows_header_turns_and_evaluations() -> None:
    text = render(transcript_view(outcome()))

    assert "billing::double charge is refunded v2 [angry double charge]" in text
    assert "billing (Billing support) v2" in text
    assert "billing_conversations [angry double charge]" in text
    assert "PASS" in text
    assert "score 100" in text
    assert "User (simulated) · turn 1" in text
    assert "Assistant · openai/chat_completions gpt-4o-mini · turn 1" in text
    assert "User (simulated) · turn 2" in text
    assert "Assistant · openai/chat_completions gpt-4o-mini · turn 2" in text
    assert "I've been double-charged!" in text
    assert "We apologise for the trouble." in text
    assert "stop reason: max_turns · 2 turns" in text
    assert "all keywords present" in text
    assert "MOCK" not in text
    assert "error" not in text.lower()
    # Conversation order is kept: user 1, assistant 1, user 2, assistant 2.
    order = ["double-charged!", "issued a refund", "the apology?", "We apologise"]
    positions = [text.index(snippet) for snippet in order]
    assert positions == sorted(positions)


def test_failed_transcript_lists_each_evaluation_with_its_verdict() -> None:
    text = render(transcript_view(failed_outcome()))

    keyword_line = next(line for line in text.splitlines() if "missing 'refund'" in line)
    assert "keyword" in keyword_line and "FAIL" in keyword_line and " 0 " in keyword_line
    tone_line = next(line for line in text.splitlines() if "too curt" in line)
    assert "tone" in tone_line and "llm_judge" in tone_line and "40" in tone_line
    assert "FAIL" in tone_line
    length_line = next(line for line in text.splitlines() if line.strip().startswith("length"))
    assert "PASS" in length_line
    assert "score 46.7" in text  # mean of 0, 40, 100


def test_errored_transcript_shows_error_once_and_keeps_turns() -> None:
    text = render(transcript_view(error_outcome()))

    assert "ERROR" in text
    assert text.count("503 Service Unavailable after 3 retries") == 1
    assert "error: openai/chat_completions: 503" in text
    assert "Hi, how can I help?" in text
    assert "stop reason: error · 1 turn" in text
    assert "no evaluations" in text


def test_errored_evaluation_is_shown_as_error() -> None:
    broken = evaluation("regex", False, 0, type="pattern_match", error="bad pattern '('")
    text = render(transcript_view(failed_outcome(evaluations=(broken,))))

    line = next(line for line in text.splitlines() if "bad pattern" in line)
    assert "ERROR" in line and "pattern_match" in line and "regex" in line


def test_run_without_conversation_renders() -> None:
    text = render(
        transcript_view(error_outcome(conversation=None, error="undefined variable 'company'"))
    )
    assert "no conversation was played" in text
    assert "error: undefined variable 'company'" in text


def test_single_turn_labels_the_user_plainly() -> None:
    single = conversation(("What is 2+2?", "4"), stop_reason="single_turn")
    text = render(transcript_view(outcome(conversation=single)))

    assert "User · turn 1" in text
    assert "User (simulated)" not in text
    assert "stop reason: single_turn · 1 turn" in text


def test_tool_calls_are_shown_under_their_message_and_truncated() -> None:
    calls = (
        ToolCall(
            id="c1",
            name="lookup_order",
            arguments={"order_id": "12345"},
            output={"status": "charged_twice"},
        ),
        ToolCall(
            id="c2",
            type="file_search",
            name="file_search",
            arguments={"q": "refunds"},
            output="x" * 1000,
        ),
    )
    convo = conversation(("Refund order 12345", "Done."))
    messages = list(convo.messages)
    messages[1] = messages[1].model_copy(update={"tool_calls": calls})
    text = render(
        transcript_view(
            outcome(conversation=convo.model_copy(update={"messages": tuple(messages)}))
        )
    )

    assert 'lookup_order({"order_id": "12345"}) → {"status": "charged_twice"}' in text
    assert '⚙ file_search({"q": "refunds"})' in text
    assert "x" * 1000 not in text.replace("\n", "").replace("│", "").replace(" ", "")
    assert "…" in text
    # Under the assistant message, after its content.
    assert text.index("Done.") < text.index("lookup_order")


def test_mock_run_is_tagged() -> None:
    mock = ModelConfig(provider="mock", model="echo")
    text = render(transcript_view(outcome(model_config=mock, mock=True)))

    assert "MOCK" in text
    assert "mock echo" in text
    assert "Assistant · mock echo · turn 1" in text


def test_brackets_and_long_content_are_rendered_literally() -> None:
    tricky = "Use [bold]not bold[/bold] and [red] literally, plus [/] too."
    long_reply = " ".join(f"word{i}" for i in range(300))
    convo = conversation((tricky, long_reply))
    text = render(transcript_view(outcome(conversation=convo, row_name="[weird] row")))

    assert "[bold]not bold[/bold]" in text
    assert "[red] literally, plus [/] too." in text
    assert "[weird] row" in text
    flat = text.replace("│", " ")
    for i in (0, 150, 299):  # wrapped, not truncated
        assert f"word{i}" in flat.split()
    assert max(len(line) for line in text.splitlines()) <= 100


def test_transcript_text_is_plain() -> None:
    text = transcript_text(failed_outcome())
    assert "\x1b[" not in text
    assert "missing 'refund'" in text
    assert "User (simulated) · turn 1" in text


# --- summary ----------------------------------------------------------------------------------


def test_summary_table_has_one_sorted_line_per_run() -> None:
    outcomes = [
        failed_outcome(row_name="b-row"),
        error_outcome(prompt_slug="alpha", row_name="c-row"),
        outcome(row_name="a-row", version=1),
        outcome(row_name="a-row", conversation=None),
    ]
    text = render(summary_table(outcomes))
    lines = [line for line in text.splitlines() if "-row" in line]

    assert len(lines) == 4
    assert "alpha::double charge is refunded" in lines[0] and "error" in lines[0]
    assert "v1" in lines[1] and "passed" in lines[1]
    assert "v2" in lines[2] and "a-row" in lines[2] and "—" in lines[2]  # no conversation
    assert "b-row" in lines[3] and "failed" in lines[3] and "46.7" in lines[3]
    # turns, tokens (2 assistant messages × 15), time
    assert "2" in cells(lines[1]) and "30" in cells(lines[1]) and "2.5s" in lines[1]
    assert "1" in cells(lines[0]) and "15" in cells(lines[0])


def test_a_summary_line_renders_and_reports_like_its_outcome(tmp_path: Path) -> None:
    whole = [outcome(row_name="a-row"), outcome(row_name="b-row", conversation=None)]
    slim = [o.summary() for o in whole]
    assert render(summary_table(slim)) == render(summary_table(whole))
    assert render(totals_line(slim)) == render(totals_line(whole))
    write_junit([*slim, failed_outcome()], tmp_path / "slim.xml")
    write_junit([*whole, failed_outcome()], tmp_path / "whole.xml")
    assert (tmp_path / "slim.xml").read_text() == (tmp_path / "whole.xml").read_text()


def test_totals_line_counts_and_time() -> None:
    outcomes = [
        outcome(),
        outcome(row_name="second", finished_at=T0 + timedelta(seconds=3.2)),
        failed_outcome(),
        error_outcome(),
    ]
    text = render(totals_line(outcomes)).strip()
    assert text == "4 test runs: 2 passed, 1 failed, 1 error in 3.2s"


def test_totals_line_uses_run_time_and_flags_mock_and_interrupted() -> None:
    run = RunRecord(
        id="r1",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=61),
        mock=True,
        status="interrupted",
    )
    text = render(totals_line([outcome()], run)).strip()
    assert text == "1 test run: 1 passed, 0 failed, 0 error in 1m 01s · mock · run interrupted"
    assert render(totals_line([])).strip() == "0 test runs: 0 passed, 0 failed, 0 error in 0.0s"


def test_runs_table_lists_runs() -> None:
    runs = [
        RunRecord(
            id="run-aaa", started_at=T0, status="completed", total=4, passed=2, failed=1, errored=1
        ),
        RunRecord(
            id="run-bbb",
            started_at=T0 + timedelta(hours=1),
            status="interrupted",
            mock=True,
            total=7,
            passed=5,
        ),
    ]
    text = render(runs_table(runs))
    header = next(line for line in text.splitlines() if "started" in line)
    for column in ("id", "status", "mock", "total", "passed", "failed", "errored"):
        assert column in header
    first = next(line for line in text.splitlines() if "run-aaa" in line)
    second = next(line for line in text.splitlines() if "run-bbb" in line)
    assert "2026-03-01 12:00:00" in first and "completed" in first and "no" in cells(first)
    assert cells(first)[-4:] == ["4", "2", "1", "1"]
    assert "13:00:00" in second and "interrupted" in second and "yes" in cells(second)
    assert cells(second)[-4:] == ["7", "5", "0", "0"]


# --- junit ------------------------------------------------------------------------------------


def test_junit_counts_and_testcases(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "nested" / "junit.xml"
    outcomes = [outcome(), failed_outcome(), error_outcome()]
    write_junit(outcomes, path)

    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == "prompttracker"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    assert suite.get("skipped") == "0"
    assert suite.get("time") == "2.500"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "double charge is refunded v2 [angry double charge]",
        "double charge is refunded v2 [polite]",
        "double charge is refunded v2 [timeout]",
    ]
    assert {c.get("classname") for c in cases} == {"billing"}
    assert cases[0].get("time") == "2.500"
    assert list(cases[0]) == []  # passed: no child


def test_junit_failure_holds_failing_feedback_and_transcript(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit([failed_outcome()], path, suite_name="billing-ci")

    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "billing-ci"
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == "keyword: missing 'refund'; tone: too curt"
    assert "User (simulated) · turn 1" in (failure.text or "")
    assert "I've been double-charged!" in (failure.text or "")
    assert suite.find("testcase/error") is None


def test_junit_error_element_for_errored_runs(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit([error_outcome()], path)

    case = ET.parse(path).getroot().find("testsuite/testcase")
    assert case is not None and case.find("failure") is None
    error = case.find("error")
    assert error is not None
    assert error.get("message") == (
        "openai/chat_completions: 503 Service Unavailable after 3 retries"
    )
    assert "Hi, how can I help?" in (error.text or "")


def test_junit_escapes_special_characters(tmp_path: Path) -> None:
    nasty = 'a <tag> & "quotes" \x1b[31m\x00 ]]> done'
    path = tmp_path / "junit.xml"
    write_junit(
        [
            failed_outcome(
                test_name="t <&>",
                evaluations=(evaluation("keyword", False, 0, nasty),),
                conversation=conversation((nasty, "ok & <fine>")),
            )
        ],
        path,
    )

    raw = path.read_text(encoding="utf-8")
    assert "<tag>" not in raw and "\x00" not in raw and "\x1b" not in raw
    case = ET.parse(path).getroot().find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == "t <&> v2 [polite]"
    failure = case.find("failure")
    assert failure is not None
    assert 'a <tag> & "quotes"' in (failure.get("message") or "")
    assert "]]> done" in (failure.get("message") or "")
    assert "ok & <fine>" in (failure.text or "")


def test_junit_with_run_uses_run_time_and_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text("old content")
    run = RunRecord(id="run-42", started_at=T0, finished_at=T0 + timedelta(seconds=9), mock=True)
    write_junit([outcome()], path, run=run)

    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None and suite.get("time") == "9.000"
    assert suite.get("timestamp") == T0.isoformat(timespec="seconds")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"run_id": "run-42", "mock": "true"}
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]  # no temp file left behind


def test_junit_failed_write_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("prompttracker.report.junit.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_junit([outcome()], tmp_path / "junit.xml")
    assert list(tmp_path.iterdir()) == []


def test_the_junit_report_is_readable_by_other_users(tmp_path: Path) -> None:
    """A CI step running as another user reads it (a temporary file is made 0600)."""
    path = tmp_path / "reports" / "junit.xml"
    write_junit([failed_outcome()], path)
    assert path.stat().st_mode & 0o777 == 0o644
