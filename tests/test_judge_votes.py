"""Judges that vote and abstain: ``votes: N`` asks the judge N times (median score, majority
verdict); votes that disagree, split or cannot be read make the verdict ``inconclusive``, and
an inconclusive evaluation makes the test run inconclusive unless another one failed."""

from __future__ import annotations

import pytest

from prompttracker.config.settings import CISettings
from prompttracker.evaluators.judges import Ballot, Judgement
from prompttracker.results import EvaluationResult, gate_passes
from prompttracker.runner import status_of
from tests.test_evaluators_judges import FakeJudge, answer, context, evaluate
from tests.test_evaluators_judges import fake_judge as fake_judge


async def test_three_votes_give_the_median_and_the_majority(fake_judge: FakeJudge) -> None:
    fake_judge.answers += [answer(80, "Good."), answer(60, "Weak."), answer(85, "Great.")]
    result = await evaluate("llm_judge", {"votes": 3}, context("q", "a"))

    assert (result.status, result.score, result.inconclusive) == ("passed", 80, None)
    assert result.feedback == "Median score 80 of 3 votes (80, 60, 85); 2 pass. Good."
    assert [v["score"] for v in result.details["votes"]] == [80, 60, 85]
    # Each vote is its own draw: at vote_temperature, numbered so the mock and cassettes differ.
    assert [call["sample"] for call in fake_judge.calls] == [0, 1, 2]
    assert {call["config"].temperature for call in fake_judge.calls} == {1.0}
    assert len({call["messages"][-1].content for call in fake_judge.calls}) == 1  # same prompt


async def test_a_readable_vote_without_feedback_is_not_called_inconclusive(
    fake_judge: FakeJudge,
) -> None:
    fake_judge.answers.append('{"score": 72.5}')
    result = await evaluate("llm_judge", {}, context("q", "a"))
    assert (result.status, result.score, result.feedback) == ("passed", 72.5, "")


async def test_one_vote_is_the_plain_judge_at_temperature_zero(fake_judge: FakeJudge) -> None:
    fake_judge.answers.append(answer(75, "Polite."))
    result = await evaluate("llm_judge", {}, context("q", "a"))
    assert (result.status, result.score, result.feedback) == ("passed", 75, "Polite.")
    assert "votes" not in result.details
    [call] = fake_judge.calls
    assert (call["sample"], call["config"].temperature) == (0, 0)


async def test_votes_spread_wider_than_max_spread_are_inconclusive(
    fake_judge: FakeJudge,
) -> None:
    fake_judge.answers += [answer(20), answer(80), answer(90)]
    result = await evaluate("llm_judge", {"votes": 3}, context("q", "a"))
    assert (result.status, result.passed) == ("inconclusive", False)
    assert result.inconclusive == (
        "the votes disagree: scores 20, 80, 90 spread 70 points, more than max_spread 30"
    )
    assert result.score == 80  # the median is still shown


async def test_a_wide_max_spread_lets_the_majority_decide(fake_judge: FakeJudge) -> None:
    fake_judge.answers += [answer(20), answer(80), answer(90)]
    result = await evaluate("llm_judge", {"votes": 3, "max_spread": 100}, context("q", "a"))
    assert (result.status, result.score) == ("passed", 80)


async def test_an_even_split_is_inconclusive(fake_judge: FakeJudge) -> None:
    fake_judge.answers += [answer(60), answer(80)]
    config = {"votes": 2, "max_spread": 50, "threshold_score": 70}
    result = await evaluate("llm_judge", config, context("q", "a"))
    assert result.status == "inconclusive"
    assert result.inconclusive == "the votes are split: scores 60, 80, 1 of 2 pass"


async def test_a_majority_of_readable_votes_still_decides(fake_judge: FakeJudge) -> None:
    fake_judge.answers += [answer(80), "I cannot judge this.", answer(85)]
    result = await evaluate("llm_judge", {"votes": 3}, context("q", "a"))
    assert (result.status, result.score) == ("passed", 82.5)
    votes = result.details["votes"]
    assert votes[1]["score"] is None
    assert votes[1]["unreadable"] == "judge answer is not JSON: 'I cannot judge this.'"
    assert result.feedback.startswith("Median score 82.5 of 3 votes (80, ?, 85); 2 pass.")


