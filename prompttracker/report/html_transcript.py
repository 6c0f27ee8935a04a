"""One test run as HTML: a collapsed ``<details>`` with the conversation turn by turn, why it
stopped, what went wrong, and the evaluators' verdicts — what ``transcript_view`` prints.

Every piece of text from a model, a dataset or an API goes through ``esc`` (or ``pretty``),
never into the markup as written.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from prompttracker.messages import ConversationResult, Message, Metered, ToolCall
from prompttracker.report.evidence import CALLER_NAMES
from prompttracker.report.transcript import (
    format_score,
    format_seconds,
    message_stats,
    simulated,
    usd,
)
from prompttracker.results import EvaluationResult, TestRunOutcome

# A tool output or metadata block longer than this is cut (with a note): search results can be
# long, and a big run has many of them. The database keeps them whole.
BLOCK_LIMIT = 20_000


def esc(value: object) -> str:
    """``value`` as text safe inside an element or a quoted attribute."""
    return html.escape(str(value), quote=True)


def badge(status: str) -> str:
    """A status word in its colour (the word itself carries the meaning, not the colour)."""
    return f'<span class="badge status s-{esc(status)}">{esc(status)}</span>'


def num_class(numeric: bool) -> str:
    """The class attribute of a right-aligned numeric cell, or nothing."""
    return ' class="num"' if numeric else ""


def pretty(value: Any, limit: int = BLOCK_LIMIT) -> str:
    """``value`` as an escaped ``<pre>`` block: strings as written, the rest as indented JSON."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    cut = ""
    if len(text) > limit:
        cut = f'<p class="note">… {len(text) - limit:,} more characters (in the database)</p>'
        text = text[:limit]
    return f"<pre>{esc(text)}</pre>{cut}"


def by_caller(metered: Mapping[str, Metered]) -> list[tuple[str, Metered]]:
    """Each caller's tally under its name: the prompt under test, the simulated user, the
    judges, then any other caller."""
    order = list(CALLER_NAMES)
    callers = sorted(metered, key=lambda c: (order.index(c) if c in order else len(order), c))
    return [(CALLER_NAMES.get(c, c.replace("_", " ")), metered[c]) for c in callers]


def item_attributes(outcome: TestRunOutcome, classes: str = "") -> str:
    """The class and data attributes the filters read, shared by a summary row and its
    transcript."""
    return (
        f'class="{" ".join(["pt-item", classes]).strip()}" data-status="{esc(outcome.status)}" '
        f'data-test="{esc(qualified_name(outcome))}" data-version="v{outcome.version}" '
        f'data-label="{esc(outcome.label)}"'
    )


def qualified_name(outcome: TestRunOutcome) -> str:
    return f"{outcome.prompt_slug}::{outcome.test_name}"


def transcript_html(outcome: TestRunOutcome, anchor: str) -> str:
    """The test run as a closed ``<details>`` element whose id is ``anchor``."""
    parts = [
        f'<details id="{esc(anchor)}" {item_attributes(outcome, "transcript")}>',
        f"<summary>{badge(outcome.status)}"
        f'<span class="label">{esc(outcome.label)}</span>'
        f'<span class="muted">score {esc(format_score(outcome.score))} · '
        f"{esc(format_seconds(outcome.duration_ms))}</span></summary>",
        '<div class="body">',
        _facts(outcome),
        _prompts(outcome),
    ]
    conversation = outcome.conversation
    if conversation is None:
        parts.append('<p class="muted">(no conversation was played)</p>')
    else:
        parts.append(_messages(outcome, conversation))
        parts.append(_stop_line(conversation))
    parts.extend(_problems(outcome))
    parts.append(_evaluations(outcome.evaluations))
    if conversation is not None and conversation.metadata:
        parts.append(_more("Conversation metadata", pretty(conversation.metadata)))
    parts.append("</div></details>")
    return "\n".join(parts)


def _facts(outcome: TestRunOutcome) -> str:
    route = esc(outcome.model_config_.label) + (
        ' <span class="badge s-invalid">MOCK</span>' if outcome.mock else ""
    )
    calls = ", ".join(
        f"{esc(name)}: {m.calls} call{'s' if m.calls != 1 else ''}, {m.total_tokens:,} tokens"
        for name, m in by_caller(outcome.metered)
    )
    facts = [
        ("prompt", esc(f"{outcome.prompt_slug} ({outcome.prompt_name}) v{outcome.version}")),
        ("dataset", esc(f"{outcome.dataset} [{outcome.row_name}]")),
        ("route", route),
        (
            "status",
            f"{badge(outcome.status)} score {esc(format_score(outcome.score))} · "
            f"{esc(format_seconds(outcome.duration_ms))}",
        ),
    ]
    if outcome.repeats > 1:
        facts.append(("play", f"{outcome.repeat + 1} of {outcome.repeats}"))
    if calls:
        facts.append(("calls", f"{calls} · {esc(usd(outcome.cost_usd))}"))
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    return f'<dl class="facts">{rows}</dl>'


