"""``pt run-tests``: play every test, store the results, print them, exit 0/1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from prompttracker.cli.common import (
    DbOption,
    ProjectOption,
    console,
    db_path,
    err_console,
    handle_errors,
)
from prompttracker.config.models import MAX_REPEAT
from prompttracker.errors import ConfigError, RunStartError

if TYPE_CHECKING:
    from prompttracker.config.loader import Project
    from prompttracker.config.settings import CISettings, Settings
    from prompttracker.engine import Resumption, RunReport
    from prompttracker.estimate import Estimate
    from prompttracker.evidence import Evidence
    from prompttracker.llm.cassettes import Cassettes
    from prompttracker.results import RunRecord, TestRunOutcome, TestRunRow, TestRunSummary
    from prompttracker.runner import PlannedRun
    from prompttracker.store.store import Store

T = TypeVar("T")


class Transcripts(StrEnum):
    all = "all"
    failed = "failed"
    none = "none"


STATUS_MARK = {
    "passed": ("✓ pass", "green"),
    "failed": ("✗ fail", "red"),
    "error": ("! error", "magenta"),
    "invalid": ("~ invalid", "yellow"),
    "inconclusive": ("? inconclusive", "cyan"),
}


@handle_errors
def run_tests(
    project: ProjectOption = Path("."),
    mock: Annotated[
        bool, typer.Option("--mock", help="Answer every LLM call offline and deterministically.")
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", "-c", min=1, max=256, help="Test runs at once (default: setting, 8)."
        ),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter", "-k", help="Run tests whose 'prompt::test' matches (glob or text)."
        ),
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Run tests with this tag.")
    ] = None,
    transcripts: Annotated[
        Transcripts, typer.Option("--transcripts", help="Which transcripts to print.")
    ] = Transcripts.failed,
    junit_xml: Annotated[
        Path | None,
        typer.Option("--junit-xml", help="Write a JUnit XML report here.", dir_okay=False),
    ] = None,
    db: DbOption = None,
    repeat: Annotated[
        int | None,
        typer.Option(
            "--repeat",
            metavar="K",
            min=1,
            max=MAX_REPEAT,
            help="Play every test run K times (overrides each test's `repeat:`).",
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            metavar="RUN_ID|latest",
            help="Compare with this stored run, or `latest` (the latest completed run of the "
            "same selection).",
        ),
    ] = None,
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression",
            help="Exit 1 only when something regressed against --baseline.",
        ),
    ] = False,
    estimate_only: Annotated[
        bool,
        typer.Option("--estimate", help="Print the worst-case calls and cost; call nothing."),
    ] = False,
    list_only: Annotated[
        bool,
        typer.Option(
            "--list", help="Print the planned test runs (prompt::test vN [row]); call nothing."
        ),
    ] = False,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            metavar="USD",
            min=0,
            help="Start no test run once the run has cost this many USD (exit 5).",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the results as JSON on stdout (the rest on stderr)."),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_ID|latest",
            help="Play what a stored run has not finished, into that run, with its plan.",
        ),
    ] = None,
    retry_errors: Annotated[
        bool,
        typer.Option("--retry-errors", help="With --resume: also replay what ended in error."),
    ] = False,
    record: Annotated[
        Path | None,
        typer.Option(
            "--record",
            metavar="DIR",
            file_okay=False,
            help="Write every LLM call of the run to cassettes in DIR (one file per test run).",
        ),
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            "--replay",
            metavar="DIR",
            file_okay=False,
            help="Answer every LLM call from the cassettes in DIR: no network, no key.",
        ),
    ] = None,
    record_missing: Annotated[
        bool,
        typer.Option(
            "--record-missing", help="With --replay: call the real API for what is not recorded."
        ),
    ] = False,
    regenerate_invalid: Annotated[
        int,
        typer.Option(
            "--regenerate-invalid",
            metavar="N",
            min=0,
            max=10,
            help="Play a conversation the simulated user made invalid again, up to N times.",
        ),
    ] = 0,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="I/N",
            help="Play the I-th of N parts of the plan (the same cut on every machine); "
            "merge the parts with `pt runs merge`.",
        ),
    ] = None,
) -> None:
    """Run the tests of every prompt: simulate the conversations, evaluate, store, report."""
    from prompttracker.config.loader import load_project
    from prompttracker.engine import Selection, Shard, execute, plan, plan_hash, preflight
    from prompttracker.evidence import Evidence, compare_runs, version_stats
    from prompttracker.planning import skipped_tests
    from prompttracker.report.evidence import estimate_document, estimate_view, run_document
    from prompttracker.report.summary import FULL_TABLE_LIMIT
    from prompttracker.store.store import Store

    if fail_on_regression and baseline is None:
        raise ConfigError(
            "--fail-on-regression needs a baseline to compare with",
            hint="add --baseline RUN_ID (see `pt runs list`) or --baseline latest",
        )
    _check_resume_options(resume, retry_errors, filters, tags, repeat, shard)
    if junit_xml is not None:
        _check_writable(junit_xml, "--junit-xml")
    part = Shard.parse(shard) if shard is not None else None
    loaded = load_project(project)
    selection = Selection(tuple(filters or ()), tuple(tags or ()))
    resumed: Resumption | None = None
    if resume is not None:
        resumed = _resumption(loaded, db_path(project, db), resume, retry_errors=retry_errors)
        whole, part, planned = resumed.whole, resumed.shard, resumed.remaining
        mock = resumed.run.mock
    else:
        whole = plan(loaded, selection, repeat=repeat)
        planned = part.cut(whole) if part else whole
    skipped = [] if resumed else skipped_tests(loaded, selection)
    out = err_console if as_json else console
    if not whole:  # every selected test is disabled: nothing to play, nothing failed
        _report_all_skipped(skipped, junit_xml, out)
        raise typer.Exit(0)
    if list_only:
        for item in planned:  # one per line on stdout, for scripts; the count on stderr
            typer.echo(item.label)
        err_console.print(
            f"{len(planned)} test run(s) planned"
            + (f" (shard {part} of {len(whole)})" if part else "")
            + (f", {len(skipped)} test(s) skipped (enabled: false)" if skipped else "")
            + "; nothing was called",
            style="dim",
        )
        raise typer.Exit(0)
    if estimate_only or max_cost is not None:
        worst = _estimate(loaded, planned, max_cost=max_cost)
        if estimate_only:
            out.print(estimate_view(worst, mock=mock))
            if as_json:
                typer.echo(json.dumps(estimate_document(worst), indent=2))
            raise typer.Exit(0)
    tapes = _cassettes(loaded, planned, record, replay, record_missing, mock=mock)
    preflight(loaded, planned, mock=mock, keys=tapes is None or tapes.needs_keys)
    workers = concurrency or loaded.settings.concurrency
    database = db_path(project, db)
    if baseline is not None and not database.exists():
        raise ConfigError(
            f"--baseline {baseline}: there is no results database at {database} to find it in",
            hint="run once without --baseline to make one, or point --db at the database "
            "that holds the baseline",
        )
    store = Store(database)
    options = {"concurrency": workers, "filters": filters or [], "tags": tags or []}
    if repeat is not None:
        options["repeat"] = repeat
    if regenerate_invalid:
        options["regenerate_invalid"] = regenerate_invalid
    if part is not None:
        options["shard"] = str(part)
    if tapes is not None:
        options["cassettes"] = {"mode": tapes.mode, "directory": str(tapes.directory)}
    try:
        reference = _baseline(store, baseline, mock=mock, options=options)
        if resumed is not None and retry_errors:
            store.delete_errored(resumed.run.id)  # their replays take their place
    except BaseException:
        store.close()
        raise
    # A large run prints a line only for what did not pass; the bar counts the rest.
    quiet_passes = len(planned) > FULL_TABLE_LIMIT
    from prompttracker.progress import Activity
    from prompttracker.report.live import RunProgress

    activity = Activity()
    progress = RunProgress(activity, console=out, mock=mock)
    task = progress.add_task("Running tests" + (" (mock)" if mock else ""), total=len(planned))

    current: list[RunRecord] = []

    def started(run: RunRecord) -> None:
        current.append(run)
        progress.console.print(
            (
                f"Resuming run [bold]{run.id}[/]: {resumed.finished} finished, "
                f"{len(planned)} to play, concurrency {workers}"
                if resumed
                else f"Run [bold]{run.id}[/]: {len(planned)} test runs, concurrency {workers}"
            )
            + (f" · shard {part} of {len(whole)}" if part else "")
            + (" · [magenta]MOCK[/] (no API calls)" if mock else "")
            + (f" · [magenta]REPLAY[/] from {replay}" if replay else "")
            + (f" · recording to {record}" if record else "")
        )

    def finished(outcome: TestRunOutcome) -> None:
        progress.advance(task)
        if quiet_passes and outcome.status == "passed":
            return
        score = f"  score {outcome.score:.0f}" if outcome.score is not None else ""
        mark, style = STATUS_MARK[outcome.status]
        progress.console.print(Text.assemble((mark, style), f" {outcome.label}{score}"))

    try:
        with progress:
            report = _run_until_signalled(
                execute(
                    loaded,
                    planned,
                    store,
                    mock=mock,
                    concurrency=workers,
                    options=options,
                    on_start=started,
                    on_result=finished,
                    # Only what will be printed is kept whole; the rest is in the store.
                    keep=lambda o: transcripts is Transcripts.all or o.status != "passed",
                    max_cost_usd=max_cost,
                    regenerate_invalid=regenerate_invalid,
                    plan_hash=plan_hash(whole),
                    shard=part,
                    resume=resumed.run.id if resumed else None,
                    cassettes=tapes,
                    activity=activity,
                )
            )
        if resumed is not None and report.store_error is None:  # cover the whole run
            played = {o.plan_key for o in report.outcomes}
            earlier = [o for o in store.load_rows(report.run.id) if o.plan_key not in played]
            report.outcomes[:0] = earlier
    except (KeyboardInterrupt, _Terminated) as exc:
        how, code = ("Terminated", 143) if isinstance(exc, _Terminated) else ("Interrupted", 130)
        if current:
            run = store.get_run(current[0].id)
            out.print(
                f"[yellow]{how}.[/] Run {run.id} kept {run.total} finished test run(s); "
                f"see `pt runs show {run.id}`."
            )
        raise typer.Exit(code) from None
    finally:
        store.close()
    evidence = Evidence.of(report.outcomes)
    if reference is not None:
        base_run, base_rows = reference
        evidence.baseline = compare_runs(
            version_stats(base_rows),
            evidence.versions,
            baseline_id=base_run.id,
            current_id=report.run.id,
        )
    _report(report, evidence, transcripts, junit_xml, out, skipped, loaded.settings.ci)
    if as_json:
        document = run_document(report.run, report.outcomes, evidence, report.metered)
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    if report.store_error is not None:
        raise report.store_error
    if report.refused:
        raise _refusal_error(report, loaded.settings)
    raise typer.Exit(_exit_code(report, evidence, loaded.settings, gate=fail_on_regression))


def _refused_on(outcome: TestRunRow, report: RunReport) -> bool:
    """Whether ``outcome`` errored because a provider refused the key."""
    from prompttracker.llm.endpoint import REFUSED_STATUSES

    error = outcome.error or ""
    return bool(report.refused) and any(f"HTTP {s}" in error for s in REFUSED_STATUSES)


def _refusal_error(report: RunReport, settings: Settings) -> RunStartError:
    """Exit 3, said once: the key is wrong, not the prompts."""
    said = "; ".join(f"{provider} answered {text}" for provider, text in report.refused.items())
    errored = sum(1 for o in report.outcomes if _refused_on(o, report))
    envs = " and ".join(settings.api_key_env(provider) for provider in report.refused)
    return RunStartError(
        f"the run could not continue: the API key was refused ({said}); {errored} test run(s) "
        f"errored on it and {report.refused_not_started} were not started",
        hint=f"check {envs} (for a 403: the key's project and its access to the model), then "
        f"play what is left with `pt run-tests --resume {report.run.id} --retry-errors`",
    )


BUDGET_EXIT_CODE = 5


def _cassettes(
    project: Project,
    planned: list[PlannedRun],
    record: Path | None,
    replay: Path | None,
    record_missing: bool,
    *,
    mock: bool,
) -> Cassettes | None:
    """The run's cassettes for --record / --replay [--record-missing], checked before any call."""
    from prompttracker.llm.cassettes import Cassettes

    clash = (
        "--record and --replay"
        if record and replay
        else "--record-missing without --replay"
        if record_missing and not replay
        else "--mock with cassettes"
        if mock and (record or replay)
        else None
    )
    if clash:
        raise ConfigError(
            f"{clash}: pick one way to answer the calls",
            hint="--record DIR calls the APIs and writes cassettes; --replay DIR answers from "
            "them (add --record-missing to call the API for what is missing); --mock calls "
            "nothing",
        )
    if record is None and replay is None:
        return None
    settings = project.settings
    secrets = tuple(key for p in ("openai", "anthropic", "google") if (key := settings.api_key(p)))
    if replay is not None:
        mode = "replay+record" if record_missing else "replay"
        return Cassettes(replay, mode, planned, secrets=secrets)
    assert record is not None
    return Cassettes(record, "record", planned, secrets=secrets)


