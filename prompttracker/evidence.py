"""Evidence over many test runs: what a team decides with.

- **Rows**: each test × version × dataset row, over its repeats: passes out of the plays that
  did not error, a 95 % Wilson interval on its pass rate, pass@k and pass^k (errors excluded
  and counted apart), and whether it is *flaky* (its plays disagree).
- **Versions**: each test × version over its rows: the pass rate with its interval, pass^K.
- **Comparisons**: two versions paired on the rows both played — in one run (``versions:
  [1, 2]``) or across two runs (a baseline) — with the pass-rate difference, its interval
  (a paired bootstrap over rows, see ``stats.paired_difference``), the rows that flipped, the
  mean score difference per evaluator, tokens and cost per conversation.
- **The gate**: what regressed against a baseline (a row that passed and now fails or errors,
  a pass-rate drop whose interval lies below zero) and what still fails, which is reported and
  not fatal.

Everything here works on ``TestRunRow`` values (whole outcomes or their summary lines), so a
live run and a stored one give the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from prompttracker.results import TestRunRow
from prompttracker.stats import (
    PairedDifference,
    fisher_exact_drop,
    paired_difference,
    pass_at_k,
    pass_hat_k,
    wilson_interval,
)

# ``undecided``: every play was invalid or inconclusive (none errored).
Verdict = Literal["passed", "failed", "flaky", "error", "undecided"]

SIGN_TEST_ALPHA = 0.05


class _PassRate:
    """The pass rate of ``passes`` out of ``trials`` (plays with a verdict), and its interval."""

    passes: int
    trials: int

    @property
    def rate(self) -> float | None:
        return self.passes / self.trials if self.trials else None

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson (for a version: over every play with a verdict, taken as independent)."""
        return wilson_interval(self.passes, self.trials)


@dataclass(frozen=True)
class RowStats(_PassRate):
    """One test × version × row over its plays (one per repeat)."""

    prompt_slug: str
    test_name: str
    version: int
    version_hash: str
    dataset: str
    row_name: str
    plays: int
    passes: int
    failures: int
    errors: int
    scores: dict[str, float]  # evaluator → mean score over the plays where it did not error
    tokens: float | None  # mean per play, every caller's
    cost_usd: float | None  # mean per play; None when a call's price is unknown

    @property
    def trials(self) -> int:
        """Plays that gave a verdict (errors are not evidence about the prompt)."""
        return self.passes + self.failures

    @property
    def flaky(self) -> bool:
        return self.passes > 0 and self.failures > 0

    @property
    def verdict(self) -> Verdict:
        if not self.trials:
            return "error" if self.errors else "undecided"
        if self.flaky:
            return "flaky"
        return "passed" if self.passes else "failed"

    def pass_hat(self, k: int) -> float | None:
        return pass_hat_k(self.trials, self.passes, k)

    def pass_at(self, k: int) -> float | None:
        return pass_at_k(self.trials, self.passes, k)

    def as_dict(self, k: int) -> dict[str, Any]:
        low, high = self.interval
        return {
            "prompt": self.prompt_slug,
            "test": self.test_name,
            "version": self.version,
            "version_hash": self.version_hash,
            "dataset": self.dataset,
            "row": self.row_name,
            "plays": self.plays,
            "passes": self.passes,
            "failures": self.failures,
            "errors": self.errors,
            "pass_rate": self.rate,
            "pass_rate_interval": [low, high],
            "k": k,
            "pass_at_k": self.pass_at(k),
            "pass_hat_k": self.pass_hat(k),
            "flaky": self.flaky,
            "verdict": self.verdict,
            "scores": self.scores,
            "tokens_per_play": self.tokens,
            "cost_usd_per_play": self.cost_usd,
        }


@dataclass(frozen=True)
class VersionStats(_PassRate):
    """One test × version over its rows."""

    prompt_slug: str
    test_name: str
    version: int
    version_hash: str
    rows: tuple[RowStats, ...]

    @property
    def label(self) -> str:
        return f"{self.prompt_slug}::{self.test_name}"

    @property
    def repeats(self) -> int:
        """K: the most plays of any row (rows play the same number unless one was stopped)."""
        return max((r.plays for r in self.rows), default=0)

    @property
    def passes(self) -> int:
        return sum(r.passes for r in self.rows)

    @property
    def trials(self) -> int:
        return sum(r.trials for r in self.rows)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rows)

    @property
    def pass_hat_k(self) -> float | None:
        """Mean pass^K over the rows with K verdicts (τ-bench's consistency measure)."""
        values = [v for r in self.rows if (v := r.pass_hat(self.repeats)) is not None]
        return sum(values) / len(values) if values else None

    @property
    def flaky(self) -> list[RowStats]:
        return [r for r in self.rows if r.flaky]

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "prompt": self.prompt_slug,
            "test": self.test_name,
            "version": self.version,
            "version_hash": self.version_hash,
            "rows": len(self.rows),
            "repeats": self.repeats,
            "passes": self.passes,
            "trials": self.trials,
            "errors": self.errors,
            "pass_rate": self.rate,
            "pass_rate_interval": [low, high],
            "pass_hat_k": self.pass_hat_k,
            "flaky_rows": [r.row_name for r in self.flaky],
            "row_stats": [r.as_dict(self.repeats) for r in self.rows],
        }