def _prompts(outcome: TestRunOutcome) -> str:
    """The rendered prompts and the row's variables, folded away: long, and the same for
    every row of a version."""
    blocks = []
    if outcome.system_prompt:
        blocks.append(f"<h4>System prompt</h4>{pretty(outcome.system_prompt)}")
    if outcome.user_prompt:
        blocks.append(f"<h4>User prompt</h4>{pretty(outcome.user_prompt)}")
    if outcome.variables:
        blocks.append(f"<h4>Variables</h4>{pretty(outcome.variables)}")
    return _more("Prompts and variables as rendered", "".join(blocks)) if blocks else ""


def _more(title: str, body: str) -> str:
    return f'<details class="more"><summary>{esc(title)}</summary>{body}</details>'


def _messages(outcome: TestRunOutcome, conversation: ConversationResult) -> str:
    assistant = f"Assistant · {outcome.model_config_.label}"
    items = [_message(m, assistant, simulated(m, conversation)) for m in conversation.messages]
    return f'<ol class="messages">{"".join(items)}</ol>'


def _message(message: Message, assistant_label: str, by_simulated_user: bool) -> str:
    if message.role == "user":
        who = "User (simulated)" if by_simulated_user else "User"
    elif message.role == "assistant":
        who = assistant_label
    else:
        who = message.role.capitalize()
    classes = f"msg msg-{esc(message.role)}" + (" simulated" if by_simulated_user else "")
    content = message.content or "(empty)"
    calls = "".join(_tool_call(call) for call in message.tool_calls)
    return (
        f'<li class="{classes}"><div class="msg-head"><span class="who">{esc(who)}</span>'
        f" · turn {message.turn}{_message_stats(message)}</div>"
        f'<div class="content">{esc(content)}</div>{calls}</li>'
    )


def _message_stats(message: Message) -> str:
    stats = message_stats(message)
    return f'<span class="stats">{esc(" · ".join(stats))}</span>' if stats else ""


def _tool_call(call: ToolCall) -> str:
    kind = "" if call.type in ("function", call.name) else f"{call.type}: "
    call_id = f' <span class="muted">{esc(call.id)}</span>' if call.id else ""
    output = (
        '<div class="muted">no output</div>'
        if call.output is None
        else f'<div class="muted">output</div>{pretty(call.output)}'
    )
    return (
        f'<div class="tool-call"><div>⚙ <span class="name">{esc(kind + call.name)}</span>'
        f'{call_id}</div><div class="muted">arguments</div>{pretty(call.arguments)}{output}</div>'
    )


def _stop_line(conversation: ConversationResult) -> str:
    parts = [f"stop reason: <strong>{esc(conversation.stop_reason)}</strong>"]
    stop = conversation.metadata.get("stop")
    if isinstance(stop, dict) and stop.get("reason"):
        parts.append(f"({esc(stop.get('by', 'simulated user'))}: {esc(stop['reason'])})")
    check = conversation.metadata.get("simulator_check")
    if isinstance(check, dict) and "invalid" not in check:  # an invalid one has its own line
        parts.append(f"· simulator check: {esc(check.get('verdict', 'passed'))}")
    turns = "turn" if conversation.turn_count == 1 else "turns"
    parts.append(f"· {conversation.turn_count} {turns}")
    return f'<p class="stop">{" ".join(parts)}</p>'


def _problems(outcome: TestRunOutcome) -> list[str]:
    """Why the test run did not decide, and why each play before it was invalid."""
    lines = [
        f'<p class="problem s-invalid">regenerated: {esc(why)}</p>' for why in outcome.regenerated
    ]
    if outcome.status in ("invalid", "inconclusive"):
        return [
            *lines,
            f'<p class="problem s-{outcome.status}">{outcome.status}: {esc(outcome.error)}</p>',
        ]
    errors = [outcome.error, outcome.conversation.error if outcome.conversation else None]
    unique = list(dict.fromkeys(e for e in errors if e))
    return [*lines, *(f'<p class="problem s-failed">error: {esc(e)}</p>' for e in unique)]


def _evaluations(evaluations: tuple[EvaluationResult, ...]) -> str:
    if not evaluations:
        return '<p class="muted">no evaluations</p>'
    rows = "".join(_evaluation_row(e) for e in evaluations)
    return (
        '<table class="evaluations"><caption class="muted">Evaluations</caption><thead><tr>'
        '<th scope="col">evaluator</th><th scope="col">type</th>'
        '<th scope="col" class="num">score</th><th scope="col">result</th>'
        f'<th scope="col">feedback</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _evaluation_row(evaluation: EvaluationResult) -> str:
    feedback = esc(evaluation.feedback)
    if evaluation.error:
        feedback = f'<span class="s-error">error: {esc(evaluation.error)}</span>'
    elif evaluation.inconclusive and evaluation.inconclusive not in evaluation.feedback:
        feedback += (
            f'<br><span class="s-inconclusive">inconclusive: {esc(evaluation.inconclusive)}</span>'
        )
    judge = evaluation.details.get("judge_model")
    if judge:
        threshold = evaluation.details.get("threshold_score")
        feedback += f'<div class="note">judge {esc(judge)}' + (
            f" · threshold {esc(threshold)}</div>" if threshold is not None else "</div>"
        )
    score = format_score(evaluation.score if evaluation.decided else None)
    return (
        f"<tr><td>{esc(evaluation.evaluator)}</td><td>{esc(evaluation.type)}</td>"
        f'<td class="num">{esc(score)}</td><td>{badge(evaluation.status)}</td>'
        f"<td>{feedback}</td></tr>"
    )
