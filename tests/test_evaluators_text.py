"""The rule-based evaluators: length, keyword, exact_match, pattern_match."""

from __future__ import annotations

from typing import Any

import pytest

from prompttracker.config.models import DatasetRow, EvaluatorSpec, ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.evaluators import registry
from prompttracker.evaluators.base import EvaluationContext
from prompttracker.messages import ConversationResult, Message
from prompttracker.results import EvaluationResult


def context(*contents: str) -> EvaluationContext:
    """A conversation alternating user / assistant messages, starting with the user."""
    messages = tuple(
        Message(role="user" if i % 2 == 0 else "assistant", content=text, turn=i // 2 + 1)
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
        system_prompt="You are a support agent.",
        model_config=ModelConfig(provider="mock"),
        judge_config=ModelConfig(provider="mock"),
        settings=Settings(),
    )


async def evaluate(type_: str, config: dict[str, Any], *contents: str) -> EvaluationResult:
    spec = EvaluatorSpec(type=type_, config=config)
    assert registry.config_problems(spec) == []
    return await registry.build(spec).evaluate(context(*contents))


def test_registry_lists_the_six_types() -> None:
    assert {
        "length",
        "keyword",
        "exact_match",
        "pattern_match",
        "llm_judge",
        "conversation_judge",
    } <= set(registry.evaluator_types())


@pytest.mark.parametrize(
    ("type_", "valid"),
    [
        ("length", {"min_length": 1, "max_length": 9}),
        ("keyword", {"required_keywords": ["x"]}),
        ("exact_match", {"expected_text": "x"}),
        ("pattern_match", {"patterns": ["x"]}),
    ],
)
def test_unknown_config_key_is_rejected(type_: str, valid: dict[str, Any]) -> None:
    assert registry.config_problems(EvaluatorSpec(type=type_, config=valid)) == []
    problems = registry.config_problems(EvaluatorSpec(type=type_, config={**valid, "typo_key": 1}))
    assert problems == [
        "config.typo_key: unknown config key; expected one of: "
        + ", ".join(sorted(registry.evaluator_types()[type_].Config.model_fields))
    ]


# length


async def test_length_defaults_are_10_to_2000_characters() -> None:
    result = await evaluate("length", {}, "hi", "x" * 10)
    assert (result.score, result.passed) == (100, True)
    assert result.details == {"response_length": 10, "min_length": 10, "max_length": 2000}
    assert (await evaluate("length", {}, "hi", "x" * 2001)).passed is False
    assert (await evaluate("length", {}, "hi", "x" * 2000)).passed is True


async def test_length_too_short_scores_zero_and_says_so() -> None:
    result = await evaluate("length", {"min_length": 5, "max_length": 20}, "hi", "abc")
    assert (result.score, result.passed) == (0, False)
    assert result.feedback == "Response is too short (3 chars). Minimum: 5 chars."
    assert result.type == "length" and result.evaluator == "length"


async def test_length_too_long_scores_zero_and_says_so() -> None:
    result = await evaluate("length", {"min_length": 1, "max_length": 4}, "hi", "abcde")
    assert (result.score, result.passed) == (0, False)
    assert result.feedback == "Response is too long (5 chars). Maximum: 4 chars."


async def test_length_bounds_are_inclusive() -> None:
    config = {"min_length": 3, "max_length": 5}
    assert (await evaluate("length", config, "q", "abc")).passed is True
    assert (await evaluate("length", config, "q", "abcde")).passed is True
    assert (await evaluate("length", config, "q", "ab")).passed is False
    assert (await evaluate("length", config, "q", "abcdef")).passed is False


async def test_length_checks_only_the_final_assistant_response() -> None:
    result = await evaluate("length", {"min_length": 1, "max_length": 5}, "q", "x" * 50, "q2", "ok")
    assert result.passed is True


async def test_length_of_a_conversation_without_answer_is_zero() -> None:
    result = await evaluate("length", {}, "hello?")
    assert result.passed is False
    assert result.details["response_length"] == 0
    assert (await evaluate("length", {"min_length": 0}, "hello?")).passed is True


def test_length_min_above_max_is_a_config_error() -> None:
    problems = registry.config_problems(
        EvaluatorSpec(type="length", config={"min_length": 50, "max_length": 10})
    )
    assert problems == [
        "config.max_length: max_length (10) is below min_length (50, which defaults to 10)"
    ]
    only_max = registry.config_problems(EvaluatorSpec(type="length", config={"max_length": 5}))
    assert only_max and "min_length (10" in only_max[0]


def test_length_negative_is_a_config_error() -> None:
    problems = registry.config_problems(EvaluatorSpec(type="length", config={"min_length": -1}))
    assert problems and problems[0].startswith("config.min_length:")


# keyword


async def test_keyword_all_required_present_passes() -> None:
    result = await evaluate(
        "keyword", {"required_keywords": ["refund", "sorry"]}, "q", "Sorry! A refund is on its way."
    )
    assert (result.score, result.passed) == (100, True)
    assert result.feedback == "All keyword requirements met."


async def test_keyword_score_is_the_share_of_required_keywords_present() -> None:
    result = await evaluate(
        "keyword", {"required_keywords": ["refund", "apology", "order"]}, "q", "Your refund."
    )
    assert (result.score, result.passed) == (33, False)
    assert result.feedback == "Missing required keywords: apology, order"
    assert result.details["missing_required"] == ["apology", "order"]


async def test_keyword_rounds_halves_up_like_the_original() -> None:
    required = [f"k{i}" for i in range(8)]
    result = await evaluate("keyword", {"required_keywords": required}, "q", "k0")
    assert result.score == 13  # 12.5 → 13, not Python's banker's 12


async def test_keyword_is_case_insensitive_by_default() -> None:
    result = await evaluate("keyword", {"required_keywords": ["Refund"]}, "q", "REFUND issued")
    assert result.passed is True


async def test_keyword_case_sensitive() -> None:
    config = {"required_keywords": ["Refund"], "case_sensitive": True}
    assert (await evaluate("keyword", config, "q", "refund issued")).passed is False
    assert (await evaluate("keyword", config, "q", "Refund issued")).passed is True
    forbidden = {"forbidden_keywords": ["NO"], "case_sensitive": True}
    assert (await evaluate("keyword", forbidden, "q", "no problem")).passed is True


async def test_keyword_only_forbidden_scores_100_minus_share_found() -> None:
    config = {"forbidden_keywords": ["error", "failed"]}
    result = await evaluate("keyword", config, "q", "It FAILED, sorry.")
    assert (result.score, result.passed) == (50, False)
    assert result.feedback == "Contains forbidden keywords: failed"
    clean = await evaluate("keyword", config, "q", "All good.")
    assert (clean.score, clean.passed) == (100, True)


async def test_keyword_both_lists_weigh_required_70_and_forbidden_30() -> None:
    config = {"required_keywords": ["refund", "apology"], "forbidden_keywords": ["policy"]}
    result = await evaluate("keyword", config, "q", "A refund, per policy.")
    assert result.score == 35  # 50 * 0.7 + 0 * 0.3
    assert result.passed is False
    assert result.feedback == (
        "Missing required keywords: apology. Contains forbidden keywords: policy"
    )
    partial = await evaluate("keyword", config, "q", "A refund.")
    assert partial.score == 65  # 50 * 0.7 + 100 * 0.3


async def test_keyword_without_keywords_passes() -> None:
    result = await evaluate("keyword", {}, "q", "anything")
    assert (result.score, result.passed) == (100, True)


async def test_keyword_on_empty_response_misses_everything() -> None:
    result = await evaluate("keyword", {"required_keywords": ["refund"]}, "q", "")
    assert (result.score, result.passed) == (0, False)


async def test_keyword_checks_only_the_final_response() -> None:
    config = {"required_keywords": ["refund"]}
    result = await evaluate("keyword", config, "q", "refund coming", "thanks", "bye")
    assert result.passed is False


def test_keyword_lists_must_be_lists_of_strings() -> None:
    problems = registry.config_problems(
        EvaluatorSpec(type="keyword", config={"required_keywords": "refund"})
    )
    assert problems and problems[0].startswith("config.required_keywords:")


# exact_match


async def test_exact_match_ignores_case_and_outer_whitespace_by_default() -> None:
    result = await evaluate("exact_match", {"expected_text": "Hello World"}, "q", "  hello world\n")
    assert (result.score, result.passed) == (100, True)


async def test_exact_match_case_sensitive() -> None:
    config = {"expected_text": "Hello World", "case_sensitive": True}
    result = await evaluate("exact_match", config, "q", "hello world")
    assert (result.score, result.passed) == (0, False)
    assert result.feedback == (
        'Response does not match the expected text.\nExpected: "Hello World"\nActual: "hello world"'
    )


async def test_exact_match_without_trimming_whitespace_counts() -> None:
    config = {"expected_text": "Yes", "trim_whitespace": False}
    assert (await evaluate("exact_match", config, "q", "Yes\n")).passed is False
    assert (await evaluate("exact_match", config, "q", "yes")).passed is True


async def test_exact_match_is_whole_text_not_substring() -> None:
    result = await evaluate("exact_match", {"expected_text": "yes"}, "q", "yes, of course")
    assert result.passed is False


async def test_exact_match_feedback_previews_long_texts() -> None:
    result = await evaluate("exact_match", {"expected_text": "a" * 300}, "q", "b")
    assert '"' + "a" * 100 + '..."' in result.feedback


async def test_exact_match_empty_response() -> None:
    assert (await evaluate("exact_match", {"expected_text": "yes"}, "q")).passed is False
    assert (await evaluate("exact_match", {"expected_text": ""}, "q", "  ")).passed is True


# pattern_match


async def test_pattern_match_slashed_pattern_is_a_regex_with_flags() -> None:
    result = await evaluate("pattern_match", {"patterns": [r"/order #\d+/i"]}, "q", "ORDER #123")
    assert (result.score, result.passed) == (100, True)
    assert result.feedback == "All 1 pattern(s) matched."
    assert result.details == {"matched": [r"/order #\d+/i"], "unmatched": []}


async def test_pattern_match_plain_text_is_literal() -> None:
    config = {"patterns": ["a.c"]}
    assert (await evaluate("pattern_match", config, "q", "abc")).passed is False
    assert (await evaluate("pattern_match", config, "q", "xa.cx")).passed is True


async def test_pattern_match_multiline_and_dotall_flags() -> None:
    text = "Summary\nTotal: 42\nBye"
    assert (
        await evaluate("pattern_match", {"patterns": [r"/^Total: \d+$/"]}, "q", text)
    ).passed is False
    assert (await evaluate("pattern_match", {"patterns": [r"/^Total: \d+$/m"]}, "q", text)).passed
    assert not (await evaluate("pattern_match", {"patterns": ["/Summary.*Bye/"]}, "q", text)).passed
    assert (await evaluate("pattern_match", {"patterns": ["/Summary.*Bye/s"]}, "q", text)).passed


async def test_pattern_match_all_must_match_by_default() -> None:
    config = {"patterns": ["/refund/", r"/\d+ days/", "/sorry/"]}
    result = await evaluate("pattern_match", config, "q", "refund in 5 days")
    assert (result.score, result.passed) == (0, False)
    assert result.feedback == "Failed to match 1 pattern(s): /sorry/"
    assert result.details["unmatched"] == ["/sorry/"]


async def test_pattern_match_any() -> None:
    config = {"patterns": ["/hello/i", "/hi/i"], "match_all": False}
    result = await evaluate("pattern_match", config, "q", "Hi there")
    assert (result.score, result.passed) == (100, True)
    assert result.feedback == "Matched /hi/i; did not match /hello/i"
    none = await evaluate("pattern_match", config, "q", "Good morning")
    assert (none.score, none.passed) == (0, False)
    assert none.feedback == "No pattern matched. Tried: /hello/i, /hi/i"


async def test_pattern_match_on_empty_response() -> None:
    assert (await evaluate("pattern_match", {"patterns": ["/.+/"]}, "q")).passed is False
    assert (await evaluate("pattern_match", {"patterns": ["/^$/"]}, "q")).passed is True


def test_pattern_match_bad_regex_is_a_config_error() -> None:
    problems = registry.config_problems(
        EvaluatorSpec(type="pattern_match", config={"patterns": ["/ok/", "/[unclosed/"]})
    )
    assert len(problems) == 1
    assert problems[0].startswith("config.patterns:")
    assert "'/[unclosed/': invalid regular expression: " in problems[0]


def test_pattern_match_needs_at_least_one_pattern() -> None:
    assert registry.config_problems(EvaluatorSpec(type="pattern_match", config={}))
    assert registry.config_problems(EvaluatorSpec(type="pattern_match", config={"patterns": []}))


async def test_run_evaluators_uses_the_spec_name_as_label() -> None:
    specs = [
        EvaluatorSpec(type="keyword", name="mentions refund", config={"required_keywords": ["x"]}),
        EvaluatorSpec(type="length", config={"min_length": 2, "max_length": 3}),
    ]
    results = await registry.run_evaluators(specs, context("q", "x"))
    assert [(r.evaluator, r.type, r.status) for r in results] == [
        ("mentions refund", "keyword", "passed"),
        ("length", "length", "failed"),
    ]


async def test_a_pattern_that_backtracks_catastrophically_errors_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from prompttracker.evaluators import patterns

    monkeypatch.setattr(patterns, "PATTERN_TIMEOUT_SECONDS", 0.05)
    # Ambiguous alternatives are not refused at load (not decidable there): the timeout stops it.
    specs = [EvaluatorSpec(type="pattern_match", config={"patterns": ["/(x|xx)+y/"]})]
    ticks = 0

    async def heartbeat() -> None:  # the event loop keeps turning while the regex runs
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    beat = asyncio.create_task(heartbeat())
    try:
        (result,) = await registry.run_evaluators(specs, context("q", "x" * 5000))
    finally:
        beat.cancel()
    assert result.error is not None and "backtracks catastrophically" in result.error
    assert "(x|xx)+y" in result.error and result.passed is False
    assert ticks > 1


@pytest.mark.parametrize(
    "pattern",
    ["/(a+)+$/", r"/^(\w+\s?)*$/", "/(?:x*)*y/", "/((a+))+b/", "/(x+x+)+y/", "/(?:a+|b)+c/"],
)
def test_a_pattern_known_to_backtrack_catastrophically_is_refused_at_load(pattern: str) -> None:
    [problem] = registry.config_problems(
        EvaluatorSpec(type="pattern_match", config={"patterns": ["/ok/", pattern]})
    )
    assert problem.startswith(f"config.patterns: {pattern!r}: it repeats without bound a group")
    assert "(a+)+ → a+" in problem


@pytest.mark.parametrize(
    "pattern",
    [r"/^(\w+\s)*$/", "/refund(ed)?/i", "/(ab)+/", r"/\d{3,}-\d+/", "/(?>a+)+b/", "/(a++)+b/"],
)
def test_patterns_without_nested_repetition_are_accepted(pattern: str) -> None:
    config = {"patterns": [pattern]}
    assert registry.config_problems(EvaluatorSpec(type="pattern_match", config=config)) == []
