"""Evidence over repeated plays: rows, versions, comparisons, the gate — against hand numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from prompttracker.config.loader import load_project
from prompttracker.engine import plan
from prompttracker.errors import ConfigError
from prompttracker.evidence import (
    Evidence,
    VersionStats,
    compare_runs,
    compare_versions,
    row_stats,
    version_stats,
)
from prompttracker.results import TestRunSummary
from tests.project_factory import write_project

# z for 95% = 1.959964, z² = 3.841459 throughout (as in test_stats.py).

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def play(
    status: str,
    *,
    row: str = "r1",
    prompt: str = "p",
    test: str = "t",
    version: int = 1,
    version_hash: str = "",
    dataset: str = "d",
    repeat: int = 0,
    repeats: int = 1,
    scores: dict[str, float | None] | None = None,
    total_tokens: int | None = None,
    cost_usd: float | None = None,
) -> TestRunSummary:
    """One test run's summary line; the hash defaults to one per version number."""
    return TestRunSummary(
        test_name=test,
        prompt_slug=prompt,
        version=version,
        version_hash=version_hash or f"h{version}",
        dataset=dataset,
        row_name=row,
        repeat=repeat,
        repeats=repeats,
        status=status,
        scores=scores or {},
        total_tokens=total_tokens,
        cost_usd=cost_usd,
        duration_ms=1.0,
        started_at=WHEN,
        finished_at=WHEN,
    )


def plays(statuses: str, **fields) -> list[TestRunSummary]:
    """One play per letter (p passed, f failed, e error) of one row, numbered as repeats."""
    names = {"p": "passed", "f": "failed", "e": "error"}
    n = len(statuses)
    return [play(names[s], repeat=i, repeats=n, **fields) for i, s in enumerate(statuses)]


def one_version(rows: dict[str, str], **fields) -> VersionStats:
    """The VersionStats of one test version whose rows play the given statuses."""
    outcomes = [o for row, statuses in rows.items() for o in plays(statuses, row=row, **fields)]
    [stats] = version_stats(outcomes)
    return stats


# --- planning repeats -----------------------------------------------------------------------

REPEAT_PROMPT = """\
name: Billing support
versions:
  - version: 1
    status: active
    system_prompt: "You help {{ company }} customers."
    user_prompt: "{{ opening_message }}"
    model_config: { provider: openai, api: chat_completions, model: gpt-4o-mini }
tests:
  - name: thrice
    dataset: billing
    repeat: REPEAT
    evaluators:
      - type: keyword
        config: { required_keywords: [refund] }
  - name: once
    dataset: billing
    evaluators:
      - type: keyword
        config: { required_keywords: [refund] }
"""

TWO_ROWS = """\
mode: single_turn
rows:
  - name: first
    variables: { company: Acme, opening_message: "Charged twice" }
  - name: second
    variables: { company: Acme, opening_message: "Refund please" }
"""


def repeat_project(tmp_path, repeat: int = 3):
    return write_project(
        tmp_path,
        prompts={"billing_support": REPEAT_PROMPT.replace("REPEAT", str(repeat))},
        datasets={"billing": TWO_ROWS},
    )


def test_plan_plays_each_row_repeat_times_consecutively(tmp_path):
    planned = plan(load_project(repeat_project(tmp_path)))
    # thrice: 2 rows × 3 plays = 6, then once: 2 rows × 1 play = 2.
    assert len(planned) == 8
    thrice, once = planned[:6], planned[6:]
    assert [(p.test.name, p.row.name, p.repeat, p.repeats) for p in thrice] == [
        ("thrice", "first", 0, 3),
        ("thrice", "first", 1, 3),
        ("thrice", "first", 2, 3),
        ("thrice", "second", 0, 3),
        ("thrice", "second", 1, 3),
        ("thrice", "second", 2, 3),
    ]
    assert [p.label for p in thrice[:3]] == [
        "billing_support::thrice v1 [first] #1",
        "billing_support::thrice v1 [first] #2",
        "billing_support::thrice v1 [first] #3",
    ]
    assert thrice[5].label == "billing_support::thrice v1 [second] #3"
    assert [(p.test.name, p.row.name, p.repeat, p.repeats) for p in once] == [
        ("once", "first", 0, 1),
        ("once", "second", 0, 1),
    ]
    assert [p.label for p in once] == [
        "billing_support::once v1 [first]",
        "billing_support::once v1 [second]",
    ]


