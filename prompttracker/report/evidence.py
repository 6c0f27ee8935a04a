"""Views of the evidence: repeats and pass rates, version comparisons, the baseline gate,
what the calls cost, the estimate — and the JSON document that carries them for scripts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from prompttracker.estimate import DEFAULT_ANSWER_TOKENS, Estimate
from prompttracker.evidence import Comparison, Evidence, RunComparison, VersionStats, points
from prompttracker.messages import Metered, metered_total
from prompttracker.report.summary import FULL_TABLE_LIMIT, borderless_table
from prompttracker.report.transcript import usd
from prompttracker.results import RunRecord, TestRunRow, simulator_errors

CALLER_NAMES = {
    "assistant": "prompt under test",
    "simulated_user": "simulated user",
    "judge": "judges",
}


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def interval(low: float, high: float) -> str:
    return f"{100 * low:.0f}–{100 * high:.0f}%"


def cost_of(metered: Metered) -> str:
    """The cost of a tally; what is known when some prices are not."""
    if metered.unpriced_calls and metered.priced_usd:
        return f"{usd(metered.priced_usd)} + unknown"
    return usd(metered.cost_usd)


def repeats_view(evidence: Evidence) -> RenderableType:
    """A table per repeated test: a line per row and version, then the version's totals.

    In a big run (more than ``FULL_TABLE_LIMIT`` rows) only the rows that did not pass every
    play get a line; the totals cover them all.
    """
    by_test: dict[str, list[VersionStats]] = {}
    for version in evidence.versions:
        if version.repeats > 1:
            by_test.setdefault(version.label, []).append(version)
    every_row = sum(len(v.rows) for versions in by_test.values() for v in versions)
    few = every_row <= FULL_TABLE_LIMIT
    tables = []
    for label, versions in by_test.items():
        k = max(v.repeats for v in versions)
        table = borderless_table(f"{label}: {k} plays a row (intervals: 95% Wilson)")
        table.add_column("version", no_wrap=True)
        table.add_column("row", min_width=10, overflow="fold")
        for name in ("passes", "pass rate", "interval", f"pass^{k}", f"pass@{k}", "verdict"):
            table.add_column(name, justify="right", no_wrap=True)
        for v in versions:
            for r in v.rows:
                if few or r.verdict != "passed":
                    table.add_row(
                        f"v{v.version}",
                        Text(r.row_name),
                        _passes(r.passes, r.trials, r.errors),
                        percent(r.rate),
                        interval(*r.interval),
                        percent(r.pass_hat(v.repeats)),
                        percent(r.pass_at(v.repeats)),
                        Text(r.verdict, style=VERDICT_STYLES[r.verdict]),
                    )
            flaky = len(v.flaky)
            table.add_row(
                Text(f"v{v.version}", style="bold"),
                Text(f"all {len(v.rows)} rows" if len(v.rows) > 1 else "1 row", style="bold"),
                _passes(v.passes, v.trials, v.errors),
                Text(percent(v.rate), style="bold"),
                interval(*v.interval),
                percent(v.pass_hat_k),
                "",
                Text(f"{flaky} flaky", style="yellow") if flaky else Text(""),
                end_section=True,
            )
        tables.append(table)
    return Group(*tables)


VERDICT_STYLES = {
    "passed": "green",
    "failed": "red",
    "flaky": "yellow",
    "error": "magenta",
    "undecided": "cyan",
}


def _passes(passes: int, trials: int, errors: int) -> Text:
    text = Text(f"{passes}/{trials}")
    if errors:
        text.append(f" +{errors} err", style="magenta")
    return text


NOTHING_TO_COMPARE = "no row has a verdict in both: nothing to compare"


def comparison_verdict(comparison: Comparison) -> tuple[str, str, str] | None:
    """How the two pass rates differ, the verdict on it, and its kind (``better``, ``worse``
    or ``neutral``); None when no row has a verdict in both. Every report says it in these
    words."""
    difference = comparison.difference
    if difference is None:
        return None
    if difference.low == difference.high == 0:
        how = (
            "the row has the same pass rate in both"
            if difference.rows == 1
            else f"each of the {difference.rows} rows has the same pass rate in both"
        )
        return how, "no difference", "neutral"
    how = (
        f"{points(difference.difference)}, 95% CI {points(difference.low)} to "
        f"{points(difference.high)}, paired bootstrap over {difference.rows} rows"
    )
    if comparison.significant:
        better = difference.difference > 0
        return how, "better" if better else "worse", "better" if better else "worse"
    if difference.significant:
        why = f"not significant: too few rows agree (sign test p={difference.sign_test_p:.2g})"
        return how, why, "neutral"
    return how, "no clear difference: the interval includes 0", "neutral"


def comparison_view(comparison: Comparison, *, title: str) -> RenderableType:
    """One comparison as a short block of lines."""
    lines = [Text(title, style="bold")]
    difference = comparison.difference
    if comparison.content_changed:
        lines.append(
            Text(
                f"  v{comparison.b.version}'s content changed since the baseline "
                f"({comparison.a.version_hash[:8]} → {comparison.b.version_hash[:8]})",
                style="yellow",
            )
        )
    said = comparison_verdict(comparison)
    if said is None:
        lines.append(Text(f"  {NOTHING_TO_COMPARE}", style="dim"))
    else:
        how, verdict, kind = said
        style = {"better": "green", "worse": "red"}.get(kind, "dim")
        lines.append(
            Text.assemble(
                f"  pass rate {percent(difference.mean_a)} → {percent(difference.mean_b)} "
                f"({how}): ",
                (verdict, style),
            )
        )
    flips = comparison.flips
    for flip, style in (
        ("pass→fail", "red"),
        ("pass→error", "magenta"),
        ("pass→flaky", "yellow"),
        ("fail→pass", "green"),
    ):
        rows = flips[flip]  # type: ignore[index]
        if rows:
            lines.append(Text(f"  {flip}: " + _names(rows), style=style))
    if comparison.still_failing:
        lines.append(Text("  still failing: " + _names(comparison.still_failing), style="dim"))
    deltas = comparison.score_differences
    if deltas:
        lines.append(Text("  score: " + ", ".join(f"{n} {d:+.1f}" for n, d in deltas.items())))
    tokens_a, cost_a = comparison.per_conversation("a")
    tokens_b, cost_b = comparison.per_conversation("b")
    lines.append(
        Text(
            f"  per conversation: {_tokens(tokens_a)} → {_tokens(tokens_b)} tokens, "
            f"{usd(cost_a)} → {usd(cost_b)}"
        )
    )
    for side, rows in (("a", comparison.only_a), ("b", comparison.only_b)):
        if rows:
            version = comparison.a.version if side == "a" else comparison.b.version
            lines.append(
                Text(f"  only in v{version}: " + _names([r.row_name for r in rows]), style="dim")
            )
    return Group(*lines)


def _names(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _tokens(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def comparisons_view(evidence: Evidence) -> RenderableType | None:
    """Versions of one test compared within the run (each against its lowest number)."""
    if not evidence.comparisons:
        return None
    return Group(
        Text("Versions compared on the same rows", style="bold underline"),
        *(
            comparison_view(c, title=f"{c.label}: v{c.b.version} vs v{c.a.version}")
            for c in evidence.comparisons
        ),
    )


def baseline_view(comparison: RunComparison) -> RenderableType:
    """This run against its baseline, and the gate's verdict."""
    parts: list[RenderableType] = [
        Text(
            f"{comparison.current_id} against the baseline {comparison.baseline_id}",
            style="bold underline",
        )
    ]
    parts += [comparison_view(c, title=f"{c.label} v{c.b.version}") for c in comparison.comparisons]
    for name, versions in (
        ("only in the baseline", comparison.only_baseline),
        (f"only in {comparison.current_id} (not gated)", comparison.only_current),
    ):
        if versions:
            parts.append(Text(f"{name}: " + _names([_ref(v) for v in versions]), style="dim"))
    regressions = comparison.regressions
    if regressions:
        parts.append(Text(f"Regressions ({len(regressions)}):", style="bold red"))
        parts += [Text(f"  {r}", style="red") for r in regressions]
    else:
        parts.append(Text("No regression against the baseline.", style="green"))
    return Group(*parts)


