"""The decision options of ``pt run-tests`` end to end: repeats, the baseline gate, JSON,
the estimate, the budget — and ``pt runs compare``. Every outcome is known in advance: the mock
assistant quotes the user's message, so a keyword evaluator passes exactly when the rendered
user prompt holds the keyword."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from tests.loopback import LoopbackServer, Request, chat_completion, send_json
from tests.project_factory import HELP_PROMPT, HELP_QUESTIONS, write_project

runner = CliRunner()


def pt(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def db_rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def database(root: Path) -> Path:
    return root / ".prompttracker" / "results.db"


def run_ids(root: Path) -> list[str]:
    """Every stored run id, oldest first."""
    return [row[0] for row in db_rows(database(root), "select id from runs order by rowid")]


# A single-turn test whose rows pass while the rendered user prompt holds "banana".
# `bread` has it in `first`, `split` in `second`: dropping `{{ second }}` regresses `split`.
GATE_PROMPT = """\
name: Gate
versions:
  - version: 1
    status: active
    system_prompt: "You help."
    user_prompt: "{{ first }} or {{ second }}"
    model_config: { provider: openai, api: chat_completions, model: gpt-4o-mini }
tests:
  - name: says banana
    dataset: fruit
    evaluators:
      - type: keyword
        config: { required_keywords: [banana] }
"""
FRUIT = """\
mode: single_turn
rows:
  - name: bread
    variables: { first: banana bread, second: toast }
  - name: split
    variables: { first: apple pie, second: banana split }
