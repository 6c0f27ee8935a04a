"""Keep API keys out of every message we build from provider errors.

Provider error bodies and SDK messages can echo credentials (an OpenAI-compatible gateway that
prints the bad key, a Bearer header in a proxy's error page). Everything that turns an SDK
exception into text goes through ``redact`` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# Shapes of keys we know: OpenAI (sk-..., sk-proj-...), Anthropic (sk-ant-...), Google (AIza...),
# and any bearer token, whatever its shape.
_KEY_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{4,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]+"),
)

# Literal secrets shorter than this are replaced only as whole tokens: local servers accept
# placeholders such as "EMPTY" or "ollama", and replacing those inside other words would garble
# the message without protecting anything.
_SUBSTRING_MIN = 8


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with key-shaped strings and the literal ``secrets`` replaced by ``[REDACTED]``."""
    for secret in sorted({s for s in secrets if s and s.strip()}, key=len, reverse=True):
        if len(secret) >= _SUBSTRING_MIN:
            text = text.replace(secret, REDACTED)
        else:
            pattern = rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])"
            text = re.sub(pattern, REDACTED, text)
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(
            lambda m: f"{m.group(1)} {REDACTED}" if m.groups() else REDACTED,
            text,
        )
    return text
