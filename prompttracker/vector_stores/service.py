"""The provider-agnostic vector store service: one routing table, values out, paging and waiting.

A provider is one module with a ``VectorStoreOperations`` subclass that speaks its API one request
at a time; this module owns everything that is the same for every provider: paging under a cap,
checking local files before any call, waiting for uploaded files under a deadline.
Entries are import paths so that ``pt --help`` imports no SDK.
"""

from __future__ import annotations

import asyncio
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import Any, Generic, TypeVar

from prompttracker.config.settings import Settings
from prompttracker.errors import ConfigError, PromptTrackerError
from prompttracker.messages import Value

# Provider name → "module:class" of its operations. A new provider is one module and one line.
PROVIDERS: dict[str, str] = {
    "openai": "prompttracker.vector_stores.openai:OpenAIVectorStoreOperations",
}

MAX_PAGES = 10
PAGE_SIZE = 100  # the largest page the OpenAI API serves
UPLOAD_TIMEOUT_SECONDS = 300.0
POLL_INTERVAL_SECONDS = 1.0
FINAL_FILE_STATUSES = frozenset({"completed", "failed", "cancelled"})

T = TypeVar("T")


class FileCounts(Value):
    """How many of a store's files are in each processing state."""

    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class VectorStore(Value):
    """A vector store: a collection of processed files that ``file_search`` tools read."""

    id: str
    name: str | None = None
    status: str  # expired | in_progress | completed
    file_counts: FileCounts = FileCounts()
    usage_bytes: int = 0
    created_at: datetime
    expires_at: datetime | None = None


class FileError(Value):
    """Why the provider could not process a file."""

    code: str
    message: str


class VectorStoreFile(Value):
    """A file attached to a vector store, with its processing status."""

    id: str
    vector_store_id: str
    status: str  # in_progress | completed | failed | cancelled
    usage_bytes: int = 0
    created_at: datetime
    last_error: FileError | None = None
    filename: str | None = None  # known only for files that `upload` sent


class UploadedFile(Value):
    """A local file stored with the provider, not yet attached to a store."""

    id: str
    filename: str
    bytes: int = 0


class Page(Value, Generic[T]):
    """One page of a list, as the provider answered it."""

    items: tuple[T, ...]
    has_more: bool = False
    last_id: str | None = None  # the cursor for the next page


class Listing(Value, Generic[T]):
    """Everything read across pages; ``truncated`` when the page cap stopped before the end."""

    items: tuple[T, ...]
    pages: int
    truncated: bool = False


class VectorStoreOperations(ABC):
    """One provider's vector store API, one request per method.

    Subclasses are built as ``cls(settings, http_client)`` and check the key there (a missing
    one is a ``RunStartError``); API failures come out as our errors, never carrying the key.
    """

    @abstractmethod
    async def list_stores(self, *, after: str | None, limit: int) -> Page[VectorStore]:
        """One page of vector stores, newest first."""

    @abstractmethod
    async def get_store(self, store_id: str) -> VectorStore:
        """One vector store."""

    @abstractmethod
    async def create_store(self, name: str, file_ids: Sequence[str]) -> VectorStore:
        """A new vector store holding ``file_ids``."""

    @abstractmethod
    async def list_files(
        self, store_id: str, *, after: str | None, limit: int
    ) -> Page[VectorStoreFile]:
        """One page of a store's files."""

    @abstractmethod
    async def attach_file(self, store_id: str, file_id: str) -> VectorStoreFile:
        """Attach an already uploaded file to a store."""

    @abstractmethod
    async def get_file(self, store_id: str, file_id: str) -> VectorStoreFile:
        """A store's file, with its current processing status."""

    @abstractmethod
    async def upload_file(self, path: Path) -> UploadedFile:
        """Store a local file with the provider for use by file search."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the client."""


def operations_class(provider: str) -> type[VectorStoreOperations]:
    """The operations class for ``provider``, imported on first use."""
    target = PROVIDERS.get(provider)
    if target is None:
        supported = ", ".join(sorted(PROVIDERS))
        raise ConfigError(
            f"vector stores are not supported for provider {provider!r}; supported: {supported}",
            hint=f"use one of: {supported}",
        )
    module, _, name = target.partition(":")
    cls: type[VectorStoreOperations] = getattr(import_module(module), name)
    return cls


