"""`pt judges check`: Cohen's kappa, the strict golden files, and the check against a fake
judge answering at the OpenAI Chat Completions URL."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from textwrap import dedent

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.evaluators.judges import JUDGE_SCHEMA, JUDGE_SYSTEM_PROMPT
from prompttracker.golden import JudgesCheck, VerdictCheck
from prompttracker.llm import router
from prompttracker.llm.call_layer import CallLayer
from prompttracker.report.golden import judges_check_view
from prompttracker.stats import cohens_kappa
from tests.conftest import load_fixture
from tests.test_cli import completion

REPO = Path(__file__).resolve().parents[1]
CHAT_URL = "https://api.openai.com/v1/chat/completions"
KEY = "sk-test-golden-0123456789abcdef"
runner = CliRunner()


def pt(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


# --- Cohen's kappa ----------------------------------------------------------------------------


def table(yes_yes: int, yes_no: int, no_yes: int, no_no: int) -> list[tuple[str, str]]:
    """The pairs of a 2×2 agreement table (rater A's label first)."""
    return (
        [("yes", "yes")] * yes_yes
        + [("yes", "no")] * yes_no
        + [("no", "yes")] * no_yes
        + [("no", "no")] * no_no
    )


def test_kappa_of_perfect_agreement_is_1():
    assert cohens_kappa(table(3, 0, 0, 2)) == 1.0


def test_kappa_at_chance_level_is_0():
    # A and B each say yes half the time, independently: they agree as often as chance does.
    assert cohens_kappa(table(5, 5, 5, 5)) == 0.0


def test_kappa_of_perfect_disagreement_is_minus_1():
    assert cohens_kappa(table(0, 4, 4, 0)) == -1.0


def test_kappa_textbook_examples():
    # Wikipedia, "Cohen's kappa": 50 grant proposals, p_o = 0.7, p_e = 0.5, kappa = 0.4.
    assert cohens_kappa(table(20, 5, 10, 15)) == pytest.approx(0.4, abs=1e-12)
    # Same agreement (0.6), different marginals: kappa 0.1304 and 0.2593.
    assert cohens_kappa(table(45, 15, 25, 15)) == pytest.approx(0.1304, abs=1e-4)
    assert cohens_kappa(table(25, 35, 5, 35)) == pytest.approx(0.2593, abs=1e-4)


def test_kappa_when_both_raters_are_constant():
    # p_e == 1: the formula is 0/0; both said "yes" to everything, so they agree perfectly.
    assert cohens_kappa(table(6, 0, 0, 0)) == 1.0
    # Constant but opposite: no agreement, none expected either.
    assert cohens_kappa(table(0, 6, 0, 0)) == 0.0
    # Only one constant: whatever the other says, no agreement beyond chance.
    assert cohens_kappa(table(3, 0, 3, 0)) == 0.0


def test_kappa_over_booleans_and_no_pairs():
    assert cohens_kappa([(True, True), (False, False), (True, False)]) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="at least one pair"):
        cohens_kappa([])


# --- a golden set and a fake judge ------------------------------------------------------------


def golden_file(case: str, expected: str, evaluator: str | None = None) -> str:
    """One labelled transcript whose llm_judge instructions carry the ``case`` marker."""
    evaluator = evaluator or (
        f"{{ type: llm_judge, name: judge {case}, "
        f"config: {{ custom_instructions: 'Is it polite? ({case})' }} }}"
    )
    return dedent(
        f"""\
        name: transcript {case}
        system_prompt: "You are a support agent for Acme."
        conversation:
          - {{ role: user, content: "I was charged twice ({case})." }}
          - {{ role: assistant, content: "Sorry! I have refunded the duplicate charge." }}
        verdicts:
          - evaluator: {evaluator}
            expected: {expected}
        """
    )


def write_golden(root: Path, files: dict[str, str], settings: str | None = None) -> Path:
    folder = root / "golden"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    if settings is not None:
        (root / "prompttracker.yaml").write_text(dedent(settings))
    return folder


