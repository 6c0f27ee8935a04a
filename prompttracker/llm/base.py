"""The one extension point for APIs: a Session sends one user message, gets the assistant turn.

Also the two request pieces every route builds the same way: earlier turns and sampling options.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError
from prompttracker.llm.call_layer import CALLER_NAMES, CallLayer, current_caller
from prompttracker.messages import AssistantTurn, Message


@dataclass(frozen=True)
class JsonSchema:
    """Structured output: the answer must be JSON matching ``schema`` (the judges', the
    simulated user's, and a prompt version's ``response_format``)."""

    name: str
    schema: dict[str, Any]
    strict: bool = True  # OpenAI's strict mode


@dataclass
class SessionOptions:
    """Everything a session needs besides the model config."""

    system_prompt: str = ""
    history: Sequence[Message] = ()  # earlier turns to start from (one-shot calls, interlocutor)
    response_format: JsonSchema | None = None
    function_outputs: dict[str, Any] = field(default_factory=dict)
    calls: CallLayer | None = None  # the run's call layer; None: the session opens its own
    # Which repeat of its test run this session plays (0 first): real models sample anyway,
    # the mock varies its answers with it.
    sample: int = 0
    # Where the reply's text goes as it arrives, on routes that stream (``pt chat`` in a
    # terminal); None: the reply comes whole.
    on_text: Callable[[str], None] | None = None


class Session(ABC):
    """A conversation with one model on one API.

    Subclasses implement ``_send``; ``send`` meters each answer at the call layer. The
    multi-turn loop lives in ``conversation.simulate``.
    Clients come from ``options.calls``, the run's call layer; a session opened without one (a
    script, a test) gets a private layer that ``aclose`` closes.
    """

    conversation_mode: ClassVar[str] = "messages"

    def __init__(self, config: ModelConfig, settings: Settings, options: SessionOptions) -> None:
        self.config = config
        self.settings = settings
        self.options = options
        self._owns_calls = options.calls is None
        self.calls = options.calls or CallLayer(settings, concurrency=1)

    async def send(self, user_message: str) -> AssistantTurn:
        """Send one user message and return the assistant's answer, metered and priced.

        Raises ``LLMCallError`` when the API fails after the SDK's retries.
        """
        try:
            answer = await self._send(user_message)
        except LLMCallError as exc:
            raise exc.by(CALLER_NAMES[current_caller.get()]) from None
        cost = self.calls.record(self.config, answer.usage)
        return answer.model_copy(update={"cost_usd": cost})

    @abstractmethod
    async def _send(self, user_message: str) -> AssistantTurn:
        """The route's own request and response for one user message."""

    @property
    def metadata(self) -> dict[str, Any]:
        """API-specific state to store with the conversation (thread id, …)."""
        return {}

    async def aclose(self) -> None:
        """Called once the conversation is over: closes the call layer if it is the session's."""
        if self._owns_calls:
            await self.calls.aclose()


def plain_turns(history: Sequence[Message], taker: str) -> list[dict[str, str]]:
    """Earlier turns as ``{"role", "content"}`` dicts; only user and assistant turns are valid.

    A tool message means nothing without the assistant message that called it, and our Message
    values do not carry that pairing. ``taker`` names what refuses it ("responses history").
    """
    turns = []
    for message in history:
        if message.role not in ("user", "assistant"):
            raise ValueError(f"{taker} takes user/assistant messages, not {message.role!r}")
        turns.append({"role": message.role, "content": message.content})
    return turns


def sampling_params(config: ModelConfig, max_tokens_key: str | None) -> dict[str, Any]:
    """``temperature``, ``top_p`` and the token cap (under the API's own name), when set.

    Unset options are left out, so the API's defaults apply; ``max_tokens_key=None`` leaves
    the cap to the caller.
    """
    params: dict[str, Any] = {}
    if config.temperature is not None:
        params["temperature"] = config.temperature
    if config.top_p is not None:
        params["top_p"] = config.top_p
    if max_tokens_key is not None and config.max_tokens is not None:
        params[max_tokens_key] = config.max_tokens
    return params
