"""Provider-side prompts → prompt-version YAML. Today: OpenAI Assistants (``pt sync openai``).

``service.sync_openai_assistants`` is the entry point; ``openai_assistants`` reads assistants
(API pages or an export), ``convert`` turns one into a prompt version (pure), ``files`` writes
the YAML (hash header, atomic writes), ``models`` holds the values. Kept import-light, so that
the CLI can name ``SyncTarget`` without loading the rest.
"""

from enum import StrEnum

DEFAULT_MAX_PAGES = 20  # page cap for listing assistants: never iterate without a bound


class SyncTarget(StrEnum):
    """Which API the written versions run on."""

    assistants = "assistants"
    responses = "responses"


# OpenAI shut the Assistants API down on 2026-08-26: new files run on the Responses API.
DEFAULT_TARGET = SyncTarget.responses
