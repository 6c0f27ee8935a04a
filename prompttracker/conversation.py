"""The one multi-turn loop. Sessions only know how to send one user message."""

from __future__ import annotations

from typing import Any, Protocol

from prompttracker.errors import LLMCallError
from prompttracker.llm.base import Session
from prompttracker.messages import ConversationResult, Message, Metered, StopReason
from prompttracker.progress import step


class Interlocutor(Protocol):
    async def reply(self, messages: list[Message]) -> tuple[str, bool]:
        """The simulated user's next message, and whether it ended the conversation."""
        ...


async def simulate(
    session: Session,
    interlocutor: Interlocutor | None,
    first_message: str,
    max_turns: int,
) -> ConversationResult:
    """Play up to ``max_turns`` user→assistant turns. Without an interlocutor: one turn.

    An empty ``first_message`` lets the interlocutor open. API errors end the conversation with
    ``stop_reason="error"`` and keep the turns that happened.
    """
    messages: list[Message] = []
    extras: dict[str, Any] = {}
    stop_reason: StopReason = "max_turns" if interlocutor else "single_turn"
    error: str | None = None
    user_text = first_message
    written: Metered | None = None  # the simulated user's call that wrote user_text
    turn = 0
    try:
        if not user_text.strip():
            if interlocutor is None:
                raise LLMCallError("the first user message is empty and no interlocutor is set")
            user_text, ended, written = await _ask(session, interlocutor, messages)
            if ended and not user_text.strip():
                stop_reason = "interlocutor_ended"
                return _result(session, messages, stop_reason, None, extras)
            if not user_text.strip():
                return _empty_user_turn(session, messages, 1, extras)
        while turn < max_turns:
            turn += 1
            step(turn=turn)
            messages.append(_user_message(user_text, turn, written))
            answer = await session.send(user_text)
            messages.append(
                Message(
                    role="assistant",
                    content=answer.content,
                    turn=turn,
                    response_id=answer.response_id,
                    usage=answer.usage,
                    cost_usd=answer.cost_usd,
                    latency_ms=answer.latency_ms,
                    tool_calls=answer.tool_calls,
                )
            )
            _merge_extras(extras, answer.extras)
            if interlocutor is None or turn >= max_turns:
                break
            user_text, ended, written = await _ask(session, interlocutor, messages)
            if not ended and not user_text.strip():
                return _empty_user_turn(session, messages, turn + 1, extras)
            if ended:
                stop_reason = "interlocutor_ended"
                if user_text.strip():
                    # Text before the marker is kept as the user's last word; the assistant
                    # never sees it, so no further turn is played.
                    messages.append(_user_message(user_text, turn + 1, written))
                break
    except LLMCallError as exc:
        stop_reason, error = "error", str(exc)
    return _result(session, messages, stop_reason, error, extras)


def _empty_user_turn(
    session: Session, messages: list[Message], turn: int, extras: dict[str, Any]
) -> ConversationResult:
    """The simulated user wrote nothing: an empty turn is not sent to the assistant; the test
    run ends in error, since nothing was learnt about the prompt."""
    error = (
        f"the simulated user wrote an empty message for turn {turn} (without ending the "
        "conversation): check its model and the row's interlocutor_simulation_prompt"
    )
    return _result(session, messages, "simulated_user_empty", error, extras)


async def _ask(
    session: Session, interlocutor: Interlocutor, messages: list[Message]
) -> tuple[str, bool, Metered]:
    """The simulated user's next message, whether it ended, and what its calls used."""
    with session.calls.metering() as meter:
        text, ended = await interlocutor.reply(messages)
    return text, ended, meter.total


def _user_message(text: str, turn: int, written: Metered | None) -> Message:
    if written is None or not written.calls:
        return Message(role="user", content=text, turn=turn)
    return Message(
        role="user", content=text, turn=turn, usage=written.usage, cost_usd=written.cost_usd
    )


def _merge_extras(bucket: dict[str, Any], extras: dict[str, Any]) -> None:
    """Per-turn API extras (search results…) accumulate over the conversation."""
    for key, value in extras.items():
        if isinstance(value, list):
            bucket.setdefault(key, []).extend(value)
        else:
            bucket[key] = value


def _result(
    session: Session,
    messages: list[Message],
    stop_reason: StopReason,
    error: str | None,
    extras: dict[str, Any],
) -> ConversationResult:
    completed_turns = sum(1 for m in messages if m.role == "assistant")
    return ConversationResult(
        messages=tuple(messages),
        turn_count=completed_turns,
        completed=error is None,
        stop_reason=stop_reason,
        error=error,
        response_ids=tuple(m.response_id for m in messages if m.response_id),
        conversation_mode=session.conversation_mode,
        metadata={**session.metadata, **extras},
    )
