"""Offline, deterministic answers for ``provider: mock`` and ``--mock``.

One session plays three roles, told apart by what it is asked:

- a judge, when a JSON schema is requested: JSON that validates against it (a version with
  its own ``response_format`` is the assistant, answering JSON valid against that schema);
- a simulated user, when the system prompt mentions ``[END_CONVERSATION]``: follow-ups drawn
  from the persona, then a closing line and the marker after two exchanges;
- the assistant under test otherwise: a short reply that quotes the user's message, so that
  keyword evaluators see the user's words come back. When the version has tools, it uses them
  on the first turn (and when a message names them) and mentions the outputs; see ``mock_tools``.

Everything derives from a SHA-256 of the inputs (never Python's per-process ``hash``), so the
same model, system prompt, history and message give the same answer on every machine. A
repeated play (``SessionOptions.sample``) adds its number to the seed, so repeats differ the
way sampling a real model makes them differ, and the same repeat is the same everywhere.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, ClassVar

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.hashing import digest
from prompttracker.llm.base import Session, SessionOptions
from prompttracker.llm.mock_tools import ToolActivity, use_tools
from prompttracker.messages import AssistantTurn, Message, Usage

END_MARKER = "[END_CONVERSATION]"  # same text as interlocutor.END_MARKER; kept literal to stay leaf
MOCK_JUDGEMENT = "mock judge: no model was called"
MOCK_ARGUMENT = "mock"  # the string in mock function-call arguments
EXCHANGES_BEFORE_ENDING = 2  # the simulated user ends once its history holds 2 exchanges

_REPLIES = (
    "Thanks for reaching out. I can help with that.",
    "Understood. Here is what I suggest as a next step.",
    "Happy to help. Let me walk you through it.",
    "Good question. Here is a short answer.",
)
_FOLLOW_UPS = (
    "Thanks. To be clear: {persona}",
    "Okay, but that does not fully answer me. {persona}",
    "I see. Can you help with this? {persona}",
    "Right. Just so you know: {persona}",
)
_CLOSINGS = (
    "Thanks, that settles it for me.",
    "Great, that is all I needed. Goodbye.",
    "Alright, thank you for your help.",
)


def _pick(options: tuple[str, ...], seed: str) -> str:
    return options[int(seed[:8], 16) % len(options)]


def quote(text: str, max_words: int = 30) -> str:
    """The first words of ``text`` on one line, for quoting back."""
    words = text.split()
    return " ".join(words[:max_words]) + (" …" if len(words) > max_words else "")


def assistant_reply(message: str, seed: str) -> str:
    """The assistant under test: a canned sentence plus the user's own words."""
    said = quote(message) or "(an empty message)"
    return f'{_pick(_REPLIES, seed)} You said: "{said}"'


def persona_sentences(system_prompt: str) -> list[str]:
    """The persona in first person, one sentence per item.

    The persona is the last paragraph of the system prompt that does not mention the end marker,
    without heading lines such as ``Your character and goal:``.
    """
    paragraphs = [p for p in re.split(r"\n\s*\n", system_prompt) if p.strip()]
    persona = next((p for p in reversed(paragraphs) if END_MARKER not in p), "")
    lines = persona.strip().splitlines()
    while len(lines) > 1 and lines[0].rstrip().endswith(":"):
        lines = lines[1:]
    text = " ".join(" ".join(lines).split())
    text = re.sub(r"\bYou are\b", "I am", text)
    text = re.sub(r"\bYou\b", "I", text)
    text = re.sub(r"\byou are\b", "I am", text)
    text = re.sub(r"\byour\b|\bYour\b", "my", text)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    return sentences or ["I have a question."]


def interlocutor_reply(system_prompt: str, prior: list[Message], seed: str) -> str:
    """The simulated user: an opener, a persona-driven follow-up, or a closing line and the marker.

    ``prior`` is the simulated user's own history (its messages are the ``assistant`` ones);
    ``seed`` covers the whole conversation, so a different answer gets a different follow-up.
    """
    if len(prior) >= 2 * EXCHANGES_BEFORE_ENDING:
        return f"{_pick(_CLOSINGS, seed)} {END_MARKER}"
    sentences = persona_sentences(system_prompt)
    if not prior:
        return f"Hi. {sentences[0]}"
    exchange = sum(1 for m in prior if m.role == "assistant")
    return _pick(_FOLLOW_UPS, seed).format(persona=sentences[exchange % len(sentences)])


