"""Stats helpers against numbers worked out by hand (in the comments), not against the code."""

from __future__ import annotations

import math

import pytest

from prompttracker.stats import (
    PairedDifference,
    fisher_exact_drop,
    paired_difference,
    pass_at_k,
    pass_hat_k,
    wilson_interval,
)

# z for 95% = 1.959964, z² = 3.841459 throughout.


def test_wilson_no_trials_is_the_whole_unit_interval():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_half():
    # p = 0.5, n = 10: denom = 1 + 3.841459/10 = 1.384146; center = (0.5 + 0.192073)/denom = 0.5;
    # half = 1.959964 * sqrt(0.025 + 3.841459/400) / denom = 1.959964 * 0.186020 / 1.384146
    #      = 0.263407 → (0.2366, 0.7634).
    low, high = wilson_interval(5, 10)
    assert round(low, 4) == 0.2366
    assert round(high, 4) == 0.7634


def test_wilson_all_passed():
    # p = 1: center = 1.192073/1.384146 = 0.861233; half = (3.841459/20)/1.384146 = 0.138766;
    # lower = 0.722467, upper = exactly 1.
    low, high = wilson_interval(10, 10)
    assert high == 1.0
    assert round(low, 4) == 0.7225


def test_wilson_none_passed():
    # Mirror image of 10/10: lower exactly 0, upper = 1 - 0.722467 = 0.277533.
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert round(high, 4) == 0.2775


def test_wilson_rejects_impossible_counts_and_confidence():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(5, 10, confidence=1.0)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (1, 0.6),  # 1 - C(2,1)/C(5,1) = 1 - 2/5
        (2, 0.9),  # 1 - C(2,2)/C(5,2) = 1 - 1/10
        (3, 1.0),  # 1 - C(2,3)/C(5,3) = 1 - 0/10
    ],
)
def test_pass_at_k_five_trials_three_passed(k, expected):
    assert pass_at_k(5, 3, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (1, 0.6),  # C(3,1)/C(5,1) = 3/5
        (2, 0.3),  # C(3,2)/C(5,2) = 3/10
        (3, 0.1),  # C(3,3)/C(5,3) = 1/10
    ],
)
def test_pass_hat_k_five_trials_three_passed(k, expected):
    assert pass_hat_k(5, 3, k) == pytest.approx(expected)


@pytest.mark.parametrize("func", [pass_at_k, pass_hat_k])
def test_pass_k_undefined_draws_are_none(func):
    assert func(5, 3, 0) is None  # k < 1
    assert func(5, 3, -1) is None
    assert func(2, 1, 3) is None  # fewer trials than k


def test_pass_k_edges():
    # c = 0: nothing ever passes. pass@2 = 1 - C(5,2)/C(5,2) = 0; pass^2 = C(0,2)/C(5,2) = 0.
    assert pass_at_k(5, 0, 2) == 0.0
    assert pass_hat_k(5, 0, 2) == 0.0
    # c = n: everything passes. pass@2 = 1 - C(0,2)/C(5,2) = 1; pass^2 = C(5,2)/C(5,2) = 1.
    assert pass_at_k(5, 5, 2) == 1.0
    assert pass_hat_k(5, 5, 2) == 1.0
    # c < k for pass^k: C(1,2) = 0 → 0.
    assert pass_hat_k(5, 1, 2) == 0.0


EXAMPLE = [(1, 0), (1, 0), (1, 1), (0, 0), (1, 0.5)]


def test_paired_difference_example():
    # a = 1,1,1,0,1 → 4/5 = 0.8; b = 0,0,1,0,0.5 → 1.5/5 = 0.3; diffs -1,-1,0,0,-0.5 → -0.5.
    # B beats A nowhere, loses on rows 1, 2 and 5. Sign test, n = 3: 2 * C(3,0)/2³ = 0.25.
    result = paired_difference(EXAMPLE)
    assert result.rows == 5
    assert result.mean_a == pytest.approx(0.8)
    assert result.mean_b == pytest.approx(0.3)
    assert result.difference == pytest.approx(-0.5)
    assert (result.better, result.worse) == (0, 3)
    assert result.sign_test_p == pytest.approx(0.25)
    assert result.resamples == 2000
    # Resample means lie in [-1, 0] (all -1 … all 0), and the observed mean is central.
    assert -1.0 <= result.low <= -0.5 <= result.high <= 0.0


