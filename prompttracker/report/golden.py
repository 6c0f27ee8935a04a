"""``pt judges check``: every verdict of the golden set, the disagreements, the totals."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from prompttracker.evaluators.text import preview
from prompttracker.golden import JudgesCheck, VerdictCheck
from prompttracker.report.summary import FirstThatFits, borderless_table
from prompttracker.report.transcript import format_score

FEEDBACK_CHARS = 200
MOCK_NOTE = (
    "MOCK judge: its scores are a hash of the prompt, not a judgement. These numbers only show "
    "that the plumbing works; check the judges with a real one."
)


def judged_text(verdict: VerdictCheck) -> Text:
    """``pass 92``, ``fail 40``, ``error`` or ``inconclusive``."""
    if verdict.judged == "error":
        return Text("error", style="magenta")
    if verdict.judged == "inconclusive":
        return Text("inconclusive", style="yellow")
    style = "green" if verdict.judged == "pass" else "red"
    return Text(f"{verdict.judged} {format_score(verdict.score)}", style=style)


def agree_text(verdict: VerdictCheck) -> Text:
    return Text("✓", style="green") if verdict.agree else Text("✗", style="red")


TABLE_TITLE = "Verdicts (expected: the person's; judged: the judge's, with score)"


def verdicts_table(check: JudgesCheck) -> RenderableType:
    """A line per verdict with its file and evaluator; when that is too wide for the terminal,
    a line per file with its verdicts under it. Names wrap, and fold only when a word is wider
    than the column: nothing is cut."""
    return FirstThatFits(_flat_layout(check), _by_file_layout(check))


def _flat_layout(check: JudgesCheck) -> Table:
    table = borderless_table(TABLE_TITLE)
    table.add_column("file", overflow="fold")
    table.add_column("evaluator", overflow="fold")
    _add_verdict_columns(table)
    for v in check.verdicts:
        table.add_row(Text(v.file), Text(v.evaluator), *_verdict_cells(v))
    return table


def _by_file_layout(check: JudgesCheck) -> Table:
    table = borderless_table(TABLE_TITLE)
    table.add_column("file / evaluator", overflow="fold")
    _add_verdict_columns(table)
    file = None
    for v in check.verdicts:
        if v.file != file:
            file = v.file
            table.add_row(Text(file, style="bold"))
        table.add_row(Padding(Text(v.evaluator), (0, 0, 0, 2)), *_verdict_cells(v))
    return table


def _add_verdict_columns(table: Table) -> None:
    table.add_column("expected", no_wrap=True)
    table.add_column("judged", justify="right", no_wrap=True)
    table.add_column("agree", justify="center", no_wrap=True)


def _verdict_cells(verdict: VerdictCheck) -> tuple[Text, Text, Text]:
    return Text(verdict.expected), judged_text(verdict), agree_text(verdict)


def disagreements_view(check: JudgesCheck) -> RenderableType | None:
    """Each verdict the judge got wrong, with what it said (or how it failed)."""
    lines = []
    for verdict in check.verdicts:
        if verdict.agree:
            continue
        said = verdict.error or verdict.feedback
        line = Text.assemble(
            ("✗ ", "red"),
            (f"{verdict.file} · {verdict.evaluator}", "bold"),
            f": expected {verdict.expected}, judged ",
            judged_text(verdict),
            f" — {preview(' '.join(said.split()), FEEDBACK_CHARS)}" if said.strip() else "",
        )
        lines.append(line)
    if not lines:
        return None
    return Group(Text("Disagreements", style="bold"), *lines)


def totals_line(check: JudgesCheck) -> Text:
    """``11/13 agree (84.6%) · Cohen's kappa 0.692 · 1 evaluator error``, then how many were
    inconclusive and, with votes, how stable the votes were."""
    errors = f"{check.errors} evaluator error" + ("" if check.errors == 1 else "s")
    parts: list[str | tuple[str, str]] = [
        (f"{check.agreed}/{len(check.verdicts)} agree ({100 * check.agreement:.1f}%)", "bold"),
        " · ",
        (f"Cohen's kappa {check.kappa:.3f}", "bold"),
        " · ",
        (errors, "magenta" if check.errors else ""),
    ]
    if check.inconclusive:
        parts += [" · ", (f"{check.inconclusive} inconclusive", "yellow")]
    if check.stability is not None:
        voted = sum(v.unanimous is not None for v in check.verdicts)
        steady = sum(bool(v.unanimous) for v in check.verdicts)
        parts += [" · ", f"votes unanimous on {steady}/{voted} ({100 * check.stability:.1f}%)"]
    return Text.assemble(*parts)


def thresholds_line(check: JudgesCheck) -> Text:
    """Whether both thresholds are met; else which one is not, and by how much."""
    if check.passed:
        return Text.assemble(
            ("✓ ", "green"),
            f"meets min_agreement {100 * check.min_agreement:.1f}% and min_kappa "
            f"{check.min_kappa:.3f}",
        )
    return Text.assemble(("✗ ", "red"), "; ".join(check.shortfalls))


def judges_check_view(check: JudgesCheck) -> RenderableType:
    """The header, the verdicts, the disagreements, the totals and the thresholds."""
    transcripts = len({v.file for v in check.verdicts})
    parts: list[RenderableType] = [
        Text(
            f"Golden set {check.folder}/: {transcripts} transcript(s), {len(check.verdicts)} "
            f"verdict(s), judged by {check.judge}"
        )
    ]
    if check.mock:
        parts.append(Text(MOCK_NOTE, style="yellow"))
    parts += [Text(""), verdicts_table(check)]
    disagreements = disagreements_view(check)
    if disagreements is not None:
        parts += [disagreements, Text("")]
    parts += [totals_line(check), thresholds_line(check)]
    labels = {v.expected for v in check.verdicts}
    if len(labels) == 1:
        parts.append(
            Text(
                f"Every verdict expects {labels.pop()}: kappa cannot tell a judge that says so "
                "to everything from a careful one. Add transcripts with the other verdict.",
                style="yellow",
            )
        )
    return Group(*parts)
