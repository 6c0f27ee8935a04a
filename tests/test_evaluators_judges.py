"""The LLM judges, against a fake ``router.complete`` and against the offline mock provider."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from prompttracker.config.models import DatasetRow, EvaluatorSpec, ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.evaluators import registry
from prompttracker.evaluators.base import EvaluationContext
from prompttracker.evaluators.judges import JUDGE_SCHEMA, format_transcript, parse_judgement
from prompttracker.llm import router
from prompttracker.llm.base import JsonSchema
from prompttracker.messages import AssistantTurn, ConversationResult, Message, ToolCall
from prompttracker.results import EvaluationResult

JUDGE = ModelConfig(provider="openai", api="chat_completions", model="gpt-4o-mini", temperature=1)
SYSTEM_PROMPT = "You are a billing agent for Acme."


def context(
    *contents: str, judge: ModelConfig = JUDGE, tool_calls: Sequence[ToolCall] = ()
) -> EvaluationContext:
    """A conversation alternating user / assistant messages, starting with the user."""
    messages = tuple(
        Message(
            role="user" if i % 2 == 0 else "assistant",
            content=text,
            turn=i // 2 + 1,
            tool_calls=tuple(tool_calls) if i % 2 else (),
        )
        for i, text in enumerate(contents)
    )
    return EvaluationContext(
        conversation=ConversationResult(
            messages=messages,
            turn_count=(len(messages) + 1) // 2,
            completed=True,
            stop_reason="max_turns",
        ),
        row=DatasetRow(name="row-1"),
        system_prompt=SYSTEM_PROMPT,
        model_config=ModelConfig(provider="openai", api="responses", model="gpt-4o"),
        judge_config=judge,
        settings=Settings(),
    )


@dataclass
class FakeJudge:
    """Stands in for ``router.complete``: records each call, answers from a queue."""

    answers: list[str]
    calls: list[dict[str, Any]]

    async def __call__(
        self,
        config: ModelConfig,
        settings: Settings,
        *,
        system_prompt: str,
        messages: Sequence[Message],
        response_format: JsonSchema | None = None,
        calls: Any = None,
        caller: str = "assistant",
        sample: int = 0,
    ) -> AssistantTurn:
        self.calls.append(
            {
                "config": config,
                "settings": settings,
                "system_prompt": system_prompt,
                "messages": list(messages),
                "response_format": response_format,
                "caller": caller,
                "sample": sample,
            }
        )
        return AssistantTurn(content=self.answers.pop(0))

    @property
    def prompts(self) -> list[str]:
        return [call["messages"][-1].content for call in self.calls]


@pytest.fixture
def fake_judge(monkeypatch: pytest.MonkeyPatch) -> FakeJudge:
    fake = FakeJudge(answers=[], calls=[])
    monkeypatch.setattr(router, "complete", fake)
    return fake


def answer(score: Any, feedback: str = "Because.") -> str:
    return json.dumps({"feedback": feedback, "score": score})


async def evaluate(type_: str, config: dict[str, Any], ctx: EvaluationContext) -> EvaluationResult:
    spec = EvaluatorSpec(type=type_, config=config)
    assert registry.config_problems(spec) == []
    return await registry.build(spec).evaluate(ctx)


# llm_judge


async def test_llm_judge_scores_with_the_judges_answer(fake_judge: FakeJudge) -> None:
    fake_judge.answers.append(answer(55, "Refund offered but no apology."))
    ctx = context("I was charged twice!", "We have refunded the second charge.")
    result = await evaluate("llm_judge", {"custom_instructions": "Did it apologise?"}, ctx)

    assert (result.score, result.passed) == (55, False)
    assert result.feedback == "Refund offered but no apology."
    assert result.error is None
    assert result.details["judge_model"] == "openai/chat_completions gpt-4o-mini"
    assert result.details["raw_response"] == answer(55, "Refund offered but no apology.")
    assert result.details["threshold_score"] == 70
    assert result.details["judge_prompt"] == fake_judge.prompts[0]


@pytest.mark.parametrize(("score", "passed"), [(69, False), (70, True), (100, True), (0, False)])
async def test_llm_judge_passes_at_the_default_threshold_of_70(
    fake_judge: FakeJudge, score: int, passed: bool
) -> None:
    fake_judge.answers.append(answer(score))
    result = await evaluate("llm_judge", {}, context("q", "a"))
    assert (result.score, result.passed) == (score, passed)


async def test_llm_judge_custom_threshold(fake_judge: FakeJudge) -> None:
    fake_judge.answers.append(answer(55))
    result = await evaluate("llm_judge", {"threshold_score": 50}, context("q", "a"))
    assert result.passed is True


async def test_llm_judge_prompt_holds_instructions_transcript_and_response(
    fake_judge: FakeJudge,
) -> None:
    fake_judge.answers.append(answer(90))
    ctx = context("I was charged twice!", "Let me check.", "Order 12345.", "Refund issued.")
    await evaluate("llm_judge", {"custom_instructions": "Check the refund is issued."}, ctx)

    prompt = fake_judge.prompts[0]
    assert "EVALUATION INSTRUCTIONS:\nCheck the refund is issued." in prompt
    assert SYSTEM_PROMPT in prompt
    assert "USER: I was charged twice!\n\nASSISTANT: Let me check.\n\nUSER: Order 12345." in prompt
    assert "RESPONSE TO EVALUATE (the assistant's final message):\nRefund issued." in prompt


async def test_llm_judge_calls_through_the_router_at_temperature_0_with_a_schema(
    fake_judge: FakeJudge,
) -> None:
    fake_judge.answers.append(answer(90))
    ctx = context("q", "a")
    await evaluate("llm_judge", {}, ctx)

    [call] = fake_judge.calls
    assert call["config"].temperature == 0
    assert call["config"].model == "gpt-4o-mini"
    assert call["config"].provider == "openai"
    assert call["settings"] is ctx.settings
    assert call["response_format"] == JUDGE_SCHEMA
    assert call["system_prompt"]
    [message] = call["messages"]
    assert (message.role, message.turn) == ("user", 1)


async def test_llm_judge_model_override_keeps_the_judge_provider(fake_judge: FakeJudge) -> None:
    fake_judge.answers.append(answer(90))
    result = await evaluate("llm_judge", {"judge_model": "gpt-4.1"}, context("q", "a"))
    config = fake_judge.calls[0]["config"]
    assert (config.provider, config.api, config.model) == ("openai", "chat_completions", "gpt-4.1")
    assert result.details["judge_model"] == "openai/chat_completions gpt-4.1"


async def test_llm_judge_without_an_assistant_message_fails_without_calling(
    fake_judge: FakeJudge,
) -> None:
    result = await evaluate("llm_judge", {}, context("hello?"))
    assert (result.score, result.passed) == (0, False)
    assert "no assistant response" in result.feedback
    assert fake_judge.calls == []


async def test_unreadable_judge_answer_is_inconclusive_with_the_raw_answer(
    fake_judge: FakeJudge,
) -> None:
    fake_judge.answers.append("I think it deserves 80.")
    specs = [EvaluatorSpec(type="llm_judge", name="polite")]
    [result] = await registry.run_evaluators(specs, context("q", "a"))
    assert (result.status, result.passed, result.error) == ("inconclusive", False, None)
    assert result.evaluator == "polite"
    assert result.inconclusive == "judge answer is not JSON: 'I think it deserves 80.'"
    assert result.feedback == f"Inconclusive: {result.inconclusive}"
    assert result.details["raw_response"] == "I think it deserves 80."


# parsing the judge's answer


@pytest.mark.parametrize(
    "raw",
    [
        '{"feedback": "ok"}',
        '{"feedback": "ok", "score": "eighty"}',
        '{"feedback": "ok", "score": true}',
        '{"feedback": "ok", "score": null}',
        '{"feedback": "ok", "score": NaN}',
        "[80]",
        "",
    ],
)
def test_parse_judgement_rejects_answers_without_a_numeric_score(raw: str) -> None:
    with pytest.raises(ValueError, match="judge answer"):
        parse_judgement(raw)


def test_parse_judgement_accepts_fenced_json_and_clamps() -> None:
    assert parse_judgement('```json\n{"feedback": "fine", "score": 85}\n```') == (85, "fine")
    assert parse_judgement('{"feedback": "wow", "score": 140}') == (100, "wow")
    assert parse_judgement('{"score": 72.5}') == (72.5, "")


def test_judge_schema_is_strict_mode_ready() -> None:
    schema = JUDGE_SCHEMA.schema
    assert JUDGE_SCHEMA.name == "evaluation"
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == sorted(schema["properties"]) == ["feedback", "score"]
    assert schema["properties"]["score"]["type"] == "integer"
    assert schema["properties"]["feedback"]["type"] == "string"


def test_transcript_shows_tool_calls() -> None:
    call = ToolCall(id="c1", name="lookup_order", arguments={"id": 12345}, output={"ok": True})
    ctx = context("Where is my order?", "Found it.", tool_calls=[call])
    assert format_transcript(ctx.conversation.messages) == (
        "USER: Where is my order?\n\nASSISTANT: Found it.\n"
        '  [function call] lookup_order({"id": 12345}) -> {"ok": true}'
    )


def test_judge_config_is_validated_at_load_time() -> None:
    assert registry.config_problems(
        EvaluatorSpec(type="llm_judge", config={"threshold_score": 101})
    )
    assert registry.config_problems(
        EvaluatorSpec(type="conversation_judge", config={"custom_instructions": "x"})
    ) == [
        "config.custom_instructions: unknown config key; expected one of: evaluation_prompt, "
        "judge_model, max_spread, threshold_score, vote_temperature, votes"
    ]
    assert registry.config_problems(
        EvaluatorSpec(type="llm_judge", config={"evaluation_prompt": "x"})
    ) == [
        "config.evaluation_prompt: unknown config key; expected one of: custom_instructions, "
        "judge_model, max_spread, threshold_score, vote_temperature, votes"
    ]


# conversation_judge


async def test_conversation_judge_scores_each_assistant_message_and_averages(
    fake_judge: FakeJudge,
) -> None:
    fake_judge.answers += [answer(80, "Good opening."), answer(55, "Forgot the apology.")]
    ctx = context("Charged twice!", "Let me check.", "Order 12345.", "Refunded.")
    result = await evaluate("conversation_judge", {"evaluation_prompt": "Is it kind?"}, ctx)

    assert len(fake_judge.calls) == 2
    assert (result.score, result.passed) == (67.5, False)
    assert result.details["total_messages"] == 2
    assert [
        (m["message_index"], m["turn"], m["score"]) for m in result.details["message_scores"]
    ] == [(1, 1, 80), (3, 2, 55)]
    assert result.details["message_scores"][1]["feedback"] == "Forgot the apology."
    assert result.details["message_scores"][0]["judge_prompt"] == fake_judge.prompts[0]
    assert result.details["message_scores"][0]["raw_response"] == answer(80, "Good opening.")
    assert result.details["judge_model"] == "openai/chat_completions gpt-4o-mini"
    assert "Average score: 67.5/100 across 2 assistant message(s)" in result.feedback
    assert "Turn 2: 55 — Forgot the apology." in result.feedback


async def test_conversation_judge_judges_each_message_in_its_context(
    fake_judge: FakeJudge,
) -> None:
    fake_judge.answers += [answer(90), answer(90)]
    ctx = context("Charged twice!", "Let me check.", "Order 12345.", "Refunded.")
    await evaluate("conversation_judge", {"evaluation_prompt": "Is it kind?"}, ctx)

    first, second = fake_judge.prompts
    assert first.startswith("Is it kind?")
    assert SYSTEM_PROMPT in first
    assert "USER: Charged twice!\n\nASSISTANT: Let me check." in first
    assert "Order 12345." not in first  # later turns are not shown
    assert "(assistant message 1 of 2, turn 1):\nLet me check." in first
    assert "USER: Order 12345.\n\nASSISTANT: Refunded." in second
    assert "(assistant message 2 of 2, turn 2):\nRefunded." in second
    for call in fake_judge.calls:
        assert call["config"].temperature == 0
        assert call["response_format"] == JUDGE_SCHEMA


@pytest.mark.parametrize(
    ("scores", "passed"), [((70, 70), True), ((69, 70), False), ((100, 40), True)]
)
async def test_conversation_judge_passes_when_the_mean_reaches_the_threshold(
    fake_judge: FakeJudge, scores: tuple[int, int], passed: bool
) -> None:
    fake_judge.answers += [answer(s) for s in scores]
    result = await evaluate("conversation_judge", {}, context("a", "b", "c", "d"))
    assert result.score == sum(scores) / 2
    assert result.passed is passed


async def test_conversation_judge_mean_is_rounded_to_two_places(fake_judge: FakeJudge) -> None:
    fake_judge.answers += [answer(100), answer(100), answer(71)]
    result = await evaluate("conversation_judge", {}, context("a", "b", "c", "d", "e", "f"))
    assert result.score == 90.33


async def test_conversation_judge_without_assistant_messages_fails_without_calling(
    fake_judge: FakeJudge,
) -> None:
    result = await evaluate("conversation_judge", {}, context("hello?"))
    assert (result.score, result.passed) == (0, False)
    assert fake_judge.calls == []


async def test_conversation_judge_unreadable_answer_makes_it_inconclusive(
    fake_judge: FakeJudge,
) -> None:
    fake_judge.answers += [answer(90), '{"feedback": "no score here"}']
    specs = [EvaluatorSpec(type="conversation_judge")]
    [result] = await registry.run_evaluators(specs, context("a", "b", "c", "d"))
    assert (result.status, result.error, result.passed) == ("inconclusive", None, False)
    assert result.inconclusive and result.inconclusive.startswith("turn 2: ")
    assert "no numeric 'score'" in result.inconclusive
    assert result.score == 90  # the message that could be read
    assert [e["score"] for e in result.details["message_scores"]] == [90, None]
    assert "Turn 2: inconclusive — judge answer has no numeric 'score'" in result.feedback


# against the offline mock provider, through the real routing table


@pytest.mark.parametrize("type_", ["llm_judge", "conversation_judge"])
async def test_judges_run_against_the_mock_provider(type_: str) -> None:
    pytest.importorskip("prompttracker.llm.mock")
    ctx = context(
        "Charged twice!",
        "Sorry, refunded.",
        "Thanks",
        "You're welcome.",
        judge=ModelConfig(provider="mock"),
    )
    [result] = await registry.run_evaluators([EvaluatorSpec(type=type_)], ctx)

    assert result.error is None, result.error
    assert 0 <= result.score <= 100
    assert result.passed is (result.score >= 70)
    assert result.details["judge_model"].startswith("mock")
    if type_ == "llm_judge":
        raw = json.loads(result.details["raw_response"])
        assert set(raw) == {"feedback", "score"}
    else:
        assert len(result.details["message_scores"]) == 2
