"""``--estimate``: the plan's worst case in calls, tokens and dollars, before any call.

Worst case means every conversation runs to its ``max_turns``, the simulated user never ends it
early, and every answer is as long as its ``max_tokens`` allows (``DEFAULT_ANSWER_TOKENS``
where unset). Prompt sizes come from the rendered templates at about four characters a token;
each call resends the conversation so far, as the chat APIs do. Priced per model like a real
call (unknown prices stay unknown).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from prompttracker.config.loader import Project
from prompttracker.config.models import ModelConfig
from prompttracker.interlocutor import INSTRUCTIONS
from prompttracker.messages import Metered, Usage
from prompttracker.pricing import Pricer
from prompttracker.runner import PlannedRun
from prompttracker.templating import render

CHARS_PER_TOKEN = 4
DEFAULT_ANSWER_TOKENS = 1024  # an answer's length when its model config sets no max_tokens
JUDGE_PROMPT_TOKENS = 250  # the judge's instructions and answer format, around the transcript


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass
class Estimate:
    """Worst-case calls, tokens and cost by caller and model."""

    pricer: Pricer
    lines: dict[tuple[str, str], Metered] = field(default_factory=dict)  # (caller, model)
    test_runs: int = 0

    def add(self, caller: str, config: ModelConfig, input_tokens: int, output_tokens: int) -> None:
        """One call of ``config`` by ``caller``."""
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        key = (caller, f"{config.provider}/{config.model or config.assistant_id}")
        self.lines[key] = self.lines.get(key, Metered()).add(usage, self.pricer.cost(config, usage))

    @property
    def total(self) -> Metered:
        return sum(self.lines.values(), Metered())


def estimate(project: Project, planned: Sequence[PlannedRun]) -> Estimate:
    """What ``planned`` costs at most (see the module docstring), priced as the real models
    (under ``--mock`` too: it is what the run would cost without it)."""
    settings = project.settings
    user_config = settings.interlocutor
    result = Estimate(Pricer(settings.prices), test_runs=len(planned))
    for item in planned:
        version, row = item.version, item.row
        config = version.model_config_
        variables = {**version.variables, **row.variables}
        system = tokens(render(version.system_prompt, variables))
        opening = tokens(render(version.user_prompt, variables))
        conversational = item.dataset.mode == "conversational"
        turns = row.max_turns if conversational else 1
        answer = _answer_tokens(config)
        user_answer = _answer_tokens(user_config)
        persona = tokens(INSTRUCTIONS + (row.interlocutor_simulation_prompt or ""))

        history = 0  # tokens of the conversation so far
        if conversational and opening == 0:  # the simulated user opens
            result.add("simulated_user", user_config, persona, user_answer)
            opening = user_answer
        user_message = opening
        transcripts = []
        for turn in range(1, turns + 1):
            history += user_message
            result.add("assistant", config, system + history, answer)
            history += answer
            transcripts.append(history)
            if conversational and turn < turns:
                result.add("simulated_user", user_config, persona + history, user_answer)
                user_message = user_answer
        for spec in item.test.evaluators:
            if spec.type not in ("llm_judge", "conversation_judge"):
                continue
            judge = settings.judge
            if spec.config.get("judge_model"):
                judge = judge.model_copy(update={"model": spec.config["judge_model"]})
            judged = transcripts if spec.type == "conversation_judge" else transcripts[-1:]
            for transcript in judged:
                prompt = JUDGE_PROMPT_TOKENS + system + transcript
                result.add("judge", judge, prompt, _answer_tokens(judge))
    return result


def _answer_tokens(config: ModelConfig) -> int:
    return config.max_tokens or DEFAULT_ANSWER_TOKENS