def row_stats(outcomes: Iterable[TestRunRow]) -> list[RowStats]:
    """Group test runs by test × version × row (in first-seen order) and count their plays."""
    groups: dict[tuple[str, str, int, str, str, str], list[TestRunRow]] = {}
    for o in outcomes:
        key = (o.prompt_slug, o.test_name, o.version, o.version_hash, o.dataset, o.row_name)
        groups.setdefault(key, []).append(o)
    return [_row(key, plays) for key, plays in groups.items()]


def _row(key: tuple[str, str, int, str, str, str], plays: list[TestRunRow]) -> RowStats:
    scores: dict[str, list[float]] = {}
    for play in plays:
        for name, score in play.scores.items():
            if score is not None:
                scores.setdefault(name, []).append(score)
    tokens = [p.total_tokens for p in plays if p.total_tokens is not None]
    costs = [p.cost_usd for p in plays]
    return RowStats(
        *key,
        plays=len(plays),
        passes=sum(p.status == "passed" for p in plays),
        failures=sum(p.status == "failed" for p in plays),
        errors=sum(p.status == "error" for p in plays),
        scores={name: sum(values) / len(values) for name, values in scores.items()},
        tokens=sum(tokens) / len(tokens) if tokens else None,
        cost_usd=None if None in costs else sum(c or 0.0 for c in costs) / len(costs),
    )


def version_stats(outcomes: Iterable[TestRunRow]) -> list[VersionStats]:
    """Every test × version of ``outcomes``, sorted by prompt, test and version number."""
    groups: dict[tuple[str, str, int, str], list[RowStats]] = {}
    for row in row_stats(outcomes):
        key = (row.prompt_slug, row.test_name, row.version, row.version_hash)
        groups.setdefault(key, []).append(row)
    return [VersionStats(*key, rows=tuple(rows)) for key, rows in sorted(groups.items())]


Flip = Literal["pass→fail", "pass→error", "pass→flaky", "fail→pass"]


