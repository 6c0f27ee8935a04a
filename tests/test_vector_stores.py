"""``pt vector-stores``: service routing, paging and waiting; the OpenAI operations; the CLI."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.config.settings import Settings
from prompttracker.errors import ConfigError
from prompttracker.report.vector_stores import (
    format_bytes,
    format_timestamp,
    page_cap_note,
    vector_store_view,
    vector_stores_table,
)
from prompttracker.vector_stores import service as service_module
from prompttracker.vector_stores.openai import (
    OpenAIVectorStoreOperations,
    page_from_api,
    vector_store_file_from_api,
    vector_store_from_api,
)
from prompttracker.vector_stores.service import (
    PROVIDERS,
    Page,
    UploadedFile,
    VectorStore,
    VectorStoreFile,
    VectorStoreOperations,
    VectorStoreService,
    operations_class,
)
from tests.conftest import FIXTURES, load_fixture

KEY = "sk-test-SECRET123"
API = "https://api.openai.com/v1"
STORES_URL = f"{API}/vector_stores"
STORE = "vs_abc123"
STORE_URL = f"{STORES_URL}/{STORE}"
STORE_FILES_URL = f"{STORE_URL}/files"
UPLOAD_URL = f"{API}/files"
DOCS = FIXTURES / "openai" / "vector_store_docs"

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_retries(isolated: Path) -> None:
    """A project whose OpenAI client does not retry, so error paths answer at once."""
    (isolated / "prompttracker.yaml").write_text("providers:\n  openai:\n    max_retries: 0\n")


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "POLL_INTERVAL_SECONDS", 0.001)


def pt(*args: str) -> Any:
    return runner.invoke(app, ["vector-stores", *args], catch_exceptions=False)


def ok(payload: Any) -> httpx.Response:
    return httpx.Response(200, json=payload)


def body(route: Any, index: int = 0) -> Any:
    return json.loads(route.calls[index].request.content)


def stores_page(*ids: str, has_more: bool) -> dict[str, Any]:
    """The spec-shaped store list, holding one copy of its first store per id."""
    listing = load_fixture("openai/vector_stores_list.json")
    template = listing["data"][0]
    listing["data"] = [{**copy.deepcopy(template), "id": i, "name": f"Store {i}"} for i in ids]
    listing.update(first_id=ids[0], last_id=ids[-1], has_more=has_more)
    return listing


def store_file(fid: str, status: str, **fields: Any) -> dict[str, Any]:
    payload = load_fixture("openai/vector_store_file.json")
    payload.update(id=fid, vector_store_id=STORE, status=status, **fields)
    return payload


def uploaded(fid: str, filename: str) -> dict[str, Any]:
    payload = load_fixture("openai/vector_store_upload_file.json")
    payload.update(id=fid, filename=filename)
    return payload


def not_found(request_id: str = "req_404") -> httpx.Response:
    return httpx.Response(
        404,
        json=load_fixture("openai/vector_store_error_not_found.json"),
        headers={"x-request-id": request_id},
    )


def render(renderable: Any) -> str:
    console = Console(record=True, width=100)
    console.print(renderable)
    return console.export_text()


# --- pure converters and views ------------------------------------------------------------------


def test_converters_read_the_spec_shapes() -> None:
    store = vector_store_from_api(load_fixture("openai/vector_store.json"))
    assert store.id == STORE and store.name == "Support FAQ" and store.status == "completed"
    assert store.file_counts.completed == 3 and store.file_counts.total == 3
    assert store.usage_bytes == 123456
    assert store.created_at == datetime(2023, 10, 24, 0, 34, 21, tzinfo=UTC)
    assert store.expires_at is None

    page = page_from_api(
        load_fixture("openai/vector_store_files_list.json"), vector_store_file_from_api
    )
    assert [f.id for f in page.items] == ["file-abc123", "file-abc456"]
    assert page.has_more is False and page.last_id == "file-abc456"
    failed = page.items[1]
    assert failed.status == "failed" and failed.last_error is not None
    assert (failed.last_error.code, failed.last_error.message) == (
        "unsupported_file",
        "The file type is not supported.",
    )


def test_page_cursor_falls_back_to_the_last_item() -> None:
    listing = stores_page("vs_1", "vs_2", has_more=True)
    del listing["last_id"]
    assert page_from_api(listing, vector_store_from_api).last_id == "vs_2"


def test_views_render_sizes_dates_and_counts() -> None:
    assert [format_bytes(n) for n in (0, 1023, 139920, 5 * 1024**3)] == [
        "0 B",
        "1023 B",
        "136.6 KB",
        "5.0 GB",
    ]
    moment = datetime(2023, 11, 4, 1, 36, 16, tzinfo=UTC)
    assert format_timestamp(moment) == "2023-11-04"
    assert format_timestamp(moment, with_time=True) == "2023-11-04 01:36"
    assert format_timestamp(None) == "—"
    stores = page_from_api(load_fixture("openai/vector_stores_list.json"), vector_store_from_api)
    table = render(vector_stores_table(stores.items))
    assert "Support FAQ v2" in table and "136.6 KB" in table and "2023-11-04" in table
    assert "1/3 · 1 processing · 1 failed" in table
    shown = render(vector_store_view(stores.items[1]))
    assert "3 total: 1 completed, 1 in progress, 1 failed, 0 cancelled" in shown
    assert "expires" in shown and "2023-11-11" in shown


# --- routing and the service's own logic, on a fake provider ------------------------------------


class FakeOperations(VectorStoreOperations):
    """A provider that answers from memory: proves the service needs nothing OpenAI-specific."""

    def __init__(self, settings: Settings, http_client: Any = None) -> None:
        self.after: list[str | None] = []

    async def list_stores(self, *, after: str | None, limit: int) -> Page[VectorStore]:
        self.after.append(after)
        number = len(self.after)
        store = VectorStore(id=f"vs_{number}", status="completed", created_at=datetime.now(UTC))
        return Page(items=(store,), has_more=number < 3, last_id=store.id)

    async def get_store(self, store_id: str) -> VectorStore:
        raise NotImplementedError

    async def create_store(self, name: str, file_ids: Sequence[str]) -> VectorStore:
        raise NotImplementedError

    async def list_files(
        self, store_id: str, *, after: str | None, limit: int
    ) -> Page[VectorStoreFile]:
        raise NotImplementedError

    async def attach_file(self, store_id: str, file_id: str) -> VectorStoreFile:
        raise NotImplementedError

    async def get_file(self, store_id: str, file_id: str) -> VectorStoreFile:
        raise NotImplementedError

    async def upload_file(self, path: Path) -> UploadedFile:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


def test_the_table_routes_openai_to_its_module() -> None:
    assert operations_class("openai") is OpenAIVectorStoreOperations


def test_an_unknown_provider_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        VectorStoreService(Settings(), provider="anthropic")
    assert "'anthropic'" in caught.value.message
    assert "supported: openai" in caught.value.message


async def test_a_new_provider_is_one_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROVIDERS, "fake", "tests.test_vector_stores:FakeOperations")
    async with VectorStoreService(Settings(), provider="fake") as service:
        everything = await service.list_stores()
        capped = await VectorStoreService(Settings(), provider="fake").list_stores(max_pages=2)
        assert isinstance(service.operations, FakeOperations)
        assert service.operations.after == [None, "vs_1", "vs_2"]
    assert [s.id for s in everything.items] == ["vs_1", "vs_2", "vs_3"]
    assert (everything.pages, everything.truncated) == (3, False)
    assert [s.id for s in capped.items] == ["vs_1", "vs_2"]
    assert (capped.pages, capped.truncated) == (2, True)
    assert page_cap_note(everything) is None
    note = page_cap_note(capped)
    assert note is not None and "--max-pages" in note.plain


# --- list ---------------------------------------------------------------------------------------


def test_list_prints_a_table(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.get(STORES_URL).respond(
        200, json=load_fixture("openai/vector_stores_list.json")
    )
    result = pt("list")
    assert result.exit_code == 0, result.output
    request = route.calls[0].request
    assert dict(request.url.params) == {"limit": "100"}
    assert request.headers["authorization"] == f"Bearer {KEY}"
    out = result.stdout
    for text in ("vs_abc123", "Support FAQ v2", "completed", "in_progress", "3/3", "136.6 KB"):
        assert text in out
    assert "2023-11-04" in out
    assert "--max-pages" not in out


def test_list_json_dumps_the_values(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.get(STORES_URL).respond(200, json=load_fixture("openai/vector_stores_list.json"))
    result = pt("list", "--json")
    assert result.exit_code == 0, result.output
    stores = json.loads(result.stdout)
    assert [s["id"] for s in stores] == ["vs_abc123", "vs_abc456"]
    assert stores[1] == {
        "id": "vs_abc456",
        "name": "Support FAQ v2",
        "status": "in_progress",
        "file_counts": {"in_progress": 1, "completed": 1, "failed": 1, "cancelled": 0, "total": 3},
        "usage_bytes": 139920,
        "created_at": "2023-11-04T01:36:16Z",
        "expires_at": "2023-11-11T01:36:16Z",
    }


def test_list_follows_the_after_cursor(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.get(STORES_URL).mock(
        side_effect=[
            ok(stores_page("vs_1", "vs_2", has_more=True)),
            ok(stores_page("vs_3", has_more=False)),
        ]
    )
    result = pt("list", "--json")
    assert result.exit_code == 0, result.output
    assert [s["id"] for s in json.loads(result.stdout)] == ["vs_1", "vs_2", "vs_3"]
    assert route.call_count == 2
    assert "after" not in route.calls[0].request.url.params
    assert dict(route.calls[1].request.url.params) == {"after": "vs_2", "limit": "100"}


def test_the_page_cap_stops_a_server_that_always_has_more(httpx2_mock: Any, api_key: str) -> None:
    # Prism's mock server answers has_more: true on every page.
    route = httpx2_mock.get(STORES_URL).respond(200, json=stores_page("vs_1", has_more=True))
    result = pt("list", "--max-pages", "3")
    assert result.exit_code == 0, result.output
    assert route.call_count == 3
    assert "Showing the first 3 item(s) (3 page(s)); the provider has more" in result.stdout
    assert "--max-pages" in result.stdout

    as_json = pt("list", "--json")
    assert route.call_count == 3 + 10  # the default cap
    assert len(json.loads(as_json.stdout)) == 10  # only the array: the note is for tables


# --- show and create ----------------------------------------------------------------------------


def test_show_prints_one_store(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.get(STORE_URL).respond(200, json=load_fixture("openai/vector_store.json"))
    table = pt("show", STORE)
    as_json = pt("show", STORE, "--json")
    assert table.exit_code == 0 and as_json.exit_code == 0, table.output
    assert route.call_count == 2
    assert "Support FAQ" in table.stdout and "120.6 KB" in table.stdout
    assert "3 total: 3 completed, 0 in progress" in table.stdout
    assert "2023-10-24 00:34 UTC" in table.stdout
    shown = json.loads(as_json.stdout)
    assert shown["id"] == STORE and shown["file_counts"]["total"] == 3
    assert shown["created_at"] == "2023-10-24T00:34:21Z"


def test_an_unknown_store_says_which_id(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.get(f"{STORES_URL}/vs_missing").mock(return_value=not_found("req_nf1"))
    result = pt("show", "vs_missing")
    assert result.exit_code == 1
    assert (
        "show vector store: vector store vs_missing was not found: the API answered HTTP 404: "
        "No vector store found with id 'vs_missing'."
    ) in " ".join(result.output.split())
    assert "request id req_nf1" in result.output
    assert "pt vector-stores list" in result.output  # the hint


def test_create_sends_the_name_and_files(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(STORES_URL).respond(200, json=load_fixture("openai/vector_store.json"))
    result = pt("create", "Support FAQ", "--file-id", "file-1", "--file-id", "file-2", "--json")
    assert result.exit_code == 0, result.output
    assert body(route) == {"name": "Support FAQ", "file_ids": ["file-1", "file-2"]}
    assert json.loads(result.stdout)["id"] == STORE

    table = pt("create", "Support FAQ")
    assert table.exit_code == 0, table.output
    assert body(route, 1) == {"name": "Support FAQ"}
    assert "Vector store vs_abc123" in table.stdout


# --- files and add-file -------------------------------------------------------------------------


def test_files_lists_statuses_and_errors(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.get(STORE_FILES_URL).respond(
        200, json=load_fixture("openai/vector_store_files_list.json")
    )
    table = pt("files", STORE)
    assert table.exit_code == 0, table.output
    assert dict(route.calls[0].request.url.params) == {"limit": "100"}
    assert "file-abc456" in table.stdout and "failed" in table.stdout
    # The error column may wrap at 100 columns; the continuation lines hold nothing else.
    assert "unsupported_file: The file type is not supported." in " ".join(table.stdout.split())
    assert "1.2 KB" in table.stdout

    files = json.loads(pt("files", STORE, "--json").stdout)
    assert [f["status"] for f in files] == ["completed", "failed"]
    assert files[1]["last_error"] == {
        "code": "unsupported_file",
        "message": "The file type is not supported.",
    }


def test_files_pages_under_the_cap(httpx2_mock: Any, api_key: str) -> None:
    first = load_fixture("openai/vector_store_files_list.json")
    first["has_more"] = True
    route = httpx2_mock.get(STORE_FILES_URL).respond(200, json=first)
    result = pt("files", STORE, "--max-pages", "2", "--json")
    assert result.exit_code == 0, result.output
    assert route.call_count == 2
    assert route.calls[1].request.url.params["after"] == "file-abc456"
    assert len(json.loads(result.stdout)) == 4


def test_add_file_attaches_it(httpx2_mock: Any, api_key: str) -> None:
    route = httpx2_mock.post(STORE_FILES_URL).respond(
        200, json=store_file("file-abc123", "in_progress")
    )
    result = pt("add-file", STORE, "file-abc123", "--json")
    assert result.exit_code == 0, result.output
    assert body(route) == {"file_id": "file-abc123"}
    attached = json.loads(result.stdout)
    assert attached["id"] == "file-abc123" and attached["status"] == "in_progress"

    table = pt("add-file", STORE, "file-abc123")
    assert "Added to vs_abc123" in table.stdout and "in_progress" in table.stdout


def test_add_file_404_names_both_ids(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(STORE_FILES_URL).mock(return_value=not_found())
    result = pt("add-file", STORE, "file-nope")
    assert result.exit_code == 1
    assert "vector store vs_abc123 or file file-nope was not found" in result.output


# --- errors before and from the API -------------------------------------------------------------


def test_api_error_is_one_line_with_the_request_id_and_no_key(
    httpx2_mock: Any, api_key: str
) -> None:
    httpx2_mock.get(STORES_URL).respond(
        401,
        json=load_fixture("openai/error_invalid_api_key.json"),
        headers={"x-request-id": "req_401abc"},
    )
    result = pt("list")
    assert result.exit_code == 1
    error_line = next(line for line in result.output.splitlines() if line.startswith("Error:"))
    assert "list vector stores: the API answered HTTP 401: Incorrect API key" in error_line
    assert "(from https://api.openai.com/v1/vector_stores; request id req_401abc)" in error_line
    assert KEY not in result.output and "SECRET123" not in result.output
    assert "Hint:" in result.output


def test_a_malformed_answer_is_an_error_not_a_traceback(httpx2_mock: Any, api_key: str) -> None:
    broken = load_fixture("openai/vector_store.json")
    del broken["created_at"]
    httpx2_mock.get(STORE_URL).respond(200, json=broken)
    result = pt("show", STORE)
    assert result.exit_code == 1
    assert "show vector store: the API answered in an unexpected shape" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("show", STORE),
        ("create", "Support FAQ"),
        ("files", STORE),
        ("add-file", STORE, "file-abc123"),
        ("upload", STORE, str(DOCS / "shipping.txt")),
    ],
)
def test_no_key_stops_before_any_request(httpx2_mock: Any, args: tuple[str, ...]) -> None:
    result = pt(*args)
    assert result.exit_code == 3
    assert "OPENAI_API_KEY" in result.output
    assert "--mock" not in result.output  # pt vector-stores has none
    assert httpx2_mock.calls.call_count == 0


def test_a_blank_id_is_bad_input(httpx2_mock: Any, api_key: str) -> None:
    result = pt("show", " ")
    assert result.exit_code == 2
    assert "the vector store id is empty" in result.output
    assert httpx2_mock.calls.call_count == 0


def test_the_group_imports_no_sdk_for_help() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['pt', 'vector-stores', 'upload', '--help']\n"
        "from prompttracker.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'openai' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--timeout" in result.stdout


# --- upload -------------------------------------------------------------------------------------


def upload_routes(httpx2_mock: Any, statuses: dict[str, list[str]], **file_fields: Any) -> Any:
    """Uploads answer file-1, file-2… in order; each file's polls walk through its statuses."""
    names: list[str] = []

    def on_upload(request: httpx.Request) -> httpx.Response:
        filename = request.content.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
        names.append(filename)
        return ok(uploaded(f"file-{len(names)}", filename))

    def on_poll(request: httpx.Request, fid: str) -> httpx.Response:
        walk = statuses[fid]
        status = walk.pop(0) if len(walk) > 1 else walk[0]
        return ok(store_file(fid, status, **(file_fields if status == "failed" else {})))

    return (
        httpx2_mock.post(UPLOAD_URL).mock(side_effect=on_upload),
        httpx2_mock.post(STORE_FILES_URL).mock(
            side_effect=lambda request: ok(
                store_file(json.loads(request.content)["file_id"], "in_progress")
            )
        ),
        httpx2_mock.get(url__regex=rf"{STORE_FILES_URL}/(?P<fid>file-\d+)$").mock(
            side_effect=on_poll
        ),
    )


