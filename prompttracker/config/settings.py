"""Optional project settings: ``prompttracker.yaml`` at the project root.

Everything has a default, so a project with only ``prompts/`` and ``datasets/`` works.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from prompttracker.config.models import ModelConfig, Strict

SETTINGS_FILE = "prompttracker.yaml"

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "google": "GEMINI_API_KEY",
}
# Variables the provider's own SDK also reads, tried in order when the default one is unset
# (google-genai reads GOOGLE_API_KEY as well as GEMINI_API_KEY). Not used once a project names
# its own variable with ``api_key_env``.
FALLBACK_KEY_ENV = {"google": ("GOOGLE_API_KEY",)}
DEFAULT_BASE_URL_ENV = {
    "openai": "OPENAI_BASE_URL",
    "anthropic": "ANTHROPIC_BASE_URL",
    "google": "GOOGLE_GEMINI_BASE_URL",
}


class ProviderSettings(Strict):
    """Where a provider lives and which environment variable holds its key.

    The key itself never goes in a file: only the *name* of the variable.
    """

    base_url: str | None = None
    api_key_env: str | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """A base URL the SDKs can use: http(s) with a host (a typo here fails every call)."""
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"base_url {value!r} is not an http(s) URL with a host; "
                "write it like http://localhost:8000/v1"
            )
        return value

    # A total deadline for one request, body included (each of the SDK's retries gets its own).
    timeout_seconds: float = Field(default=120, gt=0)
    # Retries of server errors (5xx), timeouts and dropped connections, by the SDK.
    max_retries: int = Field(default=2, ge=0, le=10)
    # How long one call may wait out rate limits (HTTP 429), apart from max_retries.
    rate_limit_wait_seconds: float = Field(default=300, ge=0)
    # Chat Completions' name for the token cap. OpenAI deprecates `max_tokens` (its reasoning
    # models refuse it); many compatible servers read only `max_tokens` (llama-cpp-python).
    # Default: max_completion_tokens on OpenAI's own API, max_tokens on any other base_url.
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = None
    # google: the API version the SDK puts in the path (its default is v1beta, or v1 with a
    # custom base_url, which compatible servers may not serve).
    api_version: str | None = None


class ModelPrice(Strict):
    """A model's price in USD per million tokens (``prices:`` in the settings)."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class JudgesCheckSettings(Strict):
    """What ``pt judges check`` requires of the judges against the golden set."""

    # Share of verdicts where the judge agrees with the human label.
    min_agreement: float = Field(default=0.85, ge=0, le=1)
    # Cohen's kappa: agreement beyond chance (1 perfect, 0 chance level, below 0 worse).
    min_kappa: float = Field(default=0.7, ge=-1, le=1)


class CISettings(Strict):
    """Which undecided test runs fail the gate (``pt run-tests`` exits 1). Errors and failures
    always do, and so does a run where no test run was decided at all."""

    # The simulated user broke down (see simulator_checks): nothing was learnt about the prompt.
    fail_on_invalid: bool = False
    # A judge could not decide: its votes disagreed, or its answer could not be read.
    fail_on_inconclusive: bool = False


class Settings(Strict):
    database: str = ".prompttracker/results.db"
    concurrency: int = Field(default=8, ge=1, le=256)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    interlocutor: ModelConfig = ModelConfig(
        provider="openai", api="chat_completions", model="gpt-4o-mini", temperature=0.7
    )
    judge: ModelConfig = ModelConfig(
        provider="openai", api="chat_completions", model="gpt-4o-mini", temperature=0
    )
    # Prices that override the price library: ``model`` or ``provider/model`` → price.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    judges_check: JudgesCheckSettings = JudgesCheckSettings()
    ci: CISettings = CISettings()
    # After each simulated conversation, ask the judge model whether the simulated user stayed
    # in its persona and did not stop before its goal; if not, the test run is ``invalid``.
    simulator_check: bool = False

    def provider(self, name: str) -> ProviderSettings:
        return self.providers.get(name) or ProviderSettings()

    def api_key_env(self, provider: str) -> str:
        return self.provider(provider).api_key_env or DEFAULT_KEY_ENV.get(
            provider, f"{provider.upper()}_API_KEY"
        )

    def api_key(self, provider: str) -> str | None:
        """The key from the environment, or None. Never stored, logged or printed."""
        names = [self.api_key_env(provider)]
        if not self.provider(provider).api_key_env:
            names += FALLBACK_KEY_ENV.get(provider, ())
        return next((os.environ[name] for name in names if os.environ.get(name)), None)

    def base_url(self, provider: str) -> str | None:
        env = DEFAULT_BASE_URL_ENV.get(provider)
        return self.provider(provider).base_url or (os.environ.get(env) if env else None)

    def max_tokens_param(self, provider: str) -> str:
        """The Chat Completions field for ``max_tokens`` on ``provider``'s endpoint."""
        chosen = self.provider(provider).max_tokens_param
        if chosen is not None:
            return chosen
        base_url = self.base_url(provider)
        own = base_url is None or urlsplit(base_url).hostname == "api.openai.com"
        return "max_completion_tokens" if own else "max_tokens"

    def database_path(self, root: Path) -> Path:
        path = Path(self.database).expanduser()
        return path if path.is_absolute() else root / path
