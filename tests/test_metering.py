"""Every call counted and priced: by caller, per message, per evaluation, per test run, per run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from prompttracker.config.loader import load_project
from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import ModelPrice
from prompttracker.engine import RunReport, execute, plan
from prompttracker.messages import Metered, Usage
from prompttracker.pricing import Pricer
from prompttracker.store.store import Store
from tests.helpers import key_fixture
from tests.loopback import chat_completion
from tests.project_factory import write_project

URL = "https://api.openai.com/v1/chat/completions"
api_key = key_fixture("OPENAI_API_KEY", "sk-test-metering")

# Each caller on its own model, so that its price tells its calls apart.
PROMPT = """\
name: Billing support
versions:
  - version: 1
    status: active
    system_prompt: "You help Acme customers."
    user_prompt: "{{ opening_message }}"
    model_config: { provider: openai, api: chat_completions, model: acme-assistant }
tests:
  - name: judged
    dataset: billing
    evaluators:
      - { type: conversation_judge, config: { evaluation_prompt: "Is it polite?" } }
      - { type: keyword, config: { required_keywords: [refund] } }
"""
DATASET = """\
mode: conversational
rows:
  - name: charged twice
    variables: { opening_message: "I was charged twice." }
    interlocutor_simulation_prompt: You were charged twice and want a refund.
    max_turns: 2
"""
SETTINGS = """\
interlocutor: { provider: openai, api: chat_completions, model: acme-user }
judge: { provider: openai, api: chat_completions, model: acme-judge }
prices:
  acme-assistant: { input_per_mtok: 1.0, output_per_mtok: 2.0 }
  openai/acme-user: { input_per_mtok: 10.0, output_per_mtok: 20.0 }
  acme-judge: { input_per_mtok: 100.0, output_per_mtok: 200.0 }
