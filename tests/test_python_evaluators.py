"""``type: python`` evaluators and entry-point evaluator types, through the CLI: a check that
passes, fails, raises, is mis-declared or is slow; a plugin package's own evaluator type."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.evaluators.python import plugin_types
from tests.project_factory import write_project

runner = CliRunner()

CHECKS = '''
import asyncio
from prompttracker.evaluators.python import Verdict

def mentions_order(ctx, number="12345"):
    """Passes when the reply names the order."""
    found = number in ctx.response
    said = "named" if found else "missing"
    return Verdict(score=100 if found else 0, feedback=f"order {number} {said}",
                   details={"turns": ctx.whole.turn_count})

def always(ctx):
    return True

def never(ctx):
    return False

def half(ctx):
    return 50

def broken(ctx):
    raise RuntimeError("the check itself is buggy")

def wrong_return(ctx):
    return "yes"

def no_context():
    return True

async def waits(ctx, seconds=0.0):
    await asyncio.sleep(seconds)
    return 90

def too_high(ctx):
    return 140
'''

PROMPT = """\
name: Billing support
versions:
  - version: 1
    status: active
    system_prompt: "You are a support agent."
    user_prompt: "{{ opening }}"
    model_config: { provider: mock, model: m }
tests:
  - name: checks in python
    dataset: billing
    evaluators:
%s
"""
DATASET = """\
mode: single_turn
rows:
  - name: order
    variables: { opening: "Where is my order 12345?" }
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write the project with ``checks_<test>.py`` at its root; returns a writer taking the
    evaluator lines, and the module's name."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    module = f"checks_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{module}.py").write_text(dedent(CHECKS))

    def write(*evaluators: str) -> None:
        lines = "\n".join(f"      - {e.replace('MODULE', module)}" for e in evaluators)
        write_project(tmp_path, {"billing": PROMPT % lines}, {"billing": DATASET})

    yield write
    sys.modules.pop(module, None)


def evaluations(tmp_path: Path) -> list[tuple]:
    with sqlite3.connect(tmp_path / ".prompttracker" / "results.db") as db:
        return db.execute(
            "select evaluator, score, passed, feedback, error, details from evaluations "
            "order by position"
        ).fetchall()


def test_a_python_check_passes_and_fails_with_its_verdict(project, tmp_path):
    project(
        "{ type: python, name: names the order, config: { function: 'MODULE:mentions_order' } }",
        "{ type: python, name: another order, config: { function: 'MODULE:mentions_order', "
        "args: { number: '999' } } }",
        "{ type: python, config: { function: 'MODULE:always' } }",
        "{ type: python, name: half, config: { function: 'MODULE:half', threshold_score: 40 } }",
        "{ type: python, name: async, config: { function: 'MODULE:waits' } }",
    )
    result = runner.invoke(app, ["run-tests", "--mock"])
    assert result.exit_code == 1, result.output  # "another order" fails
    rows = evaluations(tmp_path)
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("names the order", 100, 1, None),
        ("another order", 0, 0, None),
        ("python", 100, 1, None),
        ("half", 50, 1, None),
        ("async", 90, 1, None),
    ]
    assert rows[0][3] == "order 12345 named" and rows[1][3] == "order 999 missing"
    assert json.loads(rows[0][5]) == {"turns": 1}


def test_a_check_that_raises_or_returns_garbage_is_an_errored_evaluation(project, tmp_path):
    project(
        "{ type: python, name: buggy, config: { function: 'MODULE:broken' } }",
        "{ type: python, name: words, config: { function: 'MODULE:wrong_return' } }",
        "{ type: python, name: too high, config: { function: 'MODULE:too_high' } }",
        "{ type: python, name: slow, config: { function: 'MODULE:waits', timeout_seconds: 0.05, "
        "args: { seconds: 5 } } }",
    )
    result = runner.invoke(app, ["run-tests", "--mock"])
    assert result.exit_code == 1
    errors = {r[0]: r[4] for r in evaluations(tmp_path)}
    assert errors["buggy"] == "RuntimeError: the check itself is buggy"
    assert "returned str; return a prompttracker.evaluators.python.Verdict" in errors["words"]
    assert "gave the score 140; a score is 0–100" in errors["too high"]
    assert "did not return within 0.05 s (timeout_seconds)" in errors["slow"]