@dataclass(frozen=True)
class Comparison:
    """Version ``b`` against version ``a`` of one test, paired on the rows both played."""

    a: VersionStats
    b: VersionStats
    pairs: tuple[tuple[RowStats, RowStats], ...]
    only_a: tuple[RowStats, ...]
    only_b: tuple[RowStats, ...]
    # The same version number with other content (a version edited in place between runs).
    content_changed: bool = False

    @property
    def label(self) -> str:
        return self.b.label

    @property
    def difference(self) -> PairedDifference | None:
        """b − a in pass rate, paired on rows with a verdict in both; None without such rows."""
        rates = [(ra.rate, rb.rate) for ra, rb in self.pairs]
        paired = [(x, y) for x, y in rates if x is not None and y is not None]
        return paired_difference(paired) if paired else None

    @property
    def flips(self) -> dict[Flip, list[str]]:
        """Rows whose verdict changed: passed → failed, error or flaky; failed → passed."""
        flips: dict[Flip, list[str]] = {
            "pass→fail": [],
            "pass→error": [],
            "pass→flaky": [],
            "fail→pass": [],
        }
        names: dict[tuple[str, str], Flip] = {
            ("passed", "failed"): "pass→fail",
            ("passed", "error"): "pass→error",
            ("passed", "flaky"): "pass→flaky",
            ("failed", "passed"): "fail→pass",
        }
        for ra, rb in self.pairs:
            flip = names.get((ra.verdict, rb.verdict))
            if flip is not None:
                flips[flip].append(rb.row_name)
        return flips

    @property
    def row_drops(self) -> list[tuple[RowStats, RowStats, float]]:
        """Rows whose own pass rate fell beyond chance over their plays (one-sided Fisher
        exact test, p < ``SIGN_TEST_ALPHA``), with the p-value: 5/5 → 1/5 is one (p = 0.024),
        5/5 → 3/5 is not (p = 0.22). One play a row can never show one: flips do then."""
        drops = []
        for ra, rb in self.pairs:
            p = fisher_exact_drop(ra.passes, ra.trials, rb.passes, rb.trials)
            if p < SIGN_TEST_ALPHA:
                drops.append((ra, rb, p))
        return drops

    @property
    def still_failing(self) -> list[str]:
        return [rb.row_name for ra, rb in self.pairs if ra.verdict == rb.verdict == "failed"]

    @property
    def score_differences(self) -> dict[str, float]:
        """Per evaluator: mean over paired rows of b's mean score − a's."""
        deltas: dict[str, list[float]] = {}
        for ra, rb in self.pairs:
            for name, score in rb.scores.items():
                if name in ra.scores:
                    deltas.setdefault(name, []).append(score - ra.scores[name])
        return {name: sum(values) / len(values) for name, values in deltas.items()}

    def per_conversation(self, side: Literal["a", "b"]) -> tuple[float | None, float | None]:
        """Mean tokens and cost per conversation of one side, over the paired rows."""
        rows = [pair[0 if side == "a" else 1] for pair in self.pairs]
        tokens = [r.tokens for r in rows if r.tokens is not None]
        costs = [r.cost_usd for r in rows]
        mean_tokens = sum(tokens) / len(tokens) if tokens else None
        mean_cost = None if None in costs or not costs else sum(costs) / len(costs)  # type: ignore[arg-type]
        return mean_tokens, mean_cost

    @property
    def significant(self) -> bool:
        """Whether b's pass rate differs from a's beyond noise: the bootstrap interval excludes
        0 *and* the exact sign test over rows agrees (p < ``SIGN_TEST_ALPHA``).

        A percentile bootstrap over a handful of rows gives intervals that are too narrow; the
        exact test guards them, so fewer than 6 rows can never make a difference significant
        (only flipped rows can then show a regression).
        """
        difference = self.difference
        return (
            difference is not None
            and difference.significant
            and difference.sign_test_p < SIGN_TEST_ALPHA
        )

    @property
    def regressions(self) -> list[str]:
        """What makes the gate fail: rows that stopped passing, a significant pass-rate drop."""
        flips = self.flips
        found = [
            f"{row}: passed before, {flip.split('→')[1]}s now"
            for flip in ("pass→fail", "pass→error")
            for row in flips[flip]  # type: ignore[index]
        ]
        flipped = set(flips["pass→fail"]) | set(flips["pass→error"])
        found += [
            f"{rb.row_name}: passed {ra.passes}/{ra.trials} before, {rb.passes}/{rb.trials} now "
            f"(Fisher exact p={p:.2g})"
            for ra, rb, p in self.row_drops
            if rb.row_name not in flipped
        ]
        difference = self.difference
        if difference is not None and self.significant and difference.difference < 0:
            found.append(
                f"pass rate dropped {points(difference.difference)} "
                f"(95% CI {points(difference.low)} to {points(difference.high)}) "
                f"over {difference.rows} rows"
            )
        return found

    def as_dict(self) -> dict[str, Any]:
        difference = self.difference
        tokens_a, cost_a = self.per_conversation("a")
        tokens_b, cost_b = self.per_conversation("b")
        return {
            "prompt": self.b.prompt_slug,
            "test": self.b.test_name,
            "a": {"version": self.a.version, "version_hash": self.a.version_hash},
            "b": {"version": self.b.version, "version_hash": self.b.version_hash},
            "content_changed": self.content_changed,
            "paired_rows": len(self.pairs),
            "pass_rate_a": difference.mean_a if difference else None,
            "pass_rate_b": difference.mean_b if difference else None,
            "difference": difference.difference if difference else None,
            "difference_interval": [difference.low, difference.high] if difference else None,
            "interval_method": "paired bootstrap over rows, 2000 resamples, 95%",
            "sign_test_p": difference.sign_test_p if difference else None,
            "significant": self.significant,
            "flips": self.flips,
            "still_failing": self.still_failing,
            "score_differences": self.score_differences,
            "tokens_per_conversation": [tokens_a, tokens_b],
            "cost_usd_per_conversation": [cost_a, cost_b],
            "only_in_a": [r.row_name for r in self.only_a],
            "only_in_b": [r.row_name for r in self.only_b],
            "regressions": self.regressions,
        }


def points(fraction: float) -> str:
    """A pass-rate difference in percentage points: ``+12.5 pts``, ``−40 pts``."""
    value = 100 * fraction
    if abs(value) < 0.05:
        return "0 pts"
    sign = "+" if value > 0 else "−"
    return f"{sign}{abs(value):.0f} pts" if abs(value) >= 10 else f"{sign}{abs(value):.1f} pts"


