"""The HTML report in a real headless Chromium (Selenium): the summary lists every test run,
the filters hide rows and their transcripts, a folded transcript opens on a click.

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; ``PT_CHROMIUM`` / ``PT_CHROMEDRIVER`` point elsewhere) and
``selenium`` (the ``test`` extra). Without them these tests skip, saying what is missing —
except under CI (``CI`` set and not false), where they fail: ``.ci/run`` installs the browser.
Selenium Manager never runs (the driver's path is given), so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.html_report_example import INJECTED_MESSAGE, INJECTED_ROW, play_example, pt

pytestmark = pytest.mark.browser

CHROME_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1024",
)


def in_ci() -> bool:
    """The same rule as the contract suite's: CI set to anything but empty, 0, false, no."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def chromium() -> str:
    return os.environ.get("PT_CHROMIUM") or "/usr/bin/chromium"


def chromedriver() -> str:
    return os.environ.get("PT_CHROMEDRIVER") or "/usr/bin/chromedriver"


def missing() -> str | None:
    """What keeps these tests from running, or None."""
    problems = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        problems.append("selenium is not installed (pip install -e '.[test]')")
    for path, package, variable in (
        (chromium(), "chromium", "PT_CHROMIUM"),
        (chromedriver(), "chromium-driver", "PT_CHROMEDRIVER"),
    ):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            problems.append(f"no executable {path} (apt-get install {package}, or set {variable})")
    return "; ".join(problems) or None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The example run's report, and the run as `pt runs show --json`."""
    root = play_example(tmp_path_factory.mktemp("example"))
    out = root / "report.html"
    result = pt("report", "latest", "-p", str(root), "-o", str(out))
    assert result.exit_code == 0, result.output
    return out, json.loads(pt("runs", "show", "latest", "-p", str(root), "--json").output)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = missing()
    if reason:
        if in_ci():
            pytest.fail(f"browser tests cannot run (CI is set): {reason}", pytrace=False)
        pytest.skip(f"browser tests skipped: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium()
    for argument in CHROME_ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver()), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any, report: tuple[Path, dict[str, Any]]) -> Any:
    """The report freshly loaded, its script run (the filters shown)."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(report[0].resolve().as_uri())
    WebDriverWait(browser, 10).until(lambda d: d.find_element("id", "filters").is_displayed())
    return browser


def visible(driver: Any, selector: str) -> list[Any]:
    return [e for e in driver.find_elements("css selector", selector) if e.is_displayed()]


def statuses_of(elements: list[Any]) -> set[str]:
    return {e.get_attribute("data-status") for e in elements}


def test_the_summary_lists_every_test_run(page: Any, report: tuple[Path, Any]) -> None:
    test_runs = report[1]["test_runs"]
    rows = visible(page, "#summary tbody tr")
    assert len(rows) == len(test_runs) == 38
    assert {r.get_attribute("data-label") for r in rows} == {t["label"] for t in test_runs}
    assert len(visible(page, "details.transcript")) == len(test_runs)
    assert page.find_element("id", "shown").text == "Showing 38 of 38 test runs"
    # Folded: no message is on screen until a transcript is opened.
    assert not visible(page, "details.transcript .content")
    assert page.title.startswith("pt report · run-")


def test_a_status_filter_hides_the_other_rows_and_their_transcripts(
    page: Any, report: tuple[Path, Any]
) -> None:
    failed = [t for t in report[1]["test_runs"] if t["status"] == "failed"]
    assert failed and len(failed) < len(report[1]["test_runs"])
    for box in page.find_elements("css selector", "input[name=status]"):
        if box.get_attribute("value") != "failed":
            box.click()
    rows = visible(page, "#summary tbody tr")
    assert len(rows) == len(failed) and statuses_of(rows) == {"failed"}
    transcripts = visible(page, "details.transcript")
    assert len(transcripts) == len(failed) and statuses_of(transcripts) == {"failed"}
    assert page.find_element("id", "shown").text == f"Showing {len(failed)} of 38 test runs"

    # Narrowed further by test and by version, then everything back with "Show all".
    from selenium.webdriver.support.ui import Select

    Select(page.find_element("id", "filter-test")).select_by_value(
        "billing_support::both versions stay polite"
    )
    Select(page.find_element("id", "filter-version")).select_by_value("v2")
    expected = {
        t["label"]
        for t in failed
        if t["prompt"] == "billing_support"
        and t["test"] == "both versions stay polite"
        and t["version"] == 2
    }
    rows = visible(page, "#summary tbody tr")
    assert {r.get_attribute("data-label") for r in rows} == expected
    assert {t.get_attribute("data-label") for t in visible(page, "details.transcript")} == expected
    page.find_element("css selector", "#filters button[type=reset]").click()
    assert len(visible(page, "#summary tbody tr")) == 38


def test_opening_a_transcript_shows_its_messages_and_verdicts(page: Any) -> None:
    transcript = page.find_element(
        "css selector",
        'details.transcript[data-label="order_assistant::tracks a late order v1 [late parcel]"]',
    )
    message = transcript.find_element("css selector", "li.msg-user .content")
    verdict = transcript.find_element("css selector", "table.evaluations tbody tr")
    assert not message.is_displayed() and not verdict.is_displayed()
    transcript.find_element("tag name", "summary").click()
    assert transcript.get_attribute("open") is not None
    assert (
        message.is_displayed() and message.text == "Where is my order 12345? It was due on Monday."
    )
    assert verdict.is_displayed()
    assert verdict.text.startswith("conversation_judge conversation_judge")
    assert "passed" in verdict.text
    tool = transcript.find_element("css selector", ".tool-call .name")
    assert tool.is_displayed() and tool.text == "lookup_order"


def test_a_summary_link_opens_its_transcript(page: Any) -> None:
    row = page.find_element("css selector", '#summary tbody tr[data-status="failed"]')
    link = row.find_element("tag name", "a")
    target = page.find_element("id", link.get_attribute("href").rsplit("#", 1)[1])
    assert target.get_attribute("open") is None
    link.click()
    assert target.get_attribute("open") is not None
    assert target.find_element("css selector", "table.evaluations").is_displayed()


def test_injected_markup_is_shown_and_never_run(page: Any) -> None:
    label = f"billing_support::resolves billing conversations v2 [{INJECTED_ROW}]"
    transcripts = [
        t
        for t in page.find_elements("css selector", "details.transcript")
        if t.get_attribute("data-label") == label
    ]
    assert len(transcripts) == 1
    transcripts[0].find_element("tag name", "summary").click()
    first = transcripts[0].find_element("css selector", "li.msg-user .content")
    assert first.text == INJECTED_MESSAGE
    # An alert would have been opened by an injected script, and would block this call.
    assert page.execute_script("return document.scripts.length") == 2
    assert page.execute_script("return document.images.length") == 0
    severe = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []  # no blocked load, no script error, no policy violation


def test_what_is_missing_is_named_and_ci_is_read_as_the_contract_suite_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rule the fixture applies (checked here without starting anything)."""
    monkeypatch.setenv("PT_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setitem(sys.modules, "selenium", None)  # what an uninstalled package does
    reason = missing() or ""
    assert "selenium is not installed" in reason
    assert "no executable /nonexistent/chromium (apt-get install chromium" in reason
    for value, expected in (
        ("true", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("", False),
    ):
        monkeypatch.setenv("CI", value)
        assert in_ci() is expected
