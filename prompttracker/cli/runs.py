"""``pt runs list|show|compare|merge``: read stored runs and transcripts back, compare two runs,
merge the shards of one plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from prompttracker.cli.common import (
    DbOption,
    ProjectOption,
    console,
    handle_errors,
    load_run,
    open_store,
)
from prompttracker.cli.run_tests import BUDGET_EXIT_CODE, Transcripts

if TYPE_CHECKING:
    from prompttracker.config.settings import CISettings
    from prompttracker.results import RunRecord, TestRunOutcome

app = typer.Typer(help="Read stored runs and transcripts back.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_runs(
    project: ProjectOption = Path("."),
    db: DbOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the most recent runs, newest first."""
    from prompttracker.report.summary import runs_table

    store = open_store(project, db)
    try:
        runs = store.list_runs(limit=limit)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
    else:
        console.print(runs_table(runs))


@app.command("show")
@handle_errors
def show_run(
    run_id: Annotated[
        str,
        typer.Argument(
            help="Run id, or its start or end (e.g. the random part after the last `-`) if "
            "no other run has it, or `latest` (see `pt runs list`)."
        ),
    ],
    project: ProjectOption = Path("."),
    db: DbOption = None,
    transcripts: Annotated[
        Transcripts, typer.Option("--transcripts", help="Which transcripts to print.")
    ] = Transcripts.failed,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run as JSON (as `pt run-tests --json`).")
    ] = False,
    exit_code: Annotated[
        bool,
        typer.Option(
            "--exit-code",
            help="Exit like `pt run-tests` would have: 0 all passed, 1 a failure or error "
            "(or no test run), 5 stopped by --max-cost.",
        ),
    ] = False,
    junit_xml: Annotated[
        Path | None,
        typer.Option("--junit-xml", help="Write the run's JUnit XML report here.", dir_okay=False),
    ] = None,
) -> None:
    """Print a stored run: its summary table, transcripts, repeats, comparisons and costs."""
    from prompttracker.config.loader import load_settings
    from prompttracker.evidence import Evidence
    from prompttracker.report.junit import write_junit

    run, outcomes = load_run(project, db, run_id)
    if as_json:
        from prompttracker.messages import merge_metered
        from prompttracker.report.evidence import run_document

        metered = merge_metered(outcome.metered for outcome in outcomes)
        document = run_document(run, outcomes, Evidence.of(outcomes), metered)
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        _print_run(run, outcomes, transcripts)
    if junit_xml is not None:
        ci = load_settings(project).ci
        write_junit(outcomes, junit_xml, run=run, evidence=Evidence.of(outcomes), ci=ci)
        console.print(f"JUnit report: {junit_xml}")
    if exit_code:
        raise typer.Exit(_run_exit_code(run, outcomes, load_settings(project).ci))


@app.command("merge")
@handle_errors
def merge(
    sources: Annotated[
        list[Path],
        typer.Argument(
            help="The shards' databases (`pt run-tests --shard I/N --db FILE`), one shard each.",
            dir_okay=False,
        ),
    ],
    into: Annotated[
        Path,
        typer.Option(
            "--into", help="Database to add the merged run to (created if missing).", dir_okay=False
        ),
    ],
) -> None:
    """Merge the shards of one plan, played into separate databases, into one run."""
    from prompttracker.store.merge import merge_runs
    from prompttracker.store.store import Store

    run = merge_runs(sources, into)
    with Store(into) as store:
        outcomes = store.load_outcomes(run.id)
    console.print(
        f"Merged {len(run.options.get('merged_from', []))} shards of run plan {run.plan_hash} "
        f"into [bold]{run.id}[/] in {into}: {run.total} test runs ({counts_text(run)})"
    )
    _print_run(run, outcomes, Transcripts.none)