def test_plan_repeat_option_overrides_every_test(tmp_path):
    planned = plan(load_project(repeat_project(tmp_path)), repeat=2)
    # Both tests: 2 rows × 2 plays = 4 each.
    assert [(p.test.name, p.row.name, p.repeat, p.repeats) for p in planned] == [
        ("thrice", "first", 0, 2),
        ("thrice", "first", 1, 2),
        ("thrice", "second", 0, 2),
        ("thrice", "second", 1, 2),
        ("once", "first", 0, 2),
        ("once", "first", 1, 2),
        ("once", "second", 0, 2),
        ("once", "second", 1, 2),
    ]
    assert planned[5].label == "billing_support::once v1 [first] #2"


@pytest.mark.parametrize(
    ("repeat", "bound"),
    [(0, "greater than or equal to 1"), (101, "less than or equal to 100")],
)
def test_repeat_out_of_bounds_is_rejected_at_load(tmp_path, repeat, bound):
    repeat_project(tmp_path, repeat)
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path)
    assert info.value.exit_code == 2
    assert "prompts/billing_support.yaml: line 11: tests[0].repeat" in info.value.message
    assert bound in info.value.message


# --- row statistics -------------------------------------------------------------------------


def mixed_row_plays() -> list[TestRunSummary]:
    """5 plays of r1: passed ×3, failed, error, with scores, tokens and costs."""
    statuses = ["passed", "passed", "passed", "failed", "error"]
    keyword = [100.0, 100.0, 100.0, 0.0, None]  # the error play's keyword check errored
    length = [80.0, 60.0, 40.0, 20.0, 50.0]
    tokens = [100, 200, 300, 400, None]
    costs = [0.01, 0.02, 0.03, 0.04, 0.0]
    return [
        play(
            status,
            repeat=i,
            repeats=5,
            scores={"keyword": keyword[i], "length": length[i]},
            total_tokens=tokens[i],
            cost_usd=costs[i],
        )
        for i, status in enumerate(statuses)
    ]


def test_row_with_passes_failures_and_an_error():
    [row] = row_stats(mixed_row_plays())
    assert (row.plays, row.passes, row.failures, row.errors) == (5, 3, 1, 1)
    assert row.trials == 4  # 3 + 1; the error is no verdict
    assert row.rate == 0.75  # 3 / 4
    assert row.flaky is True
    assert row.verdict == "flaky"
    assert row.pass_hat(4) == 0.0  # C(3,4)/C(4,4) = 0/1
    assert row.pass_at(2) == 1.0  # 1 - C(1,2)/C(4,2) = 1 - 0/6
    assert row.pass_hat(2) == 0.5  # C(3,2)/C(4,2) = 3/6
    assert row.pass_at(1) == 0.75  # 1 - C(1,1)/C(4,1) = 1 - 1/4
    assert row.pass_at(5) is None  # only 4 trials
    # Wilson 3/4: denom = 1 + 3.841459/4 = 1.960365;
    # center = (0.75 + 3.841459/8) / denom = 1.230182 / 1.960365 = 0.627527;
    # half = 1.959964 * sqrt(0.1875/4 + 3.841459/64) / denom
    #      = 1.959964 * sqrt(0.106898) / 1.960365 = 0.640816 / 1.960365 = 0.326886
    # → (0.300641, 0.954413).
    low, high = row.interval
    assert round(low, 4) == 0.3006
    assert round(high, 4) == 0.9544
    # keyword skips the errored None: (100 + 100 + 100 + 0) / 4 = 75;
    # length over all five: (80 + 60 + 40 + 20 + 50) / 5 = 50.
    assert row.scores == {"keyword": 75.0, "length": 50.0}
    assert row.tokens == 250.0  # (100 + 200 + 300 + 400) / 4, the None left out
    assert row.cost_usd == pytest.approx(0.02)  # (0.01 + 0.02 + 0.03 + 0.04 + 0) / 5


