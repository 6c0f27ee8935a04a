"""The results database schema, as append-only named migrations.

Never edit a migration that has shipped: add ``m002_...`` below it instead. sqlite-utils records
applied names in ``_sqlite_migrations``, so applying twice is a no-op.

JSON columns are TEXT holding JSON; timestamps are ISO-8601 UTC strings.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("prompttracker")


@migrations()
def m001_initial(db: Database) -> None:
    """Runs, prompt-version snapshots, test runs, their conversations, messages, evaluations."""
    db.table("runs").create(
        {
            "id": str,
            "started_at": str,
            "finished_at": str,
            "status": str,  # running | completed | interrupted | failed
            "mock": int,
            "project_root": str,
            "options": str,  # JSON
            "total": int,
            "passed": int,
            "failed": int,
            "errored": int,
        },
        pk="id",
        not_null=["started_at", "status"],
    )
    db.table("prompt_versions").create(
        {
            "hash": str,  # sha256 of the canonical JSON of the version's content
            "prompt_slug": str,
            "prompt_name": str,
            "version": int,
            "system_prompt": str,  # the template, not a rendering
            "user_prompt": str,
            "variables": str,  # JSON
            "model_config": str,  # JSON
            "first_seen_at": str,
        },
        pk="hash",
        not_null=["prompt_slug", "version"],
    )
    db.table("test_runs").create(
        {
            "id": str,
            "run_id": str,
            "prompt_version_hash": str,
            "test_name": str,
            "prompt_slug": str,
            "version": int,
            "dataset": str,
            "row_name": str,
            "variables": str,  # JSON
            "model_config": str,  # JSON: the config that actually ran (--mock swaps it)
            "status": str,  # passed | failed | error
            "error": str,
            "started_at": str,
            "finished_at": str,
            "duration_ms": float,
            "score": float,
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
            "mock": int,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("prompt_version_hash", "prompt_versions", "hash")],
        not_null=["run_id", "status"],
    )
    db.table("llm_responses").create(
        {
            "id": int,
            "test_run_id": str,
            "provider": str,
            "api": str,
            "model": str,
            "rendered_system_prompt": str,
            "rendered_user_prompt": str,
            "response_text": str,  # the final assistant message
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
            "latency_ms": float,  # summed over the assistant turns
            "metadata": str,  # JSON: conversation_messages, turn_count, stop_reason, thread_id…
        },
        pk="id",
        foreign_keys=[("test_run_id", "test_runs", "id")],
        not_null=["test_run_id"],
    )
    db.table("messages").create(
        {
            "id": int,
            "test_run_id": str,
            "position": int,
            "turn": int,
            "role": str,
            "content": str,
            "response_id": str,
            "input_tokens": int,
            "output_tokens": int,
            "latency_ms": float,
            "tool_calls": str,  # JSON list
        },
        pk="id",
        foreign_keys=[("test_run_id", "test_runs", "id")],
        not_null=["test_run_id", "position", "role"],
    )
    db.table("evaluations").create(
        {
            "id": int,
            "test_run_id": str,
            "position": int,
            "evaluator": str,
            "type": str,
            "score": float,
            "passed": int,
            "feedback": str,
            "details": str,  # JSON
            "error": str,
        },
        pk="id",
        foreign_keys=[("test_run_id", "test_runs", "id")],
        not_null=["test_run_id", "position", "evaluator"],
    )
    db.table("runs").create_index(["started_at"])
    db.table("test_runs").create_index(["run_id"])
    db.table("test_runs").create_index(["prompt_version_hash"])
    db.table("llm_responses").create_index(["test_run_id"])
    db.table("messages").create_index(["test_run_id", "position"])
    db.table("evaluations").create_index(["test_run_id", "position"])


@migrations()
def m002_repeats_and_metering(db: Database) -> None:
    """Repeats, every call's tokens and cost by caller, evaluator configs, price sources.

    From here on ``test_runs.input_tokens``/``output_tokens``/``cost_usd`` count every call of
    the test run (the prompt under test, the simulated user, the judges), and ``usage`` holds
    them by caller; ``llm_responses`` keeps the prompt under test's alone. ``cost_usd`` is NULL
    when a call's price is unknown. Rows written before this migration counted the prompt under
    test only, and have NULL ``usage``.
    """
    db.table("runs").add_column("pricing", str)  # JSON: price library version, overrides
    db.table("test_runs").add_column("repeat", int, not_null_default=0)
    db.table("test_runs").add_column("repeats", int, not_null_default=1)
    db.table("test_runs").add_column("usage", str)  # JSON: caller → calls, tokens, cost
    db.table("messages").add_column("cost_usd", float)
    db.table("evaluations").add_column("config", str)  # JSON: the config after defaults
    db.table("evaluations").add_column("input_tokens", int)
    db.table("evaluations").add_column("output_tokens", int)
    db.table("evaluations").add_column("cost_usd", float)


@migrations()
def m003_plans(db: Database) -> None:
    """What each run planned, so a run can be resumed and shards of one plan merged.

    ``runs.plan_hash`` identifies the whole plan (every shard of it shares the hash),
    ``runs.shard`` is ``I/N`` for a shard; ``run_plan`` lists the planned test runs of the run
    (a shard's own part) by their stable key, and ``test_runs.plan_key`` ties each finished
    test run to its line of the plan.
    """
    db.table("runs").add_column("plan_hash", str)
    db.table("runs").add_column("shard", str)
    db.table("test_runs").add_column("plan_key", str)
    db.table("run_plan").create(
        {"run_id": str, "position": int, "plan_key": str, "label": str},
        pk=("run_id", "position"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("test_runs").create_index(["run_id", "plan_key"])


@migrations()
def m004_undecided(db: Database) -> None:
    """Test runs that are neither passes nor prompt failures, and replayed conversations.

    ``test_runs.status`` may now be ``invalid`` (the simulated user broke the conversation) or
    ``inconclusive`` (a judge could not decide); ``runs`` counts both, ``evaluations
    .inconclusive`` says why a judge could not decide, and ``test_runs.regenerated`` lists (JSON)
    why each conversation that ``--regenerate-invalid`` played again was invalid.
    """
    db.table("runs").add_column("invalid", int, not_null_default=0)
    db.table("runs").add_column("inconclusive", int, not_null_default=0)
    db.table("evaluations").add_column("inconclusive", str)
    db.table("test_runs").add_column("regenerated", str)
