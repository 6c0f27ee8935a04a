"""Cheap, deterministic checks that tell when the simulated user broke down.

Each simulated-user turn is checked before it reaches the assistant; a problem marks the test
run invalid instead of blaming the prompt. Pure functions over text: no I/O, no LLM, and every
pattern runs in linear time, because a broken simulator can write a megabyte.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prompttracker.messages import Message

CHECKS: dict[str, str] = {
    "cut": "the simulated user's answer was cut at its token cap before it was complete",
    "empty": "the simulated user's message is empty, or has no letters, digits or emoji",
    "repeats": "the simulated user sends one of its own earlier messages again",
    "echoes": "the simulated user echoes the assistant's last message back to it",
    "as_assistant": "the simulated user answers as the assistant would",
    "protocol_leak": "the simulated user leaks the test protocol: labels, end marker, JSON, "
    "talk about the role-play",
}

# What ``describe`` says the simulated user did, before the detail.
_SUMMARIES = {
    "cut": "was cut off",
    "empty": "wrote nothing",
    "repeats": "repeated itself",
    "echoes": "echoed the assistant",
    "as_assistant": "spoke as the assistant",
    "protocol_leak": "leaked the test protocol",
}


@dataclass(frozen=True)
class SimulatorProblem:
    """One problem with one simulated-user message: which check found it, and where."""

    check: str  # one of CHECKS' keys
    turn: int  # the turn the simulated user was writing
    detail: str  # quotes the offending text, shortened; reads after a colon

    def describe(self) -> str:
        """One line for a transcript or a report."""
        return f"the simulated user {_SUMMARIES[self.check]} at turn {self.turn}: {self.detail}"


def check_user_turn(
    text: str, turn: int, history: Sequence[Message], *, cut: bool = False
) -> SimulatorProblem | None:
    """The first problem with the simulated user's message ``text`` for ``turn``, given the
    conversation so far (``history``: user and assistant Messages before this user turn, in
    order), or None. ``cut``: its answer stopped at the token cap (``finish_reason: length``),
    so the message is not what it meant to write."""
    if cut:
        detail = (
            f"{_quote(_flatten(text))} (its answer hit the token cap: raise the interlocutor "
            "setting's max_tokens)"
        )
        return SimulatorProblem("cut", turn, detail)
    if _BLANK.fullmatch(text):
        empty = "its message was empty" if not text else "its message was only whitespace"
        return SimulatorProblem("empty", turn, empty)
    flat = _flatten(text)
    if not any(_says_something(char) for char in flat[:_SAYS_SOMETHING_SCAN]):
        detail = f"{_quote(flat)} (no letters, digits or emoji: it says nothing)"
        return SimulatorProblem("empty", turn, detail)
    message = _normalise(flat)
    for name, check in _CHECKS_IN_ORDER:
        detail = check(flat, message, history)
        if detail:
            return SimulatorProblem(name, turn, detail)
    return None


_SAYS_SOMETHING_SCAN = 10_000  # a message that says nothing in this many characters never will


def _says_something(char: str) -> bool:
    """A letter, a digit, or a symbol such as an emoji (a 👍 is an answer; a lone ']' is not)."""
    return char.isalnum() or unicodedata.category(char) == "So"


# Zero-width characters count as whitespace: a message of only those says nothing either.
_INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
_BLANK = re.compile(rf"[\s{_INVISIBLE}]*")
_DELETE_INVISIBLE = dict.fromkeys(map(ord, _INVISIBLE))
_END_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~…¡¿«»‹›“”‘’„‚–—・。、！？"

_MIN_REPEAT_CHARS = 12  # "ok" or "thanks" twice is conversation, not a loop
_MIN_ECHO_CHARS = 20
_SIMILAR = 0.9  # SequenceMatcher ratio from which two messages count as the same
_MOSTLY = 0.8  # share of the user's message that the assistant's words may fill
# difflib is quadratic: characters are compared up to this length, words up to the next,
# and longer messages only for equality and containment.
_MAX_CHARS_COMPARED = 1_000
_MAX_COMPARED = 5_000
_QUOTE_CHARS = 80


def _flatten(text: str) -> str:
    """NFKC, zero-width characters removed, whitespace collapsed to single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(_DELETE_INVISIBLE).split())