def test_row_as_dict_reports_k():
    [row] = row_stats(mixed_row_plays())
    data = row.as_dict(2)
    assert data["k"] == 2
    assert data["pass_at_k"] == 1.0
    assert data["pass_hat_k"] == 0.5
    assert data["verdict"] == "flaky"
    assert data["pass_rate"] == 0.75
    assert data["tokens_per_play"] == 250.0
    json.dumps(data)


def test_all_error_row_has_no_rate():
    [row] = row_stats(plays("eee"))
    assert row.trials == 0
    assert row.errors == 3
    assert row.rate is None
    assert row.verdict == "error"
    assert row.flaky is False
    assert row.interval == (0.0, 1.0)
    assert row.pass_hat(1) is None  # 0 trials < k
    assert row.pass_at(1) is None
    assert row.scores == {}
    assert row.tokens is None


def test_all_pass_row_is_not_flaky():
    [row] = row_stats(plays("ppp"))
    assert row.rate == 1.0
    assert row.flaky is False
    assert row.verdict == "passed"
    assert row.pass_hat(3) == 1.0  # C(3,3)/C(3,3)
    # Wilson 3/3: denom = 1 + 3.841459/3 = 2.280486; center = (1 + 0.640243)/denom = 0.719252;
    # half = 1.959964 * sqrt(3.841459/36) / denom = 0.640242 / 2.280486 = 0.280748 → 0.438504.
    low, high = row.interval
    assert round(low, 4) == 0.4385
    assert high == 1.0


def test_all_fail_row_is_failed_not_flaky():
    [row] = row_stats(plays("ff"))
    assert row.verdict == "failed"
    assert row.flaky is False
    assert row.rate == 0.0
    assert row.pass_at(2) == 0.0  # 1 - C(2,2)/C(2,2)


def test_cost_is_unknown_when_any_play_cost_is_unknown():
    outcomes = [
        play("passed", repeat=0, repeats=2, cost_usd=0.01, total_tokens=10),
        play("passed", repeat=1, repeats=2, cost_usd=None, total_tokens=30),
    ]
    [row] = row_stats(outcomes)
    assert row.cost_usd is None
    assert row.tokens == 20.0  # (10 + 30) / 2


def test_rows_group_by_key_in_first_seen_order():
    outcomes = [
        play("passed", row="b"),
        play("failed", row="a"),
        play("failed", row="b", repeat=1),
        play("passed", row="a", version=2),
        play("passed", row="a", dataset="other"),
    ]
    rows = row_stats(outcomes)
    assert [(r.row_name, r.version, r.dataset, r.plays) for r in rows] == [
        ("b", 1, "d", 2),
        ("a", 1, "d", 1),
        ("a", 2, "d", 1),
        ("a", 1, "other", 1),
    ]
    assert rows[0].verdict == "flaky"  # b: passed then failed


# --- version statistics ---------------------------------------------------------------------


def test_version_stats_pool_rows_and_average_pass_hat_k():
    stats = one_version({"A": "pppfe", "B": "ppppp", "C": "ppfff", "D": "pp"})
    assert stats.label == "p::t"
    assert stats.repeats == 5  # the most plays of any row
    # passes 3 + 5 + 2 + 2 = 12, trials 4 + 5 + 5 + 2 = 16, errors 1.
    assert (stats.passes, stats.trials, stats.errors) == (12, 16, 1)
    assert stats.rate == 0.75
    # Wilson 12/16: denom = 1 + 3.841459/16 = 1.240091;
    # center = (0.75 + 0.120046) / denom = 0.701599;
    # half = 1.959964 * sqrt(0.1875/16 + 3.841459/1024) / denom
    #      = 1.959964 * sqrt(0.015470) / 1.240091 = 0.243778 / 1.240091 = 0.196582
    # → (0.505017, 0.898181).
    low, high = stats.interval
    assert round(low, 4) == 0.5050
    assert round(high, 4) == 0.8982
    # pass^5 only where a row has 5 verdicts: A has 4, D has 2 → left out;
    # B: C(5,5)/C(5,5) = 1, C: C(2,5)/C(5,5) = 0 → mean 0.5.
    assert stats.pass_hat_k == 0.5
    assert [r.row_name for r in stats.flaky] == ["A", "C"]
    data = stats.as_dict()
    assert data["flaky_rows"] == ["A", "C"]
    assert data["repeats"] == 5
    assert data["rows"] == 4
    assert [r["k"] for r in data["row_stats"]] == [5, 5, 5, 5]
    assert [r["pass_hat_k"] for r in data["row_stats"]] == [None, 1.0, 0.0, None]
    json.dumps(data)


