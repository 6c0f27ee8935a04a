"""Synced prompt files: readable YAML, a hash header that detects hand edits, atomic writes.

Every file the sync writes starts with a comment header whose ``pt-sync-sha256`` line holds the
sha256 of the bytes below it. A file whose body no longer matches (or that has no header) was
edited by hand since the last sync. The header travels with the file through git, so a teammate's
clone knows it too; no state file is needed.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import yaml

from prompttracker.config.models import Prompt, PromptVersion

DIGEST_LINE = re.compile(rb"^# pt-sync-sha256: ([0-9a-f]{64})\r?\n", re.MULTILINE)


def synced_file_text(prompt: Prompt, assistant_id: str) -> str:
    """The whole file: the header (with the body's digest), then the prompt as YAML."""
    body = prompt_yaml(prompt)
    return (
        f"# Synced from the OpenAI assistant {assistant_id} by `pt sync openai`.\n"
        "# A later sync appends a version when the assistant changes. It leaves this file alone\n"
        "# once it is edited by hand, unless run with --force (which keeps your edits).\n"
        f"# pt-sync-sha256: {body_digest(body.encode())}\n" + body
    )


def edited_by_hand(data: bytes) -> bool:
    """True when ``data`` is not exactly what the sync wrote: no header, or a body that changed."""
    match = DIGEST_LINE.search(data)
    # Only the leading comment block counts: the marker cannot hide inside the YAML.
    if match is None or any(
        line.strip() and not line.startswith(b"#") for line in data[: match.start()].splitlines()
    ):
        return True
    return body_digest(data[match.end() :]) != match.group(1).decode()


def body_digest(body: bytes) -> str:
    # Line endings are normalized so that a checkout with CRLF (git autocrlf) is not "edited".
    return hashlib.sha256(body.replace(b"\r\n", b"\n")).hexdigest()


def prompt_yaml(prompt: Prompt) -> str:
    """Block-style YAML, keys in the README's order, multi-line text as ``|`` literal blocks."""
    data = prompt.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data["versions"] = [_version_data(v) for v in prompt.versions]
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,  # never fold a long line of instructions
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    A reader (or a crash) sees the old file or the new one, never half of one. The temporary
    name does not end in .yaml, so the project loader never picks it up.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # 0o666 minus the umask, like any new file (mkstemp would make it private to the user).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _version_data(version: PromptVersion) -> dict[str, Any]:
    # The prompts and the status are always written, even when they have their default value.
    data = {
        "version": version.version,
        "status": version.status,
        "system_prompt": version.system_prompt,
        "user_prompt": version.user_prompt,
    }
    data.update(version.model_dump(mode="json", by_alias=True, exclude_defaults=True))
    return data


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as the README's examples do.
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML falls back to a quoted style by itself when a literal block cannot hold the text.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
