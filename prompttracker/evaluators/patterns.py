"""Regular expressions that cannot hang a run: matched with the ``regex`` library under a
timeout, and — where it is decidable — refused at load when they backtrack catastrophically.

The decidable case is the classic one: an unbounded repetition whose body is itself an unbounded
repetition plus parts that may match nothing (``(a+)+``, ``(\\w+\\s?)*``, ``(?:x*)*``), or two
unbounded repetitions of one thing (``(x+x+)+``). Such a pattern tries exponentially many ways to
split a long text that does not match. Other ambiguous patterns (``(x|xx)+``) are not told apart
from safe ones here; the timeout stops them.
"""

from __future__ import annotations

import re
from itertools import pairwise
from re import _constants as sre_constants  # the standard library's own regex parser (3.11+)
from re import _parser as sre_parser
from typing import Any

SLASHED_PATTERN = re.compile(r"\A/(.*)/([imsx]*)\Z", re.DOTALL)
PATTERN_FLAGS = {"i": "IGNORECASE", "m": "MULTILINE", "s": "DOTALL", "x": "VERBOSE"}
# A pattern gets this long on one response, then the evaluation errors: a regex that
# backtracks catastrophically (``/(a+)+$/``) cannot hang the run.
PATTERN_TIMEOUT_SECONDS = 1.0

_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT)
_UNBOUNDED = sre_constants.MAXREPEAT


def compile_pattern(pattern: str) -> Any:
    """Compile ``/body/flags`` as a regex (flags i, m, s, x); other text as a literal.

    Compiled with the ``regex`` library, whose matching takes a timeout and releases the GIL.
    Raises ``regex.error`` for an invalid regex.
    """
    import regex

    slashed = SLASHED_PATTERN.match(pattern)
    if slashed is None:
        return regex.compile(regex.escape(pattern))
    body, letters = slashed.groups()
    flags = regex.VERSION0
    for letter in letters:
        flags |= getattr(regex, PATTERN_FLAGS[letter])
    return regex.compile(body, flags)


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches ``text``; ``TimeoutError`` past ``PATTERN_TIMEOUT_SECONDS``."""
    try:
        found = compile_pattern(pattern).search(
            text, timeout=PATTERN_TIMEOUT_SECONDS, concurrent=True
        )
    except TimeoutError:
        raise TimeoutError(
            f"pattern {pattern!r} took longer than {PATTERN_TIMEOUT_SECONDS:g} s on this "
            f"response ({len(text)} characters): it backtracks catastrophically; rewrite it "
            "without nested repetition such as (a+)+"
        ) from None
    return found is not None


def regex_error() -> type[Exception]:
    import regex

    return regex.error


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` (``/body/flags`` or literal text) cannot be used, or None."""
    try:
        compile_pattern(pattern)
    except regex_error() as exc:
        return f"{pattern!r}: invalid regular expression: {exc}"
    slashed = SLASHED_PATTERN.match(pattern)
    risk = backtracking_risk(slashed.group(1)) if slashed else None
    return f"{pattern!r}: {risk}" if risk else None


def backtracking_risk(body: str) -> str | None:
    """Why ``body`` backtracks exponentially, when it holds a nested unbounded repetition;
    None otherwise (also for syntax the standard library does not parse)."""
    try:
        parsed = sre_parser.parse(body)
    except (re.error, RecursionError, OverflowError):
        return None
    if not _nested_repeat(list(parsed)):
        return None
    return (
        "it repeats without bound a group that itself repeats without bound, so on a long "
        "text that does not match it backtracks for exponential time; repeat the inner part "
        "only (e.g. (a+)+ → a+, (\\w+\\s?)* → (\\w+\\s)*\\w*)"
    )


def _nested_repeat(items: list[Any]) -> bool:
    for op, av in items:
        if op in _REPEATS:
            _, high, body = av
            if high == _UNBOUNDED and _splits_many_ways(list(body)):
                return True
            inner = [list(body)]
        elif op is sre_constants.SUBPATTERN:
            inner = [list(av[3])]
        elif op is sre_constants.BRANCH:
            inner = [list(branch) for branch in av[1]]
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            inner = [list(av[1])]
        else:  # literals, classes, anchors; atomic groups and possessive repeats never retry
            inner = []
        if any(_nested_repeat(part) for part in inner):
            return True
    return False


def _splits_many_ways(items: list[Any]) -> bool:
    """Whether one turn of ``items`` can match a text in many ways, so that the outer
    repetition has exponentially many to try: an inner unbounded repeat with everything else
    optional (``(a+)+``), or two unbounded repeats of the same thing with only optional parts
    between them (``(x+x+)+``)."""
    items = _unwrapped(items)
    if len(items) == 1 and items[0][0] is sre_constants.BRANCH:
        return any(_splits_many_ways(list(branch)) for branch in items[0][1][1])
    repeats = [i for i, (op, av) in enumerate(items) if op in _REPEATS and av[1] == _UNBOUNDED]
    if any(all(_nullable(item) for j, item in enumerate(items) if j != i) for i in repeats):
        return True
    return any(
        list(items[i][1][2]) == list(items[j][1][2])
        and all(_nullable(item) for item in items[i + 1 : j])
        for i, j in pairwise(repeats)
    )


def _unwrapped(items: list[Any]) -> list[Any]:
    while len(items) == 1 and items[0][0] is sre_constants.SUBPATTERN:
        items = list(items[0][1][3])
    return items


def _nullable(item: Any) -> bool:
    op, av = item
    if op in _REPEATS:
        return av[0] == 0 or all(_nullable(i) for i in av[2])
    if op is sre_constants.SUBPATTERN:
        return all(_nullable(i) for i in av[3])
    if op is sre_constants.BRANCH:
        return any(all(_nullable(i) for i in branch) for branch in av[1])
    return op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT)