def test_version_stats_without_a_row_of_k_verdicts_has_no_pass_hat_k():
    stats = one_version({"A": "ppe", "B": "eee"})
    assert stats.repeats == 3
    assert stats.pass_hat_k is None  # A has 2 verdicts, B none: neither reaches K = 3
    assert stats.rate == 1.0  # 2 / 2


def test_version_stats_sorted_by_prompt_test_and_version():
    outcomes = [
        play("passed", test="t", version=2),
        play("passed", test="t", version=1),
        play("passed", test="s", version=3),
        play("passed", prompt="a", test="z", version=9),
    ]
    assert [(v.prompt_slug, v.test_name, v.version) for v in version_stats(outcomes)] == [
        ("a", "z", 9),
        ("p", "s", 3),
        ("p", "t", 1),
        ("p", "t", 2),
    ]


# --- comparisons within one run -------------------------------------------------------------


def within_run_outcomes() -> list[TestRunSummary]:
    """v1 and v2 of p::t over r1..r4 (one play each), and p::solo with only v1.

    row  v1       v2       keyword v1→v2   length v1→v2   tokens v1/v2   cost v1/v2
    r1   passed   failed   100 → 0         50 → 60        100 / 200      0.01 / 0.02
    r2   failed   passed   0 → 100         50 → 70        100 / 220      0.01 / 0.02
    r3   passed   error    100 → None      50 → 80        100 / None     0.01 / None
    r4   failed   failed   20 → 40         50 → 90        100 / 240      0.01 / 0.02
    """
    v1 = [
        ("r1", "passed", 100.0),
        ("r2", "failed", 0.0),
        ("r3", "passed", 100.0),
        ("r4", "failed", 20.0),
    ]
    v2 = [
        ("r1", "failed", 0.0, 60.0, 200, 0.02),
        ("r2", "passed", 100.0, 70.0, 220, 0.02),
        ("r3", "error", None, 80.0, None, None),
        ("r4", "failed", 40.0, 90.0, 240, 0.02),
    ]
    outcomes = [
        play(
            status,
            row=row,
            version=1,
            scores={"keyword": keyword, "length": 50.0},
            total_tokens=100,
            cost_usd=0.01,
        )
        for row, status, keyword in v1
    ]
    outcomes += [
        play(
            status,
            row=row,
            version=2,
            scores={"keyword": keyword, "length": length},
            total_tokens=tokens,
            cost_usd=cost,
        )
        for row, status, keyword, length, tokens, cost in v2
    ]
    outcomes.append(play("failed", test="solo", row="r1"))
    return outcomes


