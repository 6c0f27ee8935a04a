"""One normalized shape per hosted tool, whichever API produced it.

Sessions put lists of these in ``AssistantTurn.extras`` under ``web_search_results``,
``file_search_results`` and ``code_interpreter_results``; the conversation loop concatenates
them over turns into ``ConversationResult.metadata``, where evaluators read them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse


def file_search_result(queries: list[str], files: list[dict[str, Any]]) -> dict[str, Any]:
    """``{query, queries, files: [{file_id, filename, score, text}], scores}``."""
    normalized = [
        {
            "file_id": f.get("file_id") or "",
            "filename": f.get("filename") or f.get("file_id") or "",
            "score": f.get("score"),
            "text": f.get("text") or "",
        }
        for f in files
    ]
    return {
        "query": " | ".join(q for q in queries if q),
        "queries": [q for q in queries if q],
        "files": normalized,
        "scores": [f["score"] for f in normalized if f["score"] is not None],
    }


def web_search_result(
    query: str,
    sources: list[dict[str, Any]],
    citations: list[dict[str, Any]] | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    """``{query, status, sources: [{url, title, domain}], citations: [{url, title, domain}]}``."""

    def entry(item: dict[str, Any]) -> dict[str, Any]:
        url = item.get("url") or ""
        return {
            "url": url,
            "title": item.get("title") or "",
            "domain": urlparse(url).hostname or "",
        }

    return {
        "query": query,
        "status": status,
        "sources": [entry(s) for s in sources],
        "citations": [entry(c) for c in citations or []],
    }


def code_interpreter_result(
    code: str,
    logs: list[str],
    files: list[str] | None = None,
    status: str = "completed",
    language: str = "python",
) -> dict[str, Any]:
    """``{code, language, logs, files_created, status}``; status is completed|failed|…"""
    return {
        "code": code,
        "language": language,
        "logs": logs,
        "files_created": list(files or []),
        "status": status,
    }