def pair_rows(a: VersionStats, b: VersionStats, *, content_changed: bool = False) -> Comparison:
    """Match ``a``'s and ``b``'s rows by dataset and row name."""
    by_key = {(r.dataset, r.row_name): r for r in a.rows}
    b_keys = {(r.dataset, r.row_name) for r in b.rows}
    pairs = tuple(
        (by_key[(r.dataset, r.row_name)], r) for r in b.rows if (r.dataset, r.row_name) in by_key
    )
    return Comparison(
        a=a,
        b=b,
        pairs=pairs,
        only_a=tuple(r for r in a.rows if (r.dataset, r.row_name) not in b_keys),
        only_b=tuple(r for r in b.rows if (r.dataset, r.row_name) not in by_key),
        content_changed=content_changed,
    )


def compare_versions(stats: Sequence[VersionStats]) -> list[Comparison]:
    """Within one run: each later version of a test against its lowest-numbered one."""
    by_test: dict[tuple[str, str], list[VersionStats]] = {}
    for version in stats:
        by_test.setdefault((version.prompt_slug, version.test_name), []).append(version)
    comparisons = []
    for versions in by_test.values():
        reference, *others = sorted(versions, key=lambda v: v.version)
        comparisons += [pair_rows(reference, other) for other in others]
    return comparisons


@dataclass(frozen=True)
class RunComparison:
    """A run against a baseline run: matched test versions, and what only one of them has."""

    comparisons: tuple[Comparison, ...]
    only_baseline: tuple[VersionStats, ...]
    only_current: tuple[VersionStats, ...]
    baseline_id: str = ""
    current_id: str = ""

    @property
    def regressions(self) -> list[str]:
        return [f"{c.label} v{c.b.version} {r}" for c in self.comparisons for r in c.regressions]

    @property
    def still_failing(self) -> list[str]:
        return [
            f"{c.label} v{c.b.version} {row}" for c in self.comparisons for row in c.still_failing
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline_id,
            "current": self.current_id,
            "comparisons": [c.as_dict() for c in self.comparisons],
            "only_in_baseline": [_version_ref(v) for v in self.only_baseline],
            "only_in_current": [_version_ref(v) for v in self.only_current],
            "regressions": self.regressions,
            "still_failing": self.still_failing,
            "regressed": bool(self.regressions),
        }


def _version_ref(v: VersionStats) -> dict[str, Any]:
    return {"prompt": v.prompt_slug, "test": v.test_name, "version": v.version, "rows": len(v.rows)}


def compare_runs(
    baseline: Sequence[VersionStats],
    current: Sequence[VersionStats],
    *,
    baseline_id: str = "",
    current_id: str = "",
) -> RunComparison:
    """Match each current test version to the baseline's: by content hash first (the same
    version, perhaps renumbered), else by version number (``content_changed``: edited in place).
    """
    unmatched = list(baseline)
    matches: dict[int, tuple[VersionStats, bool]] = {}  # current index → (baseline, changed)
    for changed in (False, True):  # every content match first, then numbers for the rest
        for index, version in enumerate(current):
            if index in matches:
                continue
            match = next(
                (
                    b
                    for b in unmatched
                    if (b.prompt_slug, b.test_name) == (version.prompt_slug, version.test_name)
                    and (
                        b.version == version.version
                        if changed
                        else b.version_hash == version.version_hash
                    )
                ),
                None,
            )
            if match is not None:
                unmatched.remove(match)
                matches[index] = (match, changed)
    comparisons = [
        pair_rows(matches[i][0], version, content_changed=matches[i][1])
        for i, version in enumerate(current)
        if i in matches
    ]
    only_current = [version for i, version in enumerate(current) if i not in matches]
    return RunComparison(
        comparisons=tuple(comparisons),
        only_baseline=tuple(unmatched),
        only_current=tuple(only_current),
        baseline_id=baseline_id,
        current_id=current_id,
    )


@dataclass
class Evidence:
    """Everything the reports show about a run beyond its test runs."""

    versions: list[VersionStats] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    baseline: RunComparison | None = None

    @classmethod
    def of(cls, outcomes: Sequence[TestRunRow]) -> Evidence:
        versions = version_stats(outcomes)
        return cls(versions=versions, comparisons=compare_versions(versions))

    @property
    def repeated(self) -> bool:
        return any(v.repeats > 1 for v in self.versions)

    @property
    def flaky_rows(self) -> set[tuple[str, str, int, str, str]]:
        """(prompt, test, version, dataset, row) of every flaky row, for the JUnit properties."""
        return {
            (r.prompt_slug, r.test_name, r.version, r.dataset, r.row_name)
            for v in self.versions
            for r in v.flaky
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "versions": [v.as_dict() for v in self.versions],
            "comparisons": [c.as_dict() for c in self.comparisons],
            "baseline": self.baseline.as_dict() if self.baseline else None,
        }
