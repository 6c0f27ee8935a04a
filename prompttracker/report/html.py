"""A stored run as one self-contained HTML file: the header, a filterable summary table, the
repeats and version comparisons, and every transcript (collapsed) — ``pt report``.

The page is rendered here, in Python; its inline script only filters and folds, so it reads
the same without JavaScript. Nothing in it loads anything: no URL, no font, no image, and a
Content-Security-Policy that allows only its own inline style and script (by hash) makes sure
of it. The run's JSON document (``pt runs show --json``) rides along for scripts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from prompttracker import __version__
from prompttracker.errors import ConfigError
from prompttracker.evidence import Evidence
from prompttracker.messages import Metered, merge_metered, metered_total
from prompttracker.report.evidence import cost_of, run_document
from prompttracker.report.html_assets import SCRIPT, STYLE
from prompttracker.report.html_evidence import evidence_html
from prompttracker.report.html_transcript import (
    badge,
    by_caller,
    esc,
    item_attributes,
    num_class,
    qualified_name,
    transcript_html,
)
from prompttracker.report.summary import simulator_line, sort_outcomes, wall_time_ms
from prompttracker.report.transcript import format_score, format_seconds, usd
from prompttracker.results import REPORT_ORDER, RunRecord, TestRunOutcome, status_counts

DATA_ID = "pt-run-data"  # the id of the embedded JSON document


def write_html_report(run: RunRecord, outcomes: Sequence[TestRunOutcome], path: Path) -> Path:
    """Write the run's report to ``path`` atomically (creating its folder) and return it."""
    page = html_report(run, outcomes)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Beside the target, then renamed: a CI job never uploads half a file.
        handle, temp_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        # A lone surrogate (a model can send one in JSON) cannot be UTF-8: written as "?".
        with os.fdopen(handle, "w", encoding="utf-8", errors="replace") as temp:
            temp.write(page)
        os.chmod(temp_name, 0o644)  # mkstemp makes it 0600; a CI upload step may be another user
        os.replace(temp_name, path)
    except OSError as exc:
        Path(temp_name).unlink(missing_ok=True)
        raise _unwritable(path, exc) from None
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def _unwritable(path: Path, exc: OSError) -> ConfigError:
    why = exc.strerror or str(exc)
    if exc.filename and Path(str(exc.filename)) in path.parents:  # a file where a folder goes
        why += f": {exc.filename}"
    return ConfigError(
        f"cannot write the report to {path}: {why}",
        hint="give -o a file in a folder you can write to",
    )


def html_report(run: RunRecord, outcomes: Sequence[TestRunOutcome]) -> str:
    """The whole page."""
    # In the terminal's order; each test run's transcript is anchored at ``#t<its line>``.
    ordered = cast(list[TestRunOutcome], sort_outcomes(outcomes))
    anchored = [(f"t{line}", outcome) for line, outcome in enumerate(ordered, 1)]
    evidence = Evidence.of(outcomes)
    metered = merge_metered(outcome.metered for outcome in outcomes)
    body = [
        _header(run, outcomes, metered),
        '<section aria-labelledby="test-runs-title">',
        f'<h2 id="test-runs-title">Test runs ({len(outcomes)})</h2>',
        _filters(ordered),
        _summary_table(anchored, evidence.flaky_rows),
        "</section>",
        evidence_html(evidence),
        '<section aria-labelledby="transcripts-title">',
        '<h2 id="transcripts-title">Transcripts</h2>',
        '<p class="note">Each test run is folded; open it to read the conversation and the '
        "evaluators' verdicts.</p>",
        *(transcript_html(outcome, anchor) for anchor, outcome in anchored),
        "</section>",
        f'<footer class="note"><p>Written by pt {esc(__version__)} (<code>pt report</code>): '
        "one offline file. The run as JSON (<code>pt runs show --json</code>) is in the "
        f"<code>script#{DATA_ID}</code> element.</p></footer>",
    ]
    document = run_document(run, outcomes, evidence, metered)
    return _page(f"pt report · {run.id}", "\n".join(body), _json_script(document))