def _check_writable(path: Path, option: str) -> None:
    """Bad input, found before any call: a report path that cannot be written after the run."""
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    problem = (
        "it is a directory"
        if path.is_dir()
        else f"{folder} is not a folder"
        if not folder.is_dir()
        else f"{folder} is not writable"
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))
        else None
    )
    if problem:
        raise ConfigError(
            f"{option} {path} cannot be written: {problem}",
            hint=f"give {option} a file path in a folder you can write to",
        )


def _check_resume_options(
    resume: str | None,
    retry_errors: bool,
    filters: list[str] | None,
    tags: list[str] | None,
    repeat: int | None,
    shard: str | None,
) -> None:
    """--resume plays the stored run's own selection: options that would change it clash."""
    if retry_errors and resume is None:
        raise ConfigError(
            "--retry-errors replays the errors of a stored run",
            hint="add --resume RUN_ID (see `pt runs list`) or --resume latest",
        )
    given = [
        name
        for name, value in (
            ("--filter", filters),
            ("--tag", tags),
            ("--repeat", repeat),
            ("--shard", shard),
        )
        if value
    ]
    if resume is not None and given:
        raise ConfigError(
            f"--resume plays the stored run's own plan; {', '.join(given)} would change it",
            hint=f"drop {', '.join(given)}, or start a new run without --resume",
        )


