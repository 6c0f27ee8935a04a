"""`pt sync openai`: assistants (API pages or an export) become prompt-version YAML files."""

from __future__ import annotations

import copy
import json
import os
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.config.loader import load_project
from prompttracker.sync import SyncTarget, files
from prompttracker.sync.convert import (
    ConversionError,
    assistant_version,
    changed_fields,
    comparable,
    liquid_literal,
)
from prompttracker.sync.models import Assistant, SyncAction
from prompttracker.sync.service import sync_openai_assistants
from prompttracker.templating import render
from tests.conftest import load_fixture

KEY = "sk-test-SECRET-0123456789abcdef"
LIST_URL = "https://api.openai.com/v1/assistants"
NO_RETRY = "providers:\n  openai:\n    max_retries: 0\n"
runner = CliRunner()


def pt(*args: str):
    return runner.invoke(app, ["sync", "openai", *args], catch_exceptions=False)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def page(name: str = "assistants_list.json", **changes: Any) -> dict[str, Any]:
    data = load_fixture(f"openai/{name}")
    data.update(changes)
    return data


def both_pages() -> list[dict[str, Any]]:
    """The three assistants of the two fixture pages, as an export's ``data``."""
    return page()["data"] + page("assistants_list_page2.json")["data"]


def export(path: Path, assistants: list[dict[str, Any]], shape: str = "list") -> Path:
    data = {"object": "list", "data": assistants} if shape == "list" else assistants
    path.write_text(json.dumps(data))
    return path


def read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def query(route: Any, index: int) -> dict[str, str]:
    return dict(route.calls[index].request.url.params)


def flat(text: str) -> str:
    """Output with its line breaks (rich wraps long lines) turned into single spaces."""
    return " ".join(text.split())


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (hidden ones too): its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- the first sync, from the API ---------------------------------------------------------


def test_first_sync_pages_with_after_and_writes_loadable_files(tmp_path, httpx2_mock, api_key):
    """``--as assistants`` still writes versions for the Assistants API (a compatible server)."""
    route = httpx2_mock.get(LIST_URL).mock(
        side_effect=[
            httpx.Response(200, json=page()),
            httpx.Response(200, json=page("assistants_list_page2.json")),
        ]
    )
    result = pt("--as", "assistants")
    assert result.exit_code == 0, result.output

    assert route.call_count == 2
    assert query(route, 0) == {"limit": "100", "order": "asc"}
    assert query(route, 1) == {"limit": "100", "order": "asc", "after": "asst_abc456"}
    assert route.calls[0].request.headers["OpenAI-Beta"] == "assistants=v2"

    prompts = tmp_path / "prompts"
    assert sorted(p.name for p in prompts.iterdir()) == [
        "assistant_asst_abc123.yaml",
        "assistant_asst_abc456.yaml",
        "assistant_asst_abc789.yaml",
    ]
    tutor = read(prompts / "assistant_asst_abc123.yaml")
    synced_at = tutor["versions"][0]["model_config"]["metadata"]["synced_at"]
    assert tutor == {
        "name": "Math Tutor",
        "description": "Walks students through math problems",
        "versions": [
            {
                "version": 1,
                "status": "active",
                "system_prompt": "You are a personal math tutor.\nWhen asked a question, write "
                "and run Python code to answer the question.\n",
                "user_prompt": "{{ user_message }}",
                "model_config": {
                    "provider": "openai",
                    "api": "assistants",
                    "model": "gpt-4o",
                    "assistant_id": "asst_abc123",
                    "temperature": 1.0,
                    "top_p": 1.0,
                    "tools": ["code_interpreter"],
                    "tool_resources": {"code_interpreter": {"file_ids": ["file-abc123"]}},
                    "metadata": {
                        "name": "Math Tutor",
                        "description": "Walks students through math problems",
                        "synced_at": synced_at,
                    },
                },
            }
        ],
    }
    assert datetime.strptime(synced_at, "%Y-%m-%dT%H:%M:%SZ")
    billing = read(prompts / "assistant_asst_abc456.yaml")["versions"][0]["model_config"]
    assert billing["tools"] == ["file_search"]
    assert billing["tool_config"] == {
        "functions": [
            {
                "name": "lookup_order",
                "description": "Look up an order by its number",
                "parameters": page()["data"][1]["tools"][1]["function"]["parameters"],
                "strict": True,
            }
        ],
        "file_search": {"max_num_results": 5},
    }
    assert billing["tool_resources"] == {"file_search": {"vector_store_ids": ["vs_abc123"]}}
    assert billing["metadata"]["assistant_metadata"] == {"team": "billing"}
    assert billing["temperature"] == 0.3
    unnamed = read(prompts / "assistant_asst_abc789.yaml")
    assert unnamed["name"] == "asst_abc789"  # no name: the id
    assert unnamed["versions"][0]["system_prompt"] == ""

    text = (prompts / "assistant_asst_abc123.yaml").read_text()
    assert "system_prompt: |\n      You are a personal math tutor.\n" in text  # a literal block
    assert "  - version: 1\n" in text  # block style, lists indented under their key
    project = load_project(tmp_path)
    assert project.prompts["assistant_asst_abc456"].active_version.model_config_.assistant_id == (
        "asst_abc456"
    )

    assert "3 new" in result.output
    for name in ("asst_abc123", "Math Tutor", "prompts/assistant_asst_abc789.yaml", "v1"):
        assert name in result.output
    assert KEY not in result.output