def _ref(version: VersionStats) -> str:
    return f"{version.label} v{version.version}"


def cost_line(metered: Mapping[str, Metered], *, mock: bool, pricing: Mapping[str, Any]) -> Text:
    """``Calls: prompt under test 14 calls, 3,210 tokens, $0.0012 · … · total $0.0031``."""
    parts = []
    for caller in ("assistant", "simulated_user", "judge"):
        m = metered.get(caller)
        if m:
            parts.append(
                f"{CALLER_NAMES[caller]} {m.calls} call{'s' if m.calls != 1 else ''}, "
                f"{m.total_tokens:,} tokens, {cost_of(m)}"
            )
    total = metered_total(dict(metered))
    line = Text("Calls: " + " · ".join(parts) + f" · total {cost_of(total)}")
    source = pricing.get("library", "")
    note = f" (prices: {source}" + (", with overrides" if pricing.get("overrides") else "") + ")"
    if mock:
        note += " · mock: nothing was spent; costs are what these tokens would cost"
    line.append(note, style="dim")
    return line


def estimate_view(result: Estimate, *, mock: bool) -> RenderableType:
    """The worst case by caller and model, and its total."""
    table = borderless_table(
        f"Worst-case estimate for {result.test_runs} test run(s): nothing was called"
    )
    table.add_column("caller", no_wrap=True)
    table.add_column("model", overflow="fold")
    for name in ("calls", "in tokens", "out tokens", "cost"):
        table.add_column(name, justify="right", no_wrap=True)
    order = {caller: index for index, caller in enumerate(CALLER_NAMES)}
    for (caller, model), m in sorted(result.lines.items(), key=lambda i: (order[i[0][0]], i[0])):
        table.add_row(
            caller.replace("_", " "),
            model,
            f"{m.calls:,}",
            f"{m.input_tokens:,}",
            f"{m.output_tokens:,}",
            cost_of(m),
        )
    total = result.total
    table.add_row(
        Text("total", style="bold"),
        "",
        f"{total.calls:,}",
        f"{total.input_tokens:,}",
        f"{total.output_tokens:,}",
        Text(cost_of(total), style="bold"),
    )
    note = Text(
        "assistant: the prompt under test. "
        "Every conversation to max_turns, every answer to max_tokens "
        f"({DEFAULT_ANSWER_TOKENS:,} where unset), about 4 characters a token."
        + (" Under --mock nothing is spent; the cost is the real models'." if mock else ""),
        style="dim",
    )
    return Group(table, note)