def test_compare_versions_flips_still_failing_and_difference():
    comparisons = compare_versions(version_stats(within_run_outcomes()))
    [comparison] = comparisons  # p::solo has one version: nothing to compare
    assert (comparison.a.version, comparison.b.version) == (1, 2)
    assert comparison.label == "p::t"
    assert comparison.flips == {
        "pass→fail": ["r1"],
        "pass→error": ["r3"],
        "pass→flaky": [],
        "fail→pass": ["r2"],
    }
    assert comparison.still_failing == ["r4"]
    assert comparison.only_a == () and comparison.only_b == ()
    # Paired rates with a verdict in both: r1 (1, 0), r2 (0, 1), r4 (0, 0); r3 (1, None) out.
    # mean_a = 1/3, mean_b = 1/3, difference = (-1 + 1 + 0) / 3 = 0;
    # sign test: 1 better, 1 worse → 2 * (C(2,0) + C(2,1)) / 4 = 1.5 → capped at 1.
    difference = comparison.difference
    assert difference is not None
    assert difference.rows == 3
    assert difference.mean_a == pytest.approx(1 / 3)
    assert difference.mean_b == pytest.approx(1 / 3)
    assert difference.difference == pytest.approx(0.0)
    assert (difference.better, difference.worse) == (1, 1)
    assert difference.sign_test_p == 1.0
    assert comparison.significant is False
    # keyword: r3 has no b score (errored) → r1 -100, r2 +100, r4 +20 → 20/3;
    # length: 10, 20, 30, 40 → 25.
    assert comparison.score_differences == pytest.approx({"keyword": 20 / 3, "length": 25.0})
    # a: tokens 100 each, cost 0.01 each; b: tokens (200 + 220 + 240) / 3 = 220, r3 cost unknown.
    tokens_a, cost_a = comparison.per_conversation("a")
    assert tokens_a == 100.0
    assert cost_a == pytest.approx(0.01)
    assert comparison.per_conversation("b") == (220.0, None)
    assert comparison.regressions == [
        "r1: passed before, fails now",
        "r3: passed before, errors now",
    ]
    data = comparison.as_dict()
    assert data["paired_rows"] == 4
    assert data["tokens_per_conversation"] == [100.0, 220.0]
    assert data["regressions"] == comparison.regressions
    json.dumps(data)


def test_compare_versions_takes_the_lowest_version_as_reference():
    stats = version_stats(within_run_outcomes())
    v1, v2 = (s for s in stats if s.test_name == "t")
    [comparison] = compare_versions([v2, v1])
    assert (comparison.a.version, comparison.b.version) == (1, 2)
    assert comparison.flips["pass→fail"] == ["r1"]


def test_compare_versions_compares_each_later_version_with_the_first():
    stats = [
        one_version({"r1": "p"}, version=3),
        one_version({"r1": "f"}, version=1),
        one_version({"r1": "p"}, version=2),
    ]
    # Each later version against v1, in version order whatever the input order.
    pairs = [(c.a.version, c.b.version) for c in compare_versions(stats)]
    assert pairs == [(1, 2), (1, 3)]


def test_single_version_gives_no_comparison():
    assert compare_versions([one_version({"r1": "p", "r2": "f"})]) == []


def test_rows_played_by_one_version_only_are_left_out_of_the_pairs():
    a = one_version({"r1": "p", "r2": "p"}, version=1)
    b = one_version({"r2": "f", "r3": "p"}, version=2)
    [comparison] = compare_versions([a, b])
    assert [(ra.row_name, rb.row_name) for ra, rb in comparison.pairs] == [("r2", "r2")]
    assert [r.row_name for r in comparison.only_a] == ["r1"]
    assert [r.row_name for r in comparison.only_b] == ["r3"]
    assert comparison.as_dict()["only_in_a"] == ["r1"]
    assert comparison.as_dict()["only_in_b"] == ["r3"]


def test_comparison_without_rows_with_verdicts_has_no_difference():
    a = one_version({"r1": "p"}, version=1)
    b = one_version({"r1": "e"}, version=2)
    [comparison] = compare_versions([a, b])
    assert comparison.difference is None
    assert comparison.significant is False
    assert comparison.regressions == ["r1: passed before, errors now"]
    data = comparison.as_dict()
    assert data["difference"] is None and data["sign_test_p"] is None
    json.dumps(data)


# --- significance ---------------------------------------------------------------------------


