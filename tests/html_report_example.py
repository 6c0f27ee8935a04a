"""The run the HTML report tests look at: the bundled example project played with --mock, one
test repeating each row twice (and comparing two versions), and a crafted row of markup."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from prompttracker.cli import app

REPO = Path(__file__).resolve().parent.parent
# Its name and its opening message are markup that must never become markup.
INJECTED_ROW = "<img src=x onerror=alert(1)> injected"
INJECTED_MESSAGE = "</script><script>alert('pt')</script> & <b>bold</b>"
CRAFTED_ROW = f"""
  - name: "{INJECTED_ROW}"
    variables:
      opening_message: "{INJECTED_MESSAGE}"
    interlocutor_simulation_prompt: |
      You paste markup: <script>alert("persona")</script>. End quickly.
    max_turns: 2
"""
REPEATED_TEST = "billing_support::both versions stay polite"

runner = CliRunner()


def pt(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def play_example(root: Path) -> Path:
    """Copy the example project into ``root``, play it with --mock, return ``root``."""
    for name in ("prompts", "datasets"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "prompttracker.yaml", root / "prompttracker.yaml")
    prompt = root / "prompts" / "billing_support.yaml"
    source = prompt.read_text()
    assert source.count("    versions: [1, 2]\n") == 1, "the example's compared test moved"
    prompt.write_text(
        source.replace("    versions: [1, 2]\n", "    versions: [1, 2]\n    repeat: 2\n")
    )
    dataset = root / "datasets" / "billing_conversations.yaml"
    dataset.write_text(dataset.read_text() + CRAFTED_ROW)
    result = pt("run-tests", "--mock", "-p", str(root), "--transcripts", "none")
    assert result.exit_code == 1, result.output  # the example suite fails by design
    return root
