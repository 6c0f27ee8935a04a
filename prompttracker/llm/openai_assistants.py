"""OpenAI Assistants: one thread per conversation; each turn adds a message and runs the assistant.

A run is polled to a final state under our own deadline (the SDK's poller has none), answering
function calls with the row's mock outputs on the way. Hosted tool calls (file_search,
code_interpreter) are read back from the run steps so that evaluators see what was retrieved.

The assistant owns its tools and tool resources; the version's ``model`` (when set) overrides the
assistant's model and a non-blank system prompt replaces its instructions, run by run.

OpenAI shut the live Assistants API down on 2026-08-26 (it answers 404). The route stays for
OpenAI-compatible servers that still serve it; a 404 names the sunset and the way to
``api: responses``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError
from prompttracker.llm.base import JsonSchema, Session, SessionOptions, plain_turns, sampling_params
from prompttracker.llm.clients import openai_call_error
from prompttracker.llm.openai_chat_completions import response_format_param
from prompttracker.llm.tool_results import code_interpreter_result, file_search_result
from prompttracker.llm.tools import (
    MAX_TOOL_ROUNDS,
    function_output,
    parse_arguments,
    too_many_rounds,
)
from prompttracker.messages import AssistantTurn, Message, ToolCall, Usage

if TYPE_CHECKING:
    from openai.types.beta.threads import Message as ThreadMessage
    from openai.types.beta.threads import Run
    from openai.types.beta.threads.runs import RunStep

P = ParamSpec("P")
R = TypeVar("R")

POLL_INTERVAL_SECONDS = 0.5
SUNSET_DATE = "2026-08-26"
# Without this the file_search results in the run steps carry scores but no text.
FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
PENDING = frozenset({"queued", "in_progress", "cancelling"})
HOSTED_TOOLS = frozenset({"file_search", "code_interpreter"})

_FAILURE_HINTS = {
    "failed": "the run failed on the provider's side: retry later, or check the assistant",
    "expired": "the run expired before it finished (runs expire 10 minutes after they start): "
    "retry later",
    "cancelled": "someone cancelled the run while it was going: retry",
    "incomplete": "a token limit was reached: raise max_tokens in model_config, or shorten the "
    "conversation",
}


def thread_messages(history: Sequence[Message]) -> list[dict[str, str]]:
    """Earlier turns as the new thread's opening messages (threads take user and assistant)."""
    return plain_turns(history, "an assistants thread")


def run_params(
    config: ModelConfig, system_prompt: str, response_format: JsonSchema | None
) -> dict[str, Any]:
    """The ``runs.create`` arguments; unset options are left to the assistant's own settings."""
    params: dict[str, Any] = {"assistant_id": config.assistant_id}
    if config.model:
        params["model"] = config.model
    if system_prompt.strip():
        # A blank prompt is left out so that the assistant's own instructions apply.
        params["instructions"] = system_prompt
    params.update(sampling_params(config, "max_completion_tokens"))
    if response_format is not None:
        params["response_format"] = response_format_param(response_format)
    return params


def answer_tool_calls(
    run: Run, outputs: dict[str, Any]
) -> tuple[list[dict[str, str]], list[ToolCall]]:
    """The ``tool_outputs`` answering a ``requires_action`` run, and the calls as we record them."""
    action = run.required_action
    if action is None or action.type != "submit_tool_outputs":
        kind = action.type if action else "nothing"
        raise LLMCallError(f"the run {run.id} requires {kind!r}, which we cannot answer")
    answers: list[dict[str, str]] = []
    calls: list[ToolCall] = []
    for call in action.submit_tool_outputs.tool_calls:
        if call.type != "function":
            raise LLMCallError(f"the run {run.id} asked for a {call.type!r} tool output")
        arguments = parse_arguments(call.function.arguments)
        output = function_output(call.function.name, arguments, outputs)
        answers.append({"tool_call_id": call.id, "output": output})
        calls.append(
            ToolCall(id=call.id, name=call.function.name, arguments=arguments, output=output)
        )
    return answers, calls


def run_failure(run: Run, api_label: str) -> LLMCallError:
    """The error for a run that ended ``failed``, ``expired``, ``cancelled`` or ``incomplete``."""
    reasons = []
    if run.last_error is not None:
        reasons.append(f"{run.last_error.code}: {run.last_error.message}")
    if run.incomplete_details is not None and run.incomplete_details.reason:
        reasons.append(f"reason: {run.incomplete_details.reason}")
    detail = f" ({'; '.join(reasons)})" if reasons else ""
    return LLMCallError(
        f"{api_label}: the run {run.id} ended {run.status}{detail}",
        hint=_FAILURE_HINTS.get(run.status),
    )


