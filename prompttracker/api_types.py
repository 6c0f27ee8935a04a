"""Which protocol a prompt version speaks: ``ApiType.from_config(provider, api)``."""

from __future__ import annotations

from enum import StrEnum

from prompttracker.errors import ConfigError


class ApiType(StrEnum):
    OPENAI_CHAT_COMPLETIONS = "openai_chat_completions"
    OPENAI_RESPONSES = "openai_responses"
    OPENAI_ASSISTANTS = "openai_assistants"
    ANTHROPIC_MESSAGES = "anthropic_messages"
    GOOGLE_GEMINI = "google_gemini"
    MOCK = "mock"

    @classmethod
    def from_config(cls, provider: str, api: str | None) -> ApiType:
        """Map ``(provider, api)`` to its ApiType; an unknown pair lists the supported ones."""
        if provider == "mock":
            return cls.MOCK
        try:
            return ROUTES[(provider, api or "")]
        except KeyError:
            raise ConfigError(
                f"unknown provider/api pair {provider!r}/{api!r}",
                hint=f"supported pairs: {supported_pairs()}",
            ) from None

    @property
    def provider(self) -> str:
        return self.value.split("_", 1)[0]


# Every (provider, api) a model_config may name, besides ``mock`` with any api.
ROUTES: dict[tuple[str, str], ApiType] = {
    ("openai", "chat_completions"): ApiType.OPENAI_CHAT_COMPLETIONS,
    ("openai", "responses"): ApiType.OPENAI_RESPONSES,
    ("openai", "assistants"): ApiType.OPENAI_ASSISTANTS,
    ("anthropic", "messages"): ApiType.ANTHROPIC_MESSAGES,
    ("google", "gemini"): ApiType.GOOGLE_GEMINI,
}


def supported_pairs() -> str:
    """The supported pairs as ``provider/api`` text, for error messages and help."""
    return ", ".join([f"{p}/{a}" for p, a in ROUTES] + ["mock/*"])
