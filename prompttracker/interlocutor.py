"""The simulated user: an LLM that plays the dataset row's persona against the assistant."""

from __future__ import annotations

import json
from typing import Any

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.conversation import Reply
from prompttracker.evaluators.judges import ask_judge_model, format_transcript
from prompttracker.llm import router
from prompttracker.llm.base import JsonSchema
from prompttracker.llm.call_layer import CallLayer
from prompttracker.messages import ConversationResult, Message

END_MARKER = "[END_CONVERSATION]"

# The structured stop: the simulated user says whether it stops, and why, in fields of its
# answer, instead of remembering a magic string. A server that ignores structured output
# answers in prose; the marker is read from it then.
STOP_SCHEMA = JsonSchema(
    name="simulated_user_turn",
    schema={
        "type": "object",
        "properties": {
            "message": {
                "type": "string",
                "description": "Your next message to the assistant, in character",
            },
            "stop": {
                "type": "boolean",
                "description": "true when your goal is reached or nothing is left to add",
            },
            "reason": {"type": "string", "description": "Why you stop; empty when you go on"},
        },
        "required": ["message", "stop", "reason"],
        "additionalProperties": False,
    },
)

INSTRUCTIONS = f"""You are role-playing a USER talking to an AI assistant, to test that assistant.
Stay in character as described below. Write only the user's next message: no labels, no
narration, no quotation marks. Keep messages short and natural, as a real person would type.
Answer with JSON: "message" (your next message), "stop" (true when your goal is reached, or
the conversation has nothing left to add; your message may then be a brief closing line) and
"reason" (why you stop, empty when you go on). If you cannot answer in JSON, write only the
message, followed by {END_MARKER} when you stop.

Your character and goal:
"""

OPENING = "(The conversation has not started yet. Write your opening message to the assistant.)"


class LLMInterlocutor:
    """Replies through the routing table like any one-shot call, with the roles flipped."""

    def __init__(
        self,
        persona: str,
        config: ModelConfig,
        settings: Settings,
        calls: CallLayer | None = None,
        sample: int = 0,
    ) -> None:
        self.system_prompt = INSTRUCTIONS + persona.strip()
        self.config = config
        self.settings = settings
        self.calls = calls
        self.sample = sample  # which play of the conversation (a regenerated one draws anew)

    async def reply(self, messages: list[Message]) -> Reply:
        """The next user message, whether the simulated user ended the conversation, why (its
        ``reason``; for a marker read from prose, that it was the marker), and whether its
        answer was cut at the token cap."""
        flipped = flip_roles(messages)
        if not flipped or flipped[-1].role != "user":
            flipped.append(Message(role="user", content=OPENING, turn=len(messages) + 1))
        answer = await router.complete(
            self.config,
            self.settings,
            system_prompt=self.system_prompt,
            messages=flipped,
            response_format=STOP_SCHEMA,
            calls=self.calls,
            caller="simulated_user",
            sample=self.sample,
        )
        return Reply(*read_reply(answer.content), cut=answer.truncated)


def flip_roles(messages: list[Message]) -> list[Message]:
    """The assistant's words become the interlocutor's input and vice versa."""
    swap = {"user": "assistant", "assistant": "user"}
    return [
        Message(role=swap[m.role], content=m.content, turn=m.turn)  # type: ignore[arg-type]
        for m in messages
        if m.role in swap
    ]


def read_reply(text: str) -> tuple[str, bool, str | None]:
    """``(message, stop, reason)`` from the simulated user's answer: its JSON fields, or —
    when it answered in prose — the text with the end marker read from it."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        message, marked = split_end_marker(data["message"])  # a marker inside JSON counts too
        if not (data.get("stop") is True or marked):
            return message, False, None
        reason = str(data.get("reason") or "").strip()
        return message, True, reason or ("the end marker" if marked else "no reason given")
    message, marked = split_end_marker(text)
    return message, marked, "the end marker, in a prose answer" if marked else None


def split_end_marker(text: str) -> tuple[str, bool]:
    """Text before ``[END_CONVERSATION]`` is kept; the marker itself never reaches the assistant."""
    if END_MARKER not in text:
        return text.strip(), False
    return text.split(END_MARKER, 1)[0].strip(), True


# The optional LLM check of the simulated user (settings ``simulator_check``), on the judge
# model: what the deterministic checks cannot see.
REVIEW_SCHEMA = JsonSchema(
    name="simulated_user_review",
    schema={
        "type": "object",
        "properties": {
            "reason": {"type": "string", "description": "What the USER did, in one sentence"},
            "followed_persona": {
                "type": "boolean",
                "description": "true when every USER message fits the persona and its goal",
            },
            "ended_early": {
                "type": "boolean",
                "description": "true when the USER ended the conversation before its goal was "
                "reached or clearly refused",
            },
        },
        "required": ["reason", "followed_persona", "ended_early"],
        "additionalProperties": False,
    },
)

REVIEW_SYSTEM_PROMPT = (
    "You check test conversations in which a language model played a USER, following a "
    "persona, to test an AI ASSISTANT. Judge only the USER's messages, never the assistant's "
    "quality. Answer only with JSON."
)


def review_prompt(persona: str, transcript: str, ended_by_user: bool) -> str:
    ending = (
        "The USER ended the conversation itself."
        if ended_by_user
        else "The conversation stopped at its turn limit; the USER did not end it."
    )
    return (
        f"THE USER'S PERSONA AND GOAL:\n{persona.strip()}\n\nCONVERSATION:\n{transcript}\n\n"
        f"{ending}\n\nDid every USER message stay in this persona and pursue its goal (not "
        "speaking as the assistant, not talking about the test)? Did the USER end the "
        'conversation before its goal was reached or refused? Answer with JSON: "reason", '
        '"followed_persona" (true/false), "ended_early" (true/false).'
    )


async def review(
    conversation: ConversationResult,
    persona: str,
    config: ModelConfig,
    settings: Settings,
    calls: CallLayer | None = None,
) -> dict[str, Any]:
    """Ask the judge model whether the simulated user kept to its persona and did not stop
    before its goal. The verdict, as the conversation's metadata keeps it (``simulator_check``);
    ``invalid`` is the reason when it failed. An answer that cannot be read invalidates
    nothing, and says so."""
    prompt = review_prompt(
        persona,
        format_transcript(conversation.messages),
        conversation.stop_reason == "interlocutor_ended",
    )
    judge = config.model_copy(update={"temperature": 0})
    answer = await ask_judge_model(
        judge, settings, REVIEW_SYSTEM_PROMPT, prompt, REVIEW_SCHEMA, calls
    )
    try:
        data = json.loads(answer.content)
        followed, early = data["followed_persona"], data["ended_early"]
        if not (isinstance(followed, bool) and isinstance(early, bool)):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return {"verdict": "unreadable", "raw_response": answer.content[:1000]}
    reason = str(data.get("reason") or "").strip() or "no reason given"
    verdict: dict[str, Any] = {"followed_persona": followed, "ended_early": early, "reason": reason}
    if not followed:
        verdict["invalid"] = (
            f"the simulator check found the simulated user left its persona: {reason}"
        )
    elif early:
        verdict["invalid"] = (
            f"the simulator check found the simulated user stopped before its goal: {reason}"
        )
    return verdict
