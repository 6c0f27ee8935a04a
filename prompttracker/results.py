"""Results of a run, as values: one evaluation, one test run, one whole run.

The engine produces them, the store persists and reloads them, reports render them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import CISettings
from prompttracker.messages import ConversationResult, Metered, Usage, Value, metered_total

# ``invalid``: the simulated user broke down (``simulator_checks``), so the conversation says
# nothing about the prompt; ``inconclusive``: a judge could not decide (votes disagreed, or an
# answer could not be read). Neither is a pass or a prompt failure; ``CISettings`` decides
# whether they fail the gate.
TestStatus = Literal["passed", "failed", "error", "invalid", "inconclusive"]
# The order reports list them in.
REPORT_ORDER: tuple[TestStatus, ...] = ("passed", "failed", "error", "invalid", "inconclusive")
# The statuses that are neither a pass nor a prompt failure (nor an error).
UNDECIDED: tuple[TestStatus, ...] = ("invalid", "inconclusive")
# ``budget``: stopped by --max-cost before every planned test run was played.
RunStatus = Literal["running", "completed", "interrupted", "failed", "budget"]


class EvaluationResult(Value):
    """One evaluator's verdict on one conversation. ``error`` set means the evaluator raised;
    ``inconclusive`` set (why) means it could not decide: neither passed nor failed."""

    evaluator: str  # the spec's label (name or type)
    type: str
    score: float = Field(ge=0, le=100)
    passed: bool
    feedback: str = ""
    details: dict[str, Any] = Field(default_factory=dict)  # judge model, prompt, raw answer…
    error: str | None = None
    inconclusive: str | None = None
    # The evaluator's config after defaults (with its turn and role), to reproduce the verdict.
    config: dict[str, Any] = Field(default_factory=dict)
    usage: Usage | None = None  # the LLM calls it made (judges), None when it made none
    cost_usd: float | None = None

    @property
    def status(self) -> TestStatus:
        if self.error:
            return "error"
        if self.inconclusive:
            return "inconclusive"
        return "passed" if self.passed else "failed"

    @property
    def decided(self) -> bool:
        """Whether its score counts: it neither raised nor abstained."""
        return not (self.error or self.inconclusive)


class TestRunOutcome(Value):
    """One test × prompt version × dataset row, played and scored."""

    __test__ = False  # not a pytest class

    test_name: str
    prompt_slug: str
    prompt_name: str
    version: int
    version_hash: str = ""
    plan_key: str = ""  # the planned test run's stable identity (``PlannedRun.key``)
    dataset: str
    row_name: str
    repeat: int = 0  # which play of the row (0 first), out of ``repeats``
    repeats: int = 1
    variables: dict[str, Any] = Field(default_factory=dict)
    model_config_: ModelConfig = Field(alias="model_config")
    system_prompt: str = ""  # rendered
    user_prompt: str = ""  # rendered
    status: TestStatus
    error: str | None = None
    conversation: ConversationResult | None = None
    evaluations: tuple[EvaluationResult, ...] = ()
    started_at: datetime
    finished_at: datetime
    mock: bool = False
    # Every call of the test run, by caller (assistant, simulated_user, judge), and its cost:
    # None when a call's price is unknown.
    metered: dict[str, Metered] = Field(default_factory=dict)
    cost_usd: float | None = None
    # Why each conversation played before this one was invalid (``--regenerate-invalid``).
    regenerated: tuple[str, ...] = ()

    model_config = ConfigDict(frozen=True, populate_by_name=True, protected_namespaces=())

    @property
    def duration_ms(self) -> float:
        return (self.finished_at - self.started_at).total_seconds() * 1000

    @property
    def usage(self) -> Usage:
        """The prompt under test's tokens (``metered`` has everyone's)."""
        return self.conversation.usage if self.conversation else Usage()

    @property
    def score(self) -> float | None:
        """Mean score of the evaluators that decided, or None."""
        scores = [e.score for e in self.evaluations if e.decided]
        return sum(scores) / len(scores) if scores else None

    @property
    def label(self) -> str:
        return label_of(self)

    @property
    def turn_count(self) -> int | None:
        return self.conversation.turn_count if self.conversation else None

    @property
    def total_tokens(self) -> int | None:
        """Every call's tokens (the prompt under test's, the simulated user's, the judges')."""
        if self.metered:
            return metered_total(self.metered).total_tokens
        return self.usage.total_tokens if self.conversation else None

    @property
    def scores(self) -> dict[str, float | None]:
        """Each evaluator's score by label (None when it errored or abstained)."""
        return {e.evaluator: e.score if e.decided else None for e in self.evaluations}

    def summary(self) -> TestRunSummary:
        """The line of the summary tables, without the conversation and evaluations."""
        return TestRunSummary(
            test_name=self.test_name,
            prompt_slug=self.prompt_slug,
            version=self.version,
            version_hash=self.version_hash,
            plan_key=self.plan_key,
            dataset=self.dataset,
            row_name=self.row_name,
            repeat=self.repeat,
            repeats=self.repeats,
            status=self.status,
            score=self.score,
            scores=self.scores,
            turn_count=self.turn_count,
            total_tokens=self.total_tokens,
            metered=self.metered,
            cost_usd=self.cost_usd,
            regenerated=self.regenerated,
            duration_ms=self.duration_ms,
            started_at=self.started_at,
            finished_at=self.finished_at,
            mock=self.mock,
        )


