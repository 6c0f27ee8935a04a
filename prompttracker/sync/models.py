"""Values of a sync: the assistants we read, and what happened to each of them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prompttracker.messages import Value
from prompttracker.sync import SyncTarget

# Ids become file names (prompts/assistant_<id>.yaml): nothing that could leave the folder.
ASSISTANT_ID = r"^[A-Za-z0-9_-]{1,128}$"


class _Lenient(BaseModel):
    # The API adds fields over time (object, created_at, response_format, …): read what we use.
    model_config = ConfigDict(extra="ignore", frozen=True)


class AssistantFunction(_Lenient):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class AssistantTool(_Lenient):
    """One entry of an assistant's ``tools``: code_interpreter, file_search or function."""

    type: str
    function: AssistantFunction | None = None
    file_search: dict[str, Any] | None = None


class Assistant(_Lenient):
    """An OpenAI assistant as ``GET /v1/assistants`` (or an export of it) describes it."""

    id: str = Field(pattern=ASSISTANT_ID)
    name: str | None = None
    description: str | None = None
    model: str | None = None
    instructions: str | None = None
    tools: list[AssistantTool] = Field(default_factory=list)
    tool_resources: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    response_format: Any = None


class SyncAction(StrEnum):
    new = "new"
    updated = "updated"
    unchanged = "unchanged"
    skipped = "skipped"  # the file was edited by hand and the sync would have changed it
    error = "error"  # the assistant cannot become a valid prompt version


class AssistantSync(Value):
    """What the sync did (or, on a dry run, would do) with one assistant."""

    assistant_id: str
    name: str
    action: SyncAction
    file: str
    api: SyncTarget | None = None  # the API the file's newest version runs on (or would)
    version: int | None = None  # the version the file now ends with (or would)
    changes: list[str] = Field(default_factory=list)  # dotted fields that differ
    message: str | None = None


class SyncReport(Value):
    """The whole sync: one entry per assistant, in the order they were read."""

    source: str  # "api" or the --from-file path
    target: SyncTarget | None  # the --as given; None: new files get responses, others keep theirs
    out: str
    dry_run: bool
    pages: int = 0
    page_cap_reached: bool = False
    results: list[AssistantSync] = Field(default_factory=list)

    def count(self, action: SyncAction) -> int:
        return sum(1 for r in self.results if r.action is action)

    @property
    def exit_code(self) -> int:
        """1 when an assistant was skipped or failed (so CI notices), else 0."""
        return 1 if self.count(SyncAction.skipped) or self.count(SyncAction.error) else 0