"""
WITHOUT_SECOND = GATE_PROMPT.replace("{{ first }} or {{ second }}", "{{ first }}")


def gate_project(root: Path, settings: str | None = None) -> Path:
    return write_project(
        root, prompts={"gate": GATE_PROMPT}, datasets={"fruit": FRUIT}, settings=settings
    )


def edit_prompt(root: Path, slug: str, text: str) -> None:
    (root / "prompts" / f"{slug}.yaml").write_text(text)


def repeat_project(root: Path) -> Path:
    return write_project(
        root, prompts={"helper": HELP_PROMPT}, datasets={"questions": HELP_QUESTIONS}
    )


async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
    """An OpenAI-compatible endpoint on the loopback: any request made is counted."""
    await send_json(writer, chat_completion("Here is a banana."))


def properties(case: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


# --- the gate ----------------------------------------------------------------------------------


def test_fail_on_regression_needs_a_baseline(tmp_path):
    gate_project(tmp_path)
    result = pt("run-tests", "--mock", "--fail-on-regression")
    assert result.exit_code == 2, result.output
    assert "--fail-on-regression needs a baseline" in result.output
    assert "Hint:" in result.output and "--baseline latest" in result.output
    assert not (tmp_path / ".prompttracker").exists()


def test_gate_fails_only_on_a_regression(tmp_path):
    gate_project(tmp_path)
    first = pt("run-tests", "--mock")
    assert first.exit_code == 0, first.output
    assert "2 passed" in first.output

    unchanged = pt("run-tests", "--mock", "--baseline", "latest", "--fail-on-regression")
    assert unchanged.exit_code == 0, unchanged.output
    base, current = run_ids(tmp_path)
    assert f"{current} against the baseline {base}" in unchanged.output
    assert "No regression against the baseline." in unchanged.output

    edit_prompt(tmp_path, "gate", WITHOUT_SECOND)  # same version number, other content
    regressed = pt("run-tests", "--mock", "--baseline", "latest", "--fail-on-regression")
    assert regressed.exit_code == 1, regressed.output
    out = regressed.output
    assert "v1's content changed since the baseline" in out
    assert "pass→fail: split" in out
    assert "Regressions (1):" in out
    assert "gate::says banana v1 split: passed before, fails now" in out
    assert "bread: passed before" not in out
    assert "No regression" not in out

    # The baseline is now the run where `split` failed: still failing is reported, not fatal.
    still = pt("run-tests", "--mock", "--baseline", "latest", "--fail-on-regression")
    assert still.exit_code == 0, still.output
    assert "still failing: split" in still.output
    assert "No regression against the baseline." in still.output
    assert "1 passed, 1 failed" in still.output


def test_baseline_without_the_gate_only_reports(tmp_path):
    gate_project(tmp_path)
    assert pt("run-tests", "--mock").exit_code == 0
    edit_prompt(tmp_path, "gate", WITHOUT_SECOND)
    reported = pt("run-tests", "--mock", "--baseline", "latest")
    assert reported.exit_code == 1, reported.output  # a test failed: the usual exit code
    assert "Regressions (1):" in reported.output
    assert "split: passed before, fails now" in reported.output

    # Nothing regressed against the run just made, yet `split` fails: still exit 1.
    again = pt("run-tests", "--mock", "--baseline", "latest")
    assert again.exit_code == 1, again.output
    assert "No regression against the baseline." in again.output
    assert "still failing: split" in again.output

    # Fixed again, against a baseline where `split` failed (by id): everything passes, exit 0.
    edit_prompt(tmp_path, "gate", GATE_PROMPT)
    fixed = pt("run-tests", "--mock", "--baseline", run_ids(tmp_path)[-1])
    assert fixed.exit_code == 0, fixed.output
    assert "fail→pass: split" in fixed.output
    assert "No regression against the baseline." in fixed.output


def test_baseline_latest_without_a_matching_run_calls_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    with LoopbackServer(answer) as server:
        gate_project(tmp_path, settings=f"providers:\n  openai: {{ base_url: '{server.url}' }}\n")
        result = pt("run-tests", "--baseline", "latest", "--fail-on-regression")
        assert result.exit_code == 2, result.output
        assert "--baseline latest" in result.output
        assert "there is no results database" in result.output
        assert "Hint:" in result.output
        assert server.requests == [] and server.connections == 0
        assert not database(tmp_path).exists()  # nothing written
        # the same project without --baseline does reach the endpoint
        assert pt("run-tests", "--transcripts", "none").exit_code == 0
        assert len(server.requests) == 2


def test_baseline_latest_ignores_runs_of_another_selection(tmp_path):
    gate_project(tmp_path)
    assert pt("run-tests", "--mock", "-k", "gate::says*").exit_code == 0
    result = pt("run-tests", "--mock", "--baseline", "latest")
    assert result.exit_code == 2, result.output
    assert "no completed mock run of this selection" in result.output
    assert len(run_ids(tmp_path)) == 1  # no run was started


def test_unknown_baseline_run_exits_2(tmp_path):
    gate_project(tmp_path)
    assert pt("run-tests", "--mock").exit_code == 0
    result = pt("run-tests", "--mock", "--baseline", "run-nonexistent", "--fail-on-regression")
    assert result.exit_code == 2, result.output
    assert "no run with id 'run-nonexistent'" in result.output
    assert len(run_ids(tmp_path)) == 1


# --- JUnit -------------------------------------------------------------------------------------


def test_junit_has_a_regression_gate_suite(tmp_path):
    gate_project(tmp_path)
    assert pt("run-tests", "--mock").exit_code == 0
    edit_prompt(tmp_path, "gate", WITHOUT_SECOND)
    junit = tmp_path / "reports" / "junit.xml"
    result = pt(
        "run-tests",
        "--mock",
        "--baseline",
        "latest",
        "--fail-on-regression",
        "--junit-xml",
        str(junit),
    )
    assert result.exit_code == 1, result.output
    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"prompttracker", "regression gate"}
    gate = suites["regression gate"]
    assert (gate.get("tests"), gate.get("failures")) == ("1", "1")
    assert properties(gate)["baseline"] == run_ids(tmp_path)[0]
    (case,) = gate.findall("testcase")
    assert case.get("classname") == "gate"
    assert case.get("name") == "says banana v1 against the baseline"
    failure = case.find("failure")
    assert failure is not None
    assert "split: passed before, fails now" in failure.get("message", "")
    assert properties(case)["pass_rate_baseline"] == "1.000"
    assert properties(case)["pass_rate"] == "0.500"


def test_junit_without_regression_has_a_passing_gate(tmp_path):
    gate_project(tmp_path)
    assert pt("run-tests", "--mock").exit_code == 0
    junit = tmp_path / "junit.xml"
    result = pt(
        "run-tests",
        "--mock",
        "--baseline",
        "latest",
        "--fail-on-regression",
        "--junit-xml",
        str(junit),
    )
    assert result.exit_code == 0, result.output
    gate = next(s for s in ET.parse(junit).getroot() if s.get("name") == "regression gate")
    assert gate.get("failures") == "0"
    assert [c.find("failure") for c in gate.findall("testcase")] == [None]


def test_junit_repeat_properties(tmp_path):
    repeat_project(tmp_path)
    junit = tmp_path / "junit.xml"
    result = pt("run-tests", "--mock", "--repeat", "3", "--junit-xml", str(junit))
    assert result.exit_code == 1, result.output
    root = ET.parse(junit).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == ["prompttracker"]
    cases = root.find("testsuite").findall("testcase")  # type: ignore[union-attr]
    assert len(cases) == 9
    by_row: dict[str, list[dict[str, str]]] = {}
    for case in cases:
        row = case.get("name", "").split("[")[1].rstrip("]")
        by_row.setdefault(row, []).append(properties(case))
    for row, (passes, flaky) in {
        "steady": ("3/3", "false"),
        "never": ("0/3", "false"),
        "flaky": ("1/3", "true"),
    }.items():
        plays = by_row[row]
        assert sorted(p["repeat"] for p in plays) == ["1/3", "2/3", "3/3"]
        assert {p["pass_rate"] for p in plays} == {passes}
        assert {p["flaky"] for p in plays} == {flaky}


def test_junit_single_plays_carry_no_repeat_properties(tmp_path):
    gate_project(tmp_path)
    junit = tmp_path / "junit.xml"
    assert pt("run-tests", "--mock", "--junit-xml", str(junit)).exit_code == 0
    cases = ET.parse(junit).getroot().find("testsuite").findall("testcase")  # type: ignore[union-attr]
    assert len(cases) == 2
    assert all(properties(case) == {} for case in cases)


# --- --json ------------------------------------------------------------------------------------

# Two versions compared on the same rows; both say "banana" until version 2 is edited.
TWO_VERSIONS = """\
name: Two versions
versions:
  - version: 1
    status: active
    system_prompt: "You help."
    user_prompt: "{{ first }} or {{ second }}"
    model_config: { provider: openai, api: chat_completions, model: gpt-4o-mini }
  - version: 2
    system_prompt: "You help a lot."
    user_prompt: "{{ first }} and {{ second }}"
    model_config: { provider: openai, api: chat_completions, model: gpt-4o-mini }
