"""One stable digest for ids that must be the same on every machine and in every process
(never Python's per-process ``hash``): the mock's seeds, plan keys, shard cuts."""

from __future__ import annotations

import hashlib


def digest(*parts: str) -> str:
    """A stable hex digest of ``parts`` (unambiguous: each part is length-prefixed)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode()
        h.update(f"{len(data)}:".encode() + data)
    return h.hexdigest()


def short_id(*parts: str) -> str:
    """The first 16 hex digits of ``digest(*parts)``: an id to store and show."""
    return digest(*parts)[:16]
