"""Immutable result values: messages, tool calls, usage, one assistant turn, a conversation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]
# ``simulated_user_invalid``: a message of the simulated user failed a check (it was empty,
# repeated itself…), so the conversation says nothing about the prompt; the check is in the
# metadata (``invalid``). ``simulated_user_empty`` is how runs before that said "empty".
StopReason = Literal[
    "max_turns",
    "interlocutor_ended",
    "error",
    "single_turn",
    "simulated_user_invalid",
    "simulated_user_empty",
    "chat",
]


class Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class Usage(Value):
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class Metered(Value):
    """Calls, tokens and cost of one caller (or of all), over one evaluation, test run or run.

    ``priced_usd`` sums the calls whose price is known; when any call's price is unknown the
    cost is unknown (``cost_usd`` is None), never a partial figure shown as the whole.
    """

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    priced_usd: float = 0.0
    unpriced_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cost_usd(self) -> float | None:
        return None if self.unpriced_calls else self.priced_usd

    @property
    def usage(self) -> Usage:
        return Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)

    def add(self, usage: Usage, cost_usd: float | None) -> Metered:
        """This tally plus one call."""
        return self + Metered(
            calls=1,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            priced_usd=cost_usd or 0.0,
            unpriced_calls=int(cost_usd is None),
        )

    def __add__(self, other: Metered) -> Metered:
        return Metered(
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            priced_usd=self.priced_usd + other.priced_usd,
            unpriced_calls=self.unpriced_calls + other.unpriced_calls,
        )


def metered_total(by_caller: dict[str, Metered]) -> Metered:
    """Every caller's tally added up."""
    return sum(by_caller.values(), Metered())


def merge_metered(tallies: Iterable[dict[str, Metered]]) -> dict[str, Metered]:
    """Tallies by caller (one per test run, say) added up caller by caller."""
    merged: dict[str, Metered] = {}
    for tally in tallies:
        for caller, metered in tally.items():
            merged[caller] = merged.get(caller, Metered()) + metered
    return merged


class ToolCall(Value):
    """A call the model made (function or hosted tool) and the output it got back."""

    id: str = ""
    type: str = "function"  # function | web_search | file_search | code_interpreter
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    output: Any = None


class AssistantTurn(Value):
    """What a session returns for one user message."""

    content: str
    response_id: str | None = None
    usage: Usage = Usage()
    cost_usd: float | None = None  # set by the call layer from the price of ``usage``
    latency_ms: float = 0.0
    tool_calls: tuple[ToolCall, ...] = ()
    extras: dict[str, Any] = Field(default_factory=dict)  # e.g. file_search_results

    @property
    def truncated(self) -> bool:
        """Whether the answer was cut at the token cap (each API names that its own way)."""
        return any(
            stop.get("stop_reason") in TRUNCATED for stop in self.extras.get("stop_reasons", [])
        )


# The stop reasons that mean "cut at the token cap": Chat Completions, Anthropic, Gemini,
# Responses (its incomplete_details.reason).
TRUNCATED = {"length", "max_tokens", "MAX_TOKENS", "max_output_tokens"}


class Message(Value):
    role: Role
    content: str
    turn: int
    response_id: str | None = None
    # The call that wrote the message: the assistant's for its turns, the simulated user's for
    # the user turns it wrote (None for a user turn from the prompt's template).
    usage: Usage | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()


class ConversationResult(Value):
    """A finished conversation: what every evaluator receives and what the store keeps."""

    messages: tuple[Message, ...]
    turn_count: int
    completed: bool
    stop_reason: StopReason
    error: str | None = None
    response_ids: tuple[str, ...] = ()
    conversation_mode: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)  # thread_id, search results…

    @property
    def usage(self) -> Usage:
        total = Usage()
        for message in self.messages:
            if message.role == "assistant" and message.usage:
                total = total + message.usage
        return total

    def assistant_messages(self) -> list[Message]:
        return [m for m in self.messages if m.role == "assistant"]

    @property
    def invalid(self) -> str | None:
        """Why the simulated user made this conversation invalid, or None."""
        found = self.metadata.get("invalid")
        return found.get("reason") if isinstance(found, dict) else None

    @property
    def final_response(self) -> str:
        assistant = self.assistant_messages()
        return assistant[-1].content if assistant else ""
