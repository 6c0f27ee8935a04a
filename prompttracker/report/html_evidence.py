"""The evidence of a run as HTML: repeated rows with their pass rates, and versions of a test
compared on the same rows — what ``repeats_view`` and ``comparisons_view`` print."""

from __future__ import annotations

from collections.abc import Sequence

from prompttracker.evidence import Comparison, Evidence, RowStats, VersionStats
from prompttracker.report.evidence import (
    NOTHING_TO_COMPARE,
    comparison_verdict,
    interval,
    percent,
)
from prompttracker.report.html_transcript import esc, num_class
from prompttracker.report.transcript import usd


def evidence_html(evidence: Evidence) -> str:
    """The section, or an empty string when the run neither repeated rows nor compared
    versions."""
    parts = []
    if evidence.repeated:
        parts.append(_repeats(evidence))
    if evidence.comparisons:
        parts.append('<h3 id="comparisons-title">Versions compared on the same rows</h3>')
        parts += [_comparison(c) for c in evidence.comparisons]
    if not parts:
        return ""
    return (
        '<section id="evidence" aria-labelledby="evidence-title">'
        '<h2 id="evidence-title">Repeats and comparisons</h2>' + "\n".join(parts) + "</section>"
    )


def _repeats(evidence: Evidence) -> str:
    """A table per repeated test: a line per version and row, then each version's totals."""
    by_test: dict[str, list[VersionStats]] = {}
    for version in evidence.versions:
        if version.repeats > 1:
            by_test.setdefault(version.label, []).append(version)
    tables = []
    for label, versions in by_test.items():
        k = max(v.repeats for v in versions)
        names = ("version", "row", "passes", "pass rate", "interval", f"pass^{k}", f"pass@{k}")
        head = "".join(
            f'<th scope="col"{num_class(n not in ("version", "row"))}>{esc(n)}</th>' for n in names
        )
        rows = [_row_line(v, r) for v in versions for r in v.rows]
        rows += [_version_line(v) for v in versions]
        tables.append(
            f'<table class="repeats"><caption>{esc(label)}: {k} plays a row '
            "(intervals: 95% Wilson)</caption>"
            f'<thead><tr>{head}<th scope="col">verdict</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    return '<h3 id="repeats-title">Repeated rows</h3>' + "\n".join(tables)


def _row_line(version: VersionStats, row: RowStats) -> str:
    cells = [
        _passes(row.passes, row.trials, row.errors),
        percent(row.rate),
        interval(*row.interval),
        percent(row.pass_hat(version.repeats)),
        percent(row.pass_at(version.repeats)),
    ]
    return (
        f"<tr><td>v{version.version}</td><td>{esc(row.row_name)}</td>"
        + "".join(f'<td class="num">{esc(cell)}</td>' for cell in cells)
        + f'<td class="status s-{row.verdict}">{row.verdict}</td></tr>'
    )


def _version_line(version: VersionStats) -> str:
    rows = f"all {len(version.rows)} rows" if len(version.rows) > 1 else "1 row"
    cells = [
        _passes(version.passes, version.trials, version.errors),
        percent(version.rate),
        interval(*version.interval),
        percent(version.pass_hat_k),
        "",
    ]
    flaky = len(version.flaky)
    return (
        f'<tr class="total"><td>v{version.version}</td><td>{rows}</td>'
        + "".join(f'<td class="num">{esc(cell)}</td>' for cell in cells)
        + (f'<td class="s-flaky">{flaky} flaky</td>' if flaky else "<td></td>")
        + "</tr>"
    )


def _passes(passes: int, trials: int, errors: int) -> str:
    return f"{passes}/{trials}" + (f" +{errors} err" if errors else "")


def _comparison(comparison: Comparison) -> str:
    """One comparison: the pass-rate difference and its verdict, flipped rows, scores, tokens
    and cost per conversation, rows only one version played."""
    lines = [_difference(comparison)]
    for flip, rows in comparison.flips.items():
        if rows:
            style = {"pass→fail": "failed", "pass→error": "error", "fail→pass": "passed"}
            lines.append(
                f'<span class="s-{style.get(flip, "flaky")}">{esc(flip)}</span>: {_names(rows)}'
            )
    if comparison.still_failing:
        lines.append(f"still failing: {_names(comparison.still_failing)}")
    deltas = comparison.score_differences
    if deltas:
        lines.append(
            "score: " + ", ".join(f"{esc(name)} {delta:+.1f}" for name, delta in deltas.items())
        )
    tokens_a, cost_a = comparison.per_conversation("a")
    tokens_b, cost_b = comparison.per_conversation("b")
    lines.append(
        f"per conversation: {_tokens(tokens_a)} → {_tokens(tokens_b)} tokens, "
        f"{esc(usd(cost_a))} → {esc(usd(cost_b))}"
    )
    for version, only in ((comparison.a, comparison.only_a), (comparison.b, comparison.only_b)):
        if only:
            lines.append(f"only in v{version.version}: {_names([r.row_name for r in only])}")
    title = f"{comparison.label}: v{comparison.b.version} vs v{comparison.a.version}"
    items = "".join(f"<li>{line}</li>" for line in lines)
    return f'<div class="comparison"><h4>{esc(title)}</h4><ul>{items}</ul></div>'


def _difference(comparison: Comparison) -> str:
    """``pass rate 67% → 33% (−33 pts, 95% CI …): no clear difference``, as the terminal has it."""
    said = comparison_verdict(comparison)
    if said is None:
        return f'<span class="muted">{esc(NOTHING_TO_COMPARE)}</span>'
    difference = comparison.difference
    assert difference is not None  # comparison_verdict said there is one
    how, verdict, kind = said
    style = {"better": "s-passed", "worse": "s-failed"}.get(kind, "muted")
    return (
        f"pass rate {percent(difference.mean_a)} → {percent(difference.mean_b)} ({esc(how)}): "
        f'<strong class="{style}">{esc(verdict)}</strong>'
    )


def _names(names: Sequence[str]) -> str:
    return esc(", ".join(names))


def _tokens(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"
