"""Tables keep their data at 80, 120 and 200 columns; `pt runs show` takes a piece of a run id."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console, RenderableType
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.report import runs_table, summary_table
from prompttracker.report.summary import FULL_TABLE_LIMIT, run_summary
from prompttracker.results import RunRecord
from prompttracker.store import Store
from tests.test_report import T0, error_outcome, failed_outcome, outcome

WIDTHS = (80, 120, 200)
SLUG = "billing_support"
LONG_TEST = "refunds a double charge politely even when the customer writes in capitals"
LONG_ROW = "angry customer charged twice for one annual subscription renewal"


def render(renderable: RenderableType, width: int) -> str:
    console = Console(record=True, width=width)
    console.print(renderable)
    return console.export_text()


def assert_fits(text: str, width: int) -> None:
    """Nothing was cut: no ellipsis, and no line wider than the console."""
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width


def assert_every_word(text: str, phrase: str) -> None:
    """Each word of ``phrase`` appears whole (not folded in two) in ``text``."""
    for word in phrase.split():
        assert re.search(rf"(^|\s|::){re.escape(word)}(\s|$)", text, re.MULTILINE), word


def column(text: str, first: str, after: str) -> str:
    """What one column of a rendered table holds, top to bottom, without spaces or borders.

    The column runs from where the header ``first`` starts to where ``after`` starts.
    """
    lines = text.splitlines()
    pattern = re.compile(rf"\b{first}\b.*\b{after}\b")
    header = next(i for i, line in enumerate(lines) if pattern.search(line))
    start, end = pattern.search(lines[header]).start(), lines[header].index(after)
    body = "".join(line[start:end] for line in lines[header + 2 :])
    return re.sub(r"[\s\u2500-\u257f]", "", body)


def squashed(*names: str) -> str:
    return "".join("".join(names).split())


# --- pt runs list -----------------------------------------------------------------------------

RUNS = [
    RunRecord(
        id="run-20260301-120000-a1b2c3",
        started_at=T0,
        status="interrupted",
        mock=True,
        total=1234,
        passed=979,
        failed=217,
        errored=38,
    ),
    RunRecord(
        id="run-20260301-110000-0f9e8d",
        started_at=T0 - timedelta(hours=1),
        status="completed",
        total=4,
        passed=2,
        failed=1,
        errored=1,
    ),
]


@pytest.mark.parametrize("width", WIDTHS)
def test_runs_list_keeps_whole_ids_and_counts(width: int) -> None:
    text = render(runs_table(RUNS), width)

    assert_fits(text, width)
    header = next(line for line in text.splitlines() if line.lstrip().startswith("id "))
    assert header.split()[-4:] == ["total", "passed", "failed", "errored"]
    first = next(line for line in text.splitlines() if "run-20260301-120000-a1b2c3" in line)
    second = next(line for line in text.splitlines() if "run-20260301-110000-0f9e8d" in line)
    assert first.split()[-4:] == ["1234", "979", "217", "38"]
    assert second.split()[-4:] == ["4", "2", "1", "1"]
    assert "interrupted" in first and "completed" in second


def test_runs_list_leaves_out_the_start_time_only_when_narrow() -> None:
    # The id holds the start time (UTC), so it is the first column to go.
    assert "2026-03-01 12:00:00" in render(runs_table(RUNS), 120)
    narrow = render(runs_table(RUNS), 80)
    assert "started" not in narrow and "mock" in narrow
    assert "yes" in next(line for line in narrow.splitlines() if "a1b2c3" in line).split()


def test_runs_list_narrower_still_marks_mock_runs_in_the_status() -> None:
    text = render(runs_table(RUNS), 74)

    assert_fits(text, 74)
    first = next(line for line in text.splitlines() if "run-20260301-120000-a1b2c3" in line)
    assert first.split()[-4:] == ["1234", "979", "217", "38"]
    mock_run, other_run = text.split("run-20260301-110000-0f9e8d")
    assert "(mock)" in mock_run and "(mock)" not in other_run


# --- the summary of a run ---------------------------------------------------------------------


def long_named_outcomes() -> list:
    return [
        outcome(prompt_slug=SLUG, test_name=LONG_TEST, row_name=LONG_ROW),
        failed_outcome(prompt_slug=SLUG, test_name=LONG_TEST, row_name="polite"),
        error_outcome(),
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_summary_wraps_long_names_and_loses_no_word(width: int) -> None:
    text = render(summary_table(long_named_outcomes()), width)

    assert_fits(text, width)
    # In sort order: billing::… (the error), then the long test's two rows.
    tests = ["billing::double charge is refunded", f"{SLUG}::{LONG_TEST}", f"{SLUG}::{LONG_TEST}"]
    assert column(text, "test", "version") == squashed(*tests)
    assert column(text, "row", "status") == squashed("timeout", LONG_ROW, "polite")
    assert f"{SLUG}::" in text
    assert_every_word(text, LONG_TEST)
    assert_every_word(text, LONG_ROW)
    assert_every_word(text, "double charge is refunded")
    for status in ("passed", "failed", "error"):
        assert re.search(rf"\b{status}\b", text)


def test_a_name_longer_than_its_column_folds_and_keeps_every_character() -> None:
    slug = "customer_support_billing_escalations_for_enterprise_accounts"
    text = render(summary_table([outcome(prompt_slug=slug, test_name=LONG_TEST)]), 80)

    assert_fits(text, 80)
    assert column(text, "test", "version") == squashed(f"{slug}::{LONG_TEST}")


def test_summary_keeps_whole_lines_and_borders_where_they_fit() -> None:
    short = [outcome(), failed_outcome(), error_outcome()]
    for width in (120, 200):
        wide = render(summary_table(short), width)
        assert "┃ test" in wide and "│ billing::double charge is refunded │" in wide
    wide = render(summary_table(long_named_outcomes()), 200)
    assert f"{SLUG}::{LONG_TEST}" in wide and "┃" not in wide
    # Too narrow for borders: none; the test name breaks after its prompt's `::`.
    narrow = render(summary_table(long_named_outcomes()), 80)
    assert "┃" not in narrow
    assert re.search(rf"^ {SLUG}::\s", narrow, re.MULTILINE)


@pytest.mark.parametrize("width", WIDTHS)
def test_big_run_summary_loses_no_word(width: int) -> None:
    outcomes = [
        outcome(prompt_slug=SLUG, test_name=LONG_TEST, row_name=f"row {i}")
        for i in range(FULL_TABLE_LIMIT)
    ]
    outcomes.append(failed_outcome(prompt_slug=SLUG, test_name=LONG_TEST, row_name=LONG_ROW))
    text = render(run_summary(outcomes), width)

    assert_fits(text, width)
    assert "Tests (score and time" in text and "Test runs that did not pass" in text
    assert text.count(f"{SLUG}::") == 2  # a line per test × version, then the one failure
    assert_every_word(text, LONG_TEST)
    assert_every_word(text, LONG_ROW)


# --- pt runs show by a piece of the id --------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def three_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A database with three runs whose random parts are a1b2c3, ffb2c3 and 0d0d0d."""
    suffixes = iter(["a1b2c3", "ffb2c3", "0d0d0d"])
    # Only the store's view of ``secrets``: sqlite-utils uses token_hex for savepoints.
    fake = SimpleNamespace(token_hex=lambda n: next(suffixes))
    monkeypatch.setattr("prompttracker.store.store.secrets", fake)
    db = tmp_path / "results.db"
    with Store(db) as store:
        ids = []
        for _ in range(3):
            run = store.start_run(mock=True, project_root=str(tmp_path), options={})
            ids.append(store.finish_run(run.id, "completed").id)
    return db, ids