class TestRunSummary(Value):
    """What the summary tables show of one test run, and all a big run keeps of a passed one.

    It has the same names as ``TestRunOutcome`` for what both have, so reports take either.
    """

    __test__ = False  # not a pytest class

    test_name: str
    prompt_slug: str
    version: int
    version_hash: str = ""
    plan_key: str = ""
    dataset: str = ""
    row_name: str
    repeat: int = 0
    repeats: int = 1
    status: TestStatus
    score: float | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    turn_count: int | None = None
    total_tokens: int | None = None
    metered: dict[str, Metered] = Field(default_factory=dict)
    cost_usd: float | None = None
    regenerated: tuple[str, ...] = ()
    duration_ms: float
    started_at: datetime
    finished_at: datetime
    mock: bool = False

    @property
    def label(self) -> str:
        return label_of(self)


# A test run as the summary tables and JUnit see it: whole, or (passed, in a big run) its line.
TestRunRow = TestRunOutcome | TestRunSummary


def label_of(row: TestRunRow) -> str:
    """``slug::test v2 [row]``, with ``#3`` for the third play of a repeated row."""
    return f"{row.prompt_slug}::{row.test_name} v{row.version} [{row.row_name}]" + repeat_suffix(
        row.repeat, row.repeats
    )


def repeat_suffix(repeat: int, repeats: int) -> str:
    return f" #{repeat + 1}" if repeats > 1 else ""


class RunRecord(Value):
    """One ``pt run-tests`` invocation."""

    id: str
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus = "running"
    mock: bool = False
    project_root: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    pricing: dict[str, Any] = Field(default_factory=dict)  # price library version, overrides
    plan_hash: str | None = None  # the whole plan's identity (shards of one plan share it)
    shard: str | None = None  # "I/N" when the run played one shard of the plan
    total: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    invalid: int = 0
    inconclusive: int = 0


def status_counts(rows: Iterable[TestRunRow]) -> dict[TestStatus, int]:
    """How many test runs have each status: every status, in the order reports list them."""
    counts: dict[TestStatus, int] = dict.fromkeys(REPORT_ORDER, 0)
    for row in rows:
        counts[row.status] += 1
    return counts


def simulator_errors(rows: Iterable[TestRunRow]) -> tuple[int, int]:
    """``(invalid, conversations)``: how many of the conversations a simulated user played
    (those regenerated included) it made invalid. The simulator error rate is their ratio."""
    invalid = conversations = 0
    for row in rows:
        if "simulated_user" in row.metered or row.regenerated:
            conversations += 1 + len(row.regenerated)
            invalid += len(row.regenerated) + (row.status == "invalid")
    return invalid, conversations


def gate_passes(rows: Sequence[TestRunRow], ci: CISettings) -> bool:
    """Whether a run with these test runs passes CI: none failed or errored, none is invalid or
    inconclusive where ``ci`` says that fails, and at least one was decided (passed)."""
    counts = status_counts(rows)
    failing = ("failed", "error", *failing_statuses(ci))
    return counts["passed"] > 0 and not any(counts[status] for status in failing)


def failing_statuses(ci: CISettings) -> tuple[TestStatus, ...]:
    """The undecided statuses that ``ci`` makes fail the gate."""
    return tuple(status for status in UNDECIDED if getattr(ci, f"fail_on_{status}"))