def judge_answers(httpx2_mock, scores: dict[str, object]):
    """Answer each judge request with the score of the case its prompt names (a string is
    sent as the answer itself); return the route and the request bodies."""
    bodies: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        prompt = body["messages"][-1]["content"]
        case = next(c for c in scores if f"({c})" in prompt)
        score = scores[case]
        content = (
            score if isinstance(score, str) else json.dumps({"feedback": "ok", "score": score})
        )
        return httpx.Response(200, json=completion(content, len(bodies)))

    route = httpx2_mock.post(CHAT_URL).mock(side_effect=answer)
    return route, bodies


# Ten verdicts, five of each label; the judge gets one of each label wrong:
# agreement 8/10 = 0.8; p_e = (5·5 + 5·5) / 100 = 0.5, so kappa = (0.8 - 0.5) / 0.5 = 0.6.
EXPECTED = {f"c{i}": "pass" if i < 5 else "fail" for i in range(10)}
SCORES = {f"c{i}": s for i, s in enumerate([90, 90, 90, 90, 40, 20, 20, 20, 20, 95])}


@pytest.fixture
def ten_verdicts(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    files = {f"{case}.yaml": golden_file(case, label) for case, label in EXPECTED.items()}
    return lambda settings=None: write_golden(tmp_path, files, settings)


@pytest.mark.parametrize(
    ("thresholds", "exit_code", "shortfalls"),
    [
        (None, 1, ["agreement 80.0% is below min_agreement 85.0% by 5.0 points",
                 "Cohen's kappa 0.600 is below min_kappa 0.700 by 0.100"]),
        ("judges_check: { min_agreement: 0.8, min_kappa: 0.6 }", 0, []),
        ("judges_check: { min_agreement: 0.8, min_kappa: 0.61 }", 1,
         ["Cohen's kappa 0.600 is below min_kappa 0.610 by 0.010"]),
        ("judges_check: { min_agreement: 0.81, min_kappa: 0.6 }", 1,
         ["agreement 80.0% is below min_agreement 81.0% by 1.0 points"]),
    ],
)  # fmt: skip
def test_agreement_and_kappa_against_the_thresholds(
    ten_verdicts, httpx2_mock, thresholds, exit_code, shortfalls
):
    ten_verdicts(thresholds)
    route, _ = judge_answers(httpx2_mock, SCORES)
    result = pt("judges", "check")
    assert result.exit_code == exit_code, result.output
    assert route.call_count == 10
    out = " ".join(result.output.split())
    assert "8/10 agree (80.0%) · Cohen's kappa 0.600 · 0 evaluator errors" in out
    for shortfall in shortfalls:
        assert shortfall in out
    assert ("below" in out) == bool(shortfalls)
    if not shortfalls:
        assert "✓ meets min_agreement 80.0% and min_kappa 0.600" in out


def test_the_table_has_every_verdict(ten_verdicts, httpx2_mock):
    ten_verdicts()
    judge_answers(httpx2_mock, SCORES)
    lines = pt("judges", "check").output.splitlines()
    row = {line.split()[0]: line.split()[1:] for line in lines if re.match(r"^ c\d\.yaml ", line)}
    assert row["c0.yaml"] == ["judge", "c0", "pass", "pass", "90", "✓"]
    assert row["c4.yaml"] == ["judge", "c4", "pass", "fail", "40", "✗"]
    assert row["c9.yaml"] == ["judge", "c9", "fail", "pass", "95", "✗"]
    assert len(row) == 10
    out = "\n".join(lines)
    assert "✗ c4.yaml · judge c4: expected pass, judged fail 40 — ok" in out


def test_json_document(ten_verdicts, httpx2_mock):
    ten_verdicts()
    judge_answers(httpx2_mock, SCORES)
    result = pt("judges", "check", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["folder"] == "golden"
    assert document["judge"] == "openai/chat_completions gpt-4o-mini"
    assert document["mock"] is False
    assert (document["agreed"], document["agreement"], document["kappa"]) == (8, 0.8, 0.6)
    assert (document["errors"], document["passed"]) == (0, False)
    assert (document["min_agreement"], document["min_kappa"]) == (0.85, 0.7)
    assert len(document["shortfalls"]) == 2
    assert [v["file"] for v in document["verdicts"]] == [f"c{i}.yaml" for i in range(10)]
    assert document["verdicts"][4] == {
        "file": "c4.yaml",
        "transcript": "transcript c4",
        "evaluator": "judge c4",
        "type": "llm_judge",
        "expected": "pass",
        "judged": "fail",
        "score": 40.0,
        "feedback": "ok",
        "error": None,
        "unanimous": None,
        "agree": False,
    }


def test_the_requests_sent_through_one_call_layer(tmp_path, monkeypatch, httpx2_mock):
    """The judge setting at temperature 0 with structured output; the transcript with its
    turns; a conversation judge once per assistant message; one call layer for all."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    layers: list[CallLayer] = []
    opened = CallLayer.__init__

    def counted(self, *args, **kwargs):
        layers.append(self)
        opened(self, *args, **kwargs)

    monkeypatch.setattr(CallLayer, "__init__", counted)
    text = """\
        name: two turns
        system_prompt: "You are a support agent for Acme."
        conversation:
          - { role: user, content: "I was charged twice." }
          - { role: assistant, content: "Sorry! Which order?" }
          - { role: user, content: "Order 12345." }
          - { role: assistant, content: "Refunded: 5 business days." }
        verdicts:
          - evaluator: { type: llm_judge, config: { custom_instructions: "Polite? (m)" } }
            expected: pass
          - evaluator:
              type: conversation_judge
              config: { evaluation_prompt: "Concrete? (c)", threshold_score: 60 }
            expected: pass
        """
    write_golden(
        tmp_path,
        {"t.yaml": dedent(text)},
        settings="judge: { provider: openai, api: chat_completions, model: gpt-4.1-mini }\n",
    )
    route, bodies = judge_answers(httpx2_mock, {"m": 80, "c": 70})
    result = pt("judges", "check")
    assert result.exit_code == 0, result.output
    assert len(layers) == 1
    assert route.call_count == 3
    for request, body in zip(route.calls, bodies, strict=True):
        assert request.request.headers["authorization"] == f"Bearer {KEY}"
        assert body["model"] == "gpt-4.1-mini"
        assert body["temperature"] == 0
        assert body["response_format"]["json_schema"]["name"] == JUDGE_SCHEMA.name
        assert body["messages"][0] == {"role": "system", "content": JUDGE_SYSTEM_PROMPT}
    prompts = sorted(body["messages"][-1]["content"] for body in bodies)
    judged = [p for p in prompts if "Polite? (m)" in p]
    assert len(judged) == 1
    assert (
        "SYSTEM PROMPT OF THE ASSISTANT UNDER TEST:\nYou are a support agent for Acme."
        in (judged[0])
    )
    assert (
        "USER: I was charged twice.\n\nASSISTANT: Sorry! Which order?\n\nUSER: Order 12345."
        "\n\nASSISTANT: Refunded: 5 business days."
    ) in judged[0]
    assert (
        "RESPONSE TO EVALUATE (the assistant's final message):\nRefunded: 5 business" in (judged[0])
    )
    per_message = [p for p in prompts if p.startswith("Concrete? (c)")]
    assert [re.search(r"assistant message \d of 2, turn \d", p)[0] for p in per_message] == [
        "assistant message 1 of 2, turn 1",
        "assistant message 2 of 2, turn 2",
    ]
    assert "2/2 agree (100.0%) · Cohen's kappa 1.000" in " ".join(result.output.split())
    assert "Every verdict expects pass" in " ".join(result.output.split())


def test_an_inconclusive_verdict_is_a_listed_disagreement(tmp_path, monkeypatch, httpx2_mock):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    labels = {"e0": "pass", "e1": "pass", "e2": "fail", "e3": "fail"}
    write_golden(tmp_path, {f"{c}.yaml": golden_file(c, label) for c, label in labels.items()})
    judge_answers(httpx2_mock, {"e0": 90, "e1": "I would rather not say.", "e2": 10, "e3": 30})
    result = pt("judges", "check", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    undecided = document["verdicts"][1]
    assert (undecided["judged"], undecided["score"], undecided["agree"]) == (
        "inconclusive",
        None,
        False,
    )
    assert undecided["error"] == "judge answer is not JSON: 'I would rather not say.'"
    # (pass, fail) stands in for the abstention: p_o = 3/4, p_e = (2·1 + 2·3) / 16, kappa = 0.5
    assert (document["agreement"], document["kappa"]) == (0.75, 0.5)
    assert (document["errors"], document["inconclusive"]) == (0, 1)

    out = " ".join(pt("judges", "check").output.split())
    assert "3/4 agree (75.0%) · Cohen's kappa 0.500 · 0 evaluator errors · 1 inconclusive" in out
    assert (
        "✗ e1.yaml · judge e1: expected pass, judged inconclusive — judge answer is not JSON" in out
    )


# --- bad input: exit 2, every problem at once, nothing sent -----------------------------------


@pytest.fixture
def judge_calls(monkeypatch, httpx2_mock) -> list[dict]:
    """Every judge call attempted: none, in the tests that use this (and no route answers)."""
    calls: list[dict] = []

    async def complete(*args, **kwargs):
        calls.append(kwargs)
        raise AssertionError("the judge was called")

    monkeypatch.setattr(router, "complete", complete)
    return calls


UNKNOWN_KEY = golden_file("a", "pass").replace("verdicts:", "notes: typo\nverdicts:")
BAD_ROLE_AND_CONFIG = golden_file(
    "b", "pass", "{ type: llm_judge, config: { threshold_score: 150 } }"
).replace("role: assistant", "role: system")
NOT_A_JUDGE = golden_file("c", "pass", "{ type: keyword, config: { required_keywords: [x] } }")
MISSPELLED_CONFIG = golden_file(
    "d", "fail", "{ type: conversation_judge, config: { evaluation_promt: x } }"
)


def test_every_problem_of_every_file_with_its_line(tmp_path, monkeypatch, judge_calls):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    write_golden(
        tmp_path,
        {
            "a.yaml": UNKNOWN_KEY,
            "b.yaml": BAD_ROLE_AND_CONFIG,
            "c.yaml": NOT_A_JUDGE,
            "d.yaml": MISSPELLED_CONFIG,
            "fine.yaml": golden_file("f", "pass"),
        },
    )
    result = pt("judges", "check")
    assert result.exit_code == 2
    assert judge_calls == []
    out = result.output
    assert "Error: 5 problem(s) in the golden set:" in out
    assert "golden/a.yaml: line 6: notes: unknown field; expected one of: conversation, " in out
    assert (
        "golden/b.yaml: line 5: conversation[1].role: Input should be 'user' or 'assistant'" in out
    )
    assert (
        "golden/b.yaml: line 7: verdicts[0].evaluator (llm_judge): config.threshold_score: "
        "Input should be less than or equal to 100" in out
    )
    assert (
        "golden/c.yaml: line 7: verdicts[0].evaluator (keyword): 'keyword' is not a judge: a "
        "golden set checks the LLM judges (llm_judge, conversation_judge)" in out
    )
    assert (
        "golden/d.yaml: line 7: verdicts[0].evaluator (conversation_judge): "
        "config.evaluation_promt: unknown config key; did you mean 'evaluation_prompt'?" in out
    )
    assert "fine.yaml" not in out
    assert "Hint: fix the files above, then run `pt judges check` again" in out


TWO_TURNS = dedent(
    """\
    name: x
    conversation:
      - { role: user, content: "Hi" }
      - { role: assistant, content: "Hello" }
    verdicts:
      - evaluator: { type: llm_judge, name: a, turn: 2 }
        expected: maybe
      - evaluator: { type: conversation_judge, name: a, role: user }
        expected: fail
    """
)


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            TWO_TURNS,
            [
                "line 7: verdicts[0].expected: Input should be 'pass' or 'fail'",
                "line 6: verdicts[0].evaluator (llm_judge): turn 2 is not in the conversation, "
                "which has 1 turn(s)",
                "line 8: verdicts[1].evaluator (conversation_judge): role: user — "
                "conversation_judge reads the assistant's messages",
                "line 8: verdicts[1].evaluator (conversation_judge): 'a' has a verdict already "
                "(verdicts[0])",
            ],
        ),
        (
            "name: x\nconversation:\n  - { role: assistant, content: Hi }\n"
            "  - { role: user, content: Hello }\n"
            "verdicts:\n  - { evaluator: { type: llm_juge }, expected: pass }\n",
            [
                "line 3: conversation[0].role: expected user here: the user opens and the "
                "roles alternate",
                "line 6: verdicts[0].evaluator (llm_juge): unknown evaluator type 'llm_juge'; "
                "did you mean 'llm_judge'?",
            ],
        ),
        (
            "name: x\nconversation:\n  - { role: user, content: Hi }\n"
            "verdicts:\n  - { evaluator: { type: llm_judge }, expected: pass }\n",
            ["line 2: conversation: has no assistant message to judge"],
        ),
        (
            "name: x\nconversation: []\nverdicts: []\n",
            [
                "line 2: conversation: List should have at least 1 item",
                "line 3: verdicts: List should have at least 1 item",
            ],
        ),
        ("- just a list\n", ["golden/t.yaml: expected a mapping at the top level, found a list"]),
        ("name: [unclosed\n", ["golden/t.yaml: line 2, column 1: invalid YAML"]),
    ],
)
def test_golden_file_problems(tmp_path, judge_calls, text, problems):
    write_golden(tmp_path, {"t.yaml": text})
    result = pt("judges", "check")
    assert result.exit_code == 2
    assert judge_calls == []
    out = " ".join(result.output.split())
    assert f"Error: {len(problems)} problem(s) in the golden set:" in out
    for problem in problems:
        assert problem in out


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            "judges_check:\n  min_agreement: 1.5\n",
            "prompttracker.yaml: line 2: judges_check.min_agreement: Input should be less than "
            "or equal to 1",
        ),
        (
            "judges_check:\n  min_kappa: -2\n",
            "prompttracker.yaml: line 2: judges_check.min_kappa: Input should be greater than "
            "or equal to -1",
        ),
        (
            "judges_check:\n  min_kapa: 0.5\n",
            "prompttracker.yaml: line 2: judges_check.min_kapa: unknown field; did you mean "
            "'min_kappa'?",
        ),
        (
            "judges_check:\n  min_agreement: yes\n",
            "prompttracker.yaml: line 2: judges_check.min_agreement: expected a number, found "
            "the YAML boolean true",
        ),
    ],
)
def test_bad_thresholds_are_bad_input(tmp_path, settings, problem):
    write_golden(tmp_path, {"t.yaml": golden_file("t", "pass")}, settings)
    result = pt("judges", "check", "--mock")
    assert result.exit_code == 2
    assert problem in " ".join(result.output.split())


def test_a_missing_or_empty_folder_is_bad_input(tmp_path):
    result = pt("judges", "check")
    assert result.exit_code == 2
    assert "golden/: folder not found" in result.output
    (tmp_path / "empty").mkdir()
    result = pt("judges", "check", "empty", "--mock")
    assert result.exit_code == 2
    assert "empty/: holds no .yaml files" in result.output


def test_bad_input_comes_before_the_missing_key(tmp_path):
    write_golden(tmp_path, {"t.yaml": NOT_A_JUDGE})
    result = pt("judges", "check")
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" not in result.output


# --- keys ---------------------------------------------------------------------------------------


def test_a_missing_key_stops_before_any_call(tmp_path, judge_calls):
    write_golden(tmp_path, {"t.yaml": golden_file("t", "pass")})
    result = pt("judges", "check")
    assert result.exit_code == 3
    assert judge_calls == []
    out = " ".join(result.output.split())
    assert (
        "Error: 1 API key(s) missing: OPENAI_API_KEY (for openai: the judge setting (LLM judges))"
        in out
    )
    assert "run with --mock" in out and "`judge:`" in out


def test_a_refused_key_exits_3(tmp_path, monkeypatch, httpx2_mock):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    write_golden(tmp_path, {"t.yaml": golden_file("t", "pass")})
    httpx2_mock.post(CHAT_URL).respond(401, json=load_fixture("openai/error_invalid_api_key.json"))
    result = pt("judges", "check")
    assert result.exit_code == 3
    out = " ".join(result.output.split())
    assert "Error: the judge's API key was refused (openai answered HTTP 401" in out
    assert "Hint: check OPENAI_API_KEY" in out
    assert KEY not in result.output


# --- the shipped golden set, and the table at 80 columns ----------------------------------------


def test_the_shipped_golden_set_runs_under_mock(monkeypatch):
    """Its numbers under --mock are arbitrary (the mock's scores are a hash): only that it
    loads, calls, and prints every verdict is checked, not its exit code."""
    monkeypatch.setenv("COLUMNS", "80")
    result = pt("judges", "check", "-p", str(REPO), "--mock")
    assert result.exit_code in (0, 1), result.output
    out = result.output
    assert "MOCK judge: its scores are a hash of the prompt" in out
    assert "Verdicts (expected: the person's" in out
    shipped = sorted(p.name for p in (REPO / "golden").glob("*.yaml"))
    assert 6 <= len(shipped) <= 8
    for name in shipped:
        assert name in out
    assert re.search(r"\d+/\d+ agree \(\d+\.\d%\) · Cohen's kappa -?\d\.\d{3}", out)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_the_shipped_golden_set_is_labelled_both_ways():
    document = json.loads(pt("judges", "check", "-p", str(REPO), "--mock", "--json").stdout)
    labels = [v["expected"] for v in document["verdicts"]]
    assert {"pass", "fail"} == set(labels)
    assert min(labels.count("pass"), labels.count("fail")) >= 4


LONG_FILE = "billing_unknown_charge_brushed_off_politely.yaml"
LONG_EVALUATOR = "refunds a double charge politely even when the customer writes in capitals"


def check_with(verdicts: list[VerdictCheck]) -> JudgesCheck:
    return JudgesCheck(
        folder="golden",
        judge="openai/chat_completions gpt-4o-mini",
        mock=False,
        min_agreement=0.85,
        min_kappa=0.7,
        verdicts=tuple(verdicts),
    )


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_table_keeps_every_name_at_any_width(width):
    verdicts = [
        VerdictCheck(
            file=LONG_FILE,
            transcript="t",
            evaluator=LONG_EVALUATOR,
            type="llm_judge",
            expected="pass",
            judged="fail",
            score=42.5,
        ),
        VerdictCheck(
            file="short.yaml",
            transcript="s",
            evaluator="stays polite",
            type="llm_judge",
            expected="fail",
            judged="error",
            error="ValueError: no score",
        ),
    ]
    console = Console(record=True, width=width)
    console.print(judges_check_view(check_with(verdicts)))
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    table = text.split("Disagreements")[0]
    assert LONG_FILE in table
    for word in LONG_EVALUATOR.split():
        assert re.search(rf"(^|\s){word}(\s|$)", table, re.MULTILINE), word
    assert re.search(r"pass\s+fail 42\.5\s+✗", table)
    assert re.search(r"fail\s+error\s+✗", table)
    assert "1/2 agree" not in text and "0/2 agree (0.0%)" in text
    assert "1 evaluator error" in text


def test_with_votes_it_reports_how_stable_the_votes_are(tmp_path, monkeypatch, httpx2_mock):
    """Votes per case come from a list, one per call: v0 unanimous, v1 split 2–1 (still a
    majority pass), v2 unanimous fail."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    voting = (
        "{{ type: llm_judge, name: judge {c}, config: {{ votes: 3, max_spread: 100, "
        "custom_instructions: 'Polite? ({c})' }} }}"
    )
    labels = {"v0": "pass", "v1": "pass", "v2": "fail"}
    write_golden(
        tmp_path,
        {f"{c}.yaml": golden_file(c, label, voting.format(c=c)) for c, label in labels.items()},
    )
    votes = {
        case: itertools.cycle(scores)
        for case, scores in {"v0": [90, 85, 95], "v1": [80, 40, 75], "v2": [10, 20, 15]}.items()
    }

    def answer(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        case = next(c for c in votes if f"({c})" in prompt)
        content = json.dumps({"feedback": "ok", "score": next(votes[case])})
        return httpx.Response(200, json=completion(content, 1))

    route = httpx2_mock.post(CHAT_URL).mock(side_effect=answer)
    result = pt("judges", "check", "--json")

    document = json.loads(result.stdout)
    assert route.call_count == 9
    assert [v["unanimous"] for v in document["verdicts"]] == [True, False, True]
    assert [v["judged"] for v in document["verdicts"]] == ["pass", "pass", "fail"]
    assert document["stability"] == pytest.approx(2 / 3)
    assert result.exit_code == 0  # all three agree with the person
    out = " ".join(pt("judges", "check").output.split())
    assert "votes unanimous on 2/3 (66.7%)" in out
