"""The console script itself: any terminal encoding, and Ctrl-C while starting."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from prompttracker import entry

ROOT = Path(__file__).resolve().parent.parent


def test_a_terminal_that_cannot_encode_gets_replacements_not_a_traceback(tmp_path: Path) -> None:
    for name in ("prompts", "datasets"):
        shutil.copytree(ROOT / name, tmp_path / name)
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C", "LANG": "C"}
    env.pop("OPENAI_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "prompttracker", "run-tests", "--mock", "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        encoding="ascii",
        errors="strict",  # what pt wrote is plain ASCII, or this raises
        env=env,
        timeout=120,
    )
    assert "UnicodeEncodeError" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr  # the bundled suite's usual verdict
    assert "21 passed, 5 failed" in result.stdout


def test_ctrl_c_while_starting_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "prompttracker.cli", types.SimpleNamespace(app=interrupted))
    with pytest.raises(SystemExit) as exit_info:
        entry.main()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "Interrupted.\n"
