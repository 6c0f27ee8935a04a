"""``pt chat``: one prompt version, played by hand, on the route its ``model_config`` names (or
on another, overridden from the command line and validated like the YAML).

The same values and the same one door out as ``pt run-tests``: the session comes from the routing
table, every call goes through a ``CallLayer``, turns are played by ``Conversation``, the
simulated user is the run's ``LLMInterlocutor``, ``/eval`` runs the test's evaluators, and a
saved chat is a stored run that ``pt runs show`` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prompttracker.config.loader import Project
from prompttracker.config.models import DatasetRow, ModelConfig, Prompt, PromptVersion, Test
from prompttracker.config.settings import Settings
from prompttracker.conversation import Conversation
from prompttracker.errors import ConfigError, did_you_mean
from prompttracker.llm.base import SessionOptions
from prompttracker.llm.call_layer import CallLayer
from prompttracker.messages import ConversationResult, Message
from prompttracker.results import EvaluationResult, TestRunOutcome
from prompttracker.templating import TemplateError, render

CHAT_TEST = "chat"  # the test name a saved chat is stored under, when no test scored it

# What --provider, --api, --model, --assistant-id, --temperature override in model_config.
OVERRIDABLE = ("provider", "api", "model", "assistant_id", "temperature")


@dataclass
class ChatSetup:
    """What a chat plays: the version (overrides applied), its variables, the row it borrows a
    simulated user and mocked function outputs from, and the test ``/eval`` runs."""

    prompt_slug: str
    prompt: Prompt
    version: PromptVersion
    config: ModelConfig  # effective: --mock swaps the provider
    settings: Settings
    variables: dict[str, Any]
    system_prompt: str  # rendered
    dataset: str | None = None
    row: DatasetRow | None = None
    tests: list[Test] = field(default_factory=list)  # the prompt's tests, for /eval
    mock: bool = False

    @property
    def label(self) -> str:
        where = f" [{self.dataset}:{self.row.name}]" if self.row else ""
        return f"{self.prompt_slug} v{self.version.version}{where}"


def chat_setup(
    project: Project,
    prompt_slug: str,
    *,
    version: int | None = None,
    row: str | None = None,
    variables: list[str] = (),  # type: ignore[assignment]
    overrides: dict[str, Any] | None = None,
    base_url: str | None = None,
    mock: bool = False,
) -> ChatSetup:
    """Resolve the command line against the project; every mistake is a ``ConfigError``."""
    from prompttracker.llm.router import effective_config

    prompt = project.prompts.get(prompt_slug)
    if prompt is None:
        known = list(project.prompts)
        raise ConfigError(f"no prompt {prompt_slug!r}" + did_you_mean(prompt_slug, known))
    chosen = _version(prompt, prompt_slug, version)
    dataset_name, dataset_row = _row(project, row)
    values = {**chosen.variables, **(dataset_row.variables if dataset_row else {})}
    values |= _variables(variables)
    settings = _settings(project.settings, chosen.model_config_.provider, overrides, base_url)
    config = _config(chosen.model_config_, overrides or {})
    try:
        system_prompt = render(chosen.system_prompt, values)
    except TemplateError as exc:
        fix = " (give it with --var NAME=VALUE, or pick a --row that has it)"
        raise ConfigError(f"{prompt_slug} v{chosen.version} system_prompt: {exc}{fix}") from None
    return ChatSetup(
        prompt_slug=prompt_slug,
        prompt=prompt,
        version=chosen.model_copy(update={"model_config_": config}),
        config=effective_config(config, mock=mock),
        settings=settings,
        variables=values,
        system_prompt=system_prompt,
        dataset=dataset_name,
        row=dataset_row,
        tests=list(prompt.tests),
        mock=mock,
    )


def _version(prompt: Prompt, slug: str, number: int | None) -> PromptVersion:
    if number is None:
        if prompt.active_version is None:
            raise ConfigError(f"{slug} has no active version: pick one with --version N")
        return prompt.active_version
    found = prompt.version(number)
    if found is None:
        known = ", ".join(str(v.version) for v in prompt.versions)
        raise ConfigError(f"{slug} has no version {number} (it has: {known})")
    return found


def _row(project: Project, spec: str | None) -> tuple[str | None, DatasetRow | None]:
    if spec is None:
        return None, None
    name, sep, row_name = spec.partition(":")
    if not sep or not name or not row_name:
        raise ConfigError(f"--row {spec!r}: write it as DATASET:ROW (e.g. billing:double charged)")
    dataset = project.datasets.get(name)
    if dataset is None:
        known = list(project.datasets)
        raise ConfigError(f"--row {spec!r}: no dataset {name!r}" + did_you_mean(name, known))
    for candidate in dataset.rows:
        if candidate.name == row_name:
            return name, candidate
    names = [r.name for r in dataset.rows]
    raise ConfigError(
        f"--row {spec!r}: {name} has no row {row_name!r}" + did_you_mean(row_name, names)
    )


def _variables(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--var {pair!r}: write it as NAME=VALUE")
        values[key.strip()] = value
    return values


def _config(base: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """``base`` with the command line's overrides, validated as the YAML is."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return base
    data = base.model_dump(by_alias=True, exclude_none=True)
    if ("api" in given or "provider" in given) and "assistant_id" not in given:
        data.pop("assistant_id", None)  # an assistant belongs to the Assistants API
    data |= given
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as exc:
        flags = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in given.items())
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(f"{flags}: {reasons}") from None


