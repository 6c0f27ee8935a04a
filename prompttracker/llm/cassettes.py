"""Record and replay every LLM call of a run, at the one door out.

``--record DIR`` writes each test run's HTTP exchanges (the prompt under test, the simulated
user, the judges; every route, the Assistants thread and run polling included) to one JSON
file per test run, ``DIR/<prompt>/<test>/v<version>-<row>[-<repeat>].json``. ``--replay DIR``
answers from those files with no network and no key. A request is found by a canonical hash of
its method, path and JSON body — never a header, so never a key; the n-th request with a hash
gets the n-th recorded answer (polling replays in order). A request with no recorded answer
gets an HTTP 400 that names the test run and the first field that differs from the nearest
recorded request; ``--record-missing`` asks the real API instead and adds its answer.

The endpoint client (``llm/endpoint.py``) consults ``current_cassette``, which the runner sets
for the test run it plays; sessions know nothing of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from prompttracker.errors import ConfigError

if TYPE_CHECKING:
    import httpx2

    from prompttracker.runner import PlannedRun

CASSETTE_FORMAT = 1
REPLAY_KEY = "pt-replay-no-key"  # what the SDK clients get as a key when replaying
MISS_TYPE = "pt_replay_miss"
Mode = Literal["record", "replay", "replay+record"]

# The cassette of the test run being played in this task, if the run records or replays.
current_cassette: ContextVar[Cassette | None] = ContextVar("pt_cassette", default=None)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordedRequest(_Strict):
    method: str
    path: str
    body: Any = None


class RecordedResponse(_Strict):
    status: int
    body: Any = None


class Interaction(_Strict):
    request: RecordedRequest
    response: RecordedResponse


class CassetteFile(_Strict):
    pt_cassette: Literal[1]
    test_run: str
    interactions: list[Interaction]


def request_key(method: str, path: str, body: Any) -> str:
    """The canonical hash of a request: method, path with query, JSON body (sorted keys)."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Cassette:
    """One test run's recorded exchanges, answered in order per request hash."""

    def __init__(
        self,
        path: Path,
        label: str,
        interactions: list[Interaction],
        *,
        mode: Mode,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.label = label
        self.mode = mode
        self.interactions = interactions if mode != "record" else []
        self.secrets = secrets
        self.added = 0
        self._answers: dict[str, list[Interaction]] = {}
        for interaction in self.interactions:
            r = interaction.request
            self._answers.setdefault(request_key(r.method, r.path, r.body), []).append(interaction)
        self._served: dict[str, int] = {}

    @property
    def replaying(self) -> bool:
        return self.mode != "record"

    @property
    def calls_out(self) -> bool:
        """Whether a request with no recorded answer may go to the real API."""
        return self.mode != "replay"

    def answer(self, request: httpx2.Request) -> httpx2.Response | None:
        """The recorded answer to ``request`` (the next one for its hash), or None."""
        if not self.replaying:
            return None
        method, path, body = _shape(request, self.secrets)
        key = request_key(method, path, body)
        answers = self._answers.get(key)
        if not answers:
            return None
        served = self._served.get(key, 0)
        self._served[key] = served + 1
        recorded = answers[min(served, len(answers) - 1)].response  # polling past: the last
        return _response(request, recorded.status, recorded.body)

    def miss(self, request: httpx2.Request) -> httpx2.Response:
        """An HTTP 400 saying what was asked that the cassette does not have."""
        method, path, body = _shape(request, self.secrets)
        message = (
            f"replay: {self.path} has no answer for {method} {path} of {self.label}; "
            + nearest_difference(method, path, body, self.interactions)
            + "; record it again (--record) or fill the gap (--replay DIR --record-missing)"
        )
        error = {"message": message, "type": MISS_TYPE, "code": 400, "status": "INVALID_ARGUMENT"}
        response = _response(request, 400, {"error": error})
        response.headers["x-should-retry"] = "false"
        return response

    def record(self, request: httpx2.Request, response: httpx2.Response) -> None:
        """Add an exchange that went to the real API (its body already read)."""
        method, path, body = _shape(request, self.secrets)
        interaction = Interaction(
            request=RecordedRequest(method=method, path=path, body=body),
            response=RecordedResponse(
                status=response.status_code, body=_redact(_body(response.content), self.secrets)
            ),
        )
        self.interactions.append(interaction)
        self._answers.setdefault(request_key(method, path, body), []).append(interaction)
        self.added += 1

    def save(self) -> None:
        """Write the cassette atomically when it holds exchanges it did not have."""
        if not self.added:
            return
        document = CassetteFile(
            pt_cassette=CASSETTE_FORMAT, test_run=self.label, interactions=self.interactions
        )
        text = json.dumps(document.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            os.chmod(temp, 0o644)  # a file to commit, not a secret (mkstemp makes it 0600)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


class Cassettes:
    """The cassettes of a run, one file per planned test run under ``directory``."""

    def __init__(
        self,
        directory: Path,
        mode: Mode,
        planned: list[PlannedRun],
        *,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        self.mode = mode
        self.secrets = tuple(s for s in secrets if s)
        self.paths = _paths(directory, planned)
        self.loaded: dict[Path, list[Interaction]] = {}
        if mode != "record":
            if not directory.is_dir():
                raise ConfigError(
                    f"--replay {directory}: no such directory of cassettes",
                    hint="record them first with --record DIR",
                )
            self.loaded = {path: load_cassette(path) for path in sorted(directory.rglob("*.json"))}

    @property
    def replaying(self) -> bool:
        return self.mode != "record"

    @property
    def needs_keys(self) -> bool:
        return self.mode != "replay"

    @contextmanager
    def playing(self, planned: PlannedRun) -> Iterator[Cassette]:
        """The cassette of ``planned`` for the calls made inside the block; saved after."""
        path = self.paths[planned.key]
        cassette = Cassette(
            path,
            planned.label,
            list(self.loaded.get(path, [])),
            mode=self.mode,
            secrets=self.secrets,
        )
        token = current_cassette.set(cassette)
        try:
            yield cassette
        finally:
            current_cassette.reset(token)
            cassette.save()


def load_cassette(path: Path) -> list[Interaction]:
    """A cassette file's exchanges; a damaged one is bad input that names file and place."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise _damaged(path, "it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _damaged(path, f"line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    try:
        return CassetteFile.model_validate(data).interactions
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        raise _damaged(path, f"{where}: {first['msg']}") from None


def _damaged(path: Path, problem: str) -> ConfigError:
    return ConfigError(
        f"{path} is not a cassette pt can replay: {problem}",
        hint="record it again with --record, or remove the file",
    )


def nearest_difference(method: str, path: str, body: Any, interactions: list[Interaction]) -> str:
    """Where the request first differs from the most similar recorded one, in words."""
    if not interactions:
        return "the cassette has no recorded request (the test run was not recorded)"
    now = dict(_flatten({"method": method, "path": path, "body": body}))

    def recorded(interaction: Interaction) -> dict[str, Any]:
        r = interaction.request
        return dict(_flatten({"method": r.method, "path": r.path, "body": r.body}))

    candidates = [recorded(i) for i in interactions]
    nearest = max(candidates, key=lambda c: sum(1 for k, v in now.items() if c.get(k) == v))
    for field, value in now.items():
        if field not in nearest:
            return f"the nearest recorded request has no {field} (now {_quote(value)})"
        if nearest[field] != value:
            was, now_text = _difference(nearest[field], value)
            return (
                f"it differs from the nearest recorded request at {field}: "
                f"recorded {was}, now {now_text}"
            )
    extra = next(field for field in nearest if field not in now)
    return f"the nearest recorded request also has {extra}, which this one lacks"


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _quote(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _difference(was: Any, now: Any, context: int = 25) -> tuple[str, str]:
    """Both values quoted; two long strings from a little before where they part."""
    if not (isinstance(was, str) and isinstance(now, str)):
        return _quote(was), _quote(now)
    start = next((i for i, (a, b) in enumerate(zip(was, now, strict=False)) if a != b), None)
    if start is None:
        start = min(len(was), len(now))
    cut = max(0, start - context)

    def excerpt(text: str) -> str:
        piece = text[cut : start + 2 * context]
        quoted = json.dumps(piece, ensure_ascii=False)
        return ("…" if cut else "") + quoted + ("…" if start + 2 * context < len(text) else "")

    return excerpt(was), excerpt(now)


def _paths(directory: Path, planned: list[PlannedRun]) -> dict[str, Path]:
    """A readable, stable file per planned test run; a clash of names gets a number."""
    paths: dict[str, Path] = {}
    taken: dict[Path, int] = {}
    for item in planned:
        name = f"v{item.version.version}-{_slug(item.row.name)}"
        if item.repeats > 1:
            name += f"-{item.repeat + 1}"
        path = directory / _slug(item.prompt_slug) / _slug(item.test.name) / f"{name}.json"
        clash = taken.get(path, 0)
        taken[path] = clash + 1
        if clash:
            path = path.with_name(f"{path.stem}-{clash + 1}.json")
        paths[item.key] = path
    return paths


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"


def _shape(request: httpx2.Request, secrets: tuple[str, ...]) -> tuple[str, str, Any]:
    """(method, path with query, body) of a request, as a cassette keeps it."""
    url = request.url
    path = url.raw_path.decode("ascii", "replace")
    body = _body(request.content)
    return request.method, _redact(path, secrets), _redact(body, secrets)


def _body(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return content.decode("utf-8", "replace")


def _redact(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` with any secret (an API key) replaced, wherever it appears."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "<redacted>")
        return value
    if isinstance(value, dict):
        return {key: _redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, secrets) for item in value]
    return value


def _response(request: httpx2.Request, status: int, body: Any) -> httpx2.Response:
    import httpx2

    if isinstance(body, str):
        return httpx2.Response(status, text=body, request=request)
    return httpx2.Response(status, json=body, request=request)
