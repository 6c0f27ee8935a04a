"""Views of a ``pt sync openai`` report: one row per assistant, then a summary."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from prompttracker.sync.models import SyncAction, SyncReport

COUNT_LABELS = {
    SyncAction.new: "new",
    SyncAction.updated: "updated",
    SyncAction.unchanged: "unchanged",
    SyncAction.skipped: "skipped (edited)",
    SyncAction.error: "error(s)",
}
ACTION_STYLES = {
    SyncAction.new: "green",
    SyncAction.updated: "cyan",
    SyncAction.unchanged: "dim",
    SyncAction.skipped: "yellow",
    SyncAction.error: "red",
}


def sync_table(report: SyncReport) -> Table:
    """id, name, action, file, version, and what changed or why (one row per assistant)."""
    title = "Assistants (dry run: nothing written)" if report.dry_run else "Assistants"
    table = Table(title=title, title_justify="left")
    table.add_column("assistant", no_wrap=True)
    table.add_column("name")
    table.add_column("action", no_wrap=True)
    table.add_column("file", overflow="fold")  # a path is never cut short
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("details", overflow="fold")
    for result in report.results:
        details = f"changed: {', '.join(result.changes)}" if result.changes else ""
        if result.message:
            details = f"{details}; {result.message}" if details else result.message
        table.add_row(
            result.assistant_id,
            Text(result.name),
            Text(result.action.value, style=ACTION_STYLES[result.action]),
            Text(result.file),
            f"v{result.version}" if result.version is not None else "—",
            Text(details or "—"),
        )
    return table


def sync_summary(report: SyncReport) -> RenderableType:
    """``3 assistant(s): 1 new, 1 updated, 1 unchanged …`` plus the page-cap warning if any."""
    counts = ", ".join(f"{report.count(action)} {COUNT_LABELS[action]}" for action in SyncAction)
    written = report.count(SyncAction.new) + report.count(SyncAction.updated)
    tail = (
        f"dry run: {written} file(s) would be written, nothing was"
        if report.dry_run
        else f"{written} file(s) written to {report.out}"
    )
    source = "the API" if report.source == "api" else report.source
    lines: list[RenderableType] = [
        Text(f"{len(report.results)} assistant(s) from {source}: {counts} · {tail}", "bold")
    ]
    if report.page_cap_reached:
        lines.append(
            Text(
                f"Page cap reached: stopped after {report.pages} page(s) while the API still said "
                "has_more; assistants past that point were not read. Raise --max-pages to read "
                "them.",
                style="yellow",
            )
        )
    if report.count(SyncAction.skipped):
        lines.append(
            Text(
                "Skipped files were edited by hand and are left as they are. Rerun with --force "
                "to append the new versions to them anyway: their content is kept, their exact "
                "text is copied to <file>.bak first (the rewrite drops comments and layout).",
                style="yellow",
            )
        )
    return Group(*lines)
