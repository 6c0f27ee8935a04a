"""Golden sets: transcripts labelled by people, to check the LLM judges against them.

A golden set is a folder of YAML files, one transcript each, with the verdict a person gives
it for each judge evaluator (``pass`` or ``fail``). ``check_golden_set`` validates every file
strictly, reporting every problem of every file at once before any call, then runs each judge
on its transcript through one call layer and measures how far it agrees with the people: the
share of verdicts it matches, and Cohen's kappa (agreement beyond chance).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, computed_field

from prompttracker.config.loader import (
    Problem,
    load_model,
    parse_yaml,
    project_root,
    raise_problems,
    relative,
    yaml_files,
)
from prompttracker.config.models import DatasetRow, EvaluatorSpec, ModelConfig, Strict
from prompttracker.config.settings import SETTINGS_FILE, Settings
from prompttracker.errors import RunStartError, did_you_mean
from prompttracker.evaluators import judges
from prompttracker.evaluators.base import EvaluationContext
from prompttracker.evaluators.registry import (
    evaluator_types,
    located_config_problems,
    run_evaluators,
)
from prompttracker.llm.call_layer import CallLayer
from prompttracker.llm.router import effective_config
from prompttracker.messages import ConversationResult, Message, Value
from prompttracker.results import EvaluationResult
from prompttracker.stats import cohens_kappa

DEFAULT_FOLDER = "golden"
JUDGE_TYPES = [cls.type for cls in judges.EVALUATORS]
# A golden transcript was written by a person: no version under test produced it. Evaluators
# do not read this; it only fills the context's field.
WRITTEN_BY_HAND = ModelConfig(provider="mock", model="golden transcript")

Label = Literal["pass", "fail"]


class GoldenMessage(Strict):
    """One message of a labelled transcript."""

    role: Literal["user", "assistant"]
    content: str


class GoldenVerdict(Strict):
    """The human verdict on one judge evaluator for the transcript."""

    evaluator: EvaluatorSpec
    expected: Label


class GoldenTranscript(Strict):
    """One golden file: a conversation and the verdicts a careful person gives it."""

    name: str = Field(min_length=1)
    system_prompt: str = ""
    conversation: list[GoldenMessage] = Field(min_length=1)
    verdicts: list[GoldenVerdict] = Field(min_length=1)

    def conversation_result(self) -> ConversationResult:
        """The conversation as evaluators receive it: turn N is the N-th user message and the
        answer to it."""
        messages, turn = [], 0
        for message in self.conversation:
            turn += message.role == "user"
            messages.append(Message(role=message.role, content=message.content, turn=turn))
        return ConversationResult(
            messages=tuple(messages),
            turn_count=sum(m.role == "assistant" for m in messages),
            completed=True,
            stop_reason="max_turns",
        )


@dataclass(frozen=True)
class GoldenFile:
    """A validated golden file: its name within the golden folder, and its transcript."""

    file: str
    transcript: GoldenTranscript


class VerdictCheck(Value):
    """One verdict: what the person said, what the judge said. An error or an inconclusive
    verdict never agrees."""

    file: str  # within the golden folder
    transcript: str
    evaluator: str  # the evaluator's label (its name, else its type)
    type: str
    expected: Label
    judged: Literal["pass", "fail", "error", "inconclusive"]
    score: float | None = None  # None when the evaluator errored
    feedback: str = ""
    error: str | None = None  # why it errored, or why it could not decide
    # With ``votes``: whether every vote on each judged message said the same pass or fail
    # (None with a single vote).
    unanimous: bool | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def agree(self) -> bool:
        return self.judged == self.expected


class JudgesCheck(Value):
    """Every verdict of a golden set, how far the judge agrees, and whether that is enough."""

    folder: str
    judge: str  # the judge setting's label (``mock (…)`` under --mock)
    mock: bool
    min_agreement: float
    min_kappa: float
    verdicts: tuple[VerdictCheck, ...]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def agreed(self) -> int:
        return sum(v.agree for v in self.verdicts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def agreement(self) -> float:
        """The share of verdicts where the judge's pass/fail is the person's."""
        return self.agreed / len(self.verdicts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def kappa(self) -> float:
        """Cohen's kappa of the person and the judge; an errored or inconclusive evaluation
        counts as the opposite of the person's verdict (a disagreement)."""
        flip = {"pass": "fail", "fail": "pass"}
        judged = [v.judged if v.judged in flip else flip[v.expected] for v in self.verdicts]
        return cohens_kappa(list(zip((v.expected for v in self.verdicts), judged, strict=True)))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def errors(self) -> int:
        return sum(v.judged == "error" for v in self.verdicts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def inconclusive(self) -> int:
        return sum(v.judged == "inconclusive" for v in self.verdicts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stability(self) -> float | None:
        """With votes: the share of verdicts whose votes were unanimous (None without)."""
        voted = [v.unanimous for v in self.verdicts if v.unanimous is not None]
        return sum(voted) / len(voted) if voted else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def shortfalls(self) -> list[str]:
        """Each threshold that is not met, and by how much; empty when both are."""
        missed = []
        if self.agreement < self.min_agreement:
            missed.append(
                f"agreement {100 * self.agreement:.1f}% is below min_agreement "
                f"{100 * self.min_agreement:.1f}% by "
                f"{100 * (self.min_agreement - self.agreement):.1f} points"
            )
        if self.kappa < self.min_kappa:
            missed.append(
                f"Cohen's kappa {self.kappa:.3f} is below min_kappa {self.min_kappa:.3f} by "
                f"{self.min_kappa - self.kappa:.3f}"
            )
        return missed

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return not self.shortfalls


def check_golden_set(project: Path | str, folder: Path | None, *, mock: bool) -> JudgesCheck:
    """``pt judges check``: load the settings and the golden set (``folder``, default
    ``golden/`` in the project), check the judge can be called, then judge every verdict.

    Raises ``ConfigError`` listing every problem of the settings and of every golden file, and
    ``RunStartError`` when the judge's key (unless ``mock``) or SDK is missing — both before
    any call.
    """
    root = project_root(project)
    folder = folder.resolve() if folder is not None else root / DEFAULT_FOLDER
    problems: list[Problem] = []
    settings = Settings()
    if (root / SETTINGS_FILE).exists():
        settings = load_model(root, root / SETTINGS_FILE, Settings, problems) or settings
    golden = _load_files(root, folder, problems)
    raise_problems(root, problems, "the golden set", "pt judges check")
    from prompttracker.engine import JUDGE_USER, check_routes

    check_routes(settings, [(settings.judge, JUDGE_USER)], mock=mock)
    return asyncio.run(judge_golden_set(golden, settings, mock=mock, folder=relative(root, folder)))


def _load_files(root: Path, folder: Path, problems: list[Problem]) -> list[GoldenFile]:
    shown = relative(root, folder)
    paths = yaml_files(folder)
    if not paths:
        what = "holds no .yaml files" if folder.is_dir() else "folder not found"
        fix = "write one YAML file per labelled transcript there, or name the folder: "
        problems.append(Problem(f"{shown}/", "", f"{what}; {fix}`pt judges check DIR`"))
    golden = []
    for path in paths:
        file = relative(root, path)
        transcript = load_model(root, path, GoldenTranscript, problems)
        if transcript is None:
            problems.extend(_salvaged_problems(file, path))
            continue
        found = _content_problems(
            file, transcript.conversation, [v.evaluator for v in transcript.verdicts]
        )
        problems.extend(found)
        if not found:
            golden.append(GoldenFile(path.name, transcript))
    return golden


def _content_problems(
    file: str,
    conversation: Sequence[GoldenMessage] | None,
    specs: Sequence[EvaluatorSpec | None],
) -> list[Problem]:
    """What the models alone do not check: the conversation's shape, and that every evaluator
    is a judge with a valid config that can find what it judges. ``None`` stands for a part
    that did not validate (reported already)."""
    problems = _conversation_problems(file, conversation) if conversation is not None else []
    turns = sum(m.role == "user" for m in conversation) if conversation is not None else None
    labels: dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec is None:
            continue
        at = ("verdicts", index, "evaluator")
        where = f"verdicts[{index}].evaluator ({spec.type})"
        for inner, message in _spec_problems(spec, turns):
            problems.append(Problem(file, where, message, (*at, *inner)))
        first = labels.setdefault(spec.label, index)
        if first != index:
            problems.append(
                Problem(
                    file,
                    where,
                    f"{spec.label!r} has a verdict already (verdicts[{first}]); one verdict per "
                    "evaluator: give each a distinct `name`",
                    (*at, "name") if spec.name else at,
                )
            )
    return problems


def _conversation_problems(file: str, conversation: Sequence[GoldenMessage]) -> list[Problem]:
    """Turn 1 is the first user message and its answer, as in every conversation pt plays: the
    user opens, the roles alternate, and there is an assistant message to judge."""
    problems, at = [], ("conversation",)
    # The first message out of place only: it shifts every later one.
    for index, message in enumerate(conversation):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.role != expected:
            text = (
                f"expected {expected} here: the user opens and the roles alternate (user, "
                "assistant, user, …), as in the conversations pt plays"
            )
            where = f"conversation[{index}].role"
            problems.append(Problem(file, where, text, (*at, index, "role")))
            break
    if conversation and not any(m.role == "assistant" for m in conversation):
        message = "has no assistant message to judge; add the assistant's answer"
        problems.append(Problem(file, "conversation", message, at))
    return problems


def _spec_problems(
    spec: EvaluatorSpec, turns: int | None
) -> list[tuple[tuple[str | int, ...], str]]:
    if spec.type not in JUDGE_TYPES:
        if spec.type in evaluator_types():
            reason = f"{spec.type!r} is not a judge"
        else:
            reason = f"unknown evaluator type {spec.type!r}" + did_you_mean(spec.type, JUDGE_TYPES)
        return [
            (
                ("type",),
                f"{reason}: a golden set checks the LLM judges ({', '.join(JUDGE_TYPES)}) "
                "against human verdicts; test the other evaluators with `pt run-tests`",
            )
        ]
    problems = located_config_problems(spec)
    if spec.turn is not None and turns is not None and spec.turn > turns:
        problems.append(
            (("turn",), f"turn {spec.turn} is not in the conversation, which has {turns} turn(s)")
        )
    return problems


def _salvaged_problems(file: str, path: Path) -> list[Problem]:
    """The content checks of a file that does not validate, on the parts that do on their own
    (the conversation, each evaluator), so that one pass reports them too."""
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except Exception:  # unreadable or not YAML: reported by the loader already
        return []
    if not isinstance(data, dict):
        return []
    try:
        conversation = TypeAdapter(list[GoldenMessage]).validate_python(data.get("conversation"))
    except ValidationError:
        conversation = None
    verdicts = data.get("verdicts")
    specs = [
        _valid_spec(raw.get("evaluator") if isinstance(raw, dict) else None)
        for raw in (verdicts if isinstance(verdicts, list) else [])
    ]
    return _content_problems(file, conversation, specs)


def _valid_spec(raw: Any) -> EvaluatorSpec | None:
    try:
        return EvaluatorSpec.model_validate(raw)
    except ValidationError:
        return None


async def judge_golden_set(
    golden: Sequence[GoldenFile], settings: Settings, *, mock: bool, folder: str
) -> JudgesCheck:
    """Run every verdict's judge on its transcript, all through one call layer (which caps
    the calls in flight), and compare with the human verdicts."""
    judge = effective_config(settings.judge, mock=mock)
    async with CallLayer(settings) as calls:
        checks = await asyncio.gather(
            *(
                _judge_one(entry, verdict, judge, settings, calls)
                for entry in golden
                for verdict in entry.transcript.verdicts
            )
        )
        refused = calls.refusals()
    if refused:  # every verdict errored on the key: nothing was learnt about the judge
        said = "; ".join(f"{provider} answered {text}" for provider, text in refused.items())
        envs = " and ".join(settings.api_key_env(provider) for provider in refused)
        raise RunStartError(
            f"the judge's API key was refused ({said})",
            hint=f"check {envs} (for a 403: the key's project and its access to the model), "
            "then run `pt judges check` again",
        )
    return JudgesCheck(
        folder=folder,
        judge=judge.label,
        mock=mock,
        min_agreement=settings.judges_check.min_agreement,
        min_kappa=settings.judges_check.min_kappa,
        verdicts=tuple(checks),
    )


async def _judge_one(
    entry: GoldenFile,
    verdict: GoldenVerdict,
    judge: ModelConfig,
    settings: Settings,
    calls: CallLayer,
) -> VerdictCheck:
    transcript = entry.transcript
    ctx = EvaluationContext(
        conversation=transcript.conversation_result(),
        row=DatasetRow(name=transcript.name),
        system_prompt=transcript.system_prompt,
        model_config=WRITTEN_BY_HAND,
        judge_config=judge,
        settings=settings,
        calls=calls,
    )
    (result,) = await run_evaluators([verdict.evaluator], ctx)
    judged = {"passed": "pass", "failed": "fail"}.get(result.status, result.status)
    return VerdictCheck(
        file=entry.file,
        transcript=transcript.name,
        evaluator=verdict.evaluator.label,
        type=verdict.evaluator.type,
        expected=verdict.expected,
        judged=judged,  # type: ignore[arg-type]
        score=result.score if result.decided else None,
        feedback=result.feedback,
        error=result.error or result.inconclusive,
        unanimous=unanimous(result),
    )


def unanimous(result: EvaluationResult) -> bool | None:
    """Whether the votes of each ballot (an llm_judge's, or a conversation_judge's on each
    message) all passed or all failed; an unreadable vote breaks unanimity. None: no votes."""
    threshold = result.details.get("threshold_score", 0)
    ballots = [result.details, *result.details.get("message_scores", [])]
    voted = [ballot["votes"] for ballot in ballots if ballot.get("votes")]
    if not voted:
        return None
    return all(
        len({None if v["score"] is None else v["score"] >= threshold for v in votes}) == 1
        for votes in voted
    )
