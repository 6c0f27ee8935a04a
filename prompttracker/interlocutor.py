"""The simulated user: an LLM that plays the dataset row's persona against the assistant."""

from __future__ import annotations

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.llm import router
from prompttracker.llm.call_layer import CallLayer
from prompttracker.messages import Message

END_MARKER = "[END_CONVERSATION]"

INSTRUCTIONS = f"""You are role-playing a USER talking to an AI assistant, to test that assistant.
Stay in character as described below. Write only the user's next message: no labels, no
narration, no quotation marks. Keep messages short and natural, as a real person would type.
When your goal is reached, or the conversation has nothing left to add, write a brief closing
line if you like, followed by {END_MARKER}.

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
    ) -> None:
        self.system_prompt = INSTRUCTIONS + persona.strip()
        self.config = config
        self.settings = settings
        self.calls = calls

    async def reply(self, messages: list[Message]) -> tuple[str, bool]:
        """The next user message and whether the simulated user ended the conversation."""
        flipped = flip_roles(messages)
        if not flipped or flipped[-1].role != "user":
            flipped.append(Message(role="user", content=OPENING, turn=len(messages) + 1))
        answer = await router.complete(
            self.config,
            self.settings,
            system_prompt=self.system_prompt,
            messages=flipped,
            calls=self.calls,
            caller="simulated_user",
        )
        return split_end_marker(answer.content)


def flip_roles(messages: list[Message]) -> list[Message]:
    """The assistant's words become the interlocutor's input and vice versa."""
    swap = {"user": "assistant", "assistant": "user"}
    return [
        Message(role=swap[m.role], content=m.content, turn=m.turn)  # type: ignore[arg-type]
        for m in messages
        if m.role in swap
    ]


def split_end_marker(text: str) -> tuple[str, bool]:
    """Text before ``[END_CONVERSATION]`` is kept; the marker itself never reaches the assistant."""
    if END_MARKER not in text:
        return text.strip(), False
    return text.split(END_MARKER, 1)[0].strip(), True
