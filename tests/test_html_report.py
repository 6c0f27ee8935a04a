"""``pt report``: one offline HTML file with every test run, its transcript and the evidence;
user and model text stays text. (tests/test_html_report_browser.py drives it in Chromium.)"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from prompttracker.config.models import ModelConfig
from prompttracker.messages import ConversationResult, Message, Metered, ToolCall, Usage
from prompttracker.report.html import DATA_ID, html_report
from prompttracker.report.html_transcript import BLOCK_LIMIT
from prompttracker.results import EvaluationResult, RunRecord, TestRunOutcome
from tests.html_report_example import INJECTED_MESSAGE, INJECTED_ROW, play_example, pt

# Attributes through which a page would load or send something.
RESOURCE_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "poster", "data"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)


class Page(HTMLParser):
    """Every start tag with its attributes, every text node, and each element's own text."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.texts: list[str] = []
        self._open: list[Element] = []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if tag not in ("meta", "input", "br", "link", "img"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        for element in self._open:
            element.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.elements
            if e.tag == tag
            and all(e.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())
        ]

    def having_class(self, tag: str, name: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and name in e.attrs.get("class", "")]

    @property
    def text(self) -> str:
        """The page's text, a space between text nodes and runs of white space as one."""
        return " ".join(" ".join(self.texts).split())

    @staticmethod
    def text_of(element: Element) -> str:
        return " ".join(" ".join(element.text).split())


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return play_example(tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="module")
def report(example: Path) -> tuple[Page, str, dict[str, Any]]:
    """The report of the example run, parsed; its source; and `pt runs show --json`."""
    out = example / "out" / "report.html"
    result = pt("report", "latest", "-p", str(example), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "HTML report of run-" in result.output
    shown = pt("runs", "show", "latest", "-p", str(example), "--json")
    source = out.read_text(encoding="utf-8")
    return Page(source), source, json.loads(shown.output)


def test_the_report_is_one_file_that_loads_nothing(report: tuple[Page, str, Any]) -> None:
    page, source, _ = report
    for element in page.elements:
        for name, value in element.attrs.items():
            if name in RESOURCE_ATTRIBUTES:
                # Only links inside the page (#t3) and no address of anything else.
                assert value.startswith("#"), f"<{element.tag} {name}={value!r}>"
    assert not [e.tag for e in page.elements if e.tag in ("link", "img", "iframe", "object")]
    scripts = page.find("script")
    assert [s.attrs for s in scripts] == [{"type": "application/json", "id": DATA_ID}, {}]
    style = "".join(page.find("style")[0].text)
    assert "url(" not in style and "@import" not in style and "@font-face" not in style
    (policy,) = page.find("meta", http_equiv="Content-Security-Policy")
    assert policy.attrs["content"].startswith("default-src 'none';")
    assert source.startswith("<!DOCTYPE html>")


def test_every_test_run_has_a_line_and_a_transcript(report: tuple[Page, str, Any]) -> None:
    page, _, document = report
    expected = {(t["label"], t["status"]) for t in document["test_runs"]}
    assert len(expected) == len(document["test_runs"]) == 38  # 26 + 3 repeated + 9 crafted
    rows = page.having_class("tr", "pt-item")
    transcripts = page.having_class("details", "transcript")
    assert {(r.attrs["data-label"], r.attrs["data-status"]) for r in rows} == expected
    assert {(t.attrs["data-label"], t.attrs["data-status"]) for t in transcripts} == expected
    # Each row links to its own transcript.
    anchors = {t.attrs["id"] for t in transcripts}
    links = [e.attrs["href"] for e in page.find("a")]
    assert len(links) == len(rows) and {link[1:] for link in links} == anchors
    text = page.text
    for label, _ in expected:
        assert label in text
    assert {"passed", "failed", "error", "invalid", "inconclusive"} <= set(text.split())
    assert all("open" not in t.attrs for t in transcripts)  # folded by default


def test_header_counts_costs_and_the_simulator(report: tuple[Page, str, Any]) -> None:
    page, _, document = report
    text = page.text
    run = document["run"]
    assert f"Run {run['id']}" in text
    assert "mock (offline, nothing spent)" in text
    assert f"passed {run['passed']} failed {run['failed']} error 0 invalid 0 inconclusive 0" in text
    assert "Simulator error rate: 0% (0 of 27 conversations invalid)" in text
    for caller in ("prompt under test", "simulated user", "judges", "total"):
        assert caller in text
    assert "mock: nothing was spent" in text


def test_repeats_and_version_comparisons_are_reported(report: tuple[Page, str, Any]) -> None:
    page, _, _ = report
    (section,) = page.find("section", id="evidence")
    text = Page.text_of(section)
    assert "billing_support::both versions stay polite: 2 plays a row" in text
    assert "billing_support::both versions stay polite: v2 vs v1" in text
    assert "order_assistant::tracks a late order: v2 vs v1" in text
    assert "pass rate" in text and "per conversation:" in text
    # The repeats' column of the summary says which play it is.
    repeated = [r for r in page.having_class("tr", "pt-item") if "#2" in r.attrs["data-label"]]
    assert repeated


def test_the_filters_are_labelled_and_offer_every_status_test_and_version(
    report: tuple[Page, str, Any],
) -> None:
    page, _, document = report
    (form,) = page.find("form", id="filters")
    assert "hidden" in form.attrs  # shown by the script; without it everything is listed
    boxes = [e.attrs["value"] for e in page.find("input", name="status")]
    assert boxes == ["passed", "failed", "error", "invalid", "inconclusive"]
    for control in ("filter-test", "filter-version", "filter-search"):
        assert page.find("label", for_=control), control
    tests = {f"{t['prompt']}::{t['test']}" for t in document["test_runs"]}
    values = {e.attrs["value"] for e in page.find("option")}
    assert tests | {"v1", "v2", ""} == values


def test_markup_in_a_dataset_row_stays_text(report: tuple[Page, str, Any]) -> None:
    page, source, _ = report
    assert len(page.find("script")) == 2  # ours: the data block and the filter script
    assert not page.find("img") and not page.find("b")
    assert INJECTED_MESSAGE in page.text  # shown as written, in the messages
    assert INJECTED_ROW in page.text
    assert "<script>alert(" not in source and "<img src=x" not in source
    # The data block parses back to the run document, injected text and all.
    (data,) = page.find("script", id=DATA_ID)
    document = json.loads("".join(data.text))
    assert any(t["row"] == INJECTED_ROW for t in document["test_runs"])


def test_a_transcript_shows_turns_tool_calls_and_verdicts(report: tuple[Page, str, Any]) -> None:
    page, _, _ = report
    (tracked,) = [
        t
        for t in page.having_class("details", "transcript")
        if t.attrs["data-label"] == "order_assistant::tracks a late order v1 [late parcel]"
    ]
    text = Page.text_of(tracked)
    assert "User (simulated) · turn 1" in text
    assert "Assistant · mock (responses) gpt-4.1-mini · turn 1" in text
    assert "lookup_order" in text and '"status": "delayed"' in text  # arguments and output
    assert "stop reason: interlocutor_ended" in text
    assert "evaluator type score result feedback" in text
    assert "conversation_judge" in text


def test_a_bad_run_id_exits_2_with_a_hint(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = pt("report", "no-such-run", "-p", str(example), "-o", str(out))
    assert result.exit_code == 2
    assert "no run with id 'no-such-run'" in result.output and "Hint:" in result.output
    assert not out.exists()


def test_without_a_database_it_exits_2(tmp_path: Path) -> None:
    result = pt("report", "latest", "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert "no results database" in result.output and "Hint:" in result.output


def test_an_unwritable_output_exits_2_and_leaves_nothing(example: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = pt("report", "latest", "-p", str(example), "-o", str(blocker / "r.html"))
    assert result.exit_code == 2
    assert "cannot write the report to" in result.output and "Hint:" in result.output
    assert blocker.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


# --- the renderer on its own --------------------------------------------------------------------

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CHAT = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini")
RUN = RunRecord(id="run-20260301-120000-abc123", started_at=T0, finished_at=T0, status="completed")


def outcome(**overrides: Any) -> TestRunOutcome:
    messages = (
        Message(role="user", content="Where is my order?", turn=1, usage=Usage(input_tokens=5)),
        Message(
            role="assistant",
            content="Let me look.",
            turn=1,
            usage=Usage(input_tokens=10, output_tokens=5),
            tool_calls=(ToolCall(id="c1", name="lookup", arguments={"id": 7}, output="late"),),
        ),
    )
    values: dict[str, Any] = {
        "test_name": "tracks",
        "prompt_slug": "orders",
        "prompt_name": "Orders",
        "version": 1,
        "dataset": "orders",
        "row_name": "late",
        "model_config": CHAT,
        "status": "passed",
        "conversation": ConversationResult(
            messages=messages, turn_count=1, completed=True, stop_reason="max_turns"
        ),
        "evaluations": (EvaluationResult(evaluator="kw", type="keyword", score=100, passed=True),),
        "metered": {"assistant": Metered(calls=1, input_tokens=10, output_tokens=5)},
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=1),
    }
    values.update(overrides)
    return TestRunOutcome(**values)


def transcript_text(page: Page, label: str) -> str:
    (found,) = [
        e for e in page.having_class("details", "transcript") if e.attrs["data-label"] == label
    ]
    return Page.text_of(found)


def test_undecided_and_errored_test_runs_say_why() -> None:
    stopped = outcome().conversation.model_copy(  # type: ignore[union-attr]
        update={
            "stop_reason": "simulated_user_invalid",
            "metadata": {"stop": {"by": "simulated user", "reason": "gave up"}},
        }
    )
    runs = [
        outcome(
            row_name="cut",
            status="invalid",
            error="the simulated user was cut off at turn 1",
            regenerated=("the simulated user repeated itself",),
            conversation=stopped,
        ),
        outcome(
            row_name="torn",
            status="inconclusive",
            error="the votes disagree",
            evaluations=(
                EvaluationResult(
                    evaluator="tone",
                    type="llm_judge",
                    score=0,
                    passed=False,
                    feedback="Median score none",
                    inconclusive="the votes disagree",
                    details={
                        "judge_model": "openai/chat_completions gpt-4o",
                        "threshold_score": 70,
                    },
                ),
            ),
        ),
        outcome(
            row_name="down",
            status="error",
            error="openai: 503 after 3 retries",
            evaluations=(
                EvaluationResult(
                    evaluator="fmt", type="format", score=0, passed=False, error="bad schema"
                ),
            ),
        ),
    ]
    page = Page(html_report(RUN, runs))
    cut = transcript_text(page, "orders::tracks v1 [cut]")
    assert "regenerated: the simulated user repeated itself" in cut
    assert "invalid: the simulated user was cut off at turn 1" in cut
    assert "stop reason: simulated_user_invalid (simulated user: gave up)" in cut
    torn = transcript_text(page, "orders::tracks v1 [torn]")
    assert "inconclusive: the votes disagree" in torn
    assert "judge openai/chat_completions gpt-4o · threshold 70" in torn
    down = transcript_text(page, "orders::tracks v1 [down]")
    assert "error: openai: 503 after 3 retries" in down and "error: bad schema" in down
    assert "⚙ lookup c1 arguments" in down
    header = page.text
    assert "passed 0 failed 0 error 1 invalid 1 inconclusive 1" in header
    # The regenerated play counts: 2 conversations (no other was the simulated user's).
    assert "Simulator error rate: 100% (2 of 2 conversations invalid; 1 played again)" in header


def test_a_long_tool_output_is_cut_with_a_note() -> None:
    long = outcome(
        conversation=outcome().conversation.model_copy(  # type: ignore[union-attr]
            update={
                "messages": (
                    Message(
                        role="assistant",
                        content="found it",
                        turn=1,
                        tool_calls=(ToolCall(name="search", output="x" * (BLOCK_LIMIT + 500)),),
                    ),
                )
            }
        )
    )
    page = html_report(RUN, [long])
    assert "… 500 more characters (in the database)" in page
    assert "x" * (BLOCK_LIMIT + 1) not in page


def test_a_thousand_test_runs_make_a_file_that_grows_linearly() -> None:
    def many(count: int) -> list[TestRunOutcome]:
        return [
            outcome(
                test_name=f"test {i % 10}",
                row_name=f"row {i}",
                version=1 + i % 2,
                status=("passed", "failed", "error")[i % 3],
            )
            for i in range(count)
        ]

    started = time.perf_counter()
    big = html_report(RUN, many(1000))
    seconds = time.perf_counter() - started
    small = html_report(RUN, many(100))
    page = Page(big)
    assert len(page.having_class("tr", "pt-item")) == 1000
    assert len(page.having_class("details", "transcript")) == 1000
    per_run_big = len(big) / 1000
    per_run_small = len(small) / 100
    assert per_run_big < 1.2 * per_run_small  # no part grows faster than the run
    assert len(big) < 10_000_000
    assert seconds < 30, f"rendering 1,000 test runs took {seconds:.1f} s"


def test_the_file_is_replaced_whole_and_readable_by_others(tmp_path: Path) -> None:
    """Written beside the target and renamed (no temp file left), 0644 for a CI upload step;
    a lone surrogate in a model's text does not stop the write."""
    from prompttracker.report.html import write_html_report

    path = tmp_path / "reports" / "report.html"
    path.parent.mkdir()
    path.write_text("old")
    write_html_report(RUN, [outcome(status="error", error="bad \ud800 text")], path)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]
    assert path.stat().st_mode & 0o777 == 0o644
    assert "bad ? text" in Page(path.read_text(encoding="utf-8")).text
