"""The run-scoped call layer — "one door out".

Every LLM call of a run — the prompt under test, the simulated user, the judges — leaves the
process through the ``CallLayer`` that the engine opens for the run and closes at its end. It
owns one SDK client per provider endpoint, each sending through one ``EndpointClient`` (one
connection pool, the total deadline, rate limits waited out, adaptive concurrency), shared by
every session of the run. Sessions own request and response shapes; they ask the layer for
their client and never build or close one.

This is the place for what concerns every call alike: requests are counted by caller at the
endpoint, and every answer's tokens are metered and priced here (``record``), for the run, for
the test run and for any narrower tally open around the call (``metering``), so no call goes
uncounted. The budget (``max_cost_usd``) is checked here too, and the run's cassettes
(``llm/cassettes.py``) record or replay every exchange at the endpoint.

Importing this module imports no SDK and no HTTP library: clients are built on first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.messages import Metered, Usage
from prompttracker.pricing import Pricer

if TYPE_CHECKING:
    import anthropic
    import openai
    from google import genai

    from prompttracker.llm.cassettes import Cassettes
    from prompttracker.llm.endpoint import EndpointClient, EndpointStats
    from prompttracker.runner import PlannedRun

Caller = Literal["assistant", "simulated_user", "judge"]

# Who is calling right now; the endpoint counts each request under it. Calls are the prompt
# under test's unless ``calling_as`` says otherwise (the simulated user's and the judges' calls
# go through ``router.complete``, which sets it).
current_caller: ContextVar[str] = ContextVar("pt_caller", default="assistant")
# Who a failed call was for, in its error: the three callers look alike at the API.
CALLER_NAMES = {
    "assistant": "prompt under test",
    "simulated_user": "simulated user",
    "judge": "judge",
}

# The tallies open around the current call (a test run's, an evaluation's…), innermost last.
_tallies: ContextVar[tuple[Meter, ...]] = ContextVar("pt_tallies", default=())


@contextmanager
def calling_as(caller: Caller) -> Iterator[None]:
    """Attribute the requests made inside the block to ``caller``."""
    token = current_caller.set(caller)
    try:
        yield
    finally:
        current_caller.reset(token)


class Meter:
    """A running tally of calls, tokens and cost, by caller."""

    def __init__(self) -> None:
        self.by_caller: dict[str, Metered] = {}

    def add(self, caller: str, usage: Usage, cost_usd: float | None) -> None:
        self.by_caller[caller] = self.by_caller.get(caller, Metered()).add(usage, cost_usd)

    @property
    def total(self) -> Metered:
        return sum(self.by_caller.values(), Metered())


class CallLayer:
    """The door every LLM call of a run goes through. Use it as ``async with``, or ``aclose``.

    ``concurrency`` caps the calls in flight towards each endpoint (the run's test runs at
    once; each plays one call at a time), and sizes the connection pools. ``max_cost_usd``:
    once the run's metered cost reaches it, ``budget_reached`` turns true (the engine then
    starts no further test run).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int | None = None,
        max_cost_usd: float | None = None,
        cassettes: Cassettes | None = None,
    ) -> None:
        self.settings = settings
        self.cassettes = cassettes
        self.concurrency = concurrency or settings.concurrency
        self.pricer = Pricer(settings.prices)
        self.meter = Meter()  # the whole run
        self.max_cost_usd = max_cost_usd
        self._endpoints: dict[str, EndpointClient] = {}
        self._clients: dict[str, Any] = {}
        self._closed = False

    def record(self, config: ModelConfig, usage: Usage) -> float | None:
        """Meter one answered call of ``config`` under the current caller; return its cost.

        Every session's ``send`` calls this, so the run's, the test run's and any open tally
        see every call.
        """
        cost = self.pricer.cost(config, usage)
        caller = current_caller.get()
        self.meter.add(caller, usage, cost)
        for tally in _tallies.get():
            tally.add(caller, usage, cost)
        return cost

    @contextmanager
    def metering(self) -> Iterator[Meter]:
        """A tally of the calls made inside the block (and the tasks it starts)."""
        meter = Meter()
        token = _tallies.set((*_tallies.get(), meter))
        try:
            yield meter
        finally:
            _tallies.reset(token)

    def cassette(self, planned: PlannedRun) -> AbstractContextManager[object]:
        """Record or replay the calls of ``planned`` made inside the block (when the run does)."""
        return self.cassettes.playing(planned) if self.cassettes else nullcontext()

    @property
    def budget_reached(self) -> bool:
        """Whether the run has spent its ``max_cost_usd`` (never, without a budget)."""
        return self.max_cost_usd is not None and self.meter.total.priced_usd >= self.max_cost_usd

    async def __aenter__(self) -> CallLayer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def openai(self) -> openai.AsyncOpenAI:
        """The run's OpenAI (or OpenAI-compatible) client."""
        from prompttracker.llm.clients import openai_client

        return self._client("openai", openai_client)

    def anthropic(self) -> anthropic.AsyncAnthropic:
        """The run's Anthropic client (the optional SDK must be installed)."""
        from prompttracker.llm.clients import anthropic_client

        return self._client("anthropic", anthropic_client)

    def gemini(self) -> genai.Client:
        """The run's google-genai client (``.aio`` is its async side)."""
        from prompttracker.llm.clients import gemini_client

        return self._client("google", gemini_client)

    @property
    def clients_built(self) -> int:
        """How many SDK clients this layer built: one per provider endpoint used."""
        return len(self._clients)

    @property
    def stats(self) -> dict[str, EndpointStats]:
        """Per provider: requests by caller, rate limits met and time spent waiting them out."""
        return {provider: endpoint.stats for provider, endpoint in self._endpoints.items()}

    def refusals(self) -> dict[str, str]:
        """Per provider that refused the key (401/403): what it said, key-free. No request
        goes to it again in this run."""
        from prompttracker.llm.redact import redact

        said = {}
        for provider, endpoint in self._endpoints.items():
            if endpoint.refusal is not None:
                status = endpoint.refusal.status_code
                detail = _error_message(endpoint.refusal.content)
                text = f"HTTP {status}" + (f": {detail}" if detail else "")
                said[provider] = redact(text, (self.settings.api_key(provider),))
        return said

    def _client(self, provider: str, factory: Callable[..., Any]) -> Any:
        client = self._clients.get(provider)
        if client is not None:
            return client
        if self._closed:
            raise RuntimeError("the call layer is closed: open a new one for another run")
        from prompttracker.llm.cassettes import REPLAY_KEY
        from prompttracker.llm.clients import require_api_key
        from prompttracker.llm.endpoint import EndpointClient

        replaying = self.cassettes is not None and not self.cassettes.needs_keys
        if not replaying:
            require_api_key(self.settings, provider)
        options = self.settings.provider(provider)
        endpoint = EndpointClient(
            deadline_seconds=options.timeout_seconds,
            rate_limit_wait_seconds=options.rate_limit_wait_seconds,
            concurrency=self.concurrency,
            timeout=options.timeout_seconds,
        )
        client = factory(
            self.settings, http_client=endpoint, api_key=REPLAY_KEY if replaying else None
        )
        self._endpoints[provider] = endpoint
        self._clients[provider] = client
        return client

    async def aclose(self) -> None:
        """Close every client and connection pool; the stats stay readable. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for provider, client in self._clients.items():
            if provider == "google":
                await client.aio.aclose()  # leaves our endpoint open: it is ours to close
                client.close()
            else:
                await client.close()
        for endpoint in self._endpoints.values():
            await endpoint.aclose()


def _error_message(body: bytes) -> str:
    """``error.message`` of an API's JSON error body (OpenAI, Anthropic and Gemini agree)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    message = error.get("message") if isinstance(error, dict) else error
    return " ".join(str(message).split())[:300] if message else ""