def _resumption(project: Project, database: Path, resume: str, *, retry_errors: bool) -> Resumption:
    from prompttracker.planning import plan_resumption
    from prompttracker.store.store import Store

    if not database.exists():
        raise ConfigError(
            f"--resume {resume}: there is no results database at {database}",
            hint="point --db at the database that holds the run",
        )
    with Store(database) as store:
        return plan_resumption(project, store, resume, retry_errors=retry_errors)


def _exit_code(report: RunReport, evidence: Evidence, settings: Settings, *, gate: bool) -> int:
    """5 when --max-cost stopped the run; with the gate, 1 only for a regression; else 0 when
    the test runs pass CI (``results.gate_passes``), 1 when not."""
    from prompttracker.results import gate_passes

    if report.budget_stopped:
        return BUDGET_EXIT_CODE
    if gate and evidence.baseline is not None:
        return 1 if evidence.baseline.regressions else 0
    if not report.outcomes and report.run.shard:
        return 0  # a shard with nothing to play (more shards than rows) did its part
    return 0 if gate_passes(report.outcomes, settings.ci) else 1


def _estimate(project: Project, planned: list[PlannedRun], *, max_cost: float | None) -> Estimate:
    """The worst case; with --max-cost, every model it calls must have a price."""
    from prompttracker.estimate import estimate

    worst = estimate(project, planned)
    unpriced = sorted({model for (_, model), m in worst.lines.items() if m.unpriced_calls})
    if max_cost is not None and unpriced:
        raise ConfigError(
            f"--max-cost cannot be kept: no price is known for {', '.join(unpriced)}",
            hint="add each model under `prices:` in prompttracker.yaml (USD per million input "
            "and output tokens), or run without --max-cost",
        )
    return worst


