"""Hosted-tool checks: ``file_search``, ``web_search`` and ``code_interpreter``.

Each reads the normalized results in ``ConversationResult.metadata`` (shapes in
``llm/tool_results.py``), for the whole conversation or, with ``turn``, for that turn only.
Config keys, defaults, scores and pass rules follow the original PromptTracker evaluators of the
same names; deviations are noted on each class.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any
from urllib.parse import urlparse

from pydantic import Field, field_validator

from prompttracker.evaluators.base import EvaluationContext, Evaluator, EvaluatorConfig
from prompttracker.messages import ConversationResult
from prompttracker.results import EvaluationResult


def tool_results(conversation: ConversationResult, key: str) -> list[dict[str, Any]]:
    """The normalized results stored under ``key`` (e.g. ``web_search_results``)."""
    return [r for r in conversation.metadata.get(key) or [] if isinstance(r, dict)]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _clean(values: list[str]) -> list[str]:
    """Entries stripped, blanks dropped (as the original reads its lists)."""
    return [v.strip() for v in values if v.strip()]


def share_score(matched: int, total: int, require_all: bool) -> float:
    """0–100 for a list of expectations: the share matched, or all-or-nothing on any match."""
    if total == 0:
        return 100
    if require_all:
        return 100 * matched / total
    return 100 if matched else 0


def minimum_score(actual: int, minimum: int) -> float:
    """100 at or above ``minimum``, else the share reached."""
    if minimum <= 0 or actual >= minimum:
        return 100
    return 100 * actual / minimum


def threshold_field() -> Any:
    return Field(default=80, ge=0, le=100, description="Passes at a score of at least this")


# --- file_search ------------------------------------------------------------------------------


def file_matches(searched: str, expected: str) -> bool:
    """Exact, then case-insensitive, then substring (case-insensitive), then glob (``*``, ``?``)."""
    if searched == expected or searched.lower() == expected.lower():
        return True
    if expected.lower() in searched.lower():
        return True
    return any(c in expected for c in "*?[") and fnmatch.fnmatchcase(
        searched.lower(), expected.lower()
    )


class FileSearchEvaluator(Evaluator):
    """file_search found the ``expected_files`` (all of them, or any with ``require_all: false``).

    Score: the share of expected files among the files the searches returned (0 when nothing
    was searched). Passes when all (or, without ``require_all``, any) were found. Deviations:
    ``expected_files`` needs at least one entry (the original passed an empty list with score
    0), globs are anchored shell patterns, and ``threshold_score`` (unused by the original's
    pass rule) is not a key.
    """

    type = "file_search"
    scope = "conversation"
    requires_tool = "file_search"

    class Config(EvaluatorConfig):
        expected_files: list[str] = Field(
            min_length=1,
            description="File names (exact, any case, a part of the name, or a glob like *.pdf)",
        )
        require_all: bool = Field(
            default=True, description="Every expected file must be found (false: any one)"
        )

        @field_validator("expected_files")
        @classmethod
        def _no_blanks(cls, files: list[str]) -> list[str]:
            cleaned = _clean(files)
            if not cleaned:
                raise ValueError("expected_files needs at least one non-blank file name")
            return cleaned

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        expected: list[str] = self.config.expected_files
        results = tool_results(ctx.conversation, "file_search_results")
        searched = _unique(
            [
                str(f.get("filename") or f.get("file_id") or "")
                for result in results
                for f in result.get("files") or []
            ]
        )
        matched = [e for e in expected if any(file_matches(s, e) for s in searched)]
        missing = [e for e in expected if e not in matched]
        score = round(100 * len(matched) / len(expected), 2) if results else 0
        passed = not missing if self.config.require_all else bool(matched)
        lines = [
            f"Expected files: {', '.join(expected)}",
            f"Files searched: {', '.join(searched) or 'none'} ({len(results)} search(es))",
            f"Matched files: {', '.join(matched) or 'none'}",
        ]
        if missing:
            lines.append(f"Missing files: {', '.join(missing)}")
        lines.append(
            "All required files were searched."
            if passed
            else "Some expected files were not searched."
        )
        return self.result(
            score,
            passed,
            "\n".join(lines),
            expected_files=expected,
            searched_files=searched,
            matched_files=matched,
            file_search_calls=len(results),
            require_all=self.config.require_all,
        )


# --- web_search -------------------------------------------------------------------------------


def _domain(entry: dict[str, Any]) -> str:
    return str(entry.get("domain") or urlparse(str(entry.get("url") or "")).hostname or "")


def _unique_by_url(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for entry in entries:
        seen.setdefault(str(entry.get("url") or ""), entry)
    return [entry for url, entry in seen.items() if url]


class WebSearchEvaluator(Evaluator):
    """The assistant searched the web, with the expected queries, domains and source counts.

    Score (as the original): 40 for searching, 30 × the query score, 20 × the domain score,
    5 × the sources-consulted score and 5 × the sources-cited score (each part full when not
    asked for). Queries and domains match case-insensitively as substrings; with
    ``require_all_*`` the share matched counts, otherwise any match gives full marks. Passes at
    a score of at least ``threshold_score``. Deviation: with ``require_web_search: false`` a
    conversation that did search is still scored (the original always gave 100).
    """

    type = "web_search"
    scope = "conversation"
    requires_tool = "web_search"

    class Config(EvaluatorConfig):
        require_web_search: bool = Field(
            default=True, description="No search scores 0 (false: no search scores 100)"
        )
        expected_queries: list[str] = Field(
            default_factory=list, description="Terms the search queries should contain"
        )
        require_all_queries: bool = Field(
            default=False, description="Every expected query term must appear (false: any one)"
        )
        expected_domains: list[str] = Field(
            default_factory=list, description="Domains the sources or citations should come from"
        )
        require_all_domains: bool = Field(
            default=False, description="Every expected domain must appear (false: any one)"
        )
        min_sources_consulted: int = Field(
            default=0, ge=0, description="Fewest distinct source URLs the searches returned"
        )
        min_sources_cited: int = Field(
            default=0, ge=0, description="Fewest distinct URLs cited in the answers"
        )
        threshold_score: int = threshold_field()

        @field_validator("expected_queries", "expected_domains")
        @classmethod
        def _no_blanks(cls, values: list[str]) -> list[str]:
            return _clean(values)

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        config = self.config
        results = tool_results(ctx.conversation, "web_search_results")
        queries = _unique([str(r.get("query") or "") for r in results])
        consulted = _unique_by_url([s for r in results for s in r.get("sources") or []])
        cited = _unique_by_url([c for r in results for c in r.get("citations") or []])
        domains = _unique([_domain(e) for e in consulted + cited])
        matched_queries = [
            e for e in config.expected_queries if any(e.lower() in q.lower() for q in queries)
        ]
        matched_domains = [
            e for e in config.expected_domains if any(e.lower() in d.lower() for d in domains)
        ]
        details: dict[str, Any] = {
            "web_search_count": len(results),
            "queries": queries,
            "sources_consulted": len(consulted),
            "sources_cited": len(cited),
            "sources_consulted_list": consulted,
            "sources_cited_list": cited,
            "matched_queries": matched_queries,
            "matched_domains": matched_domains,
            "threshold_score": config.threshold_score,
        }
        if not results:
            if config.require_web_search:
                return self.result(0, False, "Web search was not used.", **details)
            return self.result(100, True, "Web search was not used (not required).", **details)

        queries_part = share_score(
            len(matched_queries), len(config.expected_queries), config.require_all_queries
        )
        domains_part = share_score(
            len(matched_domains), len(config.expected_domains), config.require_all_domains
        )
        score = round(
            40
            + 0.3 * queries_part
            + 0.2 * domains_part
            + 0.05 * minimum_score(len(consulted), config.min_sources_consulted)
            + 0.05 * minimum_score(len(cited), config.min_sources_cited),
            2,
        )
        passed = score >= config.threshold_score
        lines = [
            f"Searches performed: {len(results)}",
            f"Queries: {', '.join(queries) or 'none detected'}",
            f"Sources consulted: {len(consulted)}"
            + (
                f" (minimum {config.min_sources_consulted})" if config.min_sources_consulted else ""
            ),
            f"Sources cited: {len(cited)}"
            + (f" (minimum {config.min_sources_cited})" if config.min_sources_cited else ""),
        ]
        if config.expected_queries:
            lines.append(
                f"Expected queries: {', '.join(config.expected_queries)}; "
                f"matched: {', '.join(matched_queries) or 'none'}"
            )
        if config.expected_domains:
            lines.append(
                f"Expected domains: {', '.join(config.expected_domains)}; "
                f"matched: {', '.join(matched_domains) or 'none'}"
            )
        lines.append("Web search requirements met." if passed else "Some requirements not met.")
        return self.result(score, passed, "\n".join(lines), **details)


# --- code_interpreter -------------------------------------------------------------------------


def output_pattern_matches(pattern: str, output: str) -> bool:
    """A case-insensitive regex search; text that is not a valid regex matches as a substring."""
    try:
        return re.search(pattern, output, re.IGNORECASE) is not None
    except re.error:
        return pattern.lower() in output.lower()


class CodeInterpreterEvaluator(Evaluator):
    """The assistant ran code: successfully, in the expected language, with the expected output.

    Score (as the original): 30 for running code, 20 when every run succeeded, 15 for the
    language, 20 × the output-pattern score, 10 for created files, 5 for the minimum code
    lines (each part full when not asked for). ``output_patterns`` are case-insensitive regexes
    over the runs' logs (invalid ones match as text); with ``require_all_patterns`` the share
    matched counts, otherwise any match gives full marks. Passes at a score of at least
    ``threshold_score``. Deviation: with ``require_code_execution: false`` a conversation that
    did run code is still scored (the original always gave 100).
    """

    type = "code_interpreter"
    scope = "conversation"
    requires_tool = "code_interpreter"

    class Config(EvaluatorConfig):
        require_code_execution: bool = Field(
            default=True, description="No code run scores 0 (false: no run scores 100)"
        )
        expected_language: str | None = Field(
            default=None, description="Language one of the runs must use, e.g. python"
        )
        require_successful_execution: bool = Field(
            default=True, description="Every run must have completed without error"
        )
        output_patterns: list[str] = Field(
            default_factory=list, description="Regexes the runs' output should match"
        )
        require_all_patterns: bool = Field(
            default=False, description="Every output pattern must match (false: any one)"
        )
        expect_files_created: bool = Field(
            default=False, description="The runs must have created at least one file"
        )
        min_code_lines: int = Field(
            default=0, ge=0, description="Fewest lines of code over all runs"
        )
        threshold_score: int = threshold_field()

        @field_validator("output_patterns")
        @classmethod
        def _no_blanks(cls, values: list[str]) -> list[str]:
            return _clean(values)

    async def check(self, ctx: EvaluationContext) -> EvaluationResult:
        config = self.config
        runs = tool_results(ctx.conversation, "code_interpreter_results")
        languages = _unique([str(r.get("language") or "") for r in runs])
        output = "\n".join(str(log) for r in runs for log in r.get("logs") or [])
        files = [str(f) for r in runs for f in r.get("files_created") or []]
        code_lines = sum(len(str(r.get("code") or "").splitlines()) for r in runs)
        successful = [
            r for r in runs if r.get("status") in ("completed", None) and not r.get("error")
        ]
        matched = [p for p in config.output_patterns if output_pattern_matches(p, output)]
        expected_language = (config.expected_language or "").lower()
        language_ok = not expected_language or expected_language in (
            lang.lower() for lang in languages
        )
        details: dict[str, Any] = {
            "execution_count": len(runs),
            "successful_count": len(successful),
            "languages": languages,
            "total_code_lines": code_lines,
            "files_created": files,
            "matched_patterns": matched,
            "threshold_score": config.threshold_score,
        }
        if not runs:
            if config.require_code_execution:
                return self.result(0, False, "Code interpreter was not used.", **details)
            return self.result(
                100, True, "Code interpreter was not used (not required).", **details
            )

        all_ok = len(successful) == len(runs)
        pattern_part = share_score(
            len(matched), len(config.output_patterns), config.require_all_patterns
        )
        score = round(
            30
            + (20 if all_ok or not config.require_successful_execution else 0)
            + (15 if language_ok else 0)
            + 0.2 * pattern_part
            + (10 if files or not config.expect_files_created else 0)
            + (5 if code_lines >= config.min_code_lines else 0),
            2,
        )
        passed = score >= config.threshold_score
        lines = [
            f"Executions: {len(runs)} ({len(successful)} successful)",
            f"Languages: {', '.join(languages) or 'unknown'}",
            f"Total code lines: {code_lines}"
            + (f" (minimum {config.min_code_lines})" if config.min_code_lines else ""),
        ]
        if config.expected_language:
            state = "matched" if language_ok else "not matched"
            lines.append(f"Expected language: {config.expected_language} ({state})")
        if config.output_patterns:
            lines.append(f"Output patterns matched: {len(matched)}/{len(config.output_patterns)}")
        if config.expect_files_created:
            lines.append(f"Files created: {len(files)}")
        lines.append(
            "Code interpreter requirements met." if passed else "Some requirements not met."
        )
        return self.result(score, passed, "\n".join(lines), **details)


EVALUATORS: list[type[Evaluator]] = [
    FileSearchEvaluator,
    WebSearchEvaluator,
    CodeInterpreterEvaluator,
]
