"""Who we talk to: SDK client factories (keys, base URLs, timeouts, injectable HTTP client).

Which protocol we speak lives in the API modules. Only routes import this module, never the CLI
at start-up, so ``pt --help`` does not pay for ``import openai``; the SDK is still imported
inside the functions to keep that true even if someone imports this module early.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from prompttracker.config.settings import Settings
from prompttracker.errors import LLMCallError, RunStartError
from prompttracker.llm.redact import redact

if TYPE_CHECKING:
    import anthropic
    import openai
    from google import genai

T = TypeVar("T")

_STATUS_HINTS = {
    400: "the API rejected the request: check the model name and the model_config parameters",
    401: "the API key was refused: check the key in the environment variable for this provider",
    403: "the key has no access to this model or resource: check the project and its permissions",
    404: "not found: check the model name, the ids in model_config and the provider base_url",
}
_SERVER_HINT = "the provider had an error after the SDK's retries: retry later"


def require_api_key(
    settings: Settings,
    provider: str,
    *,
    instead: str | None = "run with --mock to play every test offline",
) -> None:
    """Raise ``RunStartError`` naming the environment variable when ``provider`` has no key.

    ``instead`` ends the hint: how the calling command works without a key, if it can.
    """
    if settings.api_key(provider):
        return
    env = settings.api_key_env(provider)
    raise RunStartError(
        f"no API key for {provider}: the environment variable {env} is not set",
        hint=f"set it with `export {env}=...` (keys are read from the environment, never from "
        "files)" + (f", or {instead}" if instead else ""),
    )


def openai_client(
    settings: Settings, http_client: Any = None, *, api_key: str | None = None
) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` client for the project's OpenAI (or OpenAI-compatible) endpoint.

    ``http_client`` (an ``httpx2.AsyncClient``) is injectable for tests and proxies;
    ``api_key`` replaces the environment's (a replay sends nothing, so it needs none).
    """
    import openai

    return openai.AsyncOpenAI(**_client_options(settings, "openai", http_client, api_key))


def _client_options(
    settings: Settings, provider: str, http_client: Any, api_key: str | None
) -> dict[str, Any]:
    """The arguments the openai and anthropic clients share, from the provider's settings."""
    if api_key is None:
        require_api_key(settings, provider)
    options = settings.provider(provider)
    return {
        "api_key": api_key or settings.api_key(provider),
        "base_url": settings.base_url(provider),
        "timeout": options.timeout_seconds,
        "max_retries": options.max_retries,
        "http_client": http_client,
    }


def llm_call_error(
    exc: Exception, api_label: str, *, secrets: tuple[str | None, ...] = ()
) -> LLMCallError:
    """Turn an SDK exception into one clear, key-free line (plus a hint).

    ``secrets`` are literal values to hide besides anything key-shaped; the key the failed
    request carried in its Authorization header is always hidden too.
    """
    import openai

    return _sdk_call_error(openai, exc, api_label, secrets)


async def openai_call(request: Awaitable[T], api_label: str, settings: Settings) -> T:
    """Await an OpenAI SDK request; an SDK error becomes a key-free ``LLMCallError``."""
    import openai

    try:
        return await request
    except openai.OpenAIError as exc:
        # `from None`: the SDK exception's traceback is not needed and could carry the key.
        raise openai_call_error(exc, api_label, settings) from None


async def openai_post(
    client: openai.AsyncOpenAI, path: str, params: dict[str, Any]
) -> dict[str, Any]:
    """``POST path`` with ``params`` as the JSON body; the answer as plain JSON.

    What ``client.chat.completions.create(**params)`` (or ``responses.create``) sends, minus the
    SDK's two conversions: of the arguments against its TypedDicts (our converters build plain
    JSON already) and of the answer into its models (our converters read plain JSON). Together
    they cost over 1 CPU-ms a call, more as the history grows. Auth, retries and errors stay
    the SDK's; ``tests/test_call_layer.py`` checks that both send the same request.
    """
    answer = await client.post(
        path, body=params, cast_to=dict, options={"security": {"bearer_auth": True}}
    )
    if not isinstance(answer, dict):  # a server that answered 200 with something else
        raise LLMCallError(
            f"POST {path} answered with {type(answer).__name__}, not a JSON object: "
            f"{str(answer)[:200]!r}",
            hint="check the provider's base_url: it should point at an OpenAI-compatible API",
        )
    return answer


