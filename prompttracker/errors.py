"""The few exceptions PromptTracker raises, each with a hint that says what to do next.

The CLI is the one place that prints them (``Error:`` / ``Hint:``) and picks the exit code.
"""

from __future__ import annotations

from difflib import get_close_matches


class PromptTrackerError(Exception):
    """Base error. ``exit_code`` is what the CLI exits with when this reaches it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(PromptTrackerError):
    """Bad input: YAML files, templates, options. Nothing was called or written."""

    exit_code = 2


class RunStartError(PromptTrackerError):
    """The run could not start: a missing API key, a missing optional SDK."""

    exit_code = 3


class NotImplementedRouteError(RunStartError):
    """A valid (provider, api) pair whose session is not built yet."""


class LLMCallError(PromptTrackerError):
    """An API call failed after the SDK's retries. Ends one test run as ``error``."""

    def by(self, caller: str) -> LLMCallError:
        """The same error, saying whose call it was (once: an error passes several layers)."""
        if self.message.startswith(f"{caller}: "):
            return self
        return LLMCallError(f"{caller}: {self.message}", hint=self.hint)


class StoreError(PromptTrackerError):
    """The results database stopped taking writes mid-run (full disk, read-only, locked).

    The run stops scheduling test runs; everything already stored is kept.
    """

    exit_code = 4


def did_you_mean(word: str, known: list[str]) -> str:
    """ "; did you mean 'model'?" for a misspelling of one of ``known``, else the list of them."""
    close = get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(sorted(known))}" if known else ""
