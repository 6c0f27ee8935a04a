"""The one multi-turn loop. Sessions only know how to send one user message.

``Conversation`` holds what a conversation has said so far and plays it a turn at a time;
``simulate`` plays it to the end against a simulated user (``pt run-tests``), and ``pt chat``
plays it a turn at a time for a person at the keyboard, through the same methods.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from prompttracker.errors import LLMCallError
from prompttracker.llm.base import Session
from prompttracker.messages import ConversationResult, Message, Metered, StopReason
from prompttracker.progress import step
from prompttracker.simulator_checks import SimulatorProblem, check_user_turn


class Reply(NamedTuple):
    """The simulated user's answer: its message, whether it ends the conversation, why, and
    whether the answer was cut at the token cap."""

    message: str
    stop: bool
    reason: str | None = None
    cut: bool = False


class Interlocutor(Protocol):
    async def reply(self, messages: list[Message]) -> Reply | tuple[str, bool]:
        """The simulated user's next message and whether it ended the conversation (a
        ``Reply`` also says why, and whether it was cut)."""
        ...


class Asked(NamedTuple):
    """What the simulated user said, and what its call used."""

    text: str
    ended: bool
    written: Metered
    cut: bool = False  # its answer stopped at the token cap


class Conversation:
    """A session and the messages it has exchanged, with the API extras of its turns."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.messages: list[Message] = []
        self.extras: dict[str, Any] = {}

    @property
    def turns(self) -> int:
        """How many turns the assistant has answered."""
        return sum(1 for m in self.messages if m.role == "assistant")

    async def play(
        self, user_text: str, written: Metered | None = None, *, keep_failed: bool = True
    ) -> Message:
        """Send ``user_text`` as the next turn and return the assistant's message. ``written``:
        what the simulated user's call that wrote it used.

        When the API fails the user message stays, as the last word of a transcript that ends
        in error, unless ``keep_failed`` is false (a chat goes on, as the session does: a
        failed turn leaves no trace in it). A cancelled turn always leaves none.
        """
        turn = self.turns + 1
        step(turn=turn)
        self.messages.append(user_message(user_text, turn, written))
        try:
            answer = await self.session.send(user_text)
        except LLMCallError:
            if not keep_failed:
                self.messages.pop()
            raise
        except BaseException:
            self.messages.pop()
            raise
        message = Message(
            role="assistant",
            content=answer.content,
            turn=turn,
            response_id=answer.response_id,
            usage=answer.usage,
            cost_usd=answer.cost_usd,
            latency_ms=answer.latency_ms,
            tool_calls=answer.tool_calls,
        )
        self.messages.append(message)
        _merge_extras(self.extras, answer.extras)
        return message

    async def ask(self, interlocutor: Interlocutor) -> Asked:
        """The simulated user's next message, whether it ended, what its calls used, and
        whether it was cut at the token cap. When it ends, why goes to the conversation's
        metadata (``stop``)."""
        with self.session.calls.metering() as meter:
            said = Reply(*await interlocutor.reply(self.messages))
        if said.stop:
            self.extras["stop"] = {"by": "simulated user", "reason": said.reason}
        return Asked(said.message, said.stop, meter.total, said.cut)

    def result(self, stop_reason: StopReason, error: str | None = None) -> ConversationResult:
        return ConversationResult(
            messages=tuple(self.messages),
            turn_count=self.turns,
            completed=error is None,
            stop_reason=stop_reason,
            error=error,
            response_ids=tuple(m.response_id for m in self.messages if m.response_id),
            conversation_mode=self.session.conversation_mode,
            metadata={**self.session.metadata, **self.extras},
        )


async def simulate(
    session: Session,
    interlocutor: Interlocutor | None,
    first_message: str,
    max_turns: int,
) -> ConversationResult:
    """Play up to ``max_turns`` user→assistant turns. Without an interlocutor: one turn.

    An empty ``first_message`` lets the interlocutor open. API errors end the conversation with
    ``stop_reason="error"`` and keep the turns that happened. Every message the simulated user
    writes is checked first (``simulator_checks``): one that fails a check is not sent, and the
    conversation ends invalid (``stop_reason="simulated_user_invalid"``).
    """
    conversation = Conversation(session)
    stop_reason: StopReason = "max_turns" if interlocutor else "single_turn"
    user_text = first_message
    written: Metered | None = None  # the simulated user's call that wrote user_text
    try:
        if not user_text.strip():
            if interlocutor is None:
                raise LLMCallError("the first user message is empty and no interlocutor is set")
            user_text, ended, written, cut = await conversation.ask(interlocutor)
            if ended and not user_text.strip():
                return conversation.result("interlocutor_ended")
            problem = check_user_turn(user_text, 1, conversation.messages, cut=cut)
            if problem:
                return _invalid(conversation, problem, user_text, written)
        while conversation.turns < max_turns:
            await conversation.play(user_text, written)
            turn = conversation.turns
            if interlocutor is None or turn >= max_turns:
                break
            user_text, ended, written, cut = await conversation.ask(interlocutor)
            if ended and not user_text.strip():
                stop_reason = "interlocutor_ended"
                break
            problem = check_user_turn(user_text, turn + 1, conversation.messages, cut=cut)
            if problem:
                return _invalid(conversation, problem, user_text, written)
            if ended:
                stop_reason = "interlocutor_ended"
                # Text before the marker is kept as the user's last word; the assistant
                # never sees it, so no further turn is played.
                conversation.messages.append(user_message(user_text, turn + 1, written))
                break
    except LLMCallError as exc:
        return conversation.result("error", str(exc))
    return conversation.result(stop_reason)


def _invalid(
    conversation: Conversation, problem: SimulatorProblem, text: str, written: Metered | None
) -> ConversationResult:
    """The simulated user broke down: what it wrote is kept as its last word (never sent), and
    the conversation ends invalid, since it says nothing about the prompt."""
    if text.strip():
        conversation.messages.append(user_message(text, problem.turn, written))
    conversation.extras["invalid"] = {
        "by": "simulator checks",
        "check": problem.check,
        "turn": problem.turn,
        "reason": problem.describe(),
    }
    return conversation.result("simulated_user_invalid")


def user_message(text: str, turn: int, written: Metered | None = None) -> Message:
    """A user message; one the simulated user wrote carries what its call used."""
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
