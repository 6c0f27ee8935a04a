"""Judge answers that are not the JSON asked for: repaired when they hold a score (and said so),
reported as cut at the token cap when they were."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from prompttracker.config.models import EvaluatorSpec, ModelConfig
from prompttracker.evaluators import registry
from prompttracker.evaluators.judges import repair_judgement
from tests.conftest import load_fixture
from tests.helpers import key_fixture
from tests.test_evaluators_judges import context

URL = "https://api.openai.com/v1/chat/completions"
api_key = key_fixture("OPENAI_API_KEY", "sk-test-judge-SECRET")
JUDGE = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini", max_tokens=40)


@pytest.mark.parametrize(
    ("answer", "score", "feedback", "how"),
    [
        (
            'Sure! Here is my evaluation: {"feedback": "Polite and clear.", "score": 88} Thanks.',
            88,
            "Polite and clear.",
            "took the JSON object out of the prose around it",
        ),
        (
            'My verdict:\n```json\n{"feedback": "Too long.", "score": 41}\n```\n',
            41,
            "Too long.",
            "took the JSON object out of the prose around it",
        ),
        (
            "The reply apologises and gives a date.\nScore: 85/100",
            85,
            "The reply apologises and gives a date.",
            "read 'Score: 85/100' from a prose answer",
        ),
        ("**Score**: 7 — it ignored the question.", 7, "it ignored the question.", None),
        ("score = 250", 100, "", None),  # clamped like any score
    ],
)
def test_prose_answers_with_a_score_are_repaired(
    answer: str, score: float, feedback: str, how: str | None
) -> None:
    got_score, got_feedback, got_how = repair_judgement(answer)
    assert (got_score, got_feedback) == (score, feedback)
    if how:
        assert got_how == how


@pytest.mark.parametrize("answer", ["Looks fine to me.", '{"feedback": "no score here"}', ""])
def test_an_answer_without_a_score_cannot_be_repaired(answer: str) -> None:
    with pytest.raises(ValueError, match="holds no score"):
        repair_judgement(answer)


def completion(content: str, finish: str = "stop") -> httpx.Response:
    answer = load_fixture("openai/chat_completion.json")
    answer["choices"][0]["message"]["content"] = content
    answer["choices"][0]["finish_reason"] = finish
    return httpx.Response(200, json=answer)


async def judge_once(httpx2_mock: Any, answer: httpx.Response) -> Any:
    httpx2_mock.post(URL).mock(return_value=answer)
    spec = EvaluatorSpec(type="llm_judge", config={"threshold_score": 70})
    (result,) = await registry.run_evaluators([spec], context("Refund?", "Done.", judge=JUDGE))
    return result


async def test_a_prose_judge_answer_is_scored_and_says_it_was_repaired(
    httpx2_mock: Any, api_key: str
) -> None:
    result = await judge_once(httpx2_mock, completion("Helpful and brief.\nScore: 90"))
    assert result.error is None and result.passed is True and result.score == 90
    assert result.feedback == "(repaired: read 'Score: 90' from a prose answer) Helpful and brief."
    assert result.details["repaired"] == "read 'Score: 90' from a prose answer"
    assert result.details["raw_response"] == "Helpful and brief.\nScore: 90"


async def test_a_judge_answer_cut_at_the_token_cap_says_so(httpx2_mock: Any, api_key: str) -> None:
    cut = json.dumps({"feedback": "The assistant explains the refund policy and"})[:-2]
    result = await judge_once(httpx2_mock, completion(cut, finish="length"))
    assert (result.status, result.passed, result.error) == ("inconclusive", False, None)
    why = result.inconclusive or ""
    assert "judge answer was cut at the token cap before its JSON was complete" in why
    assert "max_tokens 40" in why and "raise the judge setting's max_tokens" in why


async def test_an_unreadable_answer_that_was_not_cut_keeps_the_plain_reason(
    httpx2_mock: Any, api_key: str
) -> None:
    result = await judge_once(httpx2_mock, completion("I would rather not say."))
    assert result.status == "inconclusive"
    assert result.inconclusive == "judge answer is not JSON: 'I would rather not say.'"


async def test_conversation_judge_marks_each_repaired_message(
    httpx2_mock: Any, api_key: str
) -> None:
    httpx2_mock.post(URL).mock(
        side_effect=[completion('{"feedback": "Fine.", "score": 80}'), completion("Score: 60")]
    )
    spec = EvaluatorSpec(type="conversation_judge", config={"threshold_score": 50})
    ctx = context("Hi", "Hello!", "Refund?", "Done.", judge=JUDGE)
    (result,) = await registry.run_evaluators([spec], ctx)
    assert result.score == 70 and result.passed is True
    assert [m["repaired"] for m in result.details["message_scores"]] == [
        None,
        "read 'Score: 60' from a prose answer",
    ]
    assert "Turn 2: 60 — (repaired: read 'Score: 60' from a prose answer)" in result.feedback


def test_a_turn_cut_at_the_cap_is_marked_truncated_on_every_route() -> None:
    from prompttracker.llm.openai_chat_completions import turn_from_completions
    from prompttracker.messages import AssistantTurn

    cut = load_fixture("openai/chat_completion.json")
    cut["choices"][0]["finish_reason"] = "length"
    assert turn_from_completions([cut], [], 1.0).truncated is True
    whole = load_fixture("openai/chat_completion.json")
    assert turn_from_completions([whole], [], 1.0).truncated is False
    for reason in ("max_tokens", "MAX_TOKENS", "max_output_tokens"):  # Anthropic, Gemini, Responses
        stops = {"stop_reasons": [{"stop_reason": reason}]}
        assert AssistantTurn(content="x", extras=stops).truncated is True
    assert (
        AssistantTurn(content="x", extras={"stop_reasons": [{"stop_reason": "refusal"}]}).truncated
        is False
    )


async def test_an_incomplete_response_keeps_its_text_and_says_why(
    httpx2_mock: Any, api_key: str
) -> None:
    from prompttracker.llm import router
    from prompttracker.llm.base import SessionOptions
    from prompttracker.llm.call_layer import CallLayer
    from tests.helpers import no_retry_settings

    answer = load_fixture("openai/responses_text.json")
    answer["status"] = "incomplete"
    answer["incomplete_details"] = {"reason": "max_output_tokens"}
    httpx2_mock.post("https://api.openai.com/v1/responses").respond(200, json=answer)
    config = ModelConfig(provider="openai", api="responses", model="gpt-4o-mini")
    async with CallLayer(no_retry_settings("openai")) as calls:
        session = router.open_session(config, calls.settings, SessionOptions(calls=calls))
        turn = await session.send("Hi")
    assert turn.truncated is True and turn.content
    assert turn.extras["stop_reasons"] == [
        {"response_id": answer["id"], "stop_reason": "max_output_tokens"}
    ]