def test_upload_waits_until_processed(httpx2_mock: Any, api_key: str, fast_polls: None) -> None:
    statuses = {"file-1": ["in_progress", "in_progress", "completed"], "file-2": ["completed"]}
    upload, attach, poll = upload_routes(httpx2_mock, statuses)
    result = pt("upload", STORE, str(DOCS / "refund_policy.md"), str(DOCS / "shipping.txt"))
    assert result.exit_code == 0, result.output

    first = upload.calls[0].request
    assert first.headers["content-type"].startswith("multipart/form-data")
    assert b'name="purpose"\r\n\r\nassistants' in first.content
    assert b'filename="refund_policy.md"' in first.content
    assert (DOCS / "refund_policy.md").read_bytes() in first.content
    assert b'filename="shipping.txt"' in upload.calls[1].request.content
    assert [body(attach, i) for i in (0, 1)] == [{"file_id": "file-1"}, {"file_id": "file-2"}]
    polled = [str(call.request.url).rsplit("/", 1)[1] for call in poll.calls]
    assert polled.count("file-1") == 3 and polled.count("file-2") == 1
    assert "refund_policy.md" in result.stdout and "shipping.txt" in result.stdout
    assert "in_progress" not in result.stdout


def test_upload_json_is_the_attached_files(
    httpx2_mock: Any, api_key: str, fast_polls: None
) -> None:
    upload_routes(httpx2_mock, {"file-1": ["in_progress", "completed"]})
    result = pt("upload", STORE, str(DOCS / "shipping.txt"), "--json")
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)
    assert len(files) == 1
    assert files[0]["id"] == "file-1" and files[0]["vector_store_id"] == STORE
    assert files[0]["status"] == "completed" and files[0]["filename"] == "shipping.txt"


