"""One test run as a rich transcript: header, the conversation turn by turn, evaluations.

Everything the LLMs wrote goes through ``rich.text.Text``, never through markup strings, so
``[brackets]`` in a reply are shown as written instead of being read as styles.
"""

from __future__ import annotations

import io
import json
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from prompttracker.messages import ConversationResult, Message, ToolCall
from prompttracker.results import EvaluationResult, TestRunOutcome

STATUS_STYLES = {
    "passed": "bold green",
    "failed": "bold red",
    "error": "bold magenta",
    "invalid": "bold yellow",
    "inconclusive": "bold cyan",
}
TOOL_OUTPUT_LIMIT = 200


def status_text(status: str) -> Text:
    """``PASS`` / ``FAIL`` / ``ERROR`` / ``INVALID`` / ``INCONCLUSIVE`` in its colour."""
    word = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}.get(status, status.upper())
    return Text(word, style=STATUS_STYLES.get(status, "bold"))


def format_score(score: float | None) -> str:
    """``85``, ``82.5`` or ``—`` when no evaluator produced a score."""
    if score is None:
        return "—"
    return f"{score:.1f}".removesuffix(".0")


def usd(value: float | None) -> str:
    """``$1.24``, ``$0.0123``, ``$0.000036``; ``unknown`` when a price is missing (never $0
    in its place)."""
    if value is None:
        return "unknown"
    if value >= 1:
        return f"${value:.2f}"
    if value >= 0.0001 or value == 0:
        return f"${value:.4f}".rstrip("0").rstrip(".")
    return f"${value:.2g}" if value < 1e-7 else f"${value:.7f}".rstrip("0")


def format_seconds(milliseconds: float) -> str:
    """``0.4s``, ``12.0s``, ``2m 05s``."""
    seconds = max(milliseconds, 0.0) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def transcript_view(outcome: TestRunOutcome) -> RenderableType:
    """The full transcript of one test run, ready for ``console.print``."""
    parts: list[RenderableType] = [_header(outcome)]
    conversation = outcome.conversation
    if conversation is None:
        parts.append(Text("(no conversation was played)", style="dim"))
    else:
        user_label = None if has_simulated_user(conversation) else "User"
        assistant_label = f"Assistant · {outcome.model_config_.label}"
        parts.extend(message_panel(m, assistant_label, user_label) for m in conversation.messages)
        parts.append(_stop_line(conversation))
    parts.extend(_error_lines(outcome))
    parts.append(evaluations_view(outcome.evaluations))
    return Group(*parts)


def transcript_text(outcome: TestRunOutcome, width: int = 100) -> str:
    """The transcript as plain text (no colours), e.g. for a JUnit failure body."""
    console = Console(
        file=io.StringIO(), record=True, width=width, color_system=None, force_terminal=False
    )
    console.print(transcript_view(outcome))
    return console.export_text(styles=False)


def _header(outcome: TestRunOutcome) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row(
        "prompt", Text(f"{outcome.prompt_slug} ({outcome.prompt_name}) v{outcome.version}")
    )
    grid.add_row("dataset", Text(f"{outcome.dataset} [{outcome.row_name}]"))
    route = Text(outcome.model_config_.label)
    if outcome.mock:
        route.append("  ")
        route.append("MOCK", style="bold black on yellow")
    grid.add_row("route", route)
    status = status_text(outcome.status)
    status.append(f"  score {format_score(outcome.score)}", style="bold")
    status.append(f"  · {format_seconds(outcome.duration_ms)}", style="dim")
    grid.add_row("status", status)
    return Panel(grid, title=Text(outcome.label, style="bold"), title_align="left")


def has_simulated_user(conversation: ConversationResult) -> bool:
    """Whether a simulated user wrote this conversation's user messages. When not (a
    single-turn row, a chat), only those that carry a simulated user's call are its."""
    return conversation.stop_reason not in ("single_turn", "chat")


def simulated(message: Message, conversation: ConversationResult) -> bool:
    """Whether ``message`` is the simulated user's."""
    return message.role == "user" and (
        has_simulated_user(conversation) or message.usage is not None
    )