class VectorStoreService:
    """Vector store operations on one provider. Use as ``async with VectorStoreService(...)``.

    The provider's client is built on the first operation, so that local input (the files to
    upload) is checked before a missing key is reported, and nothing is called before either.
    """

    def __init__(
        self, settings: Settings, provider: str = "openai", http_client: Any = None
    ) -> None:
        self.provider = provider
        self._settings = settings
        self._http_client = http_client
        self._cls = operations_class(provider)
        self._operations: VectorStoreOperations | None = None

    @property
    def operations(self) -> VectorStoreOperations:
        """The provider's operations, built (and the key checked) on first use."""
        if self._operations is None:
            self._operations = self._cls(self._settings, self._http_client)
        return self._operations

    async def __aenter__(self) -> VectorStoreService:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the provider's client, if one was built."""
        if self._operations is not None:
            await self._operations.aclose()
            self._operations = None

    async def list_stores(
        self, *, max_pages: int = MAX_PAGES, page_size: int = PAGE_SIZE
    ) -> Listing[VectorStore]:
        """Every vector store, newest first, reading at most ``max_pages`` pages."""
        ops = self.operations
        return await _read_pages(
            lambda after: ops.list_stores(after=after, limit=page_size), max_pages
        )

    async def get_store(self, store_id: str) -> VectorStore:
        """One vector store by id."""
        return await self.operations.get_store(_required(store_id, "vector store id"))

    async def create_store(self, name: str, file_ids: Sequence[str] = ()) -> VectorStore:
        """Create a vector store named ``name`` holding the already uploaded ``file_ids``."""
        return await self.operations.create_store(name, list(file_ids))

    async def list_files(
        self, store_id: str, *, max_pages: int = MAX_PAGES, page_size: int = PAGE_SIZE
    ) -> Listing[VectorStoreFile]:
        """A store's files, reading at most ``max_pages`` pages."""
        _required(store_id, "vector store id")
        ops = self.operations
        return await _read_pages(
            lambda after: ops.list_files(store_id, after=after, limit=page_size), max_pages
        )

    async def attach_file(self, store_id: str, file_id: str) -> VectorStoreFile:
        """Attach an uploaded file to a store (processing goes on in the background)."""
        _required(store_id, "vector store id")
        return await self.operations.attach_file(store_id, _required(file_id, "file id"))

    async def upload(
        self,
        store_id: str,
        paths: Sequence[Path],
        *,
        timeout: float = UPLOAD_TIMEOUT_SECONDS,
        poll_interval: float | None = None,
    ) -> list[VectorStoreFile]:
        """Upload local files, attach each to the store, and wait until all are processed.

        Returns every file in its final state, failed ones included (see ``raise_for_failures``).
        A missing or unreadable path is a ``ConfigError`` before any call; files still
        processing when ``timeout`` seconds have passed raise a ``PromptTrackerError``.
        """
        _required(store_id, "vector store id")
        check_readable(paths)
        ops = self.operations
        files = []
        for path in paths:
            uploaded = await ops.upload_file(path)
            attached = await ops.attach_file(store_id, uploaded.id)
            files.append(attached.model_copy(update={"filename": uploaded.filename}))
        interval = POLL_INTERVAL_SECONDS if poll_interval is None else poll_interval
        deadline = time.monotonic() + timeout
        return await self._wait(store_id, files, deadline=deadline, interval=interval)

    async def _wait(
        self, store_id: str, files: list[VectorStoreFile], *, deadline: float, interval: float
    ) -> list[VectorStoreFile]:
        while True:
            pending = [i for i, f in enumerate(files) if f.status not in FINAL_FILE_STATUSES]
            if not pending:
                return files
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _still_processing(store_id, [files[i] for i in pending])
            await asyncio.sleep(min(interval, remaining))
            for i in pending:
                current = await self.operations.get_file(store_id, files[i].id)
                files[i] = current.model_copy(update={"filename": files[i].filename})


async def _read_pages(
    read_page: Callable[[str | None], Awaitable[Page[T]]], max_pages: int
) -> Listing[T]:
    """Follow ``after`` cursors while the provider says there is more, up to ``max_pages``."""
    # The cap is not only politeness: a broken or mock server may answer has_more: true forever.
    items: list[T] = []
    after: str | None = None
    for pages in range(1, max_pages + 1):
        page = await read_page(after)
        items.extend(page.items)
        if not page.has_more or not page.last_id:
            return Listing(items=tuple(items), pages=pages)
        after = page.last_id
    return Listing(items=tuple(items), pages=max_pages, truncated=True)


def _required(value: str, what: str) -> str:
    """``value``, or a ``ConfigError`` when it is blank (the SDK would reject it later)."""
    if not value.strip():
        raise ConfigError(f"the {what} is empty", hint=f"pass a {what}")
    return value


def check_readable(paths: Sequence[Path]) -> None:
    """Raise one ``ConfigError`` naming every path that is not a readable file."""
    problems = []
    for path in paths:
        if not path.exists():
            problems.append(f"{path}: no such file")
        elif not path.is_file():
            problems.append(f"{path}: not a file")
        elif not os.access(path, os.R_OK):
            problems.append(f"{path}: not readable (permission denied)")
    if not paths:
        problems.append("no files given")
    if problems:
        raise ConfigError(
            "cannot upload: " + "; ".join(problems),
            hint="check the paths (relative to the current directory); nothing was uploaded",
        )


def raise_for_failures(files: Sequence[VectorStoreFile]) -> None:
    """Raise a ``PromptTrackerError`` naming each file that ended ``failed`` or ``cancelled``."""
    failed = [f for f in files if f.status in ("failed", "cancelled")]
    if not failed:
        return
    details = "; ".join(_failure(f) for f in failed)
    raise PromptTrackerError(
        f"{len(failed)} of {len(files)} file(s) could not be processed: {details}",
        hint="fix or convert the file and upload it again; the other files are attached",
    )


def _failure(file: VectorStoreFile) -> str:
    name = f"{file.id} ({file.filename})" if file.filename else file.id
    reason = f": {file.last_error.code}: {file.last_error.message}" if file.last_error else ""
    return f"{name} {file.status}{reason}"


def _still_processing(store: str, files: Sequence[VectorStoreFile]) -> PromptTrackerError:
    names = ", ".join(f"{f.id} ({f.filename})" if f.filename else f.id for f in files)
    return PromptTrackerError(
        f"timed out waiting for {len(files)} file(s) to be processed: {names}",
        hint="the files are attached and keep processing: check them later with "
        f"`pt vector-stores files {store}`, or upload again with a larger --timeout",
    )