async def openai_events(
    client: openai.AsyncOpenAI, path: str, params: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """``POST path`` with ``"stream": true``: the server-sent events, each as plain JSON (the
    SDK parses the stream and raises on an error event; ``[DONE]`` ends it)."""
    import openai

    stream = await client.post(
        path,
        body={**params, "stream": True},
        cast_to=dict,
        stream=True,
        stream_cls=openai.AsyncStream[dict],
        options={"security": {"bearer_auth": True}},
    )
    async for event in stream:
        if isinstance(event, dict):
            yield event


def openai_call_error(exc: Exception, api_label: str, settings: Settings) -> LLMCallError:
    """``llm_call_error`` hiding the project's OpenAI key."""
    return llm_call_error(exc, api_label, secrets=(settings.api_key("openai"),))


def _sdk_call_error(
    sdk: Any, exc: Exception, api_label: str, secrets: tuple[str | None, ...]
) -> LLMCallError:
    """The error for the openai and anthropic SDKs, which share their exception classes' shapes."""
    hidden = (*secrets, *_request_credentials(exc))
    hint: str | None
    if isinstance(exc, sdk.APIStatusError):
        # anthropic parses the body's message itself (`api_message`); openai leaves it to us.
        detail = (
            getattr(exc, "api_message", None) or _body_message(exc.body) or _reason(exc.status_code)
        )
        message, hint = _status_line(
            api_label, exc.status_code, detail, exc.request_id, _safe_request(exc.response)
        )
        if exc.status_code == 429:
            hint = _rate_limit_hint(exc.response, detail)
    elif isinstance(exc, sdk.APITimeoutError):
        message, hint = _timeout_line(api_label, exc.request)
    elif isinstance(exc, sdk.APIConnectionError):
        message, hint = _connection_line(api_label, exc.request, exc.__cause__ or exc.__context__)
    else:
        message, hint = f"{api_label}: {type(exc).__name__}: {exc}", None
    return LLMCallError(_one_line(redact(message, hidden)), hint=hint)


def _rate_limit_hint(response: Any, detail: str) -> str:
    """What to do about a 429 that reached the SDK: our wait budget ran out, or no quota."""
    from prompttracker.llm.endpoint import WAITED_HEADER, out_of_quota

    if out_of_quota(response) or "quota" in detail.lower():
        return (
            "the account is out of quota, which waiting does not fix: add credit or use another key"
        )
    waited = float(getattr(response, "headers", {}).get(WAITED_HEADER) or 0)
    spent = f"waited {waited:.1f} s for it to clear; " if waited else ""
    return (
        f"rate limit reached: {spent}raise providers.<name>.rate_limit_wait_seconds in the "
        "settings, or lower 'concurrency'"
    )


def _body_message(body: object) -> str:
    """The provider's own error text: ``{"message": ...}`` (the SDK strips the ``error`` level)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        return ""
    return body.strip()[:300] if isinstance(body, str) else ""


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _request_credentials(exc: Exception) -> list[str]:
    """The key the failed request sent, so that an echo of it in the body is hidden."""
    request = getattr(exc, "request", None)
    headers = getattr(request, "headers", None)
    if headers is None:
        return []
    found = []
    for name in ("authorization", "api-key", "x-api-key"):
        value = headers.get(name)
        if value:
            found.append(re.sub(r"(?i)^bearer\s+", "", value))
    return found


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- Anthropic and Google: optional SDKs (`pip install 'prompttracker[anthropic]'` / `[google]`)


def anthropic_client(
    settings: Settings, http_client: Any = None, *, api_key: str | None = None
) -> anthropic.AsyncAnthropic:
    """An ``AsyncAnthropic`` client: key, base URL, timeout and retries from the settings.

    The key is always passed explicitly, so the SDK never falls back to its credential profiles.
    ``http_client`` (an ``httpx2.AsyncClient``) is injectable for tests and proxies.
    """
    import anthropic

    return anthropic.AsyncAnthropic(**_client_options(settings, "anthropic", http_client, api_key))


def gemini_client(
    settings: Settings, http_client: Any = None, *, api_key: str | None = None
) -> genai.Client:
    """A google-genai ``Client`` on the Gemini Developer API (``client.aio`` is the async side).

    ``vertexai=False`` so that ``GOOGLE_GENAI_USE_VERTEXAI`` cannot switch a key-based project
    to Vertex AI. The SDK retries only when told to, so ``max_retries`` becomes its attempt
    count; its timeout is in milliseconds. ``http_client`` (an ``httpx2.AsyncClient``) is
    injectable and stays owned by the caller: the SDK does not close it.
    """
    from google.genai import Client, types

    if api_key is None:
        require_api_key(settings, "google")
    provider = settings.provider("google")
    options = types.HttpOptions(
        base_url=settings.base_url("google"),
        api_version=provider.api_version,
        timeout=round(provider.timeout_seconds * 1000),
        # 429s are waited out by the run's endpoint client (llm/endpoint.py), not retried here.
        retry_options=types.HttpRetryOptions(
            attempts=provider.max_retries + 1, http_status_codes=[408, 500, 502, 503, 504]
        ),
        httpx_async_client=http_client,
    )
    return Client(
        vertexai=False, api_key=api_key or settings.api_key("google"), http_options=options
    )


def anthropic_call_error(
    exc: Exception, api_label: str, *, secrets: tuple[str | None, ...] = ()
) -> LLMCallError:
    """``llm_call_error`` for the anthropic SDK's exceptions: one key-free line and a hint."""
    import anthropic

    return _sdk_call_error(anthropic, exc, api_label, secrets)


def gemini_call_error(
    exc: BaseException, api_label: str, *, secrets: tuple[str | None, ...] = ()
) -> LLMCallError:
    """``llm_call_error`` for google-genai: its ``APIError`` and the transport's own errors.

    The SDK does not wrap network errors, so httpx2 (or aiohttp) exceptions arrive as they are.
    The key travels in the ``x-goog-api-key`` header, or in a ``key=`` query parameter behind
    some proxies: both values are hidden, and URLs are shown without their query.
    """
    import httpx2
    from google.genai import errors

    request = _safe_request(exc) or _safe_request(getattr(exc, "response", None))
    hidden = (*secrets, *_google_credentials(request))
    hint: str | None
    if isinstance(exc, errors.APIError):
        detail = exc.message or _reason(exc.code)
        if exc.status:
            detail += f" ({exc.status})"
        message, hint = _status_line(api_label, exc.code, detail, None, request)
        if exc.code == 400 and "API_KEY_INVALID" in str(exc.details):
            hint = _STATUS_HINTS[401]  # Gemini answers a bad key with 400, not 401
        elif exc.code == 429:
            hint = _rate_limit_hint(getattr(exc, "response", None), detail)
    elif isinstance(exc, TimeoutError | httpx2.TimeoutException):
        message, hint = _timeout_line(api_label, request)
    else:
        message, hint = _connection_line(api_label, request, exc)
    return LLMCallError(_one_line(redact(_QUERY_KEY.sub(r"\1[REDACTED]", message), hidden)), hint)


# A key sent as a query parameter (`?key=...`), wherever a URL shows up in a message.
_QUERY_KEY = re.compile(r"(?i)([?&](?:api_?)?key=)[^&#\s)'\"]+")


def _status_line(
    api_label: str, status: int, detail: str, request_id: str | None, request: object = None
) -> tuple[str, str | None]:
    message = f"{api_label}: the API answered HTTP {status}: {detail}"
    where = [f"from {_url_of(request)}"] if request is not None else []
    if request_id:
        where.append(f"request id {request_id}")
    if where:
        message += f" ({'; '.join(where)})"
    hint = _STATUS_HINTS.get(status)
    if hint is None and status >= 500:
        hint = _SERVER_HINT
    return message, hint


def _timeout_line(api_label: str, request: object) -> tuple[str, str]:
    return (
        f"{api_label}: the request to {_url_of(request)} timed out after the SDK's retries",
        "raise providers.<name>.timeout_seconds in the settings, or retry later",
    )


def _connection_line(
    api_label: str, request: object, cause: BaseException | None
) -> tuple[str, str]:
    reason = f" ({type(cause).__name__}: {cause})" if cause else ""
    return (
        f"{api_label}: could not connect to {_url_of(request)}{reason}",
        "check the network and the provider's base_url in the settings",
    )


def _safe_request(holder: object) -> Any:
    """``holder.request``, or None: httpx2 errors raise RuntimeError when it was never set."""
    try:
        return getattr(holder, "request", None)
    except RuntimeError:
        return None


def _url_of(request: object) -> str:
    """Scheme, host, port and path of a request; the query is dropped (keys can live there)."""
    url = getattr(request, "url", None)
    try:
        if url is None:
            return "the API"
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.host}{port}{url.path}"
    except AttributeError:
        return "the API"


def _google_credentials(request: object) -> list[str]:
    """The Gemini key a failed request carried, in its header or its query."""
    found = []
    headers = getattr(request, "headers", None)
    if headers is not None and headers.get("x-goog-api-key"):
        found.append(headers["x-goog-api-key"])
    url = getattr(request, "url", None)
    params = getattr(url, "params", None)
    if params is not None and params.get("key"):
        found.append(params["key"])
    return found