tests:
  - name: says banana
    dataset: fruit
    versions: [1, 2]
    evaluators:
      - type: keyword
        config: { required_keywords: [banana] }
      - type: llm_judge
        config: { custom_instructions: "Is it polite?" }
"""
PRICES = """\
prices:
  gpt-4o-mini: { input_per_mtok: 1, output_per_mtok: 2 }
"""


def test_json_document(tmp_path):
    write_project(
        tmp_path, prompts={"two": TWO_VERSIONS}, datasets={"fruit": FRUIT}, settings=PRICES
    )
    first = pt("run-tests", "--mock", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["baseline"] is None
    # v2 loses `{{ second }}`: its `split` row fails now, in the run and against the baseline
    edit_prompt(
        tmp_path, "two", TWO_VERSIONS.replace("{{ first }} and {{ second }}", "{{ first }}")
    )
    result = pt("run-tests", "--mock", "--json", "--baseline", "latest")
    assert result.exit_code == 1, result.output
    assert result.stdout.lstrip().startswith("{")  # only JSON on stdout
    document = json.loads(result.stdout)
    assert "against the baseline" in result.stderr  # the human report went to stderr
    assert "Run run-" in result.stderr
    assert "against the baseline" not in result.stdout

    base, current = run_ids(tmp_path)
    assert document["run"]["id"] == current
    runs = document["test_runs"]
    assert len(runs) == 4
    assert {(r["version"], r["row"]): r["status"] for r in runs} == {
        (1, "bread"): "passed",
        (1, "split"): "passed",
        (2, "bread"): "passed",
        (2, "split"): "failed",
    }
    assert all(r["repeat"] == 0 and r["flaky"] is False for r in runs)

    versions = {v["version"]: v for v in document["versions"]}
    assert set(versions) == {1, 2}
    assert versions[1]["pass_rate"] == 1.0 and versions[2]["pass_rate"] == 0.5
    assert versions[1]["pass_hat_k"] == 1.0 and versions[2]["pass_hat_k"] == 0.5
    assert versions[2]["flaky_rows"] == []
    stats = {r["row"]: r for r in versions[2]["row_stats"]}
    assert stats["split"]["verdict"] == "failed" and stats["bread"]["verdict"] == "passed"
    assert stats["split"]["plays"] == 1 and stats["split"]["k"] == 1

    (comparison,) = document["comparisons"]
    assert (comparison["a"]["version"], comparison["b"]["version"]) == (1, 2)
    assert comparison["paired_rows"] == 2
    assert comparison["flips"]["pass→fail"] == ["split"]
    assert comparison["difference"] == -0.5

    baseline = document["baseline"]
    assert (baseline["baseline"], baseline["current"]) == (base, current)
    assert baseline["regressed"] is True
    assert baseline["regressions"] == ["two::says banana v2 split: passed before, fails now"]
    changed = {c["b"]["version"]: c["content_changed"] for c in baseline["comparisons"]}
    assert changed == {1: False, 2: True}

    usage = document["usage"]
    assert set(usage) == {"assistant", "judge"}
    assert usage["assistant"]["calls"] == 4 and usage["judge"]["calls"] == 4
    expected = sum(
        (m["input_tokens"] * 1 + m["output_tokens"] * 2) / 1_000_000 for m in usage.values()
    )
    assert document["cost_usd"] == pytest.approx(expected)
    assert document["cost_usd"] > 0
    assert sum(r["cost_usd"] for r in runs) == pytest.approx(document["cost_usd"])


def test_json_with_repeats_reports_flaky_rows(tmp_path):
    repeat_project(tmp_path)
    result = pt("run-tests", "--mock", "--json", "--repeat", "3")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert len(document["test_runs"]) == 9
    (version,) = document["versions"]
    assert version["repeats"] == 3
    assert version["flaky_rows"] == ["flaky"]
    assert version["pass_hat_k"] == pytest.approx(1 / 3)  # steady 1, never 0, flaky 0
    stats = {r["row"]: r for r in version["row_stats"]}
    assert {row: s["verdict"] for row, s in stats.items()} == {
        "steady": "passed",
        "never": "failed",
        "flaky": "flaky",
    }
    assert stats["flaky"]["passes"] == 1 and stats["flaky"]["pass_at_k"] == 1.0
    flaky = [r for r in document["test_runs"] if r["flaky"]]
    assert sorted(r["repeat"] for r in flaky) == [0, 1, 2]
    assert {r["row"] for r in flaky} == {"flaky"}
    assert document["comparisons"] == [] and document["baseline"] is None


# --- --estimate --------------------------------------------------------------------------------

SYSTEM_40 = "You are a terse assistant for Acme Corp."  # 40 characters: 10 tokens
USER_8 = "Hi there"  # 8 characters: 2 tokens
ESTIMATE_PROMPT = f"""\
name: Estimated
versions:
  - version: 1
    status: active
    system_prompt: "{SYSTEM_40}"
    user_prompt: "{{{{ opening }}}}"
    model_config:
      provider: openai
      api: chat_completions
      model: gpt-4o-mini
      max_tokens: 100