async def test_too_few_readable_votes_are_inconclusive(fake_judge: FakeJudge) -> None:
    fake_judge.answers += ["no idea", answer(85), "Score: lots"]
    result = await evaluate("llm_judge", {"votes": 3}, context("q", "a"))
    assert result.status == "inconclusive"
    assert result.inconclusive == (
        "only 1 of 3 judge answers could be read: judge answer is not JSON: 'no idea'"
    )


async def test_a_conversation_judge_votes_on_every_message(fake_judge: FakeJudge) -> None:
    fake_judge.answers += [answer(s) for s in (80, 90, 85, 40, 50, 45)]
    result = await evaluate("conversation_judge", {"votes": 3}, context("a", "b", "c", "d"))
    assert len(fake_judge.calls) == 6
    assert [e["score"] for e in result.details["message_scores"]] == [85, 45]
    assert [len(e["votes"]) for e in result.details["message_scores"]] == [3, 3]
    assert (result.status, result.score) == ("failed", 65)


async def test_one_undecided_message_makes_the_conversation_judge_inconclusive(
    fake_judge: FakeJudge,
) -> None:
    fake_judge.answers += [answer(s) for s in (80, 90, 85, 0, 100, 50)]
    result = await evaluate("conversation_judge", {"votes": 3}, context("a", "b", "c", "d"))
    assert result.status == "inconclusive"
    assert result.inconclusive and result.inconclusive.startswith("turn 2: the votes disagree")
    assert "Turn 2: inconclusive — the votes disagree" in result.feedback


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ((70, 70, 70), None),
        ((69, 70, 71), None),
        ((100, 70, 70), None),  # spread 30 is allowed: only wider is not
        ((100, 69, 70), "spread 31 points"),
        ((10, 90), "spread 80 points"),
    ],
)
def test_the_spread_rule(scores: tuple[float, ...], expected: str | None) -> None:
    ballot = Ballot(
        tuple(Judgement(raw_response="", score=s) for s in scores), threshold=70, max_spread=30
    )
    if expected is None:
        assert ballot.inconclusive is None
    else:
        assert ballot.inconclusive and expected in ballot.inconclusive


def evaluation(status: str) -> EvaluationResult:
    return EvaluationResult(
        evaluator=status,
        type="llm_judge",
        score=50,
        passed=status == "passed",
        error="boom" if status == "error" else None,
        inconclusive="votes disagree" if status == "inconclusive" else None,
    )


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["passed", "inconclusive"], "inconclusive"),
        (["failed", "inconclusive"], "failed"),  # a definite failure decides
        (["error", "inconclusive"], "error"),
        (["passed", "passed"], "passed"),
    ],
)
def test_test_run_status_ranks_the_evaluations(statuses: list[str], expected: str) -> None:
    status, why = status_of(None, [evaluation(s) for s in statuses])
    assert status == expected
    if expected == "inconclusive":
        assert why == "evaluator inconclusive could not decide: votes disagree"


def test_an_invalid_conversation_beats_everything_but_an_api_error() -> None:
    assert status_of(None, [], "the simulated user repeated itself") == (
        "invalid",
        "the simulated user repeated itself",
    )
    assert status_of("HTTP 500", [], "repeated")[0] == "error"


class Row:
    def __init__(self, status: str) -> None:
        self.status = status


@pytest.mark.parametrize(
    ("statuses", "ci", "passes"),
    [
        (["passed", "invalid", "inconclusive"], CISettings(), True),
        (["passed", "invalid"], CISettings(fail_on_invalid=True), False),
        (["passed", "inconclusive"], CISettings(fail_on_inconclusive=True), False),
        (["passed", "inconclusive"], CISettings(fail_on_invalid=True), True),
        (["passed", "failed"], CISettings(), False),
        (["passed", "error"], CISettings(), False),
        (["invalid", "inconclusive"], CISettings(), False),  # nothing was decided
        ([], CISettings(), False),
    ],
)
def test_the_gate(statuses: list[str], ci: CISettings, passes: bool) -> None:
    assert gate_passes([Row(s) for s in statuses], ci) is passes  # type: ignore[misc]