def test_eight_rows_all_dropping_are_a_significant_regression():
    rows = [f"r{i}" for i in range(1, 9)]
    a = one_version(dict.fromkeys(rows, "p"), version=1)
    b = one_version(dict.fromkeys(rows, "f"), version=2)
    [comparison] = compare_versions([a, b])
    difference = comparison.difference
    assert difference is not None
    # Every per-row difference is -1, so every resample mean is -1: interval (-1, -1) < 0.
    assert difference.difference == -1.0
    assert (difference.low, difference.high) == (-1.0, -1.0)
    # Sign test: 0 better, 8 worse → 2 * C(8,0) / 2**8 = 2/256 = 0.0078 < 0.05.
    assert difference.sign_test_p == pytest.approx(2 / 2**8)
    assert comparison.significant is True
    assert comparison.regressions == [f"{row}: passed before, fails now" for row in rows] + [
        "pass rate dropped −100 pts (95% CI −100 pts to −100 pts) over 8 rows"
    ]


def test_three_rows_all_dropping_are_not_significant():
    rows = ["r1", "r2", "r3"]
    a = one_version(dict.fromkeys(rows, "p"), version=1)
    b = one_version(dict.fromkeys(rows, "f"), version=2)
    [comparison] = compare_versions([a, b])
    difference = comparison.difference
    assert difference is not None
    assert difference.high < 0  # the bootstrap alone says "below zero" …
    assert difference.significant is True
    # … but the sign test: 2 * C(3,0) / 2**3 = 0.25 ≥ 0.05.
    assert difference.sign_test_p == pytest.approx(0.25)
    assert comparison.significant is False
    assert comparison.regressions == [
        "r1: passed before, fails now",
        "r2: passed before, fails now",
        "r3: passed before, fails now",
    ]


def test_a_row_whose_own_plays_drop_beyond_chance_regressed_even_if_still_flaky():
    # r1: 5/5 → 1/5, Fisher one-sided p = C(6,5)·C(4,0)/C(10,5) = 6/252 ≈ 0.024 < 0.05.
    # r2: 5/5 → 3/5, p = C(8,5)/C(10,5) = 56/252 ≈ 0.22: could be chance, not a regression.
    # r3: 4/5 → 0/5, p = C(4,4)·C(6,1)/C(10,5) = 6/252: flaky → failed, still a regression.
    a = one_version({"r1": "ppppp", "r2": "ppppp", "r3": "ppppf"}, version=1)
    b = one_version({"r1": "pffff", "r2": "pppff", "r3": "fffff"}, version=2)
    [comparison] = compare_versions([a, b])
    assert comparison.flips["pass→flaky"] == ["r1", "r2"]
    assert [(rb.row_name, round(p, 4)) for _, rb, p in comparison.row_drops] == [
        ("r1", round(6 / 252, 4)),
        ("r3", round(6 / 252, 4)),
    ]
    assert comparison.regressions == [
        "r1: passed 5/5 before, 1/5 now (Fisher exact p=0.024)",
        "r3: passed 4/5 before, 0/5 now (Fisher exact p=0.024)",
    ]


def test_a_significant_rise_is_not_a_regression():
    rows = [f"r{i}" for i in range(1, 9)]
    a = one_version(dict.fromkeys(rows, "f"), version=1)
    b = one_version(dict.fromkeys(rows, "p"), version=2)
    [comparison] = compare_versions([a, b])
    assert comparison.significant is True  # +1 on every row, p = 2/256
    assert comparison.regressions == []
    assert comparison.flips["fail→pass"] == rows


# --- comparisons across runs ----------------------------------------------------------------