tests:
  - name: one answer
    dataset: {{dataset}}
    evaluators:
      - {{evaluator}}
"""
ESTIMATE_SETTINGS = """\
providers:
  openai: { base_url: "{url}", max_retries: 0 }
prices:
  gpt-4o-mini: { input_per_mtok: 1000000, output_per_mtok: 2000000 }
"""
ONE_ROW = f"""\
mode: single_turn
rows:
  - name: hello
    variables: {{ opening: "{USER_8}" }}
"""
CONVERSATION_ROW = f"""\
mode: conversational
rows:
  - name: talk
    variables: {{ opening: "{USER_8}" }}
    interlocutor_simulation_prompt: You want to know the opening hours.
    max_turns: 3
"""


def estimate_project(root: Path, url: str, *, dataset: str, evaluator: str) -> Path:
    prompt = ESTIMATE_PROMPT.replace("{dataset}", dataset).replace("{evaluator}", evaluator)
    datasets = {"one": ONE_ROW, "talk": CONVERSATION_ROW}
    settings = ESTIMATE_SETTINGS.replace("{url}", url)
    return write_project(root, prompts={"est": prompt}, datasets=datasets, settings=settings)


def test_estimate_counts_a_single_turn_row(tmp_path, monkeypatch):
    assert len(SYSTEM_40) == 40 and len(USER_8) == 8
    with LoopbackServer(answer) as server:
        estimate_project(tmp_path, server.url, dataset="one", evaluator="{ type: length }")
        table = pt("run-tests", "--estimate")  # no OPENAI_API_KEY: none is needed
        assert table.exit_code == 0, table.output
        assert "Worst-case estimate for 1 test run(s): nothing was called" in table.stdout
        assert "$212.00" in table.stdout

        result = pt("run-tests", "--estimate", "--json")
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert "Worst-case estimate" in result.stderr
        assert server.requests == [] and server.connections == 0
        assert not (tmp_path / ".prompttracker").exists()

        # the endpoint is wired: a real run of the same plan makes its one call there
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
        assert pt("run-tests").exit_code == 0
        assert len(server.requests) == 1
    assert document["test_runs"] == 1
    (line,) = document["lines"]
    assert (line["caller"], line["model"]) == ("assistant", "openai/gpt-4o-mini")
    assert (line["calls"], line["input_tokens"], line["output_tokens"]) == (1, 12, 100)
    total = document["total"]
    assert (total["calls"], total["input_tokens"], total["output_tokens"]) == (1, 12, 100)
    assert total["unpriced_calls"] == 0
    assert total["cost_usd"] == pytest.approx(212.0)  # 12 × $1 + 100 × $2


def test_estimate_counts_a_conversation_and_its_judge(tmp_path):
    with LoopbackServer(answer) as server:
        estimate_project(
            tmp_path, server.url, dataset="talk", evaluator="{ type: conversation_judge }"
        )
        result = pt("run-tests", "--estimate", "--json")
        assert result.exit_code == 0, result.output
        assert server.requests == [] and server.connections == 0
    assert not (tmp_path / ".prompttracker").exists()
    document = json.loads(result.stdout)
    calls: dict[str, int] = {}
    for line in document["lines"]:
        calls[line["caller"]] = calls.get(line["caller"], 0) + line["calls"]
    # three assistant answers, two simulated replies between them, one judgement per answer
    assert calls == {"assistant": 3, "simulated_user": 2, "judge": 3}
    assert document["total"]["calls"] == 8
    assert all(line["model"] == "openai/gpt-4o-mini" for line in document["lines"])
    assert document["total"]["cost_usd"] > 0


def test_estimate_under_mock_also_stores_nothing(tmp_path):
    gate_project(tmp_path)
    result = pt("run-tests", "--mock", "--estimate")
    assert result.exit_code == 0, result.output
    assert "Worst-case estimate for 2 test run(s)" in result.output
    assert "Under --mock nothing is spent" in result.output
    assert not (tmp_path / ".prompttracker").exists()


# --- --max-cost --------------------------------------------------------------------------------

SIX_ROWS = "mode: single_turn\nrows:\n" + "".join(
    f"  - name: row {n}\n    variables: {{ first: banana {n}, second: toast }}\n"
    for n in range(1, 7)
)
DOLLAR_A_TOKEN = """\
prices:
  gpt-4o-mini: { input_per_mtok: 1000000, output_per_mtok: 1000000 }
