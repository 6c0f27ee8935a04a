"""Small-sample statistics: pass rates, pass@k, paired bootstrap, agreement between raters.

Pure standard library so the CLI can report uncertainty without pulling in numpy or scipy.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist


def _check_confidence(confidence: float) -> None:
    """Reject confidences outside (0, 1): they have no interval and would index out of range."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")


def _z(confidence: float) -> float:
    """Two-sided standard-normal critical value for ``confidence`` (1.96 for 0.95)."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def _check_counts(trials: int, successes: int) -> None:
    """Reject impossible counts early: a wrong count would silently give a wrong probability."""
    if trials < 0:
        raise ValueError(f"trials must be >= 0, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and trials ({trials}), got {successes}")


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial pass rate; unlike the normal one it behaves at 0 and n.

    No trials says nothing, so the interval is ``(0.0, 1.0)``. At 0 or ``trials`` successes the
    matching bound is exactly 0 or 1 (the formula gives it up to rounding).
    """
    _check_counts(trials, successes)
    z = _z(confidence)
    if trials == 0:
        return (0.0, 1.0)
    n = trials
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return (low, high)


def pass_at_k(trials: int, successes: int, k: int) -> float | None:
    """Chance that at least one of ``k`` trials drawn without replacement passed.

    Unbiased estimator ``1 - C(n-c, k) / C(n, k)`` (Chen et al. 2021). ``None`` when ``k < 1`` or
    there are fewer than ``k`` trials, since the draw is then undefined.
    """
    _check_counts(trials, successes)
    if k < 1 or trials < k:
        return None
    return 1 - math.comb(trials - successes, k) / math.comb(trials, k)


def pass_hat_k(trials: int, successes: int, k: int) -> float | None:
    """τ-bench's pass^k: chance that all ``k`` trials drawn without replacement passed.

    ``C(c, k) / C(n, k)``, which is 0 when fewer than ``k`` passed. ``None`` when ``k < 1`` or
    there are fewer than ``k`` trials.
    """
    _check_counts(trials, successes)
    if k < 1 or trials < k:
        return None
    return math.comb(successes, k) / math.comb(trials, k)


@dataclass(frozen=True)
class PairedDifference:
    """How version B compares with version A over the same rows (``difference = mean_b - mean_a``).

    ``low``/``high`` bound the difference; ``better``/``worse`` count rows where B beat or lost to
    A; ``sign_test_p`` is the exact two-sided sign test over the rows that differ.
    """

    rows: int
    mean_a: float
    mean_b: float
    difference: float
    low: float
    high: float
    better: int
    worse: int
    sign_test_p: float
    resamples: int

    @property
    def significant(self) -> bool:
        """True when the interval on the difference excludes 0."""
        return self.low > 0 or self.high < 0


def _sign_test_p(better: int, worse: int) -> float:
    """Exact two-sided sign test p-value: ``min(1, 2 * P(X <= min(better, worse)))``, X~Bin(n, ½).

    Ties are left out by the caller; with no differing rows there is no evidence, so 1.0.
    """
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(better, worse) + 1))
    return min(1.0, 2 * tail / 2**n)


def paired_difference(
    pairs: Sequence[tuple[float, float]],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedDifference:
    """Compare per-row pass rates ``(a, b)`` of two versions with a paired bootstrap over rows.

    Pairing keeps row difficulty out of the noise: each resample draws ``len(pairs)`` per-row
    differences ``b - a`` with replacement from ``random.Random(seed)``, so the same input always
    gives the same interval. With the resample means sorted as ``means[0..R-1]`` and
    ``alpha = (1 - confidence) / 2``, the interval is ``(means[floor(alpha * (R - 1))],
    means[ceil((1 - alpha) * (R - 1))])``, symmetric in rank (indices 49 and 1950 for the defaults).
    Raises ValueError for no pairs or a value outside [0, 1].
    """
    if not pairs:
        raise ValueError("paired_difference needs at least one pair")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    _check_confidence(confidence)
    alpha = (1 - confidence) / 2
    diffs: list[float] = []
    sum_a = sum_b = 0.0
    better = worse = 0
    for index, (a, b) in enumerate(pairs):
        for value in (a, b):
            if not 0.0 <= value <= 1.0:  # also rejects NaN
                raise ValueError(f"pair {index} has {value!r}; values must be in [0, 1]")
        sum_a += a
        sum_b += b
        diffs.append(b - a)
        if b > a:
            better += 1
        elif b < a:
            worse += 1
    n = len(diffs)
    difference = sum(diffs) / n
    if n == 1:
        low = high = difference
    else:
        rng = random.Random(seed)
        choices = rng.choices
        means = sorted(sum(choices(diffs, k=n)) / n for _ in range(resamples))
        last = resamples - 1
        # Rounding guards against e.g. 0.975 * 1999 landing a hair above an integer.
        low = means[math.floor(round(alpha * last, 9))]
        high = means[math.ceil(round((1 - alpha) * last, 9))]
    return PairedDifference(
        rows=n,
        mean_a=sum_a / n,
        mean_b=sum_b / n,
        difference=difference,
        low=low,
        high=high,
        better=better,
        worse=worse,
        sign_test_p=_sign_test_p(better, worse),
        resamples=resamples,
    )


def fisher_exact_drop(a_passes: int, a_trials: int, b_passes: int, b_trials: int) -> float:
    """One-sided Fisher exact p-value that B passes less often than A only by chance.

    Given every verdict of both sides, the chance that A would get ``a_passes`` or more of the
    passes if passes fell on A's and B's trials at random (a hypergeometric tail). 1.0 when
    either side has no trials. Exact at any size, so it suits a row played a few times.
    """
    _check_counts(a_trials, a_passes)
    _check_counts(b_trials, b_passes)
    if not a_trials or not b_trials:
        return 1.0
    total, passes = a_trials + b_trials, a_passes + b_passes
    tail = sum(
        math.comb(passes, x) * math.comb(total - passes, a_trials - x)
        for x in range(a_passes, min(passes, a_trials) + 1)
    )
    return min(1.0, tail / math.comb(total, a_trials))


def cohens_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float:
    """Cohen's kappa of two raters over the same items: agreement beyond what chance gives.

    ``pairs`` holds each item's two labels (pass/fail, or any categories). With ``p_o`` the
    share of items where they agree and ``p_e`` the agreement expected from each rater's own
    label frequencies, kappa is ``(p_o - p_e) / (1 - p_e)``: 1 for perfect agreement, 0 at
    chance level, negative below it. Computed on counts, so ``p_e == 1`` is decided exactly:
    it happens only when both raters give every item the same one label, and then they agree
    completely, so kappa is 1.0 (the formula would divide 0 by 0). Raises ValueError for no
    pairs.
    """
    if not pairs:
        raise ValueError("cohens_kappa needs at least one pair")
    n = len(pairs)
    agreed = sum(1 for a, b in pairs if a == b)
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    # n² · p_e: for each label, how often both raters would give it by chance.
    chance = sum(count * second[label] for label, count in first.items())
    if chance == n * n:
        return 1.0
    return (n * agreed - chance) / (n * n - chance)