def reply_text(messages: Sequence[ThreadMessage]) -> str:
    """The text of the run's assistant messages, in order, one paragraph per content block."""
    parts: list[str] = []
    for message in messages:
        if message.role != "assistant":
            continue
        for block in message.content:
            if block.type == "text":
                parts.append(block.text.value)
            elif block.type == "refusal":
                parts.append(block.refusal)
            elif block.type == "image_file":
                # Code interpreter charts: the transcript names the file instead of dropping it.
                parts.append(f"[image file {block.image_file.file_id}]")
            elif block.type == "image_url":
                parts.append(f"[image {block.image_url.url}]")
            else:
                raise LLMCallError(f"the assistant message {message.id} has a {block.type!r} part")
    return "\n\n".join(parts)


def hosted_tool_calls(steps: Sequence[RunStep]) -> tuple[list[ToolCall], dict[str, list[Any]]]:
    """file_search and code_interpreter calls in the run steps: ToolCalls and normalized extras.

    Function calls are skipped here: they were recorded with their outputs as we answered them.
    """
    calls: list[ToolCall] = []
    extras: dict[str, list[Any]] = {}
    for step in steps:
        if step.step_details.type != "tool_calls":
            continue
        for call in step.step_details.tool_calls:
            if call.type == "function":
                continue
            if call.type == "file_search":
                result = _file_search(call.file_search.results or [])
                extras.setdefault("file_search_results", []).append(result)
                arguments: dict[str, Any] = {}
            elif call.type == "code_interpreter":
                result = _code_interpreter(call.code_interpreter, step.status)
                extras.setdefault("code_interpreter_results", []).append(result)
                arguments = {"code": call.code_interpreter.input}
            else:
                raise LLMCallError(f"the run step {step.id} has a {call.type!r} tool call")
            calls.append(
                ToolCall(
                    id=call.id, type=call.type, name=call.type, arguments=arguments, output=result
                )
            )
    return calls, extras


def _file_search(results: Sequence[Any]) -> dict[str, Any]:
    # The Assistants API does not report the queries it ran, only what it found.
    files = [
        {
            "file_id": r.file_id,
            "filename": r.file_name,
            "score": r.score,
            "text": "\n".join(c.text for c in r.content or [] if c.text),
        }
        for r in results
    ]
    return file_search_result([], files)


def _code_interpreter(call: Any, status: str) -> dict[str, Any]:
    logs = [o.logs for o in call.outputs if o.type == "logs"]
    images = [o.image.file_id for o in call.outputs if o.type == "image"]
    return code_interpreter_result(call.input, logs, images, status=status)


def run_usage(run: Run) -> Usage:
    """Tokens over the whole run, tool rounds included (``usage`` is null until it ends)."""
    if run.usage is None:
        return Usage()
    return Usage(input_tokens=run.usage.prompt_tokens, output_tokens=run.usage.completion_tokens)


def sunset_error(base: LLMCallError, config: ModelConfig) -> LLMCallError:
    """A 404 from an Assistants call: most likely the 2026-08-26 shutdown, so say how to move."""
    model = config.model or "<model>"
    return LLMCallError(
        f"{base.message}. OpenAI shut the Assistants API down on {SUNSET_DATE}: the live API "
        "answers 404 to every Assistants call",
        hint="move this version to api: responses: run `pt sync openai --from-file "
        "assistants.json --as responses` on an exported assistants list, or "
        f"change its model_config to provider: openai, api: responses, model: {model}, and move "
        "tool_resources.file_search.vector_store_ids to tool_config.file_search.vector_store_ids. "
        "An OpenAI-compatible server that still serves the Assistants API keeps working through "
        "providers.openai.base_url in the settings (there, a 404 means a wrong assistant_id)",
    )