def _print_run(run: RunRecord, outcomes: list[TestRunOutcome], transcripts: Transcripts) -> None:
    """A stored run as `pt runs show` prints it."""
    from prompttracker.evidence import Evidence
    from prompttracker.messages import merge_metered
    from prompttracker.report.evidence import comparisons_view, cost_line, repeats_view
    from prompttracker.report.summary import simulator_line, summary_table, totals_line
    from prompttracker.report.transcript import transcript_view

    console.print(_header(run))
    console.print(summary_table(outcomes))
    for outcome in outcomes:
        if transcripts is Transcripts.all or (
            transcripts is Transcripts.failed and outcome.status != "passed"
        ):
            console.print(transcript_view(outcome))
    evidence = Evidence.of(outcomes)
    for view in (repeats_view(evidence) if evidence.repeated else None, comparisons_view(evidence)):
        if view is not None:
            console.print(view)
    metered = merge_metered(outcome.metered for outcome in outcomes)
    if metered:
        console.print(cost_line(metered, mock=run.mock, pricing=run.pricing))
    simulator = simulator_line(outcomes)
    if simulator is not None:
        console.print(simulator)
    console.print(totals_line(outcomes, run))


def _header(run: RunRecord) -> str:
    """``Run run-… · 2026-12-01 10:40:12 UTC · completed · mock · -k billing --repeat 5``."""
    options = run.options
    flags = [f"-k {f}" for f in options.get("filters") or []]
    flags += [f"--tag {t}" for t in options.get("tags") or []]
    flags += [f"--repeat {options['repeat']}"] if options.get("repeat") else []
    flags += [f"--shard {run.shard}"] if run.shard else []
    cassettes = options.get("cassettes") or {}
    flags += [f"{cassettes.get('mode')} {cassettes.get('directory')}"] if cassettes else []
    parts = [
        f"Run [bold]{escape(run.id)}[/]",
        f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC",
        run.status,
        *(["mock"] if run.mock else []),
        *([escape(" ".join(flags))] if flags else []),
        f"{run.total} test runs: {counts_text(run)}",
    ]
    return " · ".join(parts)


def counts_text(run: RunRecord) -> str:
    """``3 passed, 1 failed, 0 error``, then invalid and inconclusive when there are some."""
    undecided = [(run.invalid, "invalid"), (run.inconclusive, "inconclusive")]
    return ", ".join(
        [
            f"{run.passed} passed",
            f"{run.failed} failed",
            f"{run.errored} error",
            *(f"{count} {name}" for count, name in undecided if count),
        ]
    )


def _run_exit_code(run: RunRecord, outcomes: list[TestRunOutcome], ci: CISettings) -> int:
    """What `pt run-tests` exits with for this run: 5 for the budget, else 0 when its test
    runs pass CI (``results.gate_passes``, with the project's ``ci`` settings), else 1."""
    from prompttracker.results import gate_passes

    if run.status == "budget":
        return BUDGET_EXIT_CODE
    return 0 if gate_passes(outcomes, ci) else 1


@app.command("compare")
@handle_errors
def compare(
    baseline: Annotated[str, typer.Argument(help="The run to compare against (A).")],
    current: Annotated[str, typer.Argument(help="The run to compare (B).")],
    project: ProjectOption = Path("."),
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    exit_code: Annotated[
        bool,
        typer.Option("--exit-code", help="Exit 1 when B regressed against A (the CI gate)."),
    ] = False,
) -> None:
    """Compare two stored runs, paired on the same test, version and row.

    Test versions are matched by content hash (the same version, even renumbered), else by
    number (marked as changed); rows by dataset and name. What only one run has is listed.
    """
    from prompttracker.evidence import compare_runs, version_stats
    from prompttracker.report.evidence import baseline_view

    store = open_store(project, db)
    try:
        run_a, run_b = store.get_run(baseline), store.get_run(current)
        rows_a, rows_b = store.load_summaries(run_a.id), store.load_summaries(run_b.id)
    finally:
        store.close()
    comparison = compare_runs(
        version_stats(rows_a), version_stats(rows_b), baseline_id=run_a.id, current_id=run_b.id
    )
    if as_json:
        typer.echo(json.dumps(comparison.as_dict(), indent=2, ensure_ascii=False))
    else:
        console.print(baseline_view(comparison))
    raise typer.Exit(1 if exit_code and comparison.regressions else 0)
