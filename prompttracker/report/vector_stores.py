"""Vector store views: the list of stores, one store, a store's files, the page-cap note."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich import box
from rich.table import Table
from rich.text import Text

from prompttracker.vector_stores.service import FileCounts, Listing, VectorStore, VectorStoreFile

STORE_STATUS_STYLES = {"completed": "green", "in_progress": "yellow", "expired": "red"}
FILE_STATUS_STYLES = {
    "completed": "green",
    "in_progress": "yellow",
    "failed": "red",
    "cancelled": "red",
}
_UNITS = ("B", "KB", "MB", "GB", "TB")


def format_bytes(size: int) -> str:
    """``139920`` → ``136.6 KB`` (powers of 1024, one decimal above bytes)."""
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_timestamp(moment: datetime | None, *, with_time: bool = False) -> str:
    """``2023-11-04`` (or ``2023-11-04 01:36``), in UTC so that everyone reads the same; ``—``."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def format_file_counts(counts: FileCounts) -> Text:
    """``3/3`` ready out of total, then ``· 1 failed`` / ``· 2 processing`` when there are any."""
    text = Text(f"{counts.completed}/{counts.total}")
    for number, label, style in (
        (counts.in_progress, "processing", "yellow"),
        (counts.failed, "failed", "red"),
        (counts.cancelled, "cancelled", "red"),
    ):
        if number:
            text.append(f" · {number} {label}", style=style)
    return text


def vector_stores_table(stores: Sequence[VectorStore]) -> Table:
    """One line per store: id, name, status, files ready/total, size, created."""
    table = Table(title="Vector stores", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)
    table.add_column("name")
    table.add_column("status", no_wrap=True)
    table.add_column("files")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for store in stores:
        table.add_row(
            store.id,
            Text(store.name or "—"),
            _status(store.status, STORE_STATUS_STYLES),
            format_file_counts(store.file_counts),
            format_bytes(store.usage_bytes),
            format_timestamp(store.created_at),
        )
    return table


def vector_store_view(store: VectorStore) -> Table:
    """One store as labelled lines, with every file count."""
    counts = store.file_counts
    table = Table(
        box=box.SIMPLE, show_header=False, title=f"Vector store {store.id}", title_justify="left"
    )
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value")
    table.add_row("id", store.id)
    table.add_row("name", Text(store.name or "—"))
    table.add_row("status", _status(store.status, STORE_STATUS_STYLES))
    table.add_row(
        "files",
        f"{counts.total} total: {counts.completed} completed, {counts.in_progress} in progress, "
        f"{counts.failed} failed, {counts.cancelled} cancelled",
    )
    table.add_row("size", format_bytes(store.usage_bytes))
    table.add_row("created", f"{format_timestamp(store.created_at, with_time=True)} UTC")
    if store.expires_at is not None:
        table.add_row("expires", f"{format_timestamp(store.expires_at, with_time=True)} UTC")
    return table


def vector_store_files_table(files: Sequence[VectorStoreFile], title: str = "Files") -> Table:
    """One line per file: id (and local name after an upload), status, size, created, error."""
    named = any(f.filename for f in files)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("file id", no_wrap=True)
    if named:
        table.add_column("name")
    table.add_column("status", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("error")
    for file in files:
        error = f"{file.last_error.code}: {file.last_error.message}" if file.last_error else ""
        cells: list[str | Text] = [file.id]
        if named:
            cells.append(Text(file.filename or "—"))
        cells += [
            _status(file.status, FILE_STATUS_STYLES),
            format_bytes(file.usage_bytes),
            format_timestamp(file.created_at),
            Text(error, style="red"),
        ]
        table.add_row(*cells)
    return table


def page_cap_note(listing: Listing[VectorStore] | Listing[VectorStoreFile]) -> Text | None:
    """A dim line when the page cap stopped the listing before its end, else None."""
    if not listing.truncated:
        return None
    return Text(
        f"Showing the first {len(listing.items)} item(s) ({listing.pages} page(s)); the provider "
        "has more: raise --max-pages to see them.",
        style="dim",
    )


def _status(status: str, styles: dict[str, str]) -> Text:
    return Text(status, style=styles.get(status, ""))