def _settings(
    settings: Settings, provider: str, overrides: dict[str, Any] | None, base_url: str | None
) -> Settings:
    if base_url is None:
        return settings
    target = (overrides or {}).get("provider") or provider
    data = settings.model_dump(exclude_none=True)
    data.setdefault("providers", {}).setdefault(target, {})["base_url"] = base_url
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(f"--base-url {base_url}: {reasons}") from None


class Chat:
    """A chat in progress: its conversation, and what ``/eval`` last said of it."""

    def __init__(
        self, setup: ChatSetup, calls: CallLayer, on_text: Callable[[str], None] | None = None
    ) -> None:
        self.setup = setup
        self.calls = calls
        self.on_text = on_text  # where replies stream to, on routes that stream
        self.started_at = datetime.now(UTC)
        self.evaluations: tuple[EvaluationResult, ...] = ()
        self.evaluated_by: Test | None = None
        self.evaluated_at = 0  # how many messages the conversation had when evaluated
        self.simulated_user_done = False  # it ended the conversation, or wrote nothing
        self.conversation = self._open()

    def _open(self) -> Conversation:
        from prompttracker.llm.router import open_session

        row = self.setup.row
        options = SessionOptions(
            system_prompt=self.setup.system_prompt,
            function_outputs=row.mock_function_outputs if row else {},
            calls=self.calls,
            on_text=self.on_text,
        )
        return Conversation(open_session(self.setup.config, self.setup.settings, options))

    async def say(self, text: str) -> Message:
        """One turn with what the person typed; a failed turn leaves no trace."""
        return await self.conversation.play(text, keep_failed=False)

    async def simulate(self, turns: int) -> list[Message]:
        """Let the row's simulated user play up to ``turns`` turns; the messages they made.
        ``simulated_user_done`` says when it ended the conversation or had nothing to say."""
        from prompttracker.interlocutor import LLMInterlocutor
        from prompttracker.llm.router import effective_config

        persona = self.setup.row.interlocutor_simulation_prompt if self.setup.row else None
        if not persona:
            raise ConfigError(
                "/sim needs a simulated user: start the chat with --row DATASET:ROW for a row "
                "that has an interlocutor_simulation_prompt"
            )
        user = LLMInterlocutor(
            persona,
            effective_config(self.setup.settings.interlocutor, mock=self.setup.mock),
            self.setup.settings,
            self.calls,
        )
        made: list[Message] = []
        for _ in range(turns):
            text, ended, written, _ = await self.conversation.ask(user)
            self.simulated_user_done = ended or not text.strip()
            if not text.strip():
                break
            before = len(self.conversation.messages)
            await self.conversation.play(text, written, keep_failed=False)
            made.extend(self.conversation.messages[before:])
            if ended:
                break
        return made

    def test(self, name: str | None) -> Test:
        """The test ``/eval`` and ``/save`` score with: the one named, else the first that uses
        the chat's dataset, else the prompt's first."""
        tests = self.setup.tests
        if name:
            for test in tests:
                if test.name == name:
                    return test
            names = [t.name for t in tests]
            raise ConfigError(
                f"{self.setup.prompt_slug} has no test {name!r}" + did_you_mean(name, names)
            )
        if not tests:
            raise ConfigError(f"{self.setup.prompt_slug} has no tests to evaluate with")
        same = [t for t in tests if t.dataset == self.setup.dataset]
        return (same or tests)[0]

    async def evaluate(self, test: Test) -> tuple[EvaluationResult, ...]:
        """Run ``test``'s evaluators on the conversation so far."""
        from prompttracker.evaluators.base import EvaluationContext
        from prompttracker.evaluators.registry import run_evaluators
        from prompttracker.llm.router import effective_config

        ctx = EvaluationContext(
            conversation=self.result(),
            row=self.setup.row or DatasetRow(name=CHAT_TEST),
            system_prompt=self.setup.system_prompt,
            model_config=self.setup.config,
            judge_config=effective_config(self.setup.settings.judge, mock=self.setup.mock),
            settings=self.setup.settings,
            calls=self.calls,
        )
        self.evaluations = tuple(await run_evaluators(test.evaluators, ctx))
        self.evaluated_by = test
        self.evaluated_at = len(self.conversation.messages)
        return self.evaluations

    @property
    def scored(self) -> bool:
        """Whether the evaluations are of the conversation as it is now."""
        return self.evaluated_by is not None and self.evaluated_at == len(
            self.conversation.messages
        )

    async def reset(self) -> None:
        """Start over: a new session, nothing said, nothing evaluated."""
        await self.conversation.session.aclose()
        self.evaluations, self.evaluated_by = (), None
        self.simulated_user_done = False
        self.started_at = datetime.now(UTC)
        self.conversation = self._open()

    def result(self) -> ConversationResult:
        return self.conversation.result("chat")

    def outcome(self) -> TestRunOutcome:
        """The chat as a test run, for the results database, with the evaluations of the last
        ``/eval`` (score it first: ``scored``)."""
        from prompttracker.runner import status_of
        from prompttracker.store.rows import version_hash

        setup = self.setup
        status, error = status_of(None, list(self.evaluations))
        messages = self.conversation.messages
        first_user = next((m.content for m in messages if m.role == "user"), "")
        return TestRunOutcome(
            test_name=self.evaluated_by.name if self.evaluated_by else CHAT_TEST,
            prompt_slug=setup.prompt_slug,
            prompt_name=setup.prompt.name,
            version=setup.version.version,
            version_hash=version_hash(setup.prompt_slug, setup.version),
            dataset=setup.dataset or CHAT_TEST,
            row_name=setup.row.name if setup.row else CHAT_TEST,
            variables=setup.variables,
            model_config=setup.config,
            system_prompt=setup.system_prompt,
            user_prompt=first_user,
            status=status,
            error=error,
            conversation=self.result(),
            evaluations=self.evaluations,
            started_at=self.started_at,
            finished_at=datetime.now(UTC),
            mock=setup.mock,
            metered=dict(self.calls.meter.by_caller),
            cost_usd=self.calls.meter.total.cost_usd,
        )

    async def aclose(self) -> None:
        await self.conversation.session.aclose()