def mock_json(
    schema: dict[str, Any],
    seed: str,
    name: str = "",
    root: Any = None,
    *,
    text: str = MOCK_JUDGEMENT,
) -> Any:
    """A value valid against ``schema``: objects, arrays, strings, enums, numbers, booleans.

    Numbers named like ``score`` land between 70 % and 100 % of their range (0–100 by default),
    chosen by the seed; strings are ``text`` (by default: no model was called).
    """
    root = schema if root is None else root

    def sub(sub_schema: dict[str, Any], sub_name: str) -> Any:
        return mock_json(sub_schema, seed, sub_name, root, text=text)

    if "$ref" in schema:
        return sub(_resolve(root, schema["$ref"]), name)
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return sub(schema[key][0], name)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][int(digest(seed, name, "enum")[:8], 16) % len(schema["enum"])]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties", {})
        return {key: sub(value, key) for key, value in properties.items()}
    if kind == "array":
        items = schema.get("items", {})
        count = max(1, int(schema.get("minItems", 1)))
        return [sub(items, f"{name}[{i}]") for i in range(count)]
    if kind in ("integer", "number"):
        return _mock_number(schema, seed, name, integer=kind == "integer")
    if kind == "boolean":
        return True  # a mock judge approves, like the scores it gives
    if kind == "null":
        return None
    return text


def mock_arguments(parameters: dict[str, Any], seed: str) -> dict[str, Any]:
    """Function-call arguments valid against a parameters schema (strings are ``"mock"``)."""
    value = mock_json(parameters, seed, text=MOCK_ARGUMENT)
    return value if isinstance(value, dict) else {}


def _mock_number(schema: dict[str, Any], seed: str, name: str, *, integer: bool) -> float | int:
    low = float(schema.get("minimum", 0))
    high = float(schema.get("maximum", max(low, 100)))
    if "score" in name.lower():
        fraction = 0.7 + 0.3 * (int(digest(seed, name)[:8], 16) % 31) / 30
    else:
        fraction = 0.0
    value = low + fraction * (high - low)
    return round(value) if integer else round(value, 2)


def _resolve(root: Any, ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"mock judge only follows local $ref, not {ref!r}")
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return dict(node)


def estimate_tokens(*texts: str) -> int:
    """A rough token count: words. Good enough for offline usage figures."""
    return sum(len(t.split()) for t in texts)


class MockSession(Session):
    """Deterministic offline session; keeps its history like a chat session."""

    conversation_mode: ClassVar[str] = "mock"

    def __init__(self, config: ModelConfig, settings: Settings, options: SessionOptions) -> None:
        super().__init__(config, settings, options)
        self._messages: list[Message] = list(options.history)

    @property
    def metadata(self) -> dict[str, Any]:
        """Marks stored conversations as offline answers."""
        return {"mock": True}

    async def _send(self, user_message: str) -> AssistantTurn:
        """Answer as a judge, a simulated user or an assistant (see the module docstring)."""
        started = time.perf_counter()
        system = self.options.system_prompt
        history = [f"{m.role}:{m.content}" for m in self._messages]
        # A repeat samples again, as a real model would (the first play keeps the plain seed).
        sample = [f"sample:{self.options.sample}"] if self.options.sample else []
        seed = digest(self.config.model or "", system, *history, "user:" + user_message, *sample)
        turn = len(self._messages) // 2 + 1
        response_format = self.options.response_format
        activity = ToolActivity()  # judges and simulated users never use tools
        if END_MARKER in system:  # the simulated user, with its structured stop when asked
            content = interlocutor_reply(system, self._messages, seed)
            if response_format is not None:
                stop = END_MARKER in content
                message = content.split(END_MARKER, 1)[0].strip()
                reason = "the customer's goal was reached (mock)" if stop else ""
                content = json.dumps({"message": message, "stop": stop, "reason": reason})
        elif response_format is not None and self.config.response_format is None:  # a judge
            content = json.dumps(mock_json(response_format.schema, seed))
        else:
            activity = use_tools(
                self.config,
                user_message,
                seed,
                first_turn=turn == 1,
                function_outputs=self.options.function_outputs,
                arguments_for=mock_arguments,
            )
            said = " ".join(filter(None, [assistant_reply(user_message, seed), activity.summary]))
            # A version with response_format answers JSON valid against it, its strings saying
            # what the plain reply would.
            content = (
                json.dumps(mock_json(response_format.schema, seed, text=said))
                if response_format is not None
                else said
            )
        self._messages += [
            Message(role="user", content=user_message, turn=turn),
            Message(
                role="assistant", content=content, turn=turn, tool_calls=tuple(activity.tool_calls)
            ),
        ]
        if self.options.on_text is not None:  # streams as the real routes do, a word at a time
            for word in re.findall(r"\S+\s*", content):
                self.options.on_text(word)
        return AssistantTurn(
            content=content,
            response_id=f"mock-{seed[:12]}",
            usage=Usage(
                input_tokens=estimate_tokens(system, *history, user_message),
                output_tokens=estimate_tokens(content),
            ),
            latency_ms=(time.perf_counter() - started) * 1000,
            tool_calls=tuple(activity.tool_calls),
            extras=activity.extras,
        )