@pytest.mark.parametrize(
    ("evaluator", "message"),
    [
        (
            "{ type: python, config: { function: 'no_such_module_xyz:check' } }",
            "cannot import 'no_such_module_xyz' (ModuleNotFoundError",
        ),
        ("{ type: python, config: { function: 'MODULE:nope' } }", "has no 'nope' (its functions:"),
        ("{ type: python, config: { function: 'MODULE:no_context' } }", "cannot be called with"),
        (
            "{ type: python, config: { function: 'MODULE:always', args: { extra: 1 } } }",
            "and args ['extra']",
        ),
        ("{ type: python, config: { function: 'not a path' } }", "String should match pattern"),
        ("{ type: python, config: {} }", "function: Field required"),
    ],
)
def test_a_mis_declared_check_is_bad_input_naming_the_file_and_test(project, evaluator, message):
    project(evaluator)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "prompts/billing.yaml" in out and "(checks in python).evaluators[0] (python)" in out
    assert message in out


# --- a plugin package's evaluator type, through its entry point ------------------------------

PLUGIN = '''
from pydantic import Field
from prompttracker.evaluators.base import Evaluator, EvaluatorConfig

class ShortReply(Evaluator):
    """The reply has at most max_words words."""
    type = "short_reply"

    class Config(EvaluatorConfig):
        max_words: int = Field(default=50, ge=1, description="Most words allowed")

    async def check(self, ctx):
        words = len(ctx.response.split())
        return self.result(100 if words <= self.config.max_words else 0,
                           words <= self.config.max_words, f"{words} words")

class NotAnEvaluator:
    type = "not_one"
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    site = tmp_path / "site"
    (site / "pt_plugin_demo").mkdir(parents=True)
    (site / "pt_plugin_demo" / "__init__.py").write_text(dedent(PLUGIN))
    info = site / "pt_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pt-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[prompttracker.evaluators]\nshort_reply = pt_plugin_demo:ShortReply\n"
        "not_one = pt_plugin_demo:NotAnEvaluator\nmissing = pt_plugin_missing:Nothing\n"
    )
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    plugin_types.cache_clear()
    yield
    plugin_types.cache_clear()
    sys.modules.pop("pt_plugin_demo", None)


def test_an_entry_point_adds_an_evaluator_type(plugin, tmp_path):
    evaluator = "{ type: short_reply, config: { max_words: 3 } }"
    write_project(tmp_path, {"billing": PROMPT % f"      - {evaluator}"}, {"billing": DATASET})
    listed = runner.invoke(app, ["evaluators", "list", "--json"])
    assert "short_reply" in {entry["type"] for entry in json.loads(listed.stdout)}
    result = runner.invoke(app, ["run-tests", "--mock"])
    assert result.exit_code == 1  # the mock's reply is longer than three words
    [(name, score, passed, feedback, error, _)] = evaluations(tmp_path)
    assert (name, score, passed, error) == ("short_reply", 0, 0, None)
    assert feedback.endswith(" words")


@pytest.mark.parametrize(
    ("type_", "message"),
    [
        ("not_one", "pt_plugin_demo:NotAnEvaluator, which did not load: TypeError: it is not a "),
        ("missing", "pt_plugin_missing:Nothing, which did not load: ModuleNotFoundError"),
    ],
)
def test_a_broken_entry_point_is_named_where_its_type_is_used(plugin, tmp_path, type_, message):
    evaluator = f"{{ type: {type_} }}"
    write_project(tmp_path, {"billing": PROMPT % f"      - {evaluator}"}, {"billing": DATASET})
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