"""

# Tokens each caller's answer reports: (prompt_tokens, completion_tokens).
TOKENS = {"acme-assistant": (100, 10), "acme-user": (50, 5), "acme-judge": (200, 20)}


def answer(request: httpx.Request) -> httpx.Response:
    """The assistant offers a refund, the simulated user replies, a judge gives 90."""
    sent = json.loads(request.content)
    model = sent["model"]
    content = {
        "acme-assistant": "I will refund the second charge.",
        "acme-user": "Thanks, when will I see it?",
        "acme-judge": '{"feedback": "Polite.", "score": 90}',
    }[model]
    payload = chat_completion(content, model=model)
    prompt, completion = TOKENS[model]
    payload["usage"] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    return httpx.Response(200, json=payload)


def tally(metered: Metered) -> tuple[int, int, int, float | None]:
    return (metered.calls, metered.input_tokens, metered.output_tokens, metered.cost_usd)


async def metered_run(root: Path, settings: str = SETTINGS) -> RunReport:
    project = load_project(write_project(root, {"billing": PROMPT}, {"billing": DATASET}, settings))
    with Store(root / "r.db") as store:
        return await execute(project, plan(project), store, mock=False, concurrency=1, options={})


async def test_every_call_is_counted_by_caller_per_message_evaluation_and_test_run(
    tmp_path: Path, httpx2_mock: Any, api_key: str
) -> None:
    route = httpx2_mock.post(URL).mock(side_effect=answer)
    report = await metered_run(tmp_path)

    # Two turns: assistant, simulated user (turn 2's message), assistant; then the
    # conversation judge scores each of the two assistant messages.
    sent = [json.loads(call.request.content)["model"] for call in route.calls]
    assert sent == ["acme-assistant", "acme-user", "acme-assistant", "acme-judge", "acme-judge"]
    (outcome,) = report.outcomes
    assert outcome.status == "passed"
    # Costs by hand: tokens × USD per million.
    assistant_cost = (2 * 100 * 1.0 + 2 * 10 * 2.0) / 1e6  # 0.00024
    user_cost = (50 * 10.0 + 5 * 20.0) / 1e6  # 0.0006
    judge_cost = (2 * 200 * 100.0 + 2 * 20 * 200.0) / 1e6  # 0.048
    assert {caller: tally(m) for caller, m in outcome.metered.items()} == {
        "assistant": (2, 200, 20, pytest.approx(assistant_cost)),
        "simulated_user": (1, 50, 5, pytest.approx(user_cost)),
        "judge": (2, 400, 40, pytest.approx(judge_cost)),
    }
    assert outcome.cost_usd == pytest.approx(assistant_cost + user_cost + judge_cost)
    assert outcome.total_tokens == 220 + 55 + 440
    assert report.metered == outcome.metered  # the run's tally: one test run

    messages = outcome.conversation.messages
    assert [(m.role, m.turn, m.usage) for m in messages] == [
        ("user", 1, None),  # the template's opening: no call wrote it
        ("assistant", 1, Usage(input_tokens=100, output_tokens=10)),
        ("user", 2, Usage(input_tokens=50, output_tokens=5)),
        ("assistant", 2, Usage(input_tokens=100, output_tokens=10)),
    ]
    assert messages[2].cost_usd == pytest.approx(user_cost)
    assert messages[1].cost_usd == pytest.approx((100 * 1.0 + 10 * 2.0) / 1e6)
    judge, keyword = outcome.evaluations
    assert judge.usage == Usage(input_tokens=400, output_tokens=40)
    assert judge.cost_usd == pytest.approx(judge_cost)
    assert keyword.usage is None and keyword.cost_usd is None  # it called nothing

    with sqlite3.connect(tmp_path / "r.db") as db:
        run_row = db.execute(
            "select input_tokens, output_tokens, cost_usd, usage from test_runs"
        ).fetchone()
        response = db.execute("select input_tokens, output_tokens, cost_usd from llm_responses")
        message_costs = db.execute("select role, cost_usd from messages order by position")
        evaluations = db.execute(
            "select input_tokens, output_tokens, cost_usd, config from evaluations "
            "order by position"
        ).fetchall()
        pricing = json.loads(db.execute("select pricing from runs").fetchone()[0])
        assert run_row[:2] == (650, 65)
        assert run_row[2] == pytest.approx(assistant_cost + user_cost + judge_cost)
        assert json.loads(run_row[3])["simulated_user"]["calls"] == 1
        (row,) = response.fetchall()
        assert row[:2] == (200, 20) and row[2] == pytest.approx(assistant_cost)
        assert [r[0] for r in message_costs.fetchall()] == [
            "user",
            "assistant",
            "user",
            "assistant",
        ]
    assert evaluations[0][:2] == (400, 40)
    assert evaluations[1][:3] == (None, None, None)
    # The effective config: defaults filled in, so the verdict can be reproduced.
    assert json.loads(evaluations[0][3]) == {
        "threshold_score": 70,
        "judge_model": None,
        "votes": 1,
        "max_spread": 30.0,
        "vote_temperature": 1.0,
        "evaluation_prompt": "Is it polite?",
    }
    assert json.loads(evaluations[1][3])["case_sensitive"] is False
    assert pricing["library"].startswith("genai-prices ")
    assert set(pricing["overrides"]) == {"acme-assistant", "openai/acme-user", "acme-judge"}

    with Store(tmp_path / "r.db") as store:  # and the values come back whole
        (loaded,) = store.load_outcomes(report.run.id)
    assert loaded.metered == outcome.metered
    assert loaded.evaluations == outcome.evaluations
    assert loaded.conversation.messages == messages


async def test_a_model_without_a_price_costs_unknown_not_zero(
    tmp_path: Path, httpx2_mock: Any, api_key: str
) -> None:
    httpx2_mock.post(URL).mock(side_effect=answer)
    unpriced_user = SETTINGS.replace(
        "  openai/acme-user: { input_per_mtok: 10.0, output_per_mtok: 20.0 }\n", ""
    )
    report = await metered_run(tmp_path, unpriced_user)

    (outcome,) = report.outcomes
    assert outcome.metered["simulated_user"].cost_usd is None
    assert outcome.metered["simulated_user"].unpriced_calls == 1
    assert outcome.metered["assistant"].cost_usd == pytest.approx(0.00024)
    assert outcome.cost_usd is None  # one unknown price makes the total unknown
    assert outcome.conversation.messages[2].cost_usd is None
    with sqlite3.connect(tmp_path / "r.db") as db:
        assert db.execute("select cost_usd from test_runs").fetchone() == (None,)


def test_prices_come_from_overrides_first_then_the_library() -> None:
    usage = Usage(input_tokens=1000, output_tokens=100)
    gpt = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini")
    library = calc_price(
        PriceUsage(input_tokens=1000, output_tokens=100), "gpt-4o-mini", provider_id="openai"
    )
    assert Pricer({}).cost(gpt, usage) == pytest.approx(float(library.total_price))
    assert Pricer({}).cost(gpt, usage) > 0
    # An override wins, by provider/model or by model.
    pinned = {"gpt-4o-mini": ModelPrice(input_per_mtok=3, output_per_mtok=7)}
    assert Pricer(pinned).cost(gpt, usage) == pytest.approx((1000 * 3 + 100 * 7) / 1e6)
    local = ModelConfig(provider="openai", api="chat_completions", model="smollm2-135m-local")
    assert Pricer({}).cost(local, usage) is None
    assert not Pricer({}).known(local)
    free = {"openai/smollm2-135m-local": ModelPrice(input_per_mtok=0, output_per_mtok=0)}
    assert Pricer(free).cost(local, usage) == 0.0
    # An assistant's own model is not in the request: unknown unless priced by its id.
    assistant = ModelConfig(provider="openai", api="assistants", assistant_id="asst_1")
    assert Pricer({}).cost(assistant, usage) is None


def test_a_mock_call_is_priced_as_its_model_would_cost() -> None:
    usage = Usage(input_tokens=1000, output_tokens=100)
    mock = ModelConfig(provider="mock", api="chat_completions", model="gpt-4o-mini")
    real = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini")
    assert Pricer({}).cost(mock, usage) == pytest.approx(Pricer({}).cost(real, usage))
    assert Pricer({}).cost(mock.model_copy(update={"model": "no-such-model-xyz"}), usage) is None
