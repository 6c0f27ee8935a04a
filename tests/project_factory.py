"""Write small projects into a temporary folder for loader and CLI tests."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

PROMPT = """\
name: Billing support
description: First-line billing agent
versions:
  - version: 1
    status: active
    system_prompt: "You are a support agent for {{ company }}. Be brief and kind."
    user_prompt: "{{ opening_message }}"
    model_config:
      provider: openai
      api: chat_completions
      model: gpt-4o-mini
      temperature: 0.3
      max_tokens: 300
tests:
  - name: double charge is refunded
    dataset: billing
    evaluators:
      - type: keyword
        config: { required_keywords: [refund] }
"""

DATASET = """\
mode: conversational
rows:
  - name: angry double charge
    variables: { company: Acme, opening_message: "I've been charged twice for order 12345!" }
    interlocutor_simulation_prompt: You were charged twice. You want a refund.
    max_turns: 3
"""


def write_project(
    root: Path,
    prompts: dict[str, str] | None = None,
    datasets: dict[str, str] | None = None,
    settings: str | None = None,
) -> Path:
    """Write prompts/<name>.yaml and datasets/<name>.yaml; defaults give a valid project."""
    (root / "prompts").mkdir(exist_ok=True)
    (root / "datasets").mkdir(exist_ok=True)
    for name, text in (prompts if prompts is not None else {"billing_support": PROMPT}).items():
        (root / "prompts" / f"{name}.yaml").write_text(dedent(text))
    for name, text in (datasets if datasets is not None else {"billing": DATASET}).items():
        (root / "datasets" / f"{name}.yaml").write_text(dedent(text))
    if settings is not None:
        (root / "prompttracker.yaml").write_text(dedent(settings))
    return root


def chat_prompt(test_name: str, evaluator: str) -> str:
    """A one-version chat_completions prompt with one test on ``billing``; ``evaluator`` is
    one evaluator as a YAML flow mapping."""
    return f"""\
name: Billing support
versions:
  - version: 1
    status: active
    system_prompt: "You help {{{{ company }}}} customers."
    user_prompt: "{{{{ opening_message }}}}"
    model_config: {{ provider: openai, api: chat_completions, model: gpt-4o-mini }}
tests:
  - name: {test_name}
    dataset: billing
    evaluators:
      - {evaluator}
"""


# The mock's reply starts with one of four canned sentences, picked by a SHA-256 of the inputs
# and the repeat's sample number; two of them say "help". Over repeats 0, 1, 2 the message
# "Question number 21" always gets one that does, "Question number 18" never does, and
# "Question number 0" does only on the first play: a steady, a failing and a flaky row.
HELP_PROMPT = """\
name: Helper
versions:
  - version: 1
    status: active
    system_prompt: "You help."
    user_prompt: "{{ message }}"
    model_config: { provider: openai, api: chat_completions, model: gpt-4o-mini }
tests:
  - name: offers help
    dataset: questions
    evaluators:
      - type: keyword
        config: { required_keywords: [help] }
"""
HELP_QUESTIONS = """\
mode: single_turn
rows:
  - name: steady
    variables: { message: "Question number 21" }
  - name: never
    variables: { message: "Question number 18" }
  - name: flaky
    variables: { message: "Question number 0" }
"""