def _baseline(
    store: Store, baseline: str | None, *, mock: bool, options: dict[str, Any]
) -> tuple[RunRecord, list[TestRunSummary]] | None:
    """The baseline run and its test runs, read before anything is called."""
    if baseline is None:
        return None
    if baseline == "latest":
        run = store.latest_completed_run(mock=mock, options=options)
        if run is None:
            raise ConfigError(
                f"--baseline latest: {store.path} has no completed"
                + (" mock" if mock else "")
                + " run of this selection (same --filter and --tag)",
                hint="run once without --baseline to make one, or give a run id from "
                "`pt runs list`",
            )
    else:
        run = store.get_run(baseline)
    return run, store.load_summaries(run.id)


class _Terminated(Exception):
    """SIGTERM arrived during the run (what CI sends when a job is cancelled)."""


def _run_until_signalled(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, with SIGTERM handled like Ctrl-C: the run is cancelled and cleans up
    (finished test runs stored, the run marked ``interrupted``), then ``_Terminated`` is raised.
    """

    async def main() -> T:
        loop = asyncio.get_running_loop()
        this = asyncio.current_task()
        terminated = False

        def terminate() -> None:
            nonlocal terminated
            terminated = True
            if this is not None:
                this.cancel()

        loop.add_signal_handler(signal.SIGTERM, terminate)
        try:
            return await coroutine
        except asyncio.CancelledError:
            if terminated:
                raise _Terminated from None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(main())


def _report(
    report: RunReport,
    evidence: Evidence,
    transcripts: Transcripts,
    junit_xml: Path | None,
    console: Console,
    skipped: list[str],
    ci: CISettings,
) -> None:
    from prompttracker.report.evidence import (
        baseline_view,
        comparisons_view,
        cost_line,
        repeats_view,
    )
    from prompttracker.report.junit import write_junit
    from prompttracker.report.summary import calls_note, run_summary, simulator_line, totals_line
    from prompttracker.report.transcript import transcript_view
    from prompttracker.results import TestRunOutcome

    outcomes, run = report.outcomes, report.run
    if evidence.repeated:  # a line per row, not per play
        console.print(repeats_view(evidence))
        console.print(Text(f"Every play: pt runs show {run.id} --transcripts none", style="dim"))
    else:
        console.print(run_summary(outcomes, run))
    compared = comparisons_view(evidence)
    if compared is not None:
        console.print(compared)
    shown = [
        o
        for o in outcomes
        if isinstance(o, TestRunOutcome)
        and (
            transcripts is Transcripts.all
            or (transcripts is Transcripts.failed and o.status != "passed")
        )
        and not _refused_on(o, report)  # the refusal is said once, at the end
    ]
    for outcome in shown:
        console.print(transcript_view(outcome))
    if evidence.baseline is not None:
        console.print(baseline_view(evidence.baseline))
    if junit_xml:
        write_junit(outcomes, junit_xml, run=run, evidence=evidence, skipped=skipped, ci=ci)
        console.print(f"JUnit report: {junit_xml}")
    if report.metered:
        console.print(cost_line(report.metered, mock=run.mock, pricing=report.pricing))
    note = calls_note(report.calls)
    if note is not None:
        console.print(note)
    if report.callback_error is not None:
        error = report.callback_error
        err_console.print(
            Text.assemble(
                ("Warning:", "yellow"), f" progress output stopped: {type(error).__name__}: {error}"
            )
        )
    if report.unstored:
        where = "the summary above" + (" and the JUnit report" if junit_xml else "")
        err_console.print(
            f"[yellow]Warning:[/] {len(report.unstored)} finished test run(s) could not be "
            f"stored; they are only in {where}."
        )
    if report.budget_stopped:
        console.print(
            f"[yellow]Budget reached:[/] --max-cost was spent; {report.not_started} planned "
            "test run(s) were not started (the others are stored)."
        )
    simulator = simulator_line(outcomes)
    if simulator is not None:
        console.print(simulator)
    line = totals_line(outcomes, run)
    if skipped:
        line.append(f" · {len(skipped)} test(s) skipped (enabled: false)", style="dim")
    console.print(line)


def _report_all_skipped(skipped: list[str], junit_xml: Path | None, console: Console) -> None:
    from prompttracker.report.junit import write_junit

    console.print(
        f"0 test runs, {len(skipped)} test(s) skipped (enabled: false): " + ", ".join(skipped)
    )
    if junit_xml:
        write_junit([], junit_xml, skipped=skipped)
        console.print(f"JUnit report: {junit_xml}")