"""


def test_max_cost_stops_starting_test_runs(tmp_path):
    # Every mock call costs a dollar a token: one test run (a dozen tokens or more) is over $1.
    write_project(
        tmp_path,
        prompts={"gate": GATE_PROMPT},
        datasets={"fruit": SIX_ROWS},
        settings=DOLLAR_A_TOKEN,
    )
    result = pt("run-tests", "--mock", "-c", "1", "--max-cost", "1")
    assert result.exit_code == 5, result.output
    assert "Budget reached:" in result.output
    assert "5 planned test run(s) were not started" in result.output
    db = database(tmp_path)
    assert db_rows(db, "select status, total from runs") == [("budget", 1)]
    assert db_rows(db, "select count(*) from test_runs") == [(1,)]
    ((cost,),) = db_rows(db, "select cost_usd from test_runs")
    assert cost > 1

    # A budget that is never reached: every test run plays, the usual exit code.
    enough = pt("run-tests", "--mock", "-c", "1", "--max-cost", "100000")
    assert enough.exit_code == 0, enough.output
    assert "Budget reached" not in enough.output
    assert db_rows(db, "select status, total from runs order by rowid")[-1] == ("completed", 6)


def test_max_cost_with_json_still_prints_the_document(tmp_path):
    write_project(
        tmp_path,
        prompts={"gate": GATE_PROMPT},
        datasets={"fruit": SIX_ROWS},
        settings=DOLLAR_A_TOKEN,
    )
    result = pt("run-tests", "--mock", "-c", "1", "--max-cost", "1", "--json")
    assert result.exit_code == 5, result.output
    document = json.loads(result.stdout)
    assert document["run"]["status"] == "budget"
    assert len(document["test_runs"]) == 1
    assert "Budget reached:" in result.stderr


UNPRICED = """\
name: Unpriced
versions:
  - version: 1
    status: active
    user_prompt: "hello"
    model_config: { provider: mock, model: no-such-model-xyz }
