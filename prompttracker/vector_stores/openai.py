"""OpenAI vector stores: the operations, one SDK request each, and pure converters to our values.

Imported only through ``service.PROVIDERS`` (never at ``pt --help``). Works against any
OpenAI-compatible server through the project's ``base_url``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import openai
from pydantic import ValidationError

from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError
from prompttracker.llm.clients import llm_call_error, openai_client, require_api_key
from prompttracker.llm.redact import redact
from prompttracker.vector_stores.service import (
    FileCounts,
    FileError,
    Page,
    UploadedFile,
    VectorStore,
    VectorStoreFile,
    VectorStoreOperations,
)

R = TypeVar("R")
T = TypeVar("T")

# Vector-store wording for the statuses whose generic hint talks about models.
_HINTS = {
    400: "the API rejected the request: check the ids and the file (type, size) you sent",
    404: "check the id with `pt vector-stores list` (or `pt vector-stores files STORE_ID`) and "
    "that the project's base_url points at the provider that holds it",
}


def vector_store_from_api(data: Mapping[str, Any]) -> VectorStore:
    """A ``VectorStoreObject`` (as JSON) → ``VectorStore``."""
    return VectorStore(
        id=data["id"],
        name=data.get("name"),
        status=data.get("status") or "unknown",
        file_counts=FileCounts(**(data.get("file_counts") or {})),
        usage_bytes=data.get("usage_bytes") or 0,
        created_at=data["created_at"],
        expires_at=data.get("expires_at") or None,
    )


def vector_store_file_from_api(data: Mapping[str, Any]) -> VectorStoreFile:
    """A ``VectorStoreFileObject`` (as JSON) → ``VectorStoreFile``."""
    error = data.get("last_error")
    return VectorStoreFile(
        id=data["id"],
        vector_store_id=data["vector_store_id"],
        status=data.get("status") or "unknown",
        usage_bytes=data.get("usage_bytes") or 0,
        created_at=data["created_at"],
        last_error=FileError(code=error["code"], message=error["message"]) if error else None,
    )


def page_from_api(data: Mapping[str, Any], convert: Callable[[Mapping[str, Any]], T]) -> Page[T]:
    """A ``List…Response`` (as JSON) → ``Page``; the cursor is ``last_id`` or the last item's id."""
    items = tuple(convert(item) for item in data.get("data") or [])
    last_id = data.get("last_id") or (data["data"][-1]["id"] if items else None)
    return Page(items=items, has_more=bool(data.get("has_more")), last_id=last_id)


class OpenAIVectorStoreOperations(VectorStoreOperations):
    """Vector stores through the openai SDK (``client.vector_stores``, ``client.files``)."""

    def __init__(self, settings: Settings, http_client: Any = None) -> None:
        # Vector stores live in the account: there is no offline stand-in to point at.
        require_api_key(settings, "openai", instead=None)
        self._client = openai_client(settings, http_client)
        self._owns_http_client = http_client is None
        self._secrets = (settings.api_key("openai"),)

    async def list_stores(self, *, after: str | None, limit: int) -> Page[VectorStore]:
        request = self._client.vector_stores.list(limit=limit, **_after(after))
        page = await self._call("list vector stores", request)
        return self._convert("list vector stores", page_from_api, page, vector_store_from_api)

    async def get_store(self, store_id: str) -> VectorStore:
        request = self._client.vector_stores.retrieve(store_id)
        store = await self._call("show vector store", request, missing=f"vector store {store_id}")
        return self._convert("show vector store", vector_store_from_api, store)

    async def create_store(self, name: str, file_ids: Sequence[str]) -> VectorStore:
        extra = {"file_ids": list(file_ids)} if file_ids else {}
        request = self._client.vector_stores.create(name=name, **extra)
        missing = "one of the files " + ", ".join(file_ids) if file_ids else None
        store = await self._call("create vector store", request, missing=missing)
        return self._convert("create vector store", vector_store_from_api, store)

    async def list_files(
        self, store_id: str, *, after: str | None, limit: int
    ) -> Page[VectorStoreFile]:
        request = self._client.vector_stores.files.list(store_id, limit=limit, **_after(after))
        page = await self._call(
            "list vector store files", request, missing=f"vector store {store_id}"
        )
        return self._convert(
            "list vector store files", page_from_api, page, vector_store_file_from_api
        )

    async def attach_file(self, store_id: str, file_id: str) -> VectorStoreFile:
        request = self._client.vector_stores.files.create(store_id, file_id=file_id)
        missing = f"vector store {store_id} or file {file_id}"
        attached = await self._call("add file to vector store", request, missing=missing)
        return self._convert("add file to vector store", vector_store_file_from_api, attached)

    async def get_file(self, store_id: str, file_id: str) -> VectorStoreFile:
        request = self._client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
        missing = f"file {file_id} in vector store {store_id}"
        found = await self._call("check vector store file", request, missing=missing)
        return self._convert("check vector store file", vector_store_file_from_api, found)

    async def upload_file(self, path: Path) -> UploadedFile:
        # The SDK reads the file and names the multipart part after it.
        request = self._client.files.create(file=path, purpose="assistants")
        uploaded = await self._call(f"upload {path.name}", request)
        return UploadedFile(
            id=uploaded.id, filename=uploaded.filename or path.name, bytes=uploaded.bytes or 0
        )

    async def aclose(self) -> None:
        # An injected HTTP client belongs to the caller; the SDK would close it too.
        if self._owns_http_client:
            await self._client.close()

    async def _call(self, label: str, request: Awaitable[R], *, missing: str | None = None) -> R:
        """Await an SDK request; its errors become one key-free line with the request id."""
        try:
            return await request
        except openai.OpenAIError as exc:
            # `from None`: the SDK exception's traceback is not needed and could carry the key.
            raise self._error(exc, label, missing) from None

    def _error(self, exc: openai.OpenAIError, label: str, missing: str | None) -> LLMCallError:
        status = getattr(exc, "status_code", None)
        if status == 404 and missing:
            label = f"{label}: {missing} was not found"
        error = llm_call_error(exc, label, secrets=self._secrets)
        return LLMCallError(error.message, hint=_HINTS.get(status or 0, error.hint))

    def _convert(self, label: str, convert: Callable[..., T], answer: Any, *args: Any) -> T:
        """Our value from the SDK's object; a malformed answer is an error, not a traceback."""
        try:
            return convert(answer.to_dict(), *args)
        except (KeyError, TypeError, ValidationError) as exc:
            detail = redact(f"{type(exc).__name__}: {exc}", self._secrets)
            raise LLMCallError(
                f"{label}: the API answered in an unexpected shape ({' '.join(detail.split())})",
                hint="check that the project's base_url points at an OpenAI-compatible server",
            ) from None


def _after(cursor: str | None) -> dict[str, str]:
    """The paging cursor, sent only after the first page."""
    return {"after": cursor} if cursor else {}