def estimate_document(result: Estimate) -> dict[str, Any]:
    """The estimate as JSON: a line per caller and model, and the total."""
    total = result.total
    return {
        "test_runs": result.test_runs,
        "lines": [
            {"caller": caller, "model": model, **m.model_dump(), "cost_usd": m.cost_usd}
            for (caller, model), m in sorted(result.lines.items())
        ],
        "total": {**total.model_dump(), "cost_usd": total.cost_usd},
        "assumptions": {
            "turns": "every conversation runs to max_turns",
            "answer_tokens": f"max_tokens, or {DEFAULT_ANSWER_TOKENS} where unset",
            "chars_per_token": 4,
        },
    }


def run_document(
    run: RunRecord,
    outcomes: Sequence[TestRunRow],
    evidence: Evidence,
    metered: Mapping[str, Metered],
) -> dict[str, Any]:
    """The run as JSON for scripts: its record, test runs, evidence, gate and what it cost."""
    flaky = evidence.flaky_rows
    total = metered_total(dict(metered))
    invalid, conversations = simulator_errors(outcomes)
    return {
        "run": run.model_dump(mode="json"),
        "test_runs": [
            {
                "label": o.label,
                "prompt": o.prompt_slug,
                "test": o.test_name,
                "version": o.version,
                "version_hash": o.version_hash,
                "dataset": o.dataset,
                "row": o.row_name,
                "repeat": o.repeat,
                "status": o.status,
                "regenerated": list(o.regenerated),
                "score": o.score,
                "scores": o.scores,
                "flaky": (o.prompt_slug, o.test_name, o.version, o.dataset, o.row_name) in flaky,
                "tokens": o.total_tokens,
                "cost_usd": o.cost_usd,
                "usage": {caller: m.model_dump() for caller, m in o.metered.items()},
            }
            for o in outcomes
        ],
        **evidence.as_dict(),
        "simulator": {
            "invalid": invalid,
            "conversations": conversations,
            "error_rate": invalid / conversations if conversations else None,
        },
        "usage": {caller: m.model_dump() for caller, m in metered.items()},
        "cost_usd": total.cost_usd,
    }
