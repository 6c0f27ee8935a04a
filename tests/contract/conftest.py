"""Contract tests: the real SDK and CLI against Prism serving the official OpenAI OpenAPI spec.

Every test gets ``prism`` (see ``prism.py``): a test fails on any request Prism rejected.
Without the spec (``PT_OPENAI_SPEC``) or Prism (``npm ci``) the suite skips, saying why; when
``CI`` is set it fails instead, so that it cannot skip unnoticed in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contract.prism import DUMMY_KEY, PRISM, REPO, PrismServer

HERE = Path(__file__).resolve().parent
SPEC_ENV = "PT_OPENAI_SPEC"
CALL_FAILED = pytest.StashKey[bool]()
_started: list[PrismServer] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def find_spec(invocation_dir: Path) -> tuple[Path | None, str]:
    """The spec to serve, or None and why the suite cannot run."""
    raw = os.environ.get(SPEC_ENV, "").strip()
    if not raw:
        return None, (
            f"{SPEC_ENV} is not set; point it at the official OpenAI openapi.yaml "
            "(.ci/run does) to run them"
        )
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else invocation_dir / path
    if not path.is_file():
        return None, f"{SPEC_ENV}={raw}: no such file"
    if not PRISM.is_file():
        return None, f"{PRISM.relative_to(REPO)} is missing; run `npm ci` at the repository root"
    return path, ""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the whole suite up front when it cannot run: one line per file under ``-ra``."""
    ours = [item for item in items if HERE in item.path.resolve().parents]
    if not ours or in_ci():
        return  # under CI the prism_server fixture fails every test instead
    spec, reason = find_spec(config.invocation_params.dir)
    if spec is None:
        for item in ours:
            item.add_marker(pytest.mark.skip(reason=f"contract tests skipped: {reason}"))


@pytest.fixture(scope="session")
def prism_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrismServer]:
    """Prism for the whole session, started on first use and stopped at the end."""
    spec, reason = find_spec(request.config.invocation_params.dir)
    if spec is None:
        if in_ci():
            pytest.fail(f"contract tests cannot run (CI is set): {reason}", pytrace=False)
        pytest.skip(f"contract tests skipped: {reason}")
    try:
        server = PrismServer(spec, tmp_path_factory.mktemp("prism"))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    _started.append(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prism(
    prism_server: PrismServer, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PrismServer]:
    """Prism for one test: a dummy key, a fresh record; fails if any request was rejected."""
    monkeypatch.setenv("OPENAI_API_KEY", DUMMY_KEY)
    prism_server.begin_test()
    yield prism_server
    # A safety net for a passing test that did not look (reported as an error at teardown).
    rejected = [e for e in prism_server.exchanges if e.rejections]
    if rejected and not request.node.stash.get(CALL_FAILED, False):
        pytest.fail(prism_server.explain("Prism rejected requests of this test"), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether the test itself failed, for the ``prism`` fixture's safety net."""
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How long Prism took to start: a number worth watching as the spec grows."""
    for server in _started:
        terminalreporter.write_line(
            f"contract: Prism served {server.spec}; preparing the copy took "
            f"{server.prepare_seconds:.1f} s, Prism was ready {server.ready_seconds:.1f} s later"
        )