def test_default_sync_writes_responses_versions(tmp_path, httpx2_mock, api_key):
    """The Assistants API is shut down: without --as, new files run on the Responses API."""
    route = httpx2_mock.get(LIST_URL).respond(200, json=page(has_more=False))
    result = pt("--json")
    assert result.exit_code == 0, result.output

    assert route.call_count == 1
    assert query(route, 0) == {"limit": "100", "order": "asc"}
    report = json.loads(result.output)
    assert report["target"] is None  # no --as given
    assert [(r["action"], r["api"]) for r in report["results"]] == [("new", "responses")] * 2
    prompts = tmp_path / "prompts"
    for assistant_id, model in (("asst_abc123", "gpt-4o"), ("asst_abc456", "gpt-4o-mini")):
        config = read(prompts / f"assistant_{assistant_id}.yaml")["versions"][0]["model_config"]
        assert (config["provider"], config["api"], config["model"]) == (
            "openai",
            "responses",
            model,
        )
        assert "assistant_id" not in config
        assert "tool_resources" not in config
        assert config["metadata"]["assistant_id"] == assistant_id
    tutor = read(prompts / "assistant_asst_abc123.yaml")["versions"][0]["model_config"]
    assert tutor["tool_config"] == {"code_interpreter": {"file_ids": ["file-abc123"]}}
    project = load_project(tmp_path)
    assert project.prompts["assistant_asst_abc123"].active_version.model_config_.label == (
        "openai/responses gpt-4o"
    )


def test_synced_version_runs_under_mock(tmp_path):
    """Add a test to a synced file and `pt run-tests --mock` plays the synced version."""
    assert pt("--from-file", str(export(tmp_path / "e.json", both_pages()))).exit_code == 0
    synced = tmp_path / "prompts" / "assistant_asst_abc456.yaml"
    synced.write_text(
        synced.read_text()
        + "tests:\n  - name: answers\n    dataset: questions\n"
        + "    evaluators:\n      - type: length\n        config: { min_length: 1 }\n"
    )
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "questions.yaml").write_text(
        "mode: single_turn\nrows:\n  - variables: { user_message: 'Where is order 12345?' }\n"
    )
    result = runner.invoke(app, ["run-tests", "--mock", "--transcripts", "all"])
    assert result.exit_code == 0, result.output
    assert "assistant_asst_abc456::answers" in result.output
    assert "Where is order 12345?" in result.output
    assert "1 passed" in result.output
    # the added test is a hand edit; while the assistant does not change, a sync leaves it be
    edited = synced.read_bytes()
    result = pt("--from-file", str(tmp_path / "e.json"))
    assert result.exit_code == 0, result.output
    assert synced.read_bytes() == edited


