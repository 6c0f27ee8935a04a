"""``pt runs merge``: the shards of one plan, played into separate databases, make the same run
as the plan played whole — and ``pt runs show --exit-code / --junit-xml`` read it like
``pt run-tests`` would have. Mock runs are deterministic, so whole and merged runs must agree."""

from __future__ import annotations

import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.config.loader import load_project
from prompttracker.engine import Shard, plan
from prompttracker.errors import ConfigError
from prompttracker.store.merge import merge_runs
from tests.project_factory import write_project

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

# A single-turn test on two rows; both pass (the mock assistant quotes the user's message).
FRUIT_PROMPT = """\
name: Fruit
versions:
  - version: 1
    status: active
    system_prompt: "You help."
    user_prompt: "{{ first }}"
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
    variables: { first: banana bread }
  - name: split
    variables: { first: banana split }
"""


def pt(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def db_rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def only_run(path: Path) -> str:
    (run_id,) = db_rows(path, "select id from runs")[0]
    return run_id


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the bundled example suite."""
    for folder in ("prompts", "datasets"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


def play(*args: str, db: str) -> int:
    """``pt run-tests --mock`` into ``db``; its exit code."""
    result = pt("run-tests", "--mock", "--transcripts", "none", "--db", db, *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code


def play_shards(count: int, *args: str) -> list[Path]:
    """Every shard of the plan, each into its own database."""
    paths = [Path(f"shard{i}.db") for i in range(1, count + 1)]
    for i, path in enumerate(paths, start=1):
        play("--shard", f"{i}/{count}", *args, db=str(path))
    return paths


def plan_keys(path: Path) -> list[str]:
    return [key for (key,) in db_rows(path, "select plan_key from run_plan order by position")]


def statuses(path: Path, run_id: str) -> list[tuple[str, str]]:
    rows = db_rows(path, f"select plan_key, status from test_runs where run_id = '{run_id}'")
    return sorted(rows)


def junit_counts(path: Path) -> tuple[int, int, int]:
    root = ET.parse(path).getroot()
    return (
        len(root.findall(".//testcase")),
        len(root.findall(".//testcase/failure")),
        len(root.findall(".//testcase/error")),
    )


def test_shards_cover_the_plan_once_and_merge_into_the_whole_run(example):
    whole_exit = play("--junit-xml", "whole.xml", db="whole.db")
    shards = play_shards(3)
    whole_keys = plan_keys(Path("whole.db"))
    shard_keys = [key for path in shards for key in plan_keys(path)]
    assert sorted(shard_keys) == sorted(whole_keys)  # every planned test run in one shard
    assert len(set(shard_keys)) == len(shard_keys)
    assert all(plan_keys(path) for path in shards)

    result = pt("runs", "merge", *map(str, shards), "--into", "all.db")
    assert result.exit_code == 0, result.output
    merged, whole = only_run(Path("all.db")), only_run(Path("whole.db"))
    said = " ".join(result.output.split())
    ((plan_hash,),) = db_rows(Path("whole.db"), "select plan_hash from runs")
    assert said.startswith(f"Merged 3 shards of run plan {plan_hash} into {merged} in all.db:")
    assert statuses(Path("all.db"), merged) == statuses(Path("whole.db"), whole)
    assert sorted(plan_keys(Path("all.db"))) == sorted(whole_keys)
    positions = db_rows(Path("all.db"), "select position from run_plan order by position")
    assert [p for (p,) in positions] == list(range(len(whole_keys)))

    counts = "select total, passed, failed, errored, status, shard, plan_hash from runs"
    assert db_rows(Path("all.db"), counts) == db_rows(Path("whole.db"), counts)
    total = db_rows(Path("whole.db"), "select count(*) from test_runs")[0][0]
    assert f"{total} test runs (" in said
    assert "Test runs" in result.output  # the summary table, no transcripts
    assert "· turn" not in result.output  # no message panel

    shown = pt("runs", "show", merged, "--db", "all.db", "--transcripts", "none", "--exit-code")
    assert shown.exit_code == whole_exit == 1  # the example suite has failing rows
    pt("runs", "show", merged, "--db", "all.db", "--transcripts", "none", "--junit-xml", "m.xml")
    assert junit_counts(Path("m.xml")) == junit_counts(Path("whole.xml"))


def test_merged_rows_are_copied_whole(example):
    shards = play_shards(2, "-k", "billing_support::*")
    run = merge_runs(shards, Path("all.db"))
    assert run.shard is None and run.status == "completed" and run.mock
    assert run.options["merged_from"] == [only_run(path) for path in shards]
    assert "shard" not in run.options
    for table in ("messages", "evaluations", "llm_responses"):
        copied = db_rows(Path("all.db"), f"select count(*) from {table}")[0][0]
        assert copied == sum(db_rows(p, f"select count(*) from {table}")[0][0] for p in shards)
    query = (
        "select t.id, t.plan_key, m.position, m.role, m.content, m.tool_calls from messages m"
        " join test_runs t on t.id = m.test_run_id order by t.id, m.position"
    )
    assert db_rows(Path("all.db"), query) == sorted(
        row for path in shards for row in db_rows(path, query)
    )
    hashes = "select distinct prompt_version_hash from test_runs order by 1"
    assert db_rows(Path("all.db"), hashes) == sorted(
        set(row for path in shards for row in db_rows(path, hashes))
    )
    again = pt("runs", "merge", *map(str, shards), "--into", "all.db")
    assert again.exit_code == 2 and "merged into all.db already" in again.output


def empty_shard(root: Path, count: int) -> int:
    """The index of a shard with nothing to play (the cut is by a hash of each row)."""
    whole = plan(load_project(root))
    for index in range(1, count + 1):
        if not Shard(index, count).cut(whole):
            return index
    pytest.skip(f"every one of {count} shards holds a row")


def test_a_shard_with_nothing_to_play_exits_0_and_merges(tmp_path):
    write_project(tmp_path, prompts={"fruit": FRUIT_PROMPT}, datasets={"fruit": FRUIT})
    index = empty_shard(tmp_path, 3)  # two rows, three shards: one at least is empty
    whole_exit = play(db="whole.db")
    shards = play_shards(3)
    assert db_rows(shards[index - 1], "select count(*) from test_runs") == [(0,)]
    assert whole_exit == 0
    empty = only_run(shards[index - 1])
    assert pt("runs", "show", empty, "--db", str(shards[index - 1]), "--exit-code").exit_code == 1

    run = merge_runs(shards, Path("all.db"))
    assert (run.total, run.passed) == (2, 2)
    shown = pt("runs", "show", run.id, "--db", "all.db", "--exit-code")
    assert shown.exit_code == whole_exit == 0
    whole = only_run(Path("whole.db"))
    assert statuses(Path("all.db"), run.id) == statuses(Path("whole.db"), whole)


def test_show_exit_code_is_5_for_a_budget_run(tmp_path):
    write_project(tmp_path, prompts={"fruit": FRUIT_PROMPT}, datasets={"fruit": FRUIT})
    play(db="r.db")
    db_rows(Path("r.db"), "update runs set status = 'budget'")
    assert pt("runs", "show", only_run(Path("r.db")), "--db", "r.db", "--exit-code").exit_code == 5


def refusal(*args: str) -> str:
    result = pt("runs", "merge", *args)
    assert result.exit_code == 2, result.output
    assert not Path("all.db").exists()  # nothing written
    return " ".join(result.output.split())


def test_shards_of_different_plans_are_refused(example):
    play("--shard", "1/2", "-k", "product_faq::*", db="a.db")
    faq = example / "datasets" / "faq_questions.yaml"
    faq.write_text(faq.read_text().replace("name: waterproof", "name: rainproof"))
    play("--shard", "2/2", "-k", "product_faq::*", db="b.db")
    output = refusal("a.db", "b.db", "--into", "all.db")
    assert "a.db and b.db hold shards of different plans" in output


def test_a_different_split_is_refused(example):
    play("--shard", "1/2", "-k", "product_faq::*", db="a.db")
    play("--shard", "2/3", "-k", "product_faq::*", db="b.db")
    assert "a.db holds shard 1/2 but b.db shard 2/3" in refusal("a.db", "b.db", "--into", "all.db")


def test_a_shard_given_twice_is_refused(example):
    for db in ("a.db", "b.db"):
        play("--shard", "1/2", "-k", "product_faq::*", db=db)
    play("--shard", "2/2", "-k", "product_faq::*", db="c.db")
    output = refusal("a.db", "b.db", "c.db", "--into", "all.db")
    assert "a.db and b.db both hold shard 1/2" in output
    assert "a.db is given twice" in refusal("a.db", "a.db", "--into", "all.db")


def test_missing_shards_are_listed(example):
    play("--shard", "2/4", "-k", "product_faq::*", db="b.db")
    assert "shards 1/4, 3/4, 4/4 of this plan are missing" in refusal("b.db", "--into", "all.db")


def test_merging_into_a_source_is_refused(example):
    shards = play_shards(2, "-k", "product_faq::*")
    before = db_rows(shards[1], "select count(*) from runs")
    with pytest.raises(ConfigError, match="one of the databases being merged"):
        merge_runs(shards, shards[1])
    assert db_rows(shards[1], "select count(*) from runs") == before


def test_a_running_shard_and_a_file_without_shards_are_refused(example):
    shards = play_shards(2, "-k", "product_faq::*")
    db_rows(shards[0], "update runs set status = 'running'")
    assert "shard 1/2 in shard1.db" in refusal(*map(str, shards), "--into", "all.db")
    assert "still running" in refusal(*map(str, shards), "--into", "all.db")
    play("-k", "product_faq::*", db="whole.db")
    assert "whole.db holds no sharded run" in refusal("whole.db", "--into", "all.db")
    assert "no results database at nowhere.db" in refusal("nowhere.db", "--into", "all.db")
    assert not Path("nowhere.db").exists()


def test_the_latest_sharded_run_of_a_database_is_merged(example):
    shards = play_shards(2, "-k", "product_faq::*")
    play("--shard", "1/2", "-k", "product_faq::*", db=str(shards[0]))  # played again
    latest = db_rows(shards[0], "select id from runs order by started_at desc, rowid desc")[0][0]
    run = merge_runs(shards, Path("all.db"))
    assert run.options["merged_from"][0] == latest


def test_the_merged_status_is_the_worst_of_the_shards(example):
    shards = play_shards(3, "-k", "product_faq::*")
    db_rows(shards[1], "update runs set status = 'budget'")
    db_rows(shards[2], "update runs set status = 'interrupted'")
    assert merge_runs(shards, Path("a.db")).status == "interrupted"
    db_rows(shards[0], "update runs set status = 'failed'")
    assert merge_runs(shards, Path("b.db")).status == "failed"
