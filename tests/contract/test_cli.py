"""``pt sync openai`` and ``pt vector-stores`` through the CLI, against the official spec.

Each command runs in the test's temporary project, whose ``prompttracker.yaml`` points the
openai provider at Prism. The ``prism`` fixture fails a test on any request Prism rejected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from prompttracker.cli import app
from tests.contract.prism import PrismServer

pytestmark = pytest.mark.contract

runner = CliRunner()


@pytest.fixture
def pt(prism: PrismServer, tmp_path: Path) -> Any:
    """Run ``pt`` in the test's project, pointed at Prism; fail with Prism's view on a crash."""
    prism.write_settings(tmp_path)

    def run(*args: str) -> Any:
        result = runner.invoke(app, [*args, "--project", str(tmp_path)])
        if result.exception and not isinstance(result.exception, SystemExit):
            raise AssertionError(prism.explain(result.output)) from result.exception
        return result

    return run


def more_pages(request: Any, answer: Any) -> Any:
    """A list page that says there is more.

    The spec's example lists say ``has_more: false``; a server that says ``true`` forever
    (a mock, a cursor bug) is what the page caps are for.
    """
    answer["has_more"] = True
    return answer


# --- pt sync openai ---------------------------------------------------------------------------


def test_sync_dry_run(prism: PrismServer, pt: Any, tmp_path: Path) -> None:
    result = pt("sync", "openai", "--dry-run")

    assert result.exit_code == 0, prism.explain(result.output)
    (page,) = prism.calls("GET", "/assistants")
    assistant = page.answer["data"][0]
    assert assistant["id"] in result.output
    assert "dry run" in result.output
    assert page.query == {"limit": ["100"], "order": ["asc"]}
    assert not (tmp_path / "prompts").exists()
    prism.assert_all_accepted()


@pytest.mark.parametrize("target", ["responses", "assistants"])
def test_sync_writes_prompt_files(prism: PrismServer, pt: Any, tmp_path: Path, target: str) -> None:
    out = tmp_path / "synced"
    chosen = [] if target == "responses" else ["--as", target]  # responses is the default
    result = pt("sync", "openai", "--out", str(out), *chosen)

    assert result.exit_code == 0, prism.explain(result.output)
    (page,) = prism.calls("GET", "/assistants")
    assistant = page.answer["data"][0]
    (written,) = out.glob("*.yaml")
    prompt = yaml.safe_load(written.read_text(encoding="utf-8"))
    (version,) = prompt["versions"]
    assert version["model_config"]["api"] == target
    if target == "assistants":
        assert version["model_config"]["assistant_id"] == assistant["id"]
    else:
        assert version["model_config"]["metadata"]["assistant_id"] == assistant["id"]
    assert version["system_prompt"] == assistant["instructions"]
    prism.assert_all_accepted()


def test_sync_stops_at_the_page_cap(prism: PrismServer, pt: Any) -> None:
    prism.reshape("GET", "/assistants", more_pages)

    result = pt("sync", "openai", "--dry-run", "--max-pages", "3")

    assert result.exit_code == 0, prism.explain(result.output)
    assert "Page cap reached: stopped after 3 page(s)" in " ".join(result.output.split())
    pages = prism.calls("GET", "/assistants")
    assert len(pages) == 3
    # Each page asks for the one after the last assistant of the page before.
    last_ids = [page.answer["data"][-1]["id"] for page in pages[:-1]]
    assert [page.query.get("after") for page in pages] == [None, *([i] for i in last_ids)]
    prism.assert_all_accepted()


# --- pt vector-stores ---------------------------------------------------------------------------


def test_vector_stores_list(prism: PrismServer, pt: Any) -> None:
    result = pt("vector-stores", "list")

    assert result.exit_code == 0, prism.explain(result.output)
    (page,) = prism.calls("GET", "/vector_stores")
    assert page.answer["data"][0]["id"] in result.output
    assert page.query == {"limit": ["100"]}
    prism.assert_all_accepted()


def test_vector_stores_list_stops_at_the_page_cap(prism: PrismServer, pt: Any) -> None:
    prism.reshape("GET", "/vector_stores", more_pages)

    result = pt("vector-stores", "list", "--max-pages", "2")

    assert result.exit_code == 0, prism.explain(result.output)
    assert "(2 page(s)); the provider has more: raise --max-pages" in " ".join(
        result.output.split()
    )
    first, second = prism.calls("GET", "/vector_stores")
    assert second.query["after"] == [first.answer["last_id"]]
    prism.assert_all_accepted()


def test_vector_stores_create(prism: PrismServer, pt: Any) -> None:
    result = pt("vector-stores", "create", "Refund policy", "--file-id", "file-abc123")

    assert result.exit_code == 0, prism.explain(result.output)
    (created,) = prism.calls("POST", "/vector_stores")
    assert created.body == {"name": "Refund policy", "file_ids": ["file-abc123"]}
    assert created.answer["id"] in result.output
    prism.assert_all_accepted()


def test_vector_stores_files(prism: PrismServer, pt: Any) -> None:
    result = pt("vector-stores", "files", "vs_abc123")

    assert result.exit_code == 0, prism.explain(result.output)
    (page,) = prism.calls("GET", "/vector_stores/vs_abc123/files")
    assert page.answer["data"][0]["id"] in result.output
    prism.assert_all_accepted()


def test_vector_stores_files_stops_at_the_page_cap(prism: PrismServer, pt: Any) -> None:
    prism.reshape("GET", "/vector_stores/vs_abc123/files", more_pages)

    result = pt("vector-stores", "files", "vs_abc123", "--max-pages", "2")

    assert result.exit_code == 0, prism.explain(result.output)
    assert "raise --max-pages" in result.output
    assert len(prism.calls("GET", "/vector_stores/vs_abc123/files")) == 2
    prism.assert_all_accepted()


def test_vector_stores_add_file(prism: PrismServer, pt: Any) -> None:
    result = pt("vector-stores", "add-file", "vs_abc123", "file-abc123")

    assert result.exit_code == 0, prism.explain(result.output)
    (added,) = prism.calls("POST", "/vector_stores/vs_abc123/files")
    assert added.body == {"file_id": "file-abc123"}
    prism.assert_all_accepted()
