"""Every evaluator type by name, config validation for the loader, and running them safely."""

from __future__ import annotations

from pydantic import ValidationError

from prompttracker.config.models import EvaluatorSpec
from prompttracker.evaluators.base import EvaluationContext, Evaluator
from prompttracker.results import EvaluationResult


def evaluator_types() -> dict[str, type[Evaluator]]:
    """Evaluator classes by ``type`` name."""
    from prompttracker.evaluators import judges, text

    classes: list[type[Evaluator]] = [*text.EVALUATORS, *judges.EVALUATORS]
    return {cls.type: cls for cls in classes}


def config_problems(spec: EvaluatorSpec) -> list[str]:
    """Messages for an unknown type or a bad config; empty when the spec is valid."""
    types = evaluator_types()
    cls = types.get(spec.type)
    if cls is None:
        return [f"unknown evaluator type {spec.type!r}; known types: {', '.join(sorted(types))}"]
    try:
        cls.Config.model_validate(spec.config)
    except ValidationError as exc:
        return [
            f"config.{'.'.join(str(p) for p in e['loc'])}: "
            + ("unknown config key" if e["type"] == "extra_forbidden" else e["msg"])
            for e in exc.errors()
        ]
    return []


def build(spec: EvaluatorSpec) -> Evaluator:
    return evaluator_types()[spec.type](spec)


async def run_evaluators(
    specs: list[EvaluatorSpec], ctx: EvaluationContext
) -> list[EvaluationResult]:
    """Run each evaluator; one that raises becomes an errored evaluation, never a crashed run."""
    results = []
    for spec in specs:
        try:
            results.append(await build(spec).evaluate(ctx))
        except Exception as exc:  # an evaluator bug must not crash the run
            results.append(
                EvaluationResult(
                    evaluator=spec.label,
                    type=spec.type,
                    score=0,
                    passed=False,
                    feedback=f"evaluator raised {type(exc).__name__}: {exc}",
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
    return results