def _normalise(flat: str) -> str:
    """What two messages share when they say the same: casefolded, without punctuation or
    spaces at the ends."""
    text = flat.casefold().strip(_END_PUNCTUATION + " ")
    start, end = 0, len(text)
    while start < end and _is_punctuation_or_space(text[start]):
        start += 1
    while end > start and _is_punctuation_or_space(text[end - 1]):
        end -= 1
    return text[start:end]


def _is_punctuation_or_space(char: str) -> bool:
    return char == " " or unicodedata.category(char).startswith("P")


_DIGITS = re.compile(r"\d+")


def _near_identical(a: str, b: str) -> bool:
    """Whether two normalised messages are the same or differ only in a few characters; a
    corrected number ("order 12345" after "order 12354") is a different message."""
    if a == b:
        return True
    shorter, longer = sorted((len(a), len(b)))
    if longer > _MAX_COMPARED or shorter * 2 < longer or _DIGITS.findall(a) != _DIGITS.findall(b):
        return False
    if longer <= _MAX_CHARS_COMPARED:
        matcher = SequenceMatcher(None, a, b, autojunk=False)
    else:
        matcher = SequenceMatcher(None, a.split(), b.split(), autojunk=False)
    return (
        matcher.real_quick_ratio() >= _SIMILAR
        and matcher.quick_ratio() >= _SIMILAR
        and matcher.ratio() >= _SIMILAR
    )


