"""``pt sync openai``: read assistants, decide per file what changes, write atomically.

One file per assistant, ``assistant_<id>.yaml``. What happens to it:

- no file yet → **new**: version 1, active, on the ``--as`` API (default: responses);
- the newest version already says what the assistant says (the sync time aside) → **unchanged**:
  the file is not touched, not even its ``synced_at``;
- the assistant changed → **updated**: a new version is appended and becomes the active one;
  the version that was active becomes ``deprecated``; every other version stays as it is;
- the file was edited by hand since the last sync and the sync would change it → **skipped**,
  left byte for byte as it is. With ``force`` the new version is appended anyway: the edited
  file's content (versions, tests, names) is kept, its exact text is copied to ``<file>.bak``
  first (the rewrite does not keep comments or layout);
- the assistant cannot become a valid version → **error**, nothing written for it.

Without ``--as`` an existing file keeps the API of its newest version; only an explicit ``--as``
moves it (by appending a version).

Everything is read and decided before the first write, so an API error writes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from prompttracker.config.models import Prompt, PromptVersion
from prompttracker.errors import ConfigError, PromptTrackerError
from prompttracker.sync import DEFAULT_MAX_PAGES, DEFAULT_TARGET, SyncTarget
from prompttracker.sync.convert import (
    ConversionError,
    assistant_version,
    changed_fields,
    comparable,
    lost_settings,
)
from prompttracker.sync.files import edited_by_hand, synced_file_text, write_atomically
from prompttracker.sync.models import (
    Assistant,
    AssistantSync,
    SyncAction,
    SyncReport,
)
from prompttracker.sync.openai_assistants import (
    AssistantList,
    fetch_assistants,
    read_export,
)


@dataclass(frozen=True)
class FilePlan:
    """What syncing one assistant does to its file: the outcome, and the bytes to write."""

    result: AssistantSync
    text: str | None = None  # the new file, when it changes
    backup: bytes | None = None  # the hand-edited file's exact bytes, kept beside it


def sync_openai_assistants(
    project: Path,
    *,
    out: Path | None = None,
    from_file: Path | None = None,
    target: SyncTarget | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    dry_run: bool = False,
    force: bool = False,
    now: datetime | None = None,
    http_client: Any = None,
) -> SyncReport:
    """Turn the account's assistants (or an export's) into ``assistant_<id>.yaml`` prompt files.

    ``out`` defaults to ``prompts/`` under ``project``. ``target`` is the ``--as`` given: ``None``
    writes new files for ``DEFAULT_TARGET`` and keeps each existing file's API (see
    ``plan_assistant``). ``dry_run`` decides everything and writes nothing. Without
    ``from_file`` the OpenAI key is required (``RunStartError``).
    """
    if max_pages < 1:
        raise ConfigError(f"--max-pages must be at least 1, not {max_pages}")
    folder = out if out is not None else project / "prompts"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder", hint="point --out at a folder")
    if from_file is not None:
        listing = AssistantList(assistants=read_export(from_file))
        source = str(from_file)
    else:
        from prompttracker.config.loader import load_settings

        settings = load_settings(project)
        listing = asyncio.run(
            fetch_assistants(settings, max_pages=max_pages, http_client=http_client)
        )
        source = "api"
    synced_at = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    plans = [
        plan_assistant(a, folder / f"assistant_{a.id}.yaml", target, synced_at, force=force)
        for a in listing.assistants
    ]
    if not dry_run:
        for plan in plans:
            _apply(folder, plan)
    return SyncReport(
        source=source,
        target=target,
        out=str(folder),
        dry_run=dry_run,
        pages=listing.pages,
        page_cap_reached=listing.page_cap_reached,
        results=[_shown(p.result, project) for p in plans],
    )


def plan_assistant(
    assistant: Assistant,
    path: Path,
    target: SyncTarget | None,
    synced_at: str,
    *,
    force: bool = False,
) -> FilePlan:
    """Decide what syncing ``assistant`` into ``path`` does; reads ``path``, writes nothing.

    ``target`` is the ``--as`` given. Without one, a new file gets ``DEFAULT_TARGET`` and an
    existing file keeps the API of its newest version: a re-sync never moves it by itself.
    """
    name = assistant.name or assistant.id
    result = AssistantSync(
        assistant_id=assistant.id, name=name, action=SyncAction.error, file=str(path)
    )
    if not path.exists():
        return _plan_new(assistant, result, target or DEFAULT_TARGET, synced_at)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FilePlan(result.model_copy(update={"message": f"cannot read it: {exc}"}))
    edited = edited_by_hand(data)
    existing = _read_prompt(data)
    if isinstance(existing, str):
        action = SyncAction.skipped if edited else SyncAction.error
        message = f"{'edited by hand and ' if edited else ''}not a valid prompt file: {existing}"
        return FilePlan(result.model_copy(update={"action": action, "message": message}))
    latest = max(existing.versions, key=lambda v: v.version)
    kept = _synced_api(latest) if target is None else None
    api = target or kept or DEFAULT_TARGET
    try:
        version = assistant_version(assistant, api, synced_at)
    except ConversionError as exc:
        return FilePlan(result.model_copy(update={"api": api, "message": str(exc)}))
    result = result.model_copy(update={"api": api})
    note = _notes(_lost_note(assistant, api), _kept_note(kept))
    changes = changed_fields(comparable(latest), comparable(version))
    if not changes:
        hand = "edited by hand; the assistant has not changed" if edited else None
        update = {
            "action": SyncAction.unchanged,
            "version": latest.version,
            "message": _notes(hand, _kept_note(kept)),
        }
        return FilePlan(result.model_copy(update=update))
    number = latest.version + 1
    if edited and not force:
        message = "edited by hand since the last sync: left as it is (see --force)"
        update = {"action": SyncAction.skipped, "changes": changes, "message": message}
        return FilePlan(result.model_copy(update=update))
    prompt = _append(existing, version.model_copy(update={"version": number}), assistant, edited)
    if edited:
        note = _notes(f"edited by hand: kept, copy in {path.name}.bak", note)
    update = {"action": SyncAction.updated, "version": number, "changes": changes, "message": note}
    return FilePlan(
        result.model_copy(update=update),
        synced_file_text(prompt, assistant.id),
        backup=data if edited else None,
    )


def _plan_new(
    assistant: Assistant, result: AssistantSync, api: SyncTarget, synced_at: str
) -> FilePlan:
    """No file yet: version 1 on ``api``."""
    result = result.model_copy(update={"api": api})
    try:
        version = assistant_version(assistant, api, synced_at)
    except ConversionError as exc:
        return FilePlan(result.model_copy(update={"message": str(exc)}))
    prompt = Prompt(name=result.name, description=assistant.description or "", versions=[version])
    new = {"action": SyncAction.new, "version": 1, "message": _lost_note(assistant, api)}
    return FilePlan(result.model_copy(update=new), synced_file_text(prompt, assistant.id))


def _synced_api(version: PromptVersion) -> SyncTarget | None:
    """The API ``version`` runs on, when it is one that a sync writes."""
    config = version.model_config_
    if config.provider == "openai" and config.api in set(SyncTarget):
        return SyncTarget(config.api)
    return None


def _lost_note(assistant: Assistant, api: SyncTarget) -> str | None:
    lost = lost_settings(assistant, api)
    return f"not carried over to {api.value}: {', '.join(lost)}" if lost else None


def _kept_note(kept: SyncTarget | None) -> str | None:
    # Kept silently, a file would go on pointing at a shut-down API without anyone noticing.
    if kept is not SyncTarget.assistants:
        return None
    from prompttracker.llm.openai_assistants import SUNSET_DATE

    return (
        f"kept on the Assistants API (shut down on {SUNSET_DATE}); "
        "sync with --as responses to move it"
    )


def _notes(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def _append(prompt: Prompt, version: PromptVersion, assistant: Assistant, edited: bool) -> Prompt:
    """``prompt`` with ``version`` as its new active version (the active one is deprecated)."""
    data = prompt.model_dump(mode="json", by_alias=True)
    for old in data["versions"]:
        if old["status"] == "active":
            old["status"] = "deprecated"
    data["versions"].append(version.model_dump(mode="json", by_alias=True))
    if not edited:  # a name or description the user chose stays
        data["name"] = assistant.name or assistant.id
        data["description"] = assistant.description or ""
    return Prompt.model_validate(data)


def _read_prompt(data: bytes) -> Prompt | str:
    """The file as a prompt, or why it is not one."""
    try:
        loaded = yaml.safe_load(data.decode("utf-8"))
        return Prompt.model_validate(loaded)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        return f"cannot read it ({type(exc).__name__}); `pt validate` says where"
    except ValidationError as exc:
        return f"{exc.error_count()} problem(s); `pt validate` lists them"


def _apply(folder: Path, plan: FilePlan) -> None:
    if plan.text is None:
        return
    path = Path(plan.result.file)
    try:
        if plan.backup is not None:
            write_atomically(path.with_name(path.name + ".bak"), plan.backup)
        write_atomically(path, plan.text.encode("utf-8"))
    except OSError as exc:
        raise PromptTrackerError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint=f"check that {folder} is writable; files written before this one are complete",
        ) from None


def _shown(result: AssistantSync, project: Path) -> AssistantSync:
    """The file path relative to the project when it is inside it, as the user thinks of it."""
    path = Path(result.file)
    try:
        shown = path.resolve().relative_to(project.resolve())
    except ValueError:
        return result
    return result.model_copy(update={"file": str(shown)})
