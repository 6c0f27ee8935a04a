"""``pt vector-stores list|show|create|files|add-file|upload``: the stores file_search reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import BaseModel

from prompttracker.cli.common import ProjectOption, console, handle_errors

if TYPE_CHECKING:
    from prompttracker.vector_stores import VectorStore, VectorStoreService

T = TypeVar("T")

app = typer.Typer(
    help="Manage the vector stores that file_search tools read (OpenAI).", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
MaxPagesOption = Annotated[
    int,
    typer.Option("--max-pages", min=1, help="Read at most this many pages (100 items each)."),
]
StoreId = Annotated[
    str, typer.Argument(help="Vector store id (vs_…), from `pt vector-stores list`.")
]


def _run(project: Path, operation: Callable[[VectorStoreService], Awaitable[T]]) -> T:
    """Run one service operation on the project's provider settings, then close the client."""
    from prompttracker.config.loader import load_settings
    from prompttracker.vector_stores import VectorStoreService

    settings = load_settings(project)

    async def main() -> T:
        async with VectorStoreService(settings) as service:
            return await operation(service)

    return asyncio.run(main())


def _echo_json(value: BaseModel | Sequence[BaseModel]) -> None:
    if isinstance(value, BaseModel):
        typer.echo(value.model_dump_json(indent=2))
    else:
        typer.echo(json.dumps([item.model_dump(mode="json") for item in value], indent=2))


@app.command("list")
@handle_errors
def list_stores(
    project: ProjectOption = Path("."),
    max_pages: MaxPagesOption = 10,
    as_json: JsonOption = False,
) -> None:
    """List vector stores, newest first: id, name, status, files, size, created."""
    from prompttracker.report.vector_stores import page_cap_note, vector_stores_table

    listing = _run(project, lambda service: service.list_stores(max_pages=max_pages))
    if as_json:
        _echo_json(listing.items)
        return
    console.print(vector_stores_table(listing.items))
    if note := page_cap_note(listing):
        console.print(note)


@app.command("show")
@handle_errors
def show_store(
    store_id: StoreId, project: ProjectOption = Path("."), as_json: JsonOption = False
) -> None:
    """Show one vector store with its file counts."""
    _print_store(_run(project, lambda service: service.get_store(store_id)), as_json)


@app.command("create")
@handle_errors
def create_store(
    name: Annotated[str, typer.Argument(help="Name of the new vector store.")],
    file_ids: Annotated[
        list[str] | None,
        typer.Option("--file-id", help="An uploaded file (file-…) to add; repeat for more."),
    ] = None,
    project: ProjectOption = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Create a vector store, optionally holding already uploaded files."""
    _print_store(_run(project, lambda service: service.create_store(name, file_ids or ())), as_json)


@app.command("files")
@handle_errors
def list_files(
    store_id: StoreId,
    project: ProjectOption = Path("."),
    max_pages: MaxPagesOption = 10,
    as_json: JsonOption = False,
) -> None:
    """List a vector store's files and their processing status."""
    from prompttracker.report.vector_stores import page_cap_note, vector_store_files_table

    listing = _run(project, lambda service: service.list_files(store_id, max_pages=max_pages))
    if as_json:
        _echo_json(listing.items)
        return
    console.print(vector_store_files_table(listing.items, title=f"Files of {store_id}"))
    if note := page_cap_note(listing):
        console.print(note)


@app.command("add-file")
@handle_errors
def add_file(
    store_id: StoreId,
    file_id: Annotated[str, typer.Argument(help="An uploaded file's id (file-…).")],
    project: ProjectOption = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Attach an already uploaded file to a vector store (it is processed in the background)."""
    from prompttracker.report.vector_stores import vector_store_files_table

    attached = _run(project, lambda service: service.attach_file(store_id, file_id))
    if as_json:
        _echo_json(attached)
    else:
        console.print(vector_store_files_table([attached], title=f"Added to {store_id}"))


@app.command("upload")
@handle_errors
def upload(
    store_id: StoreId,
    paths: Annotated[list[Path], typer.Argument(help="Local files to upload.")],
    project: ProjectOption = Path("."),
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0, help="Seconds to wait for the files to be processed."),
    ] = 300.0,
    as_json: JsonOption = False,
) -> None:
    """Upload files, attach them to a vector store, and wait until they are processed.

    Exits non-zero when a file fails (with the provider's reason) or is still processing when
    the timeout passes.
    """
    from prompttracker.report.vector_stores import vector_store_files_table
    from prompttracker.vector_stores import raise_for_failures

    files = _run(project, lambda service: service.upload(store_id, paths, timeout=timeout))
    if as_json:
        _echo_json(files)
    else:
        console.print(vector_store_files_table(files, title=f"Uploaded to {store_id}"))
    raise_for_failures(files)


def _print_store(store: VectorStore, as_json: bool) -> None:
    """One store as a JSON object (--json) or as its rich view."""
    from prompttracker.report.vector_stores import vector_store_view

    if as_json:
        _echo_json(store)
    else:
        console.print(vector_store_view(store))
