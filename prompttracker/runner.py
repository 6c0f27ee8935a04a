"""PromptVersionRunner: the only runner. Render, open a session, simulate, evaluate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prompttracker.config.loader import Project
from prompttracker.config.models import (
    Dataset,
    DatasetRow,
    ModelConfig,
    Prompt,
    PromptVersion,
    Test,
)
from prompttracker.conversation import simulate
from prompttracker.errors import LLMCallError
from prompttracker.evaluators.base import EvaluationContext
from prompttracker.evaluators.registry import run_evaluators
from prompttracker.hashing import short_id
from prompttracker.interlocutor import LLMInterlocutor, review
from prompttracker.llm.base import SessionOptions
from prompttracker.llm.call_layer import CallLayer
from prompttracker.llm.router import effective_config, open_session
from prompttracker.messages import ConversationResult
from prompttracker.progress import step
from prompttracker.results import EvaluationResult, TestRunOutcome, TestStatus, repeat_suffix
from prompttracker.store.rows import version_hash
from prompttracker.templating import render


@dataclass(frozen=True)
class PlannedRun:
    """One test × prompt version × dataset row, before it runs."""

    prompt_slug: str
    prompt: Prompt
    test: Test
    version: PromptVersion
    dataset_name: str
    dataset: Dataset
    row: DatasetRow
    repeat: int = 0  # which play of the row (0 first) …
    repeats: int = 1  # … out of how many
    version_hash: str = ""  # the content hash of ``version`` (``store.rows.version_hash``)

    @property
    def row_key(self) -> str:
        """The test × version content × row, the same on every machine: shards keep a row's
        repeats together by it."""
        return short_id(
            self.prompt_slug, self.test.name, self.version_hash, self.dataset_name, self.row.name
        )

    @property
    def key(self) -> str:
        """This planned test run's identity, the same on every machine and in every run of the
        same files: resume, shards and cassettes find it by this key."""
        return short_id(self.row_key, str(self.repeat))

    @property
    def label(self) -> str:
        return (
            f"{self.prompt_slug}::{self.test.name} v{self.version.version} [{self.row.name}]"
            + repeat_suffix(self.repeat, self.repeats)
        )

    def __repr__(self) -> str:  # the whole prompt and dataset would be in the default one
        return f"PlannedRun({self.label!r})"


class PromptVersionRunner:
    """Plays one planned run end to end and returns its outcome; never raises for API errors.

    Every call it makes — the session, the simulated user, the judges — goes through ``calls``.
    A conversation the simulated user made invalid is played again, up to ``regenerate_invalid``
    more times; the outcome keeps why each discarded play was invalid (``regenerated``).
    """

    def __init__(
        self,
        project: Project,
        calls: CallLayer,
        *,
        mock: bool = False,
        regenerate_invalid: int = 0,
    ) -> None:
        self.project = project
        self.settings = project.settings
        self.calls = calls
        self.mock = mock
        self.regenerate_invalid = regenerate_invalid

    async def run(self, planned: PlannedRun) -> TestRunOutcome:
        started = datetime.now(UTC)
        version, row = planned.version, planned.row
        variables = {**version.variables, **row.variables}
        config = effective_config(version.model_config_, mock=self.mock)
        outcome = {
            "test_name": planned.test.name,
            "prompt_slug": planned.prompt_slug,
            "prompt_name": planned.prompt.name,
            "version": version.version,
            "version_hash": planned.version_hash or version_hash(planned.prompt_slug, version),
            "plan_key": planned.key,
            "dataset": planned.dataset_name,
            "row_name": row.name,
            "repeat": planned.repeat,
            "repeats": planned.repeats,
            "variables": variables,
            "model_config": config,
            "mock": self.mock,
            "started_at": started,
        }
        system_prompt = render(version.system_prompt, variables)
        user_prompt = render(version.user_prompt, variables)
        outcome |= {"system_prompt": system_prompt, "user_prompt": user_prompt}
        regenerated: list[str] = []
        with self.calls.metering() as meter, self.calls.cassette(planned):
            for attempt in range(self.regenerate_invalid + 1):
                played = await self._play(planned, config, system_prompt, user_prompt, attempt)
                if played["status"] != "invalid" or attempt == self.regenerate_invalid:
                    break
                regenerated.append(played["error"])
        return TestRunOutcome(
            **outcome,
            **played,
            regenerated=tuple(regenerated),
            metered=meter.by_caller,
            cost_usd=meter.total.cost_usd,
            finished_at=datetime.now(UTC),
        )

    async def _play(
        self,
        planned: PlannedRun,
        config: ModelConfig,
        system_prompt: str,
        user_prompt: str,
        attempt: int = 0,
    ) -> dict[str, Any]:
        """The conversation (its ``attempt``-th play) and its evaluations, with the status they
        give. An invalid conversation is not scored: its scores would say nothing."""
        row = planned.row

        conversational = planned.dataset.mode == "conversational"
        interlocutor = (
            LLMInterlocutor(
                row.interlocutor_simulation_prompt or "",
                effective_config(self.settings.interlocutor, mock=self.mock),
                self.settings,
                self.calls,
                sample=attempt,
            )
            if conversational
            else None
        )
        session = open_session(
            config,
            self.settings,
            SessionOptions(
                system_prompt=system_prompt,
                function_outputs=row.mock_function_outputs,
                calls=self.calls,
                sample=planned.repeat,
            ),
        )
        try:
            conversation = await simulate(
                session, interlocutor, user_prompt, row.max_turns if conversational else 1
            )
        finally:
            await session.aclose()
        judge_config = effective_config(self.settings.judge, mock=self.mock)
        if interlocutor is not None and self.settings.simulator_check:
            conversation = await self._reviewed(conversation, row, judge_config)

        evaluations: list[EvaluationResult] = []
        if conversation.error is None and conversation.invalid is None:
            ctx = EvaluationContext(
                conversation=conversation,
                row=row,
                system_prompt=system_prompt,
                model_config=config,
                judge_config=judge_config,
                settings=self.settings,
                calls=self.calls,
            )
            step(scoring=True)
            evaluations = await run_evaluators(planned.test.evaluators, ctx)
        status, error = status_of(conversation.error, evaluations, conversation.invalid)
        return {
            "status": status,
            "error": error,
            "conversation": conversation,
            "evaluations": tuple(evaluations),
        }

    async def _reviewed(
        self, conversation: ConversationResult, row: DatasetRow, judge: ModelConfig
    ) -> ConversationResult:
        """The conversation with the LLM simulator check's verdict (settings
        ``simulator_check``), when the deterministic checks passed it and it ended without an
        error; invalid when the check found the simulated user broke down."""
        if conversation.error is not None or conversation.invalid is not None:
            return conversation
        step(scoring=True)
        persona = row.interlocutor_simulation_prompt or ""
        try:
            verdict = await review(conversation, persona, judge, self.settings, self.calls)
        except LLMCallError as exc:
            return conversation.model_copy(update={"error": str(exc), "completed": False})
        metadata = {**conversation.metadata, "simulator_check": verdict}
        if "invalid" in verdict:
            metadata["invalid"] = {"by": "simulator check", "reason": verdict["invalid"]}
        return conversation.model_copy(update={"metadata": metadata})


def status_of(
    conversation_error: str | None,
    evaluations: list[EvaluationResult],
    invalid: str | None = None,
) -> tuple[TestStatus, str | None]:
    """The test run's status and why, the first that applies: ``error`` (an API error, an
    evaluator that raised), ``invalid`` (the simulated user broke the conversation), ``failed``,
    ``inconclusive`` (an evaluator could not decide), ``passed``. Neither an error nor an
    invalid conversation is a prompt failure; a definite failure beats an undecided judge."""
    if conversation_error:
        return "error", conversation_error
    if invalid:
        return "invalid", invalid
    errored = [e for e in evaluations if e.error]
    if errored:
        return "error", "; ".join(f"evaluator {e.evaluator} raised: {e.error}" for e in errored)
    if any(e.status == "failed" for e in evaluations):
        return "failed", None
    undecided = [e for e in evaluations if e.inconclusive]
    if undecided:
        return "inconclusive", "; ".join(
            f"evaluator {e.evaluator} could not decide: {e.inconclusive}" for e in undecided
        )
    return "passed", None
