"""``pt chat``: try a prompt version by hand, on its route or another; keep what you found."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from prompttracker.cli.common import DbOption, ProjectOption, console, err_console, handle_errors

if TYPE_CHECKING:
    from prompttracker.chat import Chat

HELP = """\
/sim [N]          let the row's simulated user play the next N turns (1)
/eval [TEST]      run a test's evaluators on the conversation so far
/system           show the rendered system prompt
/reset            start over: a new session
/save             store the chat as a run (`pt runs show` finds it), scored by the last /eval
/save row NAME    append the chat to the row's dataset as a new row NAME
/quit             end the chat (Ctrl-D too; Ctrl-C cancels a reply in flight)"""


@handle_errors
def chat(
    prompt: Annotated[str, typer.Argument(help="The prompt's slug (its file name in prompts/).")],
    version: Annotated[
        int | None, typer.Option("--version", help="Version number (default: the active one).")
    ] = None,
    row: Annotated[
        str | None,
        typer.Option(
            "--row",
            help="DATASET:ROW whose variables, mocked function outputs and simulated user to use.",
        ),
    ] = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="NAME=VALUE, over the row's variables.")
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Override the provider.")
    ] = None,
    api: Annotated[str | None, typer.Option("--api", help="Override the API.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Override the model.")] = None,
    assistant_id: Annotated[
        str | None, typer.Option("--assistant-id", help="Override the assistant (api assistants).")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="Override the temperature.")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Override the provider's base_url.")
    ] = None,
    message: Annotated[
        list[str] | None,
        typer.Option("--message", "-m", help="Play this user turn and end (repeatable)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --message: print the transcript as JSON.")
    ] = False,
    mock: Annotated[bool, typer.Option("--mock", help="Answer offline (no API calls).")] = False,
    project: ProjectOption = Path("."),
    db: DbOption = None,
) -> None:
    """Talk to a prompt version by hand, on its route or another.

    In the chat: /sim [N], /eval [TEST], /system, /reset, /save, /save row NAME, /quit
    (/help says what each does). Ctrl-C cancels a reply in flight; Ctrl-D ends.
    """
    from prompttracker.chat import Chat, chat_setup
    from prompttracker.config.loader import load_project
    from prompttracker.errors import ConfigError
    from prompttracker.llm.call_layer import CallLayer

    if as_json and not message:
        raise ConfigError("--json needs --message: it prints the transcript of the turns given")
    loaded = load_project(project)
    overrides = {
        "provider": provider,
        "api": api,
        "model": model,
        "assistant_id": assistant_id,
        "temperature": temperature,
    }
    setup = chat_setup(
        loaded,
        prompt,
        version=version,
        row=row,
        variables=var or [],
        overrides=overrides,
        base_url=base_url,
        mock=mock,
    )
    # In a terminal the reply is drawn as it arrives (on routes that stream).
    streamed = _Streamed() if console.is_terminal and not message else None
    with asyncio.Runner() as runner:
        calls = CallLayer(setup.settings, concurrency=1)
        try:
            session = Chat(setup, calls, on_text=streamed)
            try:
                if message:
                    _scripted(runner, session, message, as_json=as_json)
                else:
                    _interactive(runner, session, loaded.root, db, streamed)
            finally:
                runner.run(session.aclose())
        finally:
            runner.run(calls.aclose())


def _scripted(runner: asyncio.Runner, session: Chat, messages: list[str], *, as_json: bool) -> None:
    for text in messages:
        _say(runner, session, text, quiet=as_json)
    if as_json:
        document = session.outcome().model_dump(mode="json", by_alias=True)
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


class _Streamed:
    """The reply as it arrives, in a panel that goes when the whole reply is shown."""

    def __init__(self) -> None:
        self.text = Text()
        self.live: Live | None = None

    def __call__(self, piece: str) -> None:
        if self.live is None:
            panel = Panel(self.text, title=Text("Assistant …", style="bold green"))
            self.live = Live(panel, console=console, transient=True, refresh_per_second=12)
            self.live.start()
        self.text.append(piece)

    def done(self) -> None:
        if self.live is not None:
            self.live.stop()
        self.live, self.text = None, Text()


def _interactive(
    runner: asyncio.Runner, session: Chat, root: Path, db: Path | None, streamed: _Streamed | None
) -> None:
    setup = session.setup
    console.print(Text.assemble(("Chat with ", "dim"), (setup.label, "bold")))
    route = Text.assemble(("route ", "dim"), setup.config.label)
    if setup.mock:
        route.append("  MOCK", style="bold black on yellow")
    console.print(route)
    console.print(Text("Type a message; /help lists the commands, Ctrl-D ends.", style="dim"))
    prompt = "you> " if sys.stdin.isatty() else ""
    if prompt:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
    while True:
        try:
            line = input(prompt)
        except EOFError:
            break
        except KeyboardInterrupt:
            console.print(Text("\n(Ctrl-D or /quit ends the chat)", style="dim"))
            continue
        text = line.strip()
        if not text:
            continue
        if not text.startswith("/"):
            _say(runner, session, text)
        elif not _command(runner, session, text, root, db):
            break


def _say(runner: asyncio.Runner, session: Chat, text: str, *, quiet: bool = False) -> None:
    before = len(session.conversation.messages)
    if _run(runner, session, session.say(text)) and not quiet:
        # In a terminal the person sees what they typed; from a pipe it is shown with the reply.
        shown = before + 1 if sys.stdin.isatty() else before
        _show(session, session.conversation.messages[shown:])


def _run(runner: asyncio.Runner, session: Chat, work: object) -> bool:
    """Run one step of the chat; an API error or Ctrl-C ends the step, not the chat."""
    from prompttracker.errors import PromptTrackerError

    try:
        runner.run(work)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        err_console.print(Text("(cancelled: that turn left no trace)", style="yellow"))
        return False
    except PromptTrackerError as exc:
        err_console.print(Text.assemble(("Error: ", "bold red"), exc.message))
        if exc.hint:
            err_console.print(Text.assemble(("Hint: ", "bold"), exc.hint))
        return False
    finally:
        if isinstance(session.on_text, _Streamed):
            session.on_text.done()  # the whole reply is shown next
    return True


def _show(session: Chat, messages: list) -> None:
    from prompttracker.report.transcript import message_panel

    label = f"Assistant · {session.setup.config.label}"
    for message in messages:
        console.print(message_panel(message, label, user_label="You"))


def _command(runner: asyncio.Runner, session: Chat, text: str, root: Path, db: Path | None) -> bool:
    """Do one slash command; False ends the chat."""
    name, _, rest = text.partition(" ")
    rest = rest.strip()
    if name in ("/quit", "/exit"):
        return False
    if name == "/help":
        console.print(Text(HELP))
    elif name == "/system":
        console.print(Text(session.setup.system_prompt or "(empty system prompt)"))
    elif name == "/reset":
        if _run(runner, session, session.reset()):
            console.print(Text("(new session: nothing said yet)", style="dim"))
    elif name == "/sim":
        _sim(runner, session, rest)
    elif name == "/eval":
        _eval(runner, session, rest or None)
    elif name == "/save":
        _save(runner, session, rest, root, db)
    else:
        err_console.print(Text(f"unknown command {name}; /help lists them", style="yellow"))
    return True


def _sim(runner: asyncio.Runner, session: Chat, rest: str) -> None:
    if rest and not (rest.isdigit() and 0 < int(rest) <= 50):
        err_console.print(Text("/sim N: N is a number of turns from 1 to 50", style="yellow"))
        return
    for _ in range(int(rest or 1)):  # a turn at a time: each is shown as it is played
        before = len(session.conversation.messages)
        ok = _run(runner, session, session.simulate(1))
        _show(session, session.conversation.messages[before:])
        if not ok or session.simulated_user_done:
            break


def _eval(runner: asyncio.Runner, session: Chat, test_name: str | None) -> None:
    from prompttracker.errors import ConfigError

    try:
        test = session.test(test_name)
    except ConfigError as exc:
        err_console.print(Text.assemble(("Error: ", "bold red"), exc.message))
        return
    if _run(runner, session, session.evaluate(test)):
        _show_evaluations(session)


def _show_evaluations(session: Chat) -> None:
    from prompttracker.report.transcript import evaluations_view

    test = session.evaluated_by
    console.print(Text(f"{session.setup.prompt_slug}::{test.name if test else ''}", style="bold"))
    console.print(evaluations_view(session.evaluations))


def _save(runner: asyncio.Runner, session: Chat, rest: str, root: Path, db: Path | None) -> None:
    from prompttracker.chat import save_row, save_run
    from prompttracker.cli.common import db_path
    from prompttracker.errors import PromptTrackerError

    if not session.conversation.messages:
        err_console.print(Text("nothing to save yet: say something first", style="yellow"))
        return
    kind, _, name = rest.partition(" ")
    try:
        if kind == "row":
            where = save_row(session, root, name.strip())
            console.print(Text(f"appended row {name.strip()!r} to {where}", style="green"))
        elif not kind:
            if session.setup.tests and not session.scored:  # what is stored is scored as is
                test = session.evaluated_by or session.test(None)
                if not _run(runner, session, session.evaluate(test)):
                    return
                _show_evaluations(session)
            run = save_run(session, db_path(root, db), root)
            console.print(Text(f"saved as run {run}: pt runs show {run}", style="green"))
        else:
            err_console.print(Text("/save, or /save row NAME", style="yellow"))
    except PromptTrackerError as exc:
        err_console.print(Text.assemble(("Error: ", "bold red"), exc.message))