def test_the_deprecation_warning_is_silenced_only_for_our_call(tmp_path, httpx2_mock, api_key):
    import openai

    with pytest.warns(DeprecationWarning):  # the SDK does warn: the silencing is needed
        openai.AsyncOpenAI(api_key=KEY).beta.assistants.list()
    httpx2_mock.get(LIST_URL).respond(200, json=page(has_more=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = sync_openai_assistants(tmp_path)
        warnings.warn("still on", DeprecationWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["still on"]
    assert [r.action for r in report.results] == [SyncAction.new, SyncAction.new]


def test_page_cap_stops_a_server_that_always_has_more(tmp_path, httpx2_mock, api_key):
    """Like Prism's mock: every page says has_more with the same assistants."""
    route = httpx2_mock.get(LIST_URL).respond(200, json=page())
    result = pt("--max-pages", "3")
    assert result.exit_code == 0, result.output
    assert route.call_count == 3
    assert [query(route, i).get("after") for i in range(3)] == [None, "asst_abc456", "asst_abc456"]
    assert "Page cap reached: stopped after 3 page(s)" in flat(result.output)
    assert "--max-pages" in result.output
    # the repeated assistants are written once
    assert len(list((tmp_path / "prompts").iterdir())) == 2

    as_json = json.loads(pt("--max-pages", "2", "--json").output)
    assert (as_json["pages"], as_json["page_cap_reached"]) == (2, True)


def test_default_page_cap_is_20(tmp_path, httpx2_mock, api_key):
    route = httpx2_mock.get(LIST_URL).respond(200, json=page())
    assert pt().exit_code == 0
    assert route.call_count == 20


# --- re-syncing -------------------------------------------------------------------------


def test_resync_of_unchanged_assistants_touches_nothing(tmp_path):
    source = export(tmp_path / "e.json", both_pages())
    assert pt("--from-file", str(source)).exit_code == 0
    before = snapshot(tmp_path / "prompts")
    result = pt("--from-file", str(source))  # a later synced_at, same assistants
    assert result.exit_code == 0, result.output
    assert snapshot(tmp_path / "prompts") == before  # same bytes, same mtimes, no extra files
    assert "0 new, 0 updated, 3 unchanged" in flat(result.output)


def test_changed_assistant_appends_an_active_version_and_keeps_the_old(tmp_path):
    assistants = both_pages()
    source = export(tmp_path / "e.json", assistants)
    assert pt("--from-file", str(source)).exit_code == 0
    path = tmp_path / "prompts" / "assistant_asst_abc456.yaml"
    first = read(path)["versions"][0]

    changed = copy.deepcopy(assistants)
    changed[1].update(instructions="Be brief.", temperature=0.5, name="Billing bot")
    export(source, changed)
    result = pt("--from-file", str(source), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [r["action"] for r in report["results"]] == ["unchanged", "updated", "unchanged"]
    assert report["results"][1]["version"] == 2
    assert report["results"][1]["changes"] == [
        "model_config.metadata.name",
        "model_config.temperature",
        "system_prompt",
    ]

    prompt = read(path)
    assert prompt["name"] == "Billing bot"
    old, new = prompt["versions"]
    assert old == {**first, "status": "deprecated"}  # the old version is kept as it was
    assert (new["version"], new["status"], new["system_prompt"]) == (2, "active", "Be brief.")
    assert new["model_config"]["temperature"] == 0.5
    assert load_project(tmp_path).prompts["assistant_asst_abc456"].active_version.version == 2

    # a third sync of the same state changes nothing
    before = snapshot(tmp_path / "prompts")
    assert pt("--from-file", str(source)).exit_code == 0
    assert snapshot(tmp_path / "prompts") == before


def test_resync_without_as_keeps_each_files_api(tmp_path, httpx2_mock, api_key):
    route = httpx2_mock.get(LIST_URL).respond(200, json=page(has_more=False))
    assert pt("--as", "assistants").exit_code == 0
    prompts = tmp_path / "prompts"
    tutor = prompts / "assistant_asst_abc123.yaml"
    billing = prompts / "assistant_asst_abc456.yaml"
    billing_before = billing.read_bytes()

    changed = page(has_more=False)
    changed["data"][0]["temperature"] = 0.2
    changed["data"].append(page("assistants_list_page2.json")["data"][0])  # a new assistant
    route.respond(200, json=changed)
    result = pt("--json")  # no --as
    assert result.exit_code == 0, result.output

    assert route.call_count == 2
    assert query(route, 1) == {"limit": "100", "order": "asc"}
    report = json.loads(result.output)
    assert [(r["action"], r["api"]) for r in report["results"]] == [
        ("updated", "assistants"),
        ("unchanged", "assistants"),
        ("new", "responses"),  # a new file gets the default
    ]
    assert report["results"][0]["changes"] == ["model_config.temperature"]  # the API did not move
    kept = (
        "kept on the Assistants API (shut down on 2026-08-26); sync with --as responses to move it"
    )
    assert [r["message"] for r in report["results"]] == [kept, kept, None]
    versions = read(tutor)["versions"]
    assert [(v["model_config"]["api"], v["status"]) for v in versions] == [
        ("assistants", "deprecated"),
        ("assistants", "active"),
    ]
    assert versions[1]["model_config"]["assistant_id"] == "asst_abc123"
    assert versions[1]["model_config"]["temperature"] == 0.2
    assert billing.read_bytes() == billing_before
    new = read(prompts / "assistant_asst_abc789.yaml")["versions"][0]["model_config"]
    assert new["api"] == "responses"


def test_hand_edited_file_is_never_overwritten(tmp_path):
    assistants = both_pages()
    source = export(tmp_path / "e.json", assistants)
    assert pt("--from-file", str(source)).exit_code == 0
    path = tmp_path / "prompts" / "assistant_asst_abc123.yaml"
    edited = path.read_text().replace("name: Math Tutor", "name: Our tutor  # renamed", 1)
    path.write_text(edited)

    # the assistant has not changed: nothing to write, so nothing to refuse
    result = pt("--from-file", str(source))
    assert result.exit_code == 0, result.output
    assert path.read_text() == edited

    changed = copy.deepcopy(assistants)
    changed[0]["temperature"] = 0.2
    export(source, changed)
    result = pt("--from-file", str(source))
    assert result.exit_code == 1
    assert path.read_text() == edited
    assert "1 skipped (edited)" in flat(result.output)
    assert "Rerun with --force to append the new versions" in flat(result.output)
    skipped = json.loads(pt("--from-file", str(source), "--json").output)["results"][0]
    assert skipped["action"] == "skipped"
    assert skipped["changes"] == ["model_config.temperature"]
    assert skipped["message"] == "edited by hand since the last sync: left as it is (see --force)"
    assert path.read_text() == edited

    result = pt("--from-file", str(source), "--force")
    assert result.exit_code == 0, result.output
    prompt = read(path)
    assert prompt["name"] == "Our tutor"  # the user's edit is kept
    assert [(v["version"], v["status"]) for v in prompt["versions"]] == [
        (1, "deprecated"),
        (2, "active"),
    ]
    assert prompt["versions"][1]["model_config"]["temperature"] == 0.2
    assert (path.parent / (path.name + ".bak")).read_text() == edited  # the exact text, comment too
    assert not files.edited_by_hand(path.read_bytes())  # ours again: the next sync may update it
    load_project(tmp_path)


def test_a_file_without_the_sync_header_counts_as_edited(tmp_path):
    (tmp_path / "prompts").mkdir()
    mine = tmp_path / "prompts" / "assistant_asst_abc789.yaml"
    mine.write_text("name: Mine\nversions:\n  - version: 1\n    model_config: { provider: mock }\n")
    result = pt("--from-file", str(export(tmp_path / "e.json", both_pages())))
    assert result.exit_code == 1
    assert mine.read_text().startswith("name: Mine\n")
    assert "2 new, 0 updated, 0 unchanged, 1 skipped (edited), 0 error(s)" in flat(result.output)


def test_crlf_checkout_is_not_a_hand_edit(tmp_path):
    source = export(tmp_path / "e.json", both_pages())
    assert pt("--from-file", str(source)).exit_code == 0
    path = tmp_path / "prompts" / "assistant_asst_abc123.yaml"
    assert not files.edited_by_hand(path.read_bytes())
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))  # git autocrlf
    assert not files.edited_by_hand(path.read_bytes())
    assert files.edited_by_hand(path.read_bytes().replace(b"gpt-4o", b"gpt-4.1"))
    moved_marker = b"name: x\n" + path.read_bytes()  # the header must come first
    assert files.edited_by_hand(moved_marker)


def test_edited_file_that_no_longer_parses_is_skipped_even_with_force(tmp_path):
    source = export(tmp_path / "e.json", both_pages())
    assert pt("--from-file", str(source)).exit_code == 0
    path = tmp_path / "prompts" / "assistant_asst_abc123.yaml"
    path.write_text(path.read_text() + "oops: [\n")
    broken = path.read_bytes()
    result = pt("--from-file", str(source), "--force", "--json")
    assert result.exit_code == 1
    assert path.read_bytes() == broken
    first = json.loads(result.output)["results"][0]
    assert first["action"] == "skipped"
    assert first["message"].startswith("edited by hand and not a valid prompt file: cannot read")


def test_dry_run_writes_nothing(tmp_path):
    source = export(tmp_path / "e.json", both_pages())
    result = pt("--from-file", str(source), "--dry-run")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "prompts").exists()
    assert "dry run" in result.output
    assert "3 new" in result.output

    assert pt("--from-file", str(source)).exit_code == 0
    changed = both_pages()
    changed[0]["instructions"] = "Only algebra."
    export(source, changed)
    before = snapshot(tmp_path / "prompts")
    result = pt("--from-file", str(source), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert snapshot(tmp_path / "prompts") == before
    report = json.loads(result.output)
    assert report["dry_run"] is True
    first = report["results"][0]
    assert (first["action"], first["version"], first["changes"]) == (
        "updated",
        2,
        ["system_prompt"],
    )
    assert [r["action"] for r in report["results"][1:]] == ["unchanged", "unchanged"]


def test_out_writes_elsewhere(tmp_path):
    source = export(tmp_path / "e.json", both_pages())
    result = pt("--from-file", str(source), "--out", "synced/assistants")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "prompts").exists()
    assert len(list((tmp_path / "synced" / "assistants").glob("assistant_*.yaml"))) == 3


# --- --from-file ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["list", "array"])
def test_from_file_takes_both_shapes_and_no_key(tmp_path, shape):
    result = pt("--from-file", str(export(tmp_path / "e.json", both_pages(), shape)), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["source"] == str(tmp_path / "e.json")
    assert [r["assistant_id"] for r in report["results"]] == [
        "asst_abc123",
        "asst_abc456",
        "asst_abc789",
    ]
    assert all(r["action"] == "new" for r in report["results"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"object": "list", "data": [}', "line 1, column 29: invalid JSON"),
        ('{"object": "list"}', "an object without a 'data' list"),
        ('"asst_abc123"', "found a string"),
        ('[{"id": "asst_1"}, {"name": "no id"}]', "[1].id: Field required"),
        ('{"data": [{"id": "../escape"}]}', "data[0].id: String should match pattern"),
        ('{"data": [{"id": "asst_1"}, {"id": "asst_1"}]}', "data[1].id: 'asst_1' repeats data[0]"),
        ('[{"id": "asst_1", "tools": [{"kind": "x"}]}]', "[0].tools[0].type: Field required"),
    ],
)
def test_malformed_export_is_bad_input(tmp_path, content, expected):
    source = tmp_path / "export.json"
    source.write_text(content)
    result = pt("--from-file", str(source))
    assert result.exit_code == 2
    out = flat(result.output)
    assert expected in out
    assert str(source) in out
    assert not (tmp_path / "prompts").exists()


def test_missing_export_file_is_bad_input(tmp_path):
    result = pt("--from-file", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "cannot read" in result.output


# --- --as responses ----------------------------------------------------------------------


def test_as_responses_moves_tool_resources_into_tool_config(tmp_path):
    result = pt("--from-file", str(export(tmp_path / "e.json", both_pages())), "--as", "responses")
    assert result.exit_code == 0, result.output
    prompts = tmp_path / "prompts"
    billing = read(prompts / "assistant_asst_abc456.yaml")["versions"][0]["model_config"]
    assert billing["api"] == "responses"
    assert billing["model"] == "gpt-4o-mini"
    assert "assistant_id" not in billing
    assert "tool_resources" not in billing
    assert billing["tools"] == ["file_search"]
    assert billing["tool_config"]["file_search"] == {
        "vector_store_ids": ["vs_abc123"],
        "max_num_results": 5,
    }
    assert billing["tool_config"]["functions"][0]["name"] == "lookup_order"
    assert billing["metadata"]["assistant_id"] == "asst_abc456"
    tutor = read(prompts / "assistant_asst_abc123.yaml")["versions"][0]
    assert tutor["model_config"]["tool_config"] == {
        "code_interpreter": {"file_ids": ["file-abc123"]}
    }
    assert tutor["system_prompt"].startswith("You are a personal math tutor.")
    project = load_project(tmp_path)
    assert project.prompts["assistant_asst_abc456"].active_version.model_config_.label == (
        "openai/responses gpt-4o-mini"
    )


def test_as_responses_after_assistants_appends_a_responses_version(tmp_path):
    source = export(tmp_path / "e.json", both_pages())
    assert pt("--from-file", str(source), "--as", "assistants").exit_code == 0
    result = pt("--from-file", str(source), "--as", "responses", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["target"] == "responses"
    assert [(r["action"], r["api"]) for r in report["results"]] == [("updated", "responses")] * 3
    path = tmp_path / "prompts" / "assistant_asst_abc456.yaml"
    versions = read(path)["versions"]
    assert [(v["model_config"]["api"], v["status"]) for v in versions] == [
        ("assistants", "deprecated"),
        ("responses", "active"),
    ]
    assert versions[1]["model_config"]["metadata"]["assistant_id"] == "asst_abc456"

    # the newest version decides from now on: without --as the file stays on responses
    before = snapshot(tmp_path / "prompts")
    result = pt("--from-file", str(source), "--json")
    assert result.exit_code == 0, result.output
    assert snapshot(tmp_path / "prompts") == before
    results = json.loads(result.output)["results"]
    assert [(r["action"], r["api"], r["message"]) for r in results] == [
        ("unchanged", "responses", None)
    ] * 3


def test_as_responses_errors_per_assistant(tmp_path):
    assistants = both_pages()
    del assistants[0]["model"]  # exports may lack it; the Responses API needs one
    assistants[1]["tool_resources"] = {}  # file_search without a vector store
    source = export(tmp_path / "e.json", assistants)
    result = pt("--from-file", str(source), "--as", "responses", "--json")
    assert result.exit_code == 1
    tutor, billing, _ = json.loads(result.output)["results"]
    assert (tutor["action"], tutor["message"]) == (
        "error",
        "the assistant has no model, and --as responses needs one",
    )
    assert billing["action"] == "error"
    assert "file_search needs tool_config.file_search.vector_store_ids" in billing["message"]
    assert [p.name for p in (tmp_path / "prompts").iterdir()] == ["assistant_asst_abc789.yaml"]


def test_as_responses_says_what_it_cannot_carry(tmp_path):
    assistants = both_pages()
    assistants[2]["response_format"] = {"type": "json_object"}
    result = pt(
        "--from-file", str(export(tmp_path / "e.json", assistants)), "--as", "responses", "--json"
    )
    assert json.loads(result.output)["results"][2]["message"] == (
        "not carried over to responses: response_format"
    )


# --- API errors and keys -----------------------------------------------------------------


def test_404_explains_the_sunset_and_writes_nothing(tmp_path, httpx2_mock, api_key):
    (tmp_path / "prompttracker.yaml").write_text(NO_RETRY)
    httpx2_mock.get(LIST_URL).respond(
        404, json=load_fixture("openai/assistants_error_not_found.json")
    )
    result = pt()
    assert result.exit_code == 1
    out = flat(result.output)
    assert "HTTP 404: No assistant found with id 'asst_abc123'. (from https://" in out
    assert "/v1/assistants). OpenAI shut" in out
    assert "shut the Assistants API down on 2026-08-26" in out
    assert "--from-file" in out
    assert "nothing was written" in out
    assert not (tmp_path / "prompts").exists()
    assert KEY not in result.output


def test_404_on_a_later_page_writes_nothing_either(tmp_path, httpx2_mock, api_key):
    (tmp_path / "prompttracker.yaml").write_text(NO_RETRY)
    httpx2_mock.get(LIST_URL).mock(
        side_effect=[
            httpx.Response(200, json=page()),
            httpx.Response(404, json=load_fixture("openai/assistants_error_not_found.json")),
        ]
    )
    assert pt().exit_code == 1
    assert not (tmp_path / "prompts").exists()


def test_other_api_errors_are_one_clear_line(tmp_path, httpx2_mock, api_key):
    (tmp_path / "prompttracker.yaml").write_text(NO_RETRY)
    body = load_fixture("openai/error_invalid_api_key.json")
    body["error"]["message"] = f"Incorrect API key provided: {KEY}."
    httpx2_mock.get(LIST_URL).respond(401, json=body, headers={"x-request-id": "req_123"})
    result = pt()
    assert result.exit_code == 1
    assert "openai/assistants list: the API answered HTTP 401" in result.output
    assert "req_123" in result.output
    assert KEY not in result.output
    assert "2026-08-26" not in result.output


def test_without_key_exit_3_before_any_call(tmp_path, httpx2_mock):
    # no route: any request would fail the test
    result = pt()
    assert result.exit_code == 3
    out = flat(result.output)
    assert "no API key for openai: the environment variable OPENAI_API_KEY is not set" in out
    assert "or sync from a file with --from-file FILE" in out
    assert "--mock" not in out  # pt sync openai has no --mock
    assert not httpx2_mock.calls
    assert not (tmp_path / "prompts").exists()


def test_the_run_tests_key_hint_still_names_mock(tmp_path):
    from prompttracker.config.loader import load_settings
    from prompttracker.errors import RunStartError
    from prompttracker.llm.clients import require_api_key

    with pytest.raises(RunStartError) as caught:
        require_api_key(load_settings(tmp_path), "openai")
    assert caught.value.hint is not None
    assert caught.value.hint.endswith("or run with --mock to play every test offline")


# --- atomic writes ------------------------------------------------------------------------


def test_no_temporary_files_are_left_behind(tmp_path):
    source = export(tmp_path / "e.json", both_pages())
    assert pt("--from-file", str(source)).exit_code == 0
    changed = both_pages()
    changed[0]["instructions"] = "Only algebra."
    export(source, changed)
    assert pt("--from-file", str(source)).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "prompts").iterdir()) == [
        "assistant_asst_abc123.yaml",
        "assistant_asst_abc456.yaml",
        "assistant_asst_abc789.yaml",
    ]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "prompts" / "p.yaml"
    target.parent.mkdir()
    target.write_bytes(b"old")

    def fail(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError):
        files.write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["p.yaml"]


def test_write_keeps_the_file_mode(tmp_path):
    target = tmp_path / "p.yaml"
    target.write_bytes(b"old")
    target.chmod(0o640)
    files.write_atomically(target, b"new")
    assert (target.read_bytes(), target.stat().st_mode & 0o777) == (b"new", 0o640)


# --- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Plain text, no markup.",
        "Greet {{ name }} and {% if x %} stays literal.",
        "A raw block inside: {% raw %}{{ x }}{% endraw %} and {%- endraw -%} too.",
        "Braces { and } alone are fine.",
    ],
)
def test_instructions_render_to_themselves(text):
    escaped = liquid_literal(text)
    assert render(escaped, {}) == text
    assert (escaped == text) == ("{{" not in text and "{%" not in text)