def show(db: Path, run_id: str):
    return runner.invoke(app, ["runs", "show", run_id, "--db", str(db)], catch_exceptions=False)


@pytest.mark.parametrize(("piece", "index"), [("a1b2c3", 0), ("fb2c3", 1), ("d0d", 2)])
def test_runs_show_takes_the_random_part_or_an_end_of_the_id(three_runs, piece, index) -> None:
    db, ids = three_runs
    result = show(db, piece)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Run {ids[index]} · ")


def test_runs_show_by_start_and_latest_still_work(three_runs) -> None:
    db, ids = three_runs
    assert show(db, ids[1][:-1]).output.startswith(f"Run {ids[1]} · ")
    assert show(db, "latest").output.startswith(f"Run {ids[2]} · ")


def test_an_ambiguous_end_lists_the_runs_it_matches(three_runs) -> None:
    db, ids = three_runs
    result = show(db, "b2c3")

    assert result.exit_code == 2
    assert "run id 'b2c3' matches 2 runs" in result.output
    assert ids[0] in result.output and ids[1] in result.output and ids[2] not in result.output
    assert "pt runs list" in result.output


def test_a_piece_of_no_run_is_not_found(three_runs) -> None:
    db, _ = three_runs
    result = show(db, "a1b2")  # inside an id, but neither its start nor its end
    assert result.exit_code == 2
    assert "no run with id 'a1b2'" in result.output