def _quietly(method: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Call a beta Assistants method without the SDK's DeprecationWarning: we call it on purpose.

    The SDK warns when the method is called, before the coroutine runs, so the filter covers the
    call only, never an ``await``: ``catch_warnings`` changes process-wide state, and holding it
    across an await would change it for every other coroutine too.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return method(*args, **kwargs)


class AssistantsSession(Session):
    """A conversation on an OpenAI assistant's thread: every turn is one run, polled to its end.

    ``poll_interval`` and ``deadline_seconds`` (per turn; default: the provider's
    ``timeout_seconds``) are arguments so that tests can make them tiny.
    """

    conversation_mode: ClassVar[str] = "assistants_thread"

    def __init__(
        self,
        config: ModelConfig,
        settings: Settings,
        options: SessionOptions,
        *,
        poll_interval: float = POLL_INTERVAL_SECONDS,
        deadline_seconds: float | None = None,
    ) -> None:
        super().__init__(config, settings, options)
        self.poll_interval = poll_interval
        self.deadline_seconds = (
            settings.provider("openai").timeout_seconds
            if deadline_seconds is None
            else deadline_seconds
        )
        self._opening = thread_messages(options.history)
        self._client = self.calls.openai()
        self._thread_id: str | None = None
        self._run_ids: list[str] = []

    @property
    def metadata(self) -> dict[str, Any]:
        """The thread, the assistant and every run of this conversation."""
        return {
            "thread_id": self._thread_id,
            "assistant_id": self.config.assistant_id,
            "run_ids": list(self._run_ids),
        }

    async def _send(self, user_message: str) -> AssistantTurn:
        """Add the message to the thread, run the assistant to its end, return its reply."""
        import openai

        started = time.perf_counter()
        try:
            return await self._turn(user_message, started)
        except openai.OpenAIError as exc:
            # `from None`: the SDK exception's traceback is not needed and could carry the key.
            error = openai_call_error(exc, self.config.label, self.settings)
            if isinstance(exc, openai.NotFoundError):
                error = sunset_error(error, self.config)
            raise error from None

    async def _turn(self, user_message: str, started: float) -> AssistantTurn:
        threads = self._client.beta.threads
        if self._thread_id is None:
            opening = {"messages": self._opening} if self._opening else {}
            thread = await _quietly(threads.create, **opening)
            self._thread_id = thread.id
        thread_id = self._thread_id
        sent = await _quietly(threads.messages.create, thread_id, role="user", content=user_message)
        params = run_params(self.config, self.options.system_prompt, self.options.response_format)
        run = await _quietly(threads.runs.create, thread_id, **params)
        self._run_ids.append(run.id)
        run, function_calls = await self._finish(run)
        if run.status != "completed":
            raise run_failure(run, self.config.label)
        replies = [
            m
            async for m in _quietly(
                threads.messages.list, thread_id, run_id=run.id, order="asc", after=sent.id
            )
        ]
        hosted, extras = hosted_tool_calls(await self._steps(run))
        return AssistantTurn(
            content=reply_text(replies),
            response_id=run.id,
            usage=run_usage(run),
            latency_ms=(time.perf_counter() - started) * 1000,
            tool_calls=(*function_calls, *hosted),
            extras=extras,
        )

    async def _finish(self, run: Run) -> tuple[Run, list[ToolCall]]:
        """Poll ``run`` to a final state, answering function calls, within the deadline."""
        runs = self._client.beta.threads.runs
        deadline = time.monotonic() + self.deadline_seconds
        calls: list[ToolCall] = []
        rounds = 0
        while True:
            if run.status == "requires_action":
                rounds += 1
                if rounds > MAX_TOOL_ROUNDS:
                    await self._cancel(run)
                    raise too_many_rounds(self.config.label)
                answers, answered = answer_tool_calls(run, self.options.function_outputs)
                calls.extend(answered)
                run = await _quietly(
                    runs.submit_tool_outputs, run.id, thread_id=run.thread_id, tool_outputs=answers
                )
                continue
            if run.status not in PENDING:
                return run, calls
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self._cancel(run)
                raise LLMCallError(
                    f"{self.config.label}: the run {run.id} did not finish within "
                    f"{self.deadline_seconds:g} s (last status: {run.status}); it was cancelled",
                    hint="raise providers.openai.timeout_seconds in the settings (it is also the "
                    "deadline for one assistants run), or retry later",
                )
            await asyncio.sleep(min(self.poll_interval, remaining))
            run = await _quietly(runs.retrieve, run.id, thread_id=run.thread_id)

    async def _cancel(self, run: Run) -> None:
        """Best effort: a run left going would keep the thread locked and spend tokens."""
        import openai

        # A failed cancel is dropped: the error we are about to raise says more.
        with contextlib.suppress(openai.OpenAIError):
            await _quietly(self._client.beta.threads.runs.cancel, run.id, thread_id=run.thread_id)

    async def _steps(self, run: Run) -> list[RunStep]:
        """The run steps, only when the run could have used a hosted tool."""
        tools = getattr(run, "tools", None)  # compatible servers may leave it out: then look
        if tools is not None and not any(tool.type in HOSTED_TOOLS for tool in tools):
            return []
        listing = _quietly(
            self._client.beta.threads.runs.steps.list,
            run.id,
            thread_id=run.thread_id,
            include=[FILE_SEARCH_CONTENT],
            order="asc",
        )
        return [step async for step in listing]