def _page(title: str, body: str, data: str) -> str:
    policy = (
        "default-src 'none'; base-uri 'none'; form-action 'none'; "
        f"style-src '{_sha256(STYLE)}'; script-src '{_sha256(SCRIPT)}'"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(policy)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n</main>\n{data}\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def _sha256(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def _json_script(document: Mapping[str, Any]) -> str:
    """The document in a data block that no text in it can end: ``<``, ``>`` and ``&`` are
    written as JSON escapes, so ``</script>`` in a model's reply stays inside."""
    text = json.dumps(document, ensure_ascii=False, default=str)
    for char in "<>&":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return f'<script type="application/json" id="{DATA_ID}">{text}</script>'


def _header(
    run: RunRecord, outcomes: Sequence[TestRunOutcome], metered: Mapping[str, Metered]
) -> str:
    facts = [
        ("started", f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("finished", f"{run.finished_at:%Y-%m-%d %H:%M:%S} UTC" if run.finished_at else "—"),
        ("wall time", format_seconds(wall_time_ms(outcomes, run))),
        ("status", run.status),
        ("calls", _mode(run)),
    ]
    selection = _selection(run)
    if selection:
        facts.append(("selection", selection))
    if run.plan_hash:
        facts.append(("plan", run.plan_hash))
    rows = "".join(f"<dt>{esc(name)}</dt><dd>{esc(value)}</dd>" for name, value in facts)
    counts = status_counts(outcomes)
    items = "".join(f"<li>{badge(status)} {counts[status]}</li>" for status in REPORT_ORDER)
    simulator = simulator_line(outcomes)
    parts = [
        "<header>",
        f"<h1>Run {esc(run.id)}</h1>",
        f'<dl class="facts">{rows}</dl>',
        f"<p>{len(outcomes)} test run{'s' if len(outcomes) != 1 else ''}:</p>",
        f'<ul class="counts" aria-label="test runs by status">{items}</ul>',
        f"<p>{esc(simulator.plain)}</p>" if simulator is not None else "",
        _costs(run, metered),
        "</header>",
    ]
    return "\n".join(part for part in parts if part)


def _mode(run: RunRecord) -> str:
    """Where the answers came from: mock, a cassette replay or recording, or the live APIs."""
    cassettes = run.options.get("cassettes") or {}
    modes = ["mock (offline, nothing spent)"] if run.mock else []
    if cassettes:
        modes.append(f"{cassettes.get('mode')} cassettes in {cassettes.get('directory')}")
    return ", ".join(modes) or "live APIs"


def _selection(run: RunRecord) -> str:
    options = run.options
    flags = [f"-k {f}" for f in options.get("filters") or []]
    flags += [f"--tag {t}" for t in options.get("tags") or []]
    flags += [f"--repeat {options['repeat']}"] if options.get("repeat") else []
    flags += [f"--shard {run.shard}"] if run.shard else []
    return " ".join(flags)


def _costs(run: RunRecord, metered: Mapping[str, Metered]) -> str:
    """Calls, tokens and cost by caller, and the total."""
    if not metered:
        return ""
    lines = [(name, m, "") for name, m in by_caller(metered)]
    lines.append(("total", metered_total(dict(metered)), ' class="total"'))
    rows = "".join(
        f"<tr{attrs}><td>{esc(name)}</td>"
        + "".join(
            f'<td class="num">{value:,}</td>'
            for value in (m.calls, m.input_tokens, m.output_tokens, m.total_tokens)
        )
        + f'<td class="num">{esc(cost_of(m))}</td></tr>'
        for name, m, attrs in lines
    )
    head = "".join(
        f'<th scope="col"{num_class(name != "caller")}>{name}</th>'
        for name in ("caller", "calls", "input tokens", "output tokens", "tokens", "cost")
    )
    pricing = run.pricing
    note = f"prices: {pricing.get('library', 'unknown')}" + (
        ", with overrides" if pricing.get("overrides") else ""
    )
    if run.mock:
        note += " · mock: nothing was spent; costs are what these tokens would cost"
    return (
        f'<table class="costs"><caption>Calls, tokens and cost by caller</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        f'<p class="note">{esc(note)}</p>'
    )


def _filters(ordered: Sequence[TestRunOutcome]) -> str:
    """Status checkboxes, a test and a version select, a search box; hidden until the script
    shows them (without JavaScript every test run is shown)."""
    counts = status_counts(ordered)
    boxes = "".join(
        f'<label><input type="checkbox" name="status" value="{status}" checked> '
        f"{badge(status)} {counts[status]}</label>"
        for status in REPORT_ORDER
    )
    tests = sorted({qualified_name(o) for o in ordered})
    versions = sorted({o.version for o in ordered})
    test_options = "".join(f'<option value="{esc(t)}">{esc(t)}</option>' for t in tests)
    version_options = "".join(f'<option value="v{v}">v{v}</option>' for v in versions)
    return (
        '<form id="filters" class="filters" hidden aria-label="Filter the test runs">'
        f"<fieldset><legend>Status</legend>{boxes}</fieldset>"
        '<div class="field"><label for="filter-test">Test</label>'
        '<select id="filter-test" name="test"><option value="">all tests</option>'
        f"{test_options}</select></div>"
        '<div class="field"><label for="filter-version">Version</label>'
        '<select id="filter-version" name="version"><option value="">all versions</option>'
        f"{version_options}</select></div>"
        '<div class="field"><label for="filter-search">Label contains</label>'
        '<input type="search" id="filter-search" name="search" autocomplete="off"></div>'
        '<div class="toolbar"><button type="reset">Show all</button>'
        '<button type="button" id="expand-all">Open shown transcripts</button>'
        '<button type="button" id="collapse-all">Fold all transcripts</button></div>'
        '<p id="shown" role="status" aria-live="polite"></p>'
        "</form>"
        '<noscript><p class="note">Filters need JavaScript; every test run is shown.</p>'
        "</noscript>"
    )


def _summary_table(
    anchored: Sequence[tuple[str, TestRunOutcome]], flaky: set[tuple[str, str, int, str, str]]
) -> str:
    head = "".join(
        f'<th scope="col"{num_class(numeric)}>{name}</th>'
        for name, numeric in (
            ("test", False),
            ("version", False),
            ("row", False),
            ("repeat", True),
            ("status", False),
            ("score", True),
            ("turns", True),
            ("tokens", True),
            ("cost", True),
            ("time", True),
        )
    )
    rows = "".join(_summary_row(outcome, anchor, flaky) for anchor, outcome in anchored)
    return (
        '<table id="summary" class="summary"><caption class="muted">One line per test run; '
        "the test links to its transcript.</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _summary_row(
    outcome: TestRunOutcome, anchor: str, flaky: set[tuple[str, str, int, str, str]]
) -> str:
    key = (outcome.prompt_slug, outcome.test_name, outcome.version, outcome.dataset)
    flag = ' <span class="badge s-flaky">flaky</span>' if (*key, outcome.row_name) in flaky else ""
    repeat = f"{outcome.repeat + 1}/{outcome.repeats}" if outcome.repeats > 1 else "—"
    cells = [
        f'<td><a href="#{anchor}">{esc(qualified_name(outcome))}</a></td>',
        f"<td>v{outcome.version}</td>",
        f"<td>{esc(outcome.row_name)}</td>",
        f'<td class="num">{repeat}</td>',
        f"<td>{badge(outcome.status)}{flag}</td>",
        f'<td class="num">{esc(format_score(outcome.score))}</td>',
        f'<td class="num">{"—" if outcome.turn_count is None else outcome.turn_count}</td>',
        f'<td class="num">{"—" if outcome.total_tokens is None else f"{outcome.total_tokens:,}"}'
        "</td>",
        f'<td class="num">{esc(usd(outcome.cost_usd))}</td>',
        f'<td class="num">{esc(format_seconds(outcome.duration_ms))}</td>',
    ]
    return f"<tr {item_attributes(outcome)}>{''.join(cells)}</tr>"
