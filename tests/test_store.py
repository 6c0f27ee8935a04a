"""The results store: runs round-trip through SQLite and survive interruption."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from prompttracker.config.models import ModelConfig, PromptVersion
from prompttracker.errors import ConfigError
from prompttracker.messages import ConversationResult, Message, ToolCall, Usage
from prompttracker.results import EvaluationResult, TestRunOutcome
from prompttracker.store import Store, migrations, version_hash

T0 = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
CONFIG = {
    "provider": "openai",
    "api": "responses",
    "model": "gpt-4o-mini",
    "temperature": 0.3,
    "tools": ["file_search"],
    "tool_config": {"file_search": {"vector_store_ids": ["vs_abc123"]}},
}


def make_version(number: int = 2, system_prompt: str = "You help {{ company }}.") -> PromptVersion:
    return PromptVersion.model_validate(
        {
            "version": number,
            "status": "active",
            "system_prompt": system_prompt,
            "user_prompt": "{{ opening_message }}",
            "variables": {"company": "Acme"},
            "model_config": CONFIG,
        }
    )


def make_conversation(turns: int = 2) -> ConversationResult:
    """A multi-turn conversation whose assistant turns carry usage, latency and tool calls."""
    messages: list[Message] = []
    for turn in range(1, turns + 1):
        messages.append(Message(role="user", content=f"user says {turn}", turn=turn))
        messages.append(
            Message(
                role="assistant",
                content=f"assistant answers {turn} — refund ✓",
                turn=turn,
                response_id=f"resp_{turn}",
                usage=Usage(input_tokens=100 * turn, output_tokens=20 * turn),
                latency_ms=150.5 * turn,
                tool_calls=(
                    ToolCall(
                        id=f"call_{turn}",
                        name="lookup_order",
                        arguments={"order_id": "12345"},
                        output={"status": "charged_twice"},
                    ),
                    ToolCall(
                        id=f"fs_{turn}",
                        type="file_search",
                        name="file_search",
                        arguments={"queries": ["refund policy"]},
                        output=[{"file_id": "file-1", "score": 0.9}],
                    ),
                ),
            )
        )
    return ConversationResult(
        messages=tuple(messages),
        turn_count=turns,
        completed=True,
        stop_reason="interlocutor_ended",
        response_ids=tuple(f"resp_{t}" for t in range(1, turns + 1)),
        conversation_mode="previous_response_id",
        metadata={"thread_id": "thread_abc", "file_search_results": [{"file_id": "file-1"}]},
    )


def make_outcome(
    row_name: str = "angry double charge",
    *,
    status: str = "passed",
    version: PromptVersion | None = None,
    conversation: ConversationResult | str | None = "default",
    evaluations: tuple[EvaluationResult, ...] | None = None,
    error: str | None = None,
) -> TestRunOutcome:
    version = version or make_version()
    if conversation == "default":
        conversation = make_conversation()
    if evaluations is None:
        evaluations = (
            EvaluationResult(evaluator="keyword", type="keyword", score=100, passed=True),
            EvaluationResult(
                evaluator="judge",
                type="conversation_judge",
                score=72.5,
                passed=status == "passed",
                feedback="Resolved the double charge.",
                details={"judge_model": "gpt-4o-mini", "prompt": "Does it resolve?"},
            ),
            EvaluationResult(
                evaluator="broken",
                type="pattern_match",
                score=0,
                passed=False,
                error="ValueError: bad regex",
            ),
        )
    return TestRunOutcome(
        test_name="double charge is refunded",
        prompt_slug="billing",
        prompt_name="Billing support",
        version=version.version,
        version_hash=version_hash("billing", version),
        dataset="billing_conversations",
        row_name=row_name,
        variables={"company": "Acme", "opening_message": "I've been double-charged!"},
        model_config=version.model_config_,
        system_prompt="You help Acme.",
        user_prompt="I've been double-charged!",
        status=status,
        error=error,
        conversation=conversation,
        evaluations=evaluations,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3, milliseconds=125),
        cost_usd=0.0042,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / ".prompttracker" / "results.db"


def test_run_round_trips(db_path: Path) -> None:
    first = make_outcome("angry double charge")
    second = make_outcome("calm customer", status="failed")
    with Store(db_path) as store:
        run = store.start_run(mock=False, project_root="/proj", options={"concurrency": 4})
        assert run.status == "running" and run.total == 0
        for outcome in (first, second):
            store.record_test_run(run.id, outcome, version=make_version())
        finished = store.finish_run(run.id, "completed")
        loaded = store.load_outcomes(run.id)

    assert loaded == [first, second]
    assert loaded[0].conversation and loaded[0].conversation.messages[1].tool_calls[1].output == [
        {"file_id": "file-1", "score": 0.9}
    ]
    assert loaded[1].evaluations[2].status == "error"
    assert (finished.status, finished.total, finished.passed, finished.failed) == (
        "completed",
        2,
        1,
        1,
    )
    assert finished.errored == 0
    assert finished.finished_at is not None and finished.finished_at >= finished.started_at
    assert finished.options == {"concurrency": 4} and finished.project_root == "/proj"


def test_outcome_without_conversation_round_trips(db_path: Path) -> None:
    errored = make_outcome(
        status="error", conversation=None, evaluations=(), error="missing variable 'company'"
    )
    with Store(db_path) as store:
        run = store.start_run(mock=True, project_root="/proj", options={})
        store.record_test_run(run.id, errored)
        finished = store.finish_run(run.id, "completed")
        assert store.load_outcomes(run.id) == [errored]
        assert store.db["messages"].count == 0
    assert (finished.total, finished.errored, finished.mock) == (1, 1, True)


def test_rows_are_queryable(db_path: Path) -> None:
    with Store(db_path) as store:
        run = store.start_run(mock=False, project_root="/proj", options={})
        test_run_id = store.record_test_run(run.id, make_outcome())
        test_run = store.db["test_runs"].get(test_run_id)
        messages = list(store.db["messages"].rows_where("test_run_id = ?", [test_run_id]))
        evaluations = list(store.db["evaluations"].rows_where("test_run_id = ?", [test_run_id]))
        response = next(store.db["llm_responses"].rows_where("test_run_id = ?", [test_run_id]))
        started_at = store.db["runs"].get(run.id)["started_at"]

    assert test_run["run_id"] == run.id
    assert (test_run["input_tokens"], test_run["output_tokens"]) == (300, 60)
    assert test_run["duration_ms"] == pytest.approx(3125)
    assert test_run["score"] == pytest.approx((100 + 72.5) / 2)  # the errored one is left out
    assert test_run["started_at"] == "2026-03-01T12:00:00.250000+00:00"
    assert started_at.endswith("+00:00")
    assert [(m["position"], m["turn"], m["role"]) for m in messages] == [
        (0, 1, "user"),
        (1, 1, "assistant"),
        (2, 2, "user"),
        (3, 2, "assistant"),
    ]
    assert messages[0]["input_tokens"] is None
    assert json.loads(messages[3]["tool_calls"])[0]["arguments"] == {"order_id": "12345"}
    assert [e["error"] for e in evaluations] == [None, None, "ValueError: bad regex"]
    assert (response["provider"], response["api"], response["model"]) == (
        "openai",
        "responses",
        "gpt-4o-mini",
    )
    assert response["response_text"] == "assistant answers 2 — refund ✓"
    assert response["latency_ms"] == pytest.approx(150.5 + 301)


def test_llm_response_metadata_holds_the_conversation(db_path: Path) -> None:
    with Store(db_path) as store:
        run = store.start_run(mock=False, project_root="/proj", options={})
        test_run_id = store.record_test_run(run.id, make_outcome())
        row = next(store.db["llm_responses"].rows_where("test_run_id = ?", [test_run_id]))
    metadata = json.loads(row["metadata"])

    assert len(metadata["conversation_messages"]) == 4
    assert metadata["conversation_messages"][1]["usage"] == {
        "input_tokens": 100,
        "output_tokens": 20,
    }
    assert metadata["turn_count"] == 2
    assert metadata["response_ids"] == ["resp_1", "resp_2"]
    assert metadata["conversation_mode"] == "previous_response_id"
    assert metadata["stop_reason"] == "interlocutor_ended"
    assert metadata["thread_id"] == "thread_abc"
    assert metadata["file_search_results"] == [{"file_id": "file-1"}]


def test_conversation_metadata_colliding_with_store_keys_is_kept(db_path: Path) -> None:
    conversation = make_conversation().model_copy(update={"metadata": {"turn_count": "theirs"}})
    outcome = make_outcome(conversation=conversation)
    with Store(db_path) as store:
        run = store.start_run(mock=False, project_root="/proj", options={})
        store.record_test_run(run.id, outcome)
        assert store.load_outcomes(run.id) == [outcome]


def test_migrations_are_idempotent_and_listed(db_path: Path) -> None:
    with Store(db_path) as store:
        run = store.start_run(mock=False, project_root="/proj", options={})
        store.record_test_run(run.id, make_outcome())
    with Store(db_path) as store:
        applied = [m.name for m in migrations.applied(store.db)]
        rows = list(store.db.query("select migration_set, name from _sqlite_migrations"))
        assert store.get_run(run.id).total == 1
        tables = set(store.db.table_names())
    names = ["m001_initial", "m002_repeats_and_metering", "m003_plans", "m004_undecided"]
    assert applied == names
    assert rows == [{"migration_set": "prompttracker", "name": name} for name in names]
    assert {"runs", "prompt_versions", "test_runs", "llm_responses", "messages", "evaluations"} <= (
        tables
    )


def test_interrupted_run_keeps_its_finished_rows(db_path: Path) -> None:
    store = Store(db_path)
    run = store.start_run(mock=False, project_root="/proj", options={})
    store.record_test_run(run.id, make_outcome())
    store.finish_run(run.id, "interrupted")
    store.close()

    with Store(db_path) as reopened:
        record = reopened.get_run(run.id)
        outcomes = reopened.load_outcomes(run.id)
        message_count = reopened.db["messages"].count
    assert (record.status, record.total, record.passed) == ("interrupted", 1, 1)
    assert len(outcomes) == 1
    assert outcomes[0].conversation and len(outcomes[0].conversation.messages) == 4
    assert message_count == 4


def test_a_killed_run_still_counts_what_it_finished(db_path: Path) -> None:
    store = Store(db_path)
    run = store.start_run(mock=False, project_root="/proj", options={})
    store.record_test_run(run.id, make_outcome(status="failed"))
    store.close()  # no finish_run: the process died

    with Store(db_path) as reopened:
        record = reopened.get_run(run.id)
    assert (record.status, record.total, record.failed) == ("running", 1, 1)


def test_prompt_versions_dedupe_identical_snapshots(db_path: Path) -> None:
    with Store(db_path) as store:
        run = store.start_run(mock=False, project_root="/proj", options={})
        for name in ("a", "b", "c"):
            store.record_test_run(run.id, make_outcome(name), version=make_version())
        changed = make_version(system_prompt="You help {{ company }} politely.")
        store.record_test_run(run.id, make_outcome("d", version=changed), version=changed)
        rows = list(store.db.query("select * from prompt_versions order by length(system_prompt)"))
        hashes = [r["prompt_version_hash"] for r in store.db["test_runs"].rows]

    assert len(rows) == 2
    assert rows[0]["system_prompt"] == "You help {{ company }}."
    assert json.loads(rows[0]["variables"]) == {"company": "Acme"}
    stored = ModelConfig.model_validate(json.loads(rows[0]["model_config"]))
    assert stored == ModelConfig.model_validate(CONFIG)
    assert stored.tool_config.file_search.vector_store_ids == ["vs_abc123"]
    assert len(set(hashes)) == 2 and hashes.count(version_hash("billing", make_version())) == 3


def test_version_hash_tracks_content_not_status() -> None:
    version = make_version()
    assert version_hash("billing", version) == version_hash("billing", make_version())
    assert len(version_hash("billing", version)) == 64
    promoted = version.model_copy(update={"status": "deprecated", "notes": "old"})
    assert version_hash("billing", promoted) == version_hash("billing", version)
    assert version_hash("other", version) != version_hash("billing", version)
    assert version_hash("billing", make_version(3)) != version_hash("billing", version)
    hotter = version.model_copy(
        update={"model_config_": ModelConfig.model_validate({**CONFIG, "temperature": 0.9})}
    )
    assert version_hash("billing", hotter) != version_hash("billing", version)


def test_unknown_run_id_is_a_config_error(db_path: Path) -> None:
    with Store(db_path) as store:
        with pytest.raises(ConfigError) as excinfo:
            store.get_run("run-does-not-exist")
        assert "run-does-not-exist" in excinfo.value.message
        assert excinfo.value.hint and "pt runs list" in excinfo.value.hint
        with pytest.raises(ConfigError):
            store.load_outcomes("nope")
        with pytest.raises(ConfigError):
            store.record_test_run("nope", make_outcome())
        with pytest.raises(ConfigError):
            store.get_run("")


def test_run_id_prefixes(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suffixes = iter(["aaa111", "aaa222"])
    # Replace the module's view of ``secrets`` only: sqlite-utils uses token_hex for savepoints.
    fake_secrets = SimpleNamespace(token_hex=lambda n: next(suffixes))
    monkeypatch.setattr("prompttracker.store.store.secrets", fake_secrets)
    with Store(db_path) as store:
        first = store.start_run(mock=False, project_root="/proj", options={})
        second = store.start_run(mock=False, project_root="/proj", options={})
        assert first.id.endswith("-aaa111") and second.id.endswith("-aaa222")
        assert store.get_run(first.id[:-2]).id == first.id
        assert store.get_run(second.id[:-1]).id == second.id
        assert [o for o in store.load_outcomes(first.id[:-1])] == []
        with pytest.raises(ConfigError, match="matches 2 runs") as excinfo:
            store.get_run(first.id[:-3])
        assert excinfo.value.hint and "pt runs list" in excinfo.value.hint


def test_list_runs_newest_first(db_path: Path) -> None:
    with Store(db_path) as store:
        ids = [store.start_run(mock=False, project_root="/p", options={}).id for _ in range(3)]
        listed = [r.id for r in store.list_runs()]
        limited = store.list_runs(limit=2)
    assert listed == list(reversed(ids))
    assert [r.id for r in limited] == list(reversed(ids))[:2]
    assert all(
        r.id.startswith("run-") and len(r.id) == len("run-20260301-120000-abcdef") for r in limited
    )


def test_no_api_key_reaches_the_database(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-never-stored")
    with Store(db_path) as store:
        run = store.start_run(mock=False, project_root="/proj", options={"mock": False})
        store.record_test_run(run.id, make_outcome(), version=make_version())
        store.finish_run(run.id, "completed")
    assert b"sk-test-SECRET" not in db_path.read_bytes()


def test_a_database_from_before_metering_upgrades_and_reads_back(db_path: Path) -> None:
    """A results file written by the first schema gains the new columns; its rows read back
    with no usage by caller (it was not recorded then) and count as a single play."""
    from sqlite_utils import Database

    db_path.parent.mkdir(parents=True)
    old = Database(db_path)
    migrations.apply(old, stop_before="m002_repeats_and_metering")
    old["runs"].insert(
        {"id": "run-old", "started_at": "2026-11-01T10:00:00+00:00", "status": "completed"}
    )
    old["prompt_versions"].insert({"hash": "h1", "prompt_slug": "billing", "version": 1})
    old["test_runs"].insert(
        {
            "id": "tr-old",
            "run_id": "run-old",
            "prompt_version_hash": "h1",
            "test_name": "refunds",
            "prompt_slug": "billing",
            "version": 1,
            "dataset": "billing",
            "row_name": "row 1",
            "variables": "{}",
            "model_config": '{"provider": "mock", "api": "chat_completions", "model": "m"}',
            "status": "passed",
            "started_at": "2026-11-01T10:00:00+00:00",
            "finished_at": "2026-11-01T10:00:01+00:00",
            "duration_ms": 1000.0,
            "input_tokens": 12,
            "output_tokens": 3,
            "mock": 1,
        }
    )
    old.close()

    with Store(db_path) as store:
        (outcome,) = store.load_outcomes("run-old")
        (summary,) = store.load_summaries("run-old")
    assert (outcome.repeat, outcome.repeats, outcome.metered, outcome.cost_usd) == (0, 1, {}, None)
    assert (summary.status, summary.total_tokens, summary.metered) == ("passed", 15, {})


def test_pts_own_results_folder_is_ignored_by_git(tmp_path: Path) -> None:
    with Store(tmp_path / ".prompttracker" / "results.db"):
        pass
    assert (tmp_path / ".prompttracker" / ".gitignore").read_text().splitlines()[-1] == "*"
    with Store(tmp_path / "elsewhere" / "results.db"):  # a folder of the user's: left alone
        pass
    assert not (tmp_path / "elsewhere" / ".gitignore").exists()