def test_unknown_tool_type_is_an_error_for_that_assistant(tmp_path):
    assistants = both_pages()
    assistants[2]["tools"] = [{"type": "retrieval"}]
    result = pt("--from-file", str(export(tmp_path / "e.json", assistants)), "--json")
    assert result.exit_code == 1
    last = json.loads(result.output)["results"][2]
    assert last["action"] == "error"
    assert "tools[0] has type 'retrieval'" in last["message"]
    assert not (tmp_path / "prompts" / "assistant_asst_abc789.yaml").exists()


def test_comparison_ignores_sync_time_number_and_status():
    assistant = Assistant.model_validate(both_pages()[1])
    first = assistant_version(assistant, SyncTarget.assistants, "2026-01-01T00:00:00Z")
    later = assistant_version(assistant, SyncTarget.assistants, "2026-02-01T00:00:00Z", number=4)
    assert comparable(first) == comparable(later)
    other = assistant.model_copy(update={"top_p": 0.5})
    changed = assistant_version(other, SyncTarget.assistants, "2026-02-01T00:00:00Z")
    assert changed_fields(comparable(first), comparable(changed)) == ["model_config.top_p"]


def test_bad_function_name_is_a_conversion_error():
    data = both_pages()[1]
    data["tools"][1]["function"]["name"] = "look up order"
    with pytest.raises(
        ConversionError, match=r"tool_config\.functions\.0\.name: String should match"
    ):
        assistant_version(Assistant.model_validate(data), SyncTarget.assistants, "t")


def test_report_view(tmp_path):
    from prompttracker.report.sync import sync_summary, sync_table

    now = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    report = sync_openai_assistants(
        tmp_path, from_file=export(tmp_path / "e.json", both_pages()), dry_run=True, now=now
    )
    console = Console(record=True, width=100)
    console.print(sync_table(report))
    console.print(sync_summary(report))
    text = console.export_text()
    assert "Assistants (dry run: nothing written)" in text
    assert "asst_abc456" in text and "Billing helper" in text
    assert "3 assistant(s) from" in text
    assert "dry run: 3 file(s) would be written, nothing was" in text
    assert os.listdir(tmp_path) == ["e.json"]