# A saved row's simulated user: the person who typed the chat is not in the file.
PERSONA_TO_FILL = (
    "Fill me in: who is this user, what do they want, and when are they satisfied? "
    "(row written by `pt chat` /save row)"
)


def save_run(chat: Chat, database: Path, root: Path) -> str:
    """Store the chat as a run of one test run; its id."""
    from prompttracker.store.store import Store

    outcome = chat.outcome()
    with Store(database) as store:
        run = store.start_run(
            mock=chat.setup.mock,
            project_root=str(root),
            options={"command": "chat", "prompt": chat.setup.prompt_slug},
            pricing=chat.calls.pricer.source(),
        )
        store.record_test_run(run.id, outcome, version=chat.setup.version)
        store.finish_run(run.id, "completed")
    return run.id


def save_row(chat: Chat, root: Path, name: str) -> str:
    """Append the chat to a dataset as row ``name``: its variables, its opening message (when
    the version's user_prompt is one variable), and — for a conversational dataset — as many
    turns and a simulated user to fill in.
    The dataset is the chat's row's, else the first test's. Returns the file, relative."""
    from prompttracker.config.edit import append_row
    from prompttracker.config.loader import Problem, find_dataset, load_dataset

    setup = chat.setup
    if not name:
        raise ConfigError("/save row NAME: give the new row a name")
    dataset = setup.dataset or (setup.tests[0].dataset if setup.tests else None)
    if dataset is None:
        raise ConfigError("/save row: no dataset to add to: start the chat with --row DATASET:ROW")
    own = {k: v for k, v in setup.variables.items() if setup.version.variables.get(k, k) != v}
    opening = next((m.content for m in chat.conversation.messages if m.role == "user"), "")
    variable = _single_variable(setup.version.user_prompt)
    if variable:
        own[variable] = opening
    row: dict[str, Any] = {"name": name}
    if own:
        row["variables"] = own
    path = find_dataset(root / "datasets", dataset)
    problems: list[Problem] = []
    existing = load_dataset(root, path, problems)
    if existing is None or existing.mode == "conversational":  # a broken file says so below
        row["interlocutor_simulation_prompt"] = PERSONA_TO_FILL
        row["max_turns"] = max(chat.conversation.turns, 1)
    append_row(path, row)
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _single_variable(template: str) -> str | None:
    """``name`` when the template is exactly ``{{ name }}``."""
    import re

    found = re.fullmatch(r"\s*\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}\s*", template)
    return found.group(1) if found else None