def test_paired_difference_is_deterministic_and_seed_stable():
    first = paired_difference(EXAMPLE)
    assert paired_difference(EXAMPLE) == first
    other = paired_difference(EXAMPLE, seed=1)
    # Resample means move in steps of 0.1 here; another seed may shift a bound a step or two.
    assert abs(other.low - first.low) <= 0.2 + 1e-9
    assert abs(other.high - first.high) <= 0.2 + 1e-9
    assert other.difference == first.difference


def test_paired_difference_no_change():
    # Every diff is 0, so every resample mean is 0; no differing rows → p = 1.
    result = paired_difference([(0.5, 0.5), (1, 1), (0, 0), (0.25, 0.25)])
    assert result.difference == 0.0
    assert (result.low, result.high) == (0.0, 0.0)
    assert (result.better, result.worse) == (0, 0)
    assert result.sign_test_p == 1.0
    assert result.significant is False


def test_paired_difference_clear_regression():
    # 20 rows all (1, 0): every diff is -1, every resample mean -1.
    # Sign test, n = 20, min = 0: 2 * C(20,0)/2²⁰ = 2/1048576.
    result = paired_difference([(1, 0)] * 20)
    assert result.difference == -1.0
    assert (result.low, result.high) == (-1.0, -1.0)
    assert (result.better, result.worse) == (0, 20)
    assert result.sign_test_p == pytest.approx(2 / 2**20)
    assert result.significant is True


def test_paired_difference_one_row():
    # One row: the only resample is the row itself, so the interval collapses to 0.5 - 0.25.
    result = paired_difference([(0.25, 0.5)])
    assert (result.low, result.difference, result.high) == (0.25, 0.25, 0.25)
    assert (result.better, result.worse) == (1, 0)
    # Sign test, n = 1: min(1, 2 * C(1,0)/2) = 1.
    assert result.sign_test_p == 1.0


def test_significant_property():
    def make(low: float, high: float) -> PairedDifference:
        return PairedDifference(5, 0.5, 0.5, 0.0, low, high, 0, 0, 1.0, 10)

    assert make(0.1, 0.3).significant is True
    assert make(-0.3, -0.1).significant is True
    assert make(-0.1, 0.1).significant is False
    assert make(0.0, 0.2).significant is False  # touching 0 does not exclude it


@pytest.mark.parametrize(
    "pairs",
    [[], [(1.5, 0)], [(0, -0.1)], [(0.5, math.nan)]],
)
def test_paired_difference_rejects_bad_input(pairs):
    with pytest.raises(ValueError):
        paired_difference(pairs)


def test_paired_difference_rejects_bad_confidence():
    with pytest.raises(ValueError):
        paired_difference(EXAMPLE, confidence=0.0)


def test_fisher_exact_drop_against_hand_computations() -> None:
    # 5/5 → 1/5: 6 passes in 10 trials; A holding 5 of them: C(6,5)·C(4,0)/C(10,5) = 6/252.
    assert fisher_exact_drop(5, 5, 1, 5) == pytest.approx(6 / 252)
    # 5/5 → 3/5: C(8,5)·C(2,0)/C(10,5) = 56/252 (not significant).
    assert fisher_exact_drop(5, 5, 3, 5) == pytest.approx(56 / 252)
    # 4/5 → 0/5: P(X ≥ 4) = C(4,4)·C(6,1)/C(10,5) = 6/252.
    assert fisher_exact_drop(4, 5, 0, 5) == pytest.approx(6 / 252)
    # One play each, 1/1 → 0/1: C(1,1)·C(1,0)/C(2,1) = 1/2: one flip alone proves nothing.
    assert fisher_exact_drop(1, 1, 0, 1) == pytest.approx(0.5)
    # No drop at all: every arrangement has A with at least 0 passes.
    assert fisher_exact_drop(0, 5, 5, 5) == pytest.approx(1.0)
    assert fisher_exact_drop(3, 5, 0, 0) == 1.0
    with pytest.raises(ValueError):
        fisher_exact_drop(6, 5, 0, 5)