def test_upload_gives_up_at_the_deadline(httpx2_mock: Any, api_key: str) -> None:
    _, _, poll = upload_routes(httpx2_mock, {"file-1": ["in_progress"]})
    result = pt("upload", STORE, str(DOCS / "shipping.txt"), "--timeout", "0.05")
    assert result.exit_code == 1
    assert "timed out waiting for 1 file(s) to be processed: file-1 (shipping.txt)" in result.output
    assert f"pt vector-stores files {STORE}" in result.output
    assert poll.call_count >= 1


def test_a_failed_file_exits_non_zero_with_its_error(
    httpx2_mock: Any, api_key: str, fast_polls: None
) -> None:
    error = {"code": "invalid_file", "message": "The file could not be parsed."}
    upload_routes(
        httpx2_mock,
        {"file-1": ["completed"], "file-2": ["in_progress", "failed"]},
        last_error=error,
    )
    result = pt("upload", STORE, str(DOCS / "refund_policy.md"), str(DOCS / "shipping.txt"))
    assert result.exit_code == 1
    assert "1 of 2 file(s) could not be processed" in result.output
    assert "file-2 (shipping.txt) failed: invalid_file: The file could not be parsed." in (
        " ".join(result.output.split())
    )
    assert "file-1" in result.stdout  # the table of what was attached is still printed