def test_compare_runs_matches_by_hash_then_by_number():
    baseline = [
        one_version({"r1": "p"}, version=1, version_hash="h1"),
        one_version({"r1": "p", "r2": "p"}, version=2, version_hash="h2-old"),
        one_version({"r1": "p", "r2": "f"}, version=3, version_hash="h3"),
    ]
    current = [
        one_version({"r1": "p", "r2": "p"}, version=2, version_hash="h2-new"),
        one_version({"r1": "f", "r3": "p"}, version=4, version_hash="h3"),
        one_version({"r1": "p"}, version=5, version_hash="h5"),
    ]
    run = compare_runs(baseline, current, baseline_id="base", current_id="now")
    matched = [(c.a.version, c.b.version, c.content_changed) for c in run.comparisons]
    # v2 → v2 by number (other hash: edited in place); baseline v3 → v4 by hash (renumbered).
    assert matched == [(2, 2, True), (3, 4, False)]
    assert [v.version for v in run.only_baseline] == [1]
    assert [v.version for v in run.only_current] == [5]
    renumbered = run.comparisons[1]
    assert [(ra.row_name, rb.row_name) for ra, rb in renumbered.pairs] == [("r1", "r1")]
    assert [r.row_name for r in renumbered.only_a] == ["r2"]
    assert [r.row_name for r in renumbered.only_b] == ["r3"]
    assert run.regressions == ["p::t v4 r1: passed before, fails now"]
    assert run.still_failing == []
    data = run.as_dict()
    json.loads(json.dumps(data))
    assert data["regressed"] is True
    assert data["baseline"] == "base" and data["current"] == "now"
    assert data["only_in_baseline"] == [{"prompt": "p", "test": "t", "version": 1, "rows": 1}]
    assert data["only_in_current"] == [{"prompt": "p", "test": "t", "version": 5, "rows": 1}]
    assert [c["content_changed"] for c in data["comparisons"]] == [True, False]


def test_compare_runs_prefers_a_hash_match_over_a_number_match_of_an_earlier_version():
    # Baseline v3 was renumbered to v4 and a new v3 was written. Matching "by content hash
    # first" must pair baseline v3 with current v4 (same content), however the current
    # versions are ordered, and leave the new v3 only in the current run.
    baseline = [one_version({"r1": "p"}, version=3, version_hash="h3")]
    current = [
        one_version({"r1": "f"}, version=3, version_hash="h-new"),
        one_version({"r1": "p"}, version=4, version_hash="h3"),
    ]
    run = compare_runs(baseline, current)
    assert [(c.a.version, c.b.version, c.content_changed) for c in run.comparisons] == [
        (3, 4, False)
    ]
    assert [v.version for v in run.only_current] == [3]
    assert run.only_baseline == ()


def test_compare_runs_only_matches_the_same_test():
    baseline = [one_version({"r1": "p"}, test="s", version=1, version_hash="h1")]
    current = [one_version({"r1": "p"}, test="t", version=1, version_hash="h1")]
    run = compare_runs(baseline, current)
    assert run.comparisons == ()
    assert [v.test_name for v in run.only_baseline] == ["s"]
    assert [v.test_name for v in run.only_current] == ["t"]
    assert run.as_dict()["regressed"] is False


def test_compare_runs_reports_still_failing_rows_without_regressing():
    baseline = [one_version({"r1": "f", "r2": "p"}, version=1)]
    current = [one_version({"r1": "f", "r2": "p"}, version=1)]
    run = compare_runs(baseline, current)
    assert run.still_failing == ["p::t v1 r1"]
    assert run.regressions == []
    assert run.as_dict()["regressed"] is False


# --- Evidence -------------------------------------------------------------------------------


def test_evidence_of_single_plays_is_not_repeated():
    evidence = Evidence.of([play("passed", row="r1"), play("failed", row="r2")])
    assert evidence.repeated is False
    assert evidence.flaky_rows == set()
    assert [v.version for v in evidence.versions] == [1]
    assert evidence.comparisons == []
    assert evidence.as_dict()["baseline"] is None


def test_evidence_of_repeated_plays_lists_flaky_rows():
    outcomes = (
        plays("pfp", row="r1")
        + plays("ppp", row="r2")
        + plays("pf", row="r1", version=2)
        + plays("ff", row="r2", version=2)
    )
    evidence = Evidence.of(outcomes)
    assert evidence.repeated is True
    assert evidence.flaky_rows == {("p", "t", 1, "d", "r1"), ("p", "t", 2, "d", "r1")}
    [comparison] = evidence.comparisons
    # r1 flaky → flaky is no flip; r2 passed → failed.
    assert comparison.flips == {
        "pass→fail": ["r2"],
        "pass→error": [],
        "pass→flaky": [],
        "fail→pass": [],
    }
    json.dumps(evidence.as_dict())