tests:
  - name: answers
    dataset: one
    evaluators:
      - { type: length, config: { min_length: 1 } }
"""


def test_max_cost_needs_a_price_for_every_model(tmp_path):
    write_project(
        tmp_path,
        prompts={"unpriced": UNPRICED},
        datasets={"one": "mode: single_turn\nrows:\n  - name: r\n"},
    )
    result = pt("run-tests", "--max-cost", "1")
    assert result.exit_code == 2, result.output
    assert "--max-cost cannot be kept" in result.output
    assert "no-such-model-xyz" in result.output
    assert "prices:" in result.output  # the hint says where to add one
    assert not (tmp_path / ".prompttracker").exists()
    # without --max-cost the same project runs (its cost is just unknown)
    assert pt("run-tests").exit_code == 0


# --- pt runs compare ---------------------------------------------------------------------------


def two_stored_runs(root: Path) -> tuple[str, str]:
    """A run where everything passes, then one where `split` regressed."""
    gate_project(root)
    assert pt("run-tests", "--mock").exit_code == 0
    edit_prompt(root, "gate", WITHOUT_SECOND)
    assert pt("run-tests", "--mock").exit_code == 1
    first, second = run_ids(root)
    return first, second


def test_runs_compare_lists_the_regression(tmp_path):
    a, b = two_stored_runs(tmp_path)
    result = pt("runs", "compare", a, b)
    assert result.exit_code == 0, result.output  # without --exit-code: a report
    assert f"{b} against the baseline {a}" in result.output
    assert "pass→fail: split" in result.output
    assert "Regressions (1):" in result.output
    assert "gate::says banana v1 split: passed before, fails now" in result.output

    gated = pt("runs", "compare", a, b, "--exit-code")
    assert gated.exit_code == 1, gated.output

    as_json = pt("runs", "compare", a, b, "--json")
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert document["regressed"] is True
    assert (document["baseline"], document["current"]) == (a, b)
    assert document["regressions"] == ["gate::says banana v1 split: passed before, fails now"]
    both = pt("runs", "compare", a, b, "--json", "--exit-code")
    assert both.exit_code == 1
    assert json.loads(both.stdout)["regressed"] is True

    # The other way round, b → a only improved: the gate passes.
    back = pt("runs", "compare", b, a, "--exit-code")
    assert back.exit_code == 0, back.output
    assert "No regression against the baseline." in back.output
    assert "fail→pass: split" in back.output


def test_runs_compare_by_id_prefix(tmp_path):
    a, b = two_stored_runs(tmp_path)
    result = pt("runs", "compare", a, b[: len(b) - 2], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["current"] == b


def test_runs_compare_unknown_run(tmp_path):
    a, _ = two_stored_runs(tmp_path)
    result = pt("runs", "compare", a, "run-nonexistent", "--exit-code")
    assert result.exit_code == 2, result.output
    assert "no run with id 'run-nonexistent'" in result.output
    assert pt("runs", "compare", "run-nonexistent", a).exit_code == 2


def test_runs_compare_without_database(tmp_path):
    result = pt("runs", "compare", "run-a", "run-b")
    assert result.exit_code == 2
    assert "no results database" in result.output


# --- --repeat ----------------------------------------------------------------------------------


def test_repeat_stores_every_play_and_shows_the_repeats_table(tmp_path):
    repeat_project(tmp_path)
    result = pt("run-tests", "--mock", "--repeat", "3", "--transcripts", "none")
    assert result.exit_code == 1, result.output
    out = result.output
    assert "helper::offers help: 3 plays a row" in out
    assert "Every play: pt runs show" in out
    rows = db_rows(
        database(tmp_path),
        "select row_name, repeat, repeats, status from test_runs order by row_name, repeat",
    )
    assert len(rows) == 9
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (row, n, 3) for row in ("flaky", "never", "steady") for n in range(3)
    ]
    statuses: dict[str, list[str]] = {}
    for row, _, _, status in rows:
        statuses.setdefault(row, []).append(status)
    # the mock samples again on each repeat: `flaky` passes only its first play
    assert statuses == {
        "flaky": ["passed", "failed", "failed"],
        "never": ["failed"] * 3,
        "steady": ["passed"] * 3,
    }
    table = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith(" v1")}
    assert table["steady"][2:4] == ["3/3", "100%"]
    assert table["never"][2:4] == ["0/3", "0%"]
    assert table["flaky"][2:4] == ["1/3", "33%"]
    assert table["flaky"][-1] == "flaky"
    assert "1 flaky" in out
    options = json.loads(db_rows(database(tmp_path), "select options from runs")[0][0])
    assert options["repeat"] == 3


def test_repeat_in_the_test_file(tmp_path):
    write_project(
        tmp_path,
        prompts={
            "helper": HELP_PROMPT.replace("dataset: questions", "dataset: questions\n    repeat: 2")
        },
        datasets={"questions": HELP_QUESTIONS},
    )
    result = pt("run-tests", "--mock", "--transcripts", "none")
    assert result.exit_code == 1, result.output
    assert "2 plays a row" in result.output
    counts = db_rows(database(tmp_path), "select repeats, count(*) from test_runs group by repeats")
    assert counts == [(2, 6)]
    # --repeat overrides the file's
    assert pt("run-tests", "--mock", "--repeat", "1", "-k", "helper::*").exit_code == 1
    last = run_ids(tmp_path)[-1]
    assert db_rows(
        database(tmp_path), f"select count(*), max(repeats) from test_runs where run_id = '{last}'"
    ) == [(3, 1)]