def message_panel(
    message: Message, assistant_label: str, user_label: str | None = None
) -> RenderableType:
    """One message as a panel: who, which turn, the text and its tool calls, and what the call
    that wrote it used. A user message is the simulated user's unless ``user_label`` names
    who else writes them (a single-turn row, a person in ``pt chat``): then only those that
    carry the simulated user's call are its."""
    if message.role == "user":
        label = user_label if user_label and message.usage is None else "User (simulated)"
        style = "cyan"
    elif message.role == "assistant":
        label, style = assistant_label, "green"
    else:
        label, style = message.role.capitalize(), "yellow"
    title = Text(f"{label} · turn {message.turn}", style=f"bold {style}")
    body: list[RenderableType] = [Text(message.content or "(empty)")]
    body.extend(_tool_call_line(call) for call in message.tool_calls)
    subtitle = _message_stats(message)
    return Panel(
        Group(*body),
        title=title,
        title_align="left",
        subtitle=subtitle,
        subtitle_align="right",
        border_style=style,
        box=box.ROUNDED,
    )


def message_stats(message: Message) -> list[str]:
    """Tokens, cost and time of the call that wrote the message (the simulated user's for a
    user message it wrote)."""
    stats = []
    if message.usage and message.usage.total_tokens:
        who = "simulated user: " if message.role == "user" else ""
        stats.append(f"{who}{message.usage.total_tokens:,} tokens")
    if message.cost_usd:
        stats.append(usd(message.cost_usd))
    if message.latency_ms:
        stats.append(format_seconds(message.latency_ms))
    return stats


def _message_stats(message: Message) -> Text | None:
    stats = message_stats(message)
    return Text(" · ".join(stats), style="dim") if stats else None


def _tool_call_line(call: ToolCall) -> Text:
    line = Text("⚙ ", style="yellow")
    kind = "" if call.type in ("function", call.name) else f"{call.type}: "
    line.append(f"{kind}{call.name}", style="bold yellow")
    line.append(f"({_compact(call.arguments)})")
    if call.output is not None:
        line.append(" → ", style="dim")
        line.append(_truncate(_compact(call.output), TOOL_OUTPUT_LIMIT), style="dim")
    return line


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        return repr(value)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _stop_line(conversation: ConversationResult) -> Text:
    turns = "turn" if conversation.turn_count == 1 else "turns"
    line = Text("stop reason: ", style="dim")
    line.append(conversation.stop_reason, style="bold")
    stop = conversation.metadata.get("stop")
    if isinstance(stop, dict) and stop.get("reason"):
        line.append(f" ({stop.get('by', 'simulated user')}: {stop['reason']})", style="dim")
    check = conversation.metadata.get("simulator_check")
    if isinstance(check, dict) and "invalid" not in check:  # an invalid one has its own line
        line.append(f" · simulator check: {check.get('verdict', 'passed')}", style="dim")
    line.append(f" · {conversation.turn_count} {turns}", style="dim")
    return line


def _error_lines(outcome: TestRunOutcome) -> list[Text]:
    """Why the test run did not decide: its error, or why it is invalid or inconclusive, and
    why each conversation played before it was invalid."""
    lines = [Text(f"regenerated: {why}", style="yellow") for why in outcome.regenerated]
    if outcome.status in ("invalid", "inconclusive"):
        style = STATUS_STYLES[outcome.status].removeprefix("bold ")
        return [*lines, Text(f"{outcome.status}: {outcome.error}", style=f"bold {style}")]
    errors = [outcome.error, outcome.conversation.error if outcome.conversation else None]
    unique = list(dict.fromkeys(e for e in errors if e))
    return [*lines, *(Text(f"error: {e}", style="bold red") for e in unique)]


def evaluations_view(evaluations: tuple[EvaluationResult, ...]) -> RenderableType:
    if not evaluations:
        return Text("no evaluations", style="dim")
    table = Table(title="Evaluations", title_justify="left", expand=True, box=box.SIMPLE_HEAD)
    # One column for the name and the type (when the name is not the type): at 80 columns
    # the feedback keeps about two thirds of the width.
    table.add_column("evaluator", ratio=1, overflow="fold")
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("feedback", ratio=2)
    for evaluation in evaluations:
        feedback = Text(evaluation.feedback)
        if evaluation.error:
            feedback = Text(f"error: {evaluation.error}", style="red")
        elif evaluation.inconclusive and evaluation.inconclusive not in evaluation.feedback:
            feedback.append(f"\ninconclusive: {evaluation.inconclusive}", style="cyan")
        name = Text(evaluation.evaluator)
        if evaluation.type != evaluation.evaluator:
            name.append(f" · {evaluation.type}", style="dim")
        table.add_row(
            name,
            format_score(evaluation.score if evaluation.decided else None),
            status_text(evaluation.status),
            feedback,
        )
    return table