def test_a_missing_path_is_bad_input_before_any_call(httpx2_mock: Any, api_key: str) -> None:
    result = pt("upload", STORE, str(DOCS / "shipping.txt"), "nowhere.pdf", str(DOCS))
    assert result.exit_code == 2
    assert "nowhere.pdf: no such file" in result.output
    assert f"{DOCS}: not a file" in " ".join(result.output.split())
    assert httpx2_mock.calls.call_count == 0


def test_upload_api_error_names_the_file(httpx2_mock: Any, api_key: str) -> None:
    httpx2_mock.post(UPLOAD_URL).respond(
        400,
        json={"error": {"message": "Invalid file format.", "type": "invalid_request_error"}},
        headers={"x-request-id": "req_up400"},
    )
    result = pt("upload", STORE, str(DOCS / "shipping.txt"))
    assert result.exit_code == 1
    assert "upload shipping.txt: the API answered HTTP 400: Invalid file format." in result.output
    assert "request id req_up400" in result.output


async def test_the_service_closes_only_the_client_it_owns(api_key: str) -> None:
    import httpx2

    async with VectorStoreService(Settings()) as service:
        owned = service.operations
    assert isinstance(owned, OpenAIVectorStoreOperations) and owned._client.is_closed()

    injected = httpx2.AsyncClient()
    async with VectorStoreService(Settings(), http_client=injected) as service:
        assert service.operations._client._client is injected  # type: ignore[attr-defined]
    assert not injected.is_closed  # the caller's client is the caller's to close
    await injected.aclose()
