"""Every evaluator type by name, config validation for the loader, and running them safely."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from pydantic import ValidationError

from prompttracker.config.models import EvaluatorSpec, PromptVersion
from prompttracker.errors import did_you_mean
from prompttracker.evaluators.base import EvaluationContext, Evaluator
from prompttracker.llm.call_layer import Meter
from prompttracker.results import EvaluationResult


def evaluator_types() -> dict[str, type[Evaluator]]:
    """Evaluator classes by ``type`` name, in the order the README lists them, then those that
    installed packages register (``prompttracker.evaluators`` entry points; a built-in name
    cannot be taken over)."""
    from prompttracker.evaluators import functions, judges, python, structure, text, tools

    classes: list[type[Evaluator]] = [
        *text.EVALUATORS,
        *structure.EVALUATORS,
        *judges.EVALUATORS,
        *functions.EVALUATORS,
        *tools.EVALUATORS,
        *python.EVALUATORS,
    ]
    built_in = {cls.type: cls for cls in classes}
    plugins, _ = python.plugin_types()
    return {**built_in, **{n: c for n, c in plugins.items() if n not in built_in}}


def unknown_type_message(name: str, types: dict[str, type[Evaluator]]) -> str:
    """Why ``name`` is not an evaluator type: a typo, or a plugin that did not load."""
    from prompttracker.evaluators.python import plugin_types

    _, broken = plugin_types()
    failed = next((b for b in broken if b.name == name), None)
    if failed is not None:
        return (
            f"evaluator type {name!r} comes from the entry point {failed.value}, which did not "
            f"load: {failed.error}"
        )
    return f"unknown evaluator type {name!r}" + did_you_mean(name, list(types))


def config_problems(spec: EvaluatorSpec) -> list[str]:
    """Messages for an unknown type, a bad config or a role it cannot use; empty when valid."""
    return [message for _, message in located_config_problems(spec)]


def located_config_problems(spec: EvaluatorSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """``config_problems``, each with the path to its key within the evaluator's entry."""
    types = evaluator_types()
    cls = types.get(spec.type)
    if cls is None:
        return [(("type",), unknown_type_message(spec.type, types))]
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if cls.scope == "conversation" and spec.role == "user":
        problems.append(
            (
                ("role",),
                f"role: user — {spec.type} reads the assistant's messages and tool calls over "
                "the whole conversation (or one `turn`); remove `role`, or use a message check "
                "such as keyword or format to look at a user message",
            )
        )
    try:
        cls.Config.model_validate(spec.config)
    except ValidationError as exc:
        for e in exc.errors():
            message = (
                "unknown config key"
                + did_you_mean(str(e["loc"][-1]), list(cls.Config.model_fields))
                if e["type"] == "extra_forbidden" and len(e["loc"]) == 1
                else "unknown config key"
                if e["type"] == "extra_forbidden"
                else _message(e["msg"])
            )
            problems.append((("config", *e["loc"]), _config_location(e["loc"]) + message))
    return problems


def _config_location(loc: tuple[int | str, ...]) -> str:
    return "config" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc) + ": "


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def capability_problem(spec: EvaluatorSpec, version: PromptVersion, path: str) -> str | None:
    """Why ``version`` (at ``path``, e.g. ``versions[0]``) cannot feed the evaluator, if it can't.

    A tool check needs its tool in ``model_config.tools`` (for ``api: assistants`` that list
    describes the assistant); ``function_call`` needs ``tool_config.functions``; any other
    evaluator says what it needs in ``Evaluator.version_problem`` (``format`` with ``schema:
    response_format`` needs the version's ``response_format``).
    """
    cls = evaluator_types().get(spec.type)
    if cls is None:
        return None
    tool = cls.requires_tool
    if tool is None:
        try:
            config = cls.Config.model_validate(spec.config)
        except ValidationError:
            return None  # reported as a config problem
        return cls.version_problem(config, version, path)
    config = version.model_config_
    where = f"version {version.version} ({config.label})"
    if tool == "function":
        if config.tool_config.functions:
            return None
        return (
            f"{where} defines no functions, so {spec.type} has no calls to check; add them under "
            f"{path}.model_config.tool_config.functions, or run this test on other `versions`"
        )
    if tool in config.tools:
        return None
    return (
        f"{where} does not use the {tool} tool, so {spec.type} has no results to check; add "
        f"{tool} to {path}.model_config.tools (api: responses or assistants), or run this test "
        "on other `versions`"
    )


def build(spec: EvaluatorSpec) -> Evaluator:
    """The evaluator for ``spec`` (its config already validated by the loader)."""
    return evaluator_types()[spec.type](spec)


async def run_evaluators(
    specs: list[EvaluatorSpec], ctx: EvaluationContext
) -> list[EvaluationResult]:
    """Run each evaluator; one that raises becomes an errored evaluation, never a crashed run.

    Each result carries the evaluator's effective config and the tokens and cost of the LLM
    calls it made (metered at the call layer).
    """
    results = []
    for spec in specs:
        with ctx.calls.metering() if ctx.calls else nullcontext(Meter()) as meter:
            try:
                evaluator = build(spec)
                result = await evaluator.evaluate(ctx)
                config = effective_config(spec, evaluator)
            except Exception as exc:  # an evaluator bug must not crash the run
                result = EvaluationResult(
                    evaluator=spec.label,
                    type=spec.type,
                    score=0,
                    passed=False,
                    feedback=f"evaluator raised {type(exc).__name__}: {exc}",
                    error=f"{type(exc).__name__}: {exc}",
                )
                config = dict(spec.config)
        spent = meter.total
        update: dict[str, Any] = {"config": config}
        if spent.calls:
            update |= {"usage": spent.usage, "cost_usd": spent.cost_usd}
        results.append(result.model_copy(update=update))
    return results


def effective_config(spec: EvaluatorSpec, evaluator: Evaluator) -> dict[str, Any]:
    """What the evaluator ran with: its config with every default, and its target."""
    config: dict[str, Any] = evaluator.config.model_dump(mode="json")
    target = {"turn": spec.turn, "role": spec.role}
    return config | {key: value for key, value in target.items() if value is not None}