def _quote(flat: str, start: int = 0, end: int = 0) -> str:
    """``flat`` in quotes, shortened to about _QUOTE_CHARS around ``flat[start:end]``."""
    if len(flat) <= _QUOTE_CHARS:
        return f"'{flat}'"
    room = max(_QUOTE_CHARS - (end - start), 0)
    low = max(0, start - room // 2)
    high = min(len(flat), low + _QUOTE_CHARS)
    low = max(0, high - _QUOTE_CHARS)
    before = "…" if low else ""
    after = "…" if high < len(flat) else ""
    return f"'{before}{flat[low:high].strip()}{after}'"


# Each check gets the message flattened (for patterns and quotes) and normalised (to compare).
def _repeats(flat: str, message: str, history: Sequence[Message]) -> str | None:
    if len(message) < _MIN_REPEAT_CHARS:
        return None
    for earlier in history:
        if earlier.role != "user":
            continue
        said = _normalise(_flatten(earlier.content))
        if message == said:
            return f"{_quote(flat)} (also its turn {earlier.turn} message)"
        if _near_identical(message, said):
            return f"{_quote(flat)} (nearly its turn {earlier.turn} message)"
    return None


def _echoes(flat: str, message: str, history: Sequence[Message]) -> str | None:
    last = next((m for m in reversed(history) if m.role == "assistant"), None)
    if last is None:
        return None
    answer = _normalise(_flatten(last.content))
    if not answer:
        return None
    whose = f"the assistant's turn {last.turn} message"
    if len(message) >= _MIN_REPEAT_CHARS and message == answer:
        return f"{_quote(flat)} (also {whose})"
    if len(message) >= _MIN_ECHO_CHARS and message in answer:
        return f"{_quote(flat)} (copied from {whose})"
    if (
        len(answer) >= _MIN_ECHO_CHARS
        and len(answer) >= _MOSTLY * len(message)
        and answer in message
    ):
        return f"{_quote(flat)} (mostly {whose})"
    if len(message) >= _MIN_REPEAT_CHARS and _near_identical(message, answer):
        return f"{_quote(flat)} (nearly {whose})"
    return None


# The patterns run on flattened text: single spaces, so no pattern needs a repeated
# quantifier next to another and every match is linear. ``’`` survives NFKC, hence ['’].
_AI_KIND = "(?: language model| assistant| model| chatbot)"
_ROLE_LABEL = r"\A(?:\*\*|__)?(?:{roles})(?:\*\*|__)? ?:"
_ASSISTANT_LABEL = re.compile(_ROLE_LABEL.format(roles="assistant|ai|ai assistant|bot|agent"), re.I)
# Lines a customer would not write: "as an AI researcher" or "can you help me" do not match.
_ASSISTANT_LINES = re.compile(
    r"\bhow (?:can|may) i (?:help|assist) you\b"
    r"|\bis there anything else (?:i|we) can (?:help you with|assist you with|do for you)\b"
    rf"|\bas an ai{_AI_KIND}?,? i\b|\bas an ai language model\b"
    rf"|\bi(?:['’]m| am) (?:just )?an ai(?:{_AI_KIND}\b|(?=[,.;!]|$))"
    r"|\bi(?:['’]m| am) here to (?:help|assist) you\b",
    re.I,
)
_USER_LABEL = re.compile(_ROLE_LABEL.format(roles="user|customer|human|simulated user"), re.I)
_END_MARKER_PIECES = re.compile(
    r"end_conversation|\[ ?end(?![a-z])|[\[(<{] ?end[ _-](?:of[ _-])?conversation", re.I
)
_ANSWER_KEYS = re.compile(r"[\"'](?:message|stop)[\"'] ?:")
# The simulated user's instructions and opening turn, copied from prompttracker.interlocutor
# (which may come to import this module); tests check the copies still match.
_OPENING_START = "(The conversation has not started yet"
_INSTRUCTIONS_HEADING = "Your character and goal"
# Every role-play pattern holds one of these words: looking for them first is much faster
# than the pattern on a long message that has none.
_ROLE_PLAY_WORDS = ("simulated", "role", "persona", "character", "as the user", "test", "started")
_TESTED = "(?:assistant|ai|bot|chatbot|model)"
_ROLE_PLAY_TALK = re.compile(
    r"\bsimulated user\b|\brole[- ]?play"
    r"|\bmy persona\b|\bmy character(?:['’]s)? (?:goal|description|instructions|brief|role)\b"
    r"|\b(?:stay|stays|staying|stayed|remain|remaining|break|breaks|breaking|broke|out of"
    r"|back in|still in) character\b|\bin character(?=[.,;:!?)\]]|$)"
    r"|\bas the user,? i\b|\btesting the assistant\b"
    rf"|\bmy (?:goal|task|job) (?:here )?is to test (?:you|(?:the|this) {_TESTED})\b"
    rf"|{re.escape(_OPENING_START.removeprefix('('))}|{re.escape(_INSTRUCTIONS_HEADING)}",
    re.I,
)


def _as_assistant(flat: str, message: str, history: Sequence[Message]) -> str | None:
    if label := _ASSISTANT_LABEL.match(flat):
        return f"{_quote(flat, *label.span())} (starts with the assistant's role label)"
    if line := _ASSISTANT_LINES.search(flat):
        return f"{_quote(flat, *line.span())} (a line the assistant would say)"
    return None


def _protocol_leak(flat: str, message: str, history: Sequence[Message]) -> str | None:
    if label := _USER_LABEL.match(flat):
        return f"{_quote(flat, *label.span())} (starts with a role label)"
    if marker := _END_MARKER_PIECES.search(flat):
        return f"{_quote(flat, *marker.span())} (a piece of the end marker)"
    if (key := _ANSWER_KEYS.search(flat)) or _is_json_object(flat):
        span = key.span() if key else (0, 0)
        return f"{_quote(flat, *span)} (the JSON of its answer format)"
    if any(word in message for word in _ROLE_PLAY_WORDS) and (talk := _ROLE_PLAY_TALK.search(flat)):
        return f"{_quote(flat, *talk.span())} (talk about the role-play)"
    return None


def _is_json_object(flat: str) -> bool:
    if not (flat.startswith("{") and flat.endswith("}")):
        return False
    try:
        return isinstance(json.loads(flat), dict)
    except ValueError:
        return False


_CHECKS_IN_ORDER: tuple[tuple[str, Callable[[str, str, Sequence[Message]], str | None]], ...] = (
    ("repeats", _repeats),
    ("echoes", _echoes),
    ("as_assistant", _as_assistant),
    ("protocol_leak", _protocol_leak),
)
