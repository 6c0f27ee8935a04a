"""A prompt version's structured output (``model_config.response_format``): validated at load,
sent the way each route takes it, refused where a route cannot, and checked by ``format`` with
``schema: response_format``."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from prompttracker.cli import app
from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import Settings
from prompttracker.llm import router
from prompttracker.llm.base import SessionOptions
from tests.helpers import body
from tests.project_factory import write_project

SCHEMA = {
    "type": "object",
    "properties": {"category": {"type": "string", "enum": ["billing", "other"]}},
    "required": ["category"],
    "additionalProperties": False,
}
ANSWER = '{"category": "billing"}'


def config(provider: str, api: str, **extra: Any) -> ModelConfig:
    model = {"anthropic": "claude-haiku-4-5", "google": "gemini-2.5-flash"}.get(provider, "gpt-4o")
    if api == "assistants":
        extra.setdefault("assistant_id", "asst_abc123")
        model = "gpt-4o-mini"
    return ModelConfig.model_validate(
        {"provider": provider, "api": api, "model": model, "response_format": SCHEMA, **extra}
    )


def chat_answer() -> dict:
    from tests.test_cli import completion

    return completion(ANSWER, 1)


def responses_answer() -> dict:
    from tests.test_responses import reply

    return reply("resp_1", ANSWER)


def anthropic_answer() -> dict:
    from tests.test_anthropic import reply

    return reply("msg_1", ANSWER, 10, 5)


def gemini_answer() -> dict:
    from tests.test_gemini import reply

    return reply("r1", ANSWER, 10, 5)


STRICT = {
    "type": "json_schema",
    "json_schema": {"name": "response", "schema": SCHEMA, "strict": True},
}
ROUTES = {
    "chat_completions": (
        ("openai", "chat_completions", "OPENAI_API_KEY"),
        "https://api.openai.com/v1/chat/completions",
        chat_answer,
        lambda sent: sent["response_format"] == STRICT,
    ),
    "responses": (
        ("openai", "responses", "OPENAI_API_KEY"),
        "https://api.openai.com/v1/responses",
        responses_answer,
        lambda sent: sent["text"]["format"] == {"type": "json_schema", **STRICT["json_schema"]},
    ),
    "anthropic": (
        ("anthropic", "messages", "ANTHROPIC_API_KEY"),
        "https://api.anthropic.com/v1/messages",
        anthropic_answer,
        lambda sent: sent["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}},
    ),
    "gemini": (
        ("google", "gemini", "GEMINI_API_KEY"),
        "https://generativelanguage.googleapis.com/v1/models/gemini-2.5-flash:generateContent",
        gemini_answer,
        lambda sent: (
            sent["generationConfig"]["responseJsonSchema"] == SCHEMA
            and sent["generationConfig"]["responseMimeType"] == "application/json"
        ),
    ),
}


@pytest.mark.parametrize("name", list(ROUTES))
async def test_each_route_sends_the_versions_schema(
    httpx2_mock: Any, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    (provider, api, key), url, answer, sent_right = ROUTES[name]
    monkeypatch.setenv(key, "test-key-SECRET-0123456789")
    route = httpx2_mock.post(url).mock(return_value=httpx.Response(200, json=answer()))
    settings = Settings(providers={provider: {"max_retries": 0}})
    session = router.open_session(config(provider, api), settings, SessionOptions())
    turn = await session.send("Classify: I was charged twice.")
    await session.aclose()
    assert turn.content == ANSWER
    assert sent_right(body(route)), body(route)


async def test_the_assistants_route_sends_it_on_the_run(httpx2_mock: Any, monkeypatch) -> None:
    from tests.test_assistants import one_turn_routes, run

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-0123456789")
    routes = one_turn_routes(httpx2_mock, run("run_1", "completed"), ANSWER)
    settings = Settings(providers={"openai": {"max_retries": 0}})
    session = router.open_session(config("openai", "assistants"), settings, SessionOptions())
    assert (await session.send("Classify this")).content == ANSWER
    await session.aclose()
    assert body(routes["create"])["response_format"] == STRICT


def test_a_named_non_strict_form_is_sent_as_written() -> None:
    from prompttracker.llm.openai_chat_completions import request_params

    wrapped = {"name": "triage", "strict": False, "schema": SCHEMA}
    offline = ModelConfig(provider="mock", model="m", response_format=wrapped)
    session = router.open_session(offline, Settings(), SessionOptions())
    version = config("openai", "chat_completions", response_format=wrapped)
    params = request_params(version, [], session.options.response_format)
    assert params["response_format"]["json_schema"] == {
        "name": "triage",
        "schema": SCHEMA,
        "strict": False,
    }


def test_a_judges_own_schema_wins_over_the_versions() -> None:
    from prompttracker.evaluators.judges import JUDGE_SCHEMA

    offline = ModelConfig(provider="mock", model="m", response_format=SCHEMA)
    session = router.open_session(offline, Settings(), SessionOptions(response_format=JUDGE_SCHEMA))
    assert session.options.response_format is JUDGE_SCHEMA


@pytest.mark.parametrize(
    ("response_format", "message"),
    [
        ({"type": "objekt"}, "schema is not a valid JSON Schema"),
        ({"name": "has space", "schema": SCHEMA}, "String should match pattern"),
        ({"schema": SCHEMA, "strikt": True}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_response_format_is_refused_at_load(response_format: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config("openai", "chat_completions", response_format=response_format)


LOOSE = {"type": "object", "properties": {"category": {"type": "string"}, "note": {}}}


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({**LOOSE, "required": ["category"]}, "at / ['note'] are not"),
        (
            {**LOOSE, "required": ["category", "note"]},
            "needs additionalProperties: false on every object, and / does not say so",
        ),
        (
            {
                "type": "object",
                "properties": {"items": {"type": "array", "items": LOOSE}},
                "required": ["items"],
                "additionalProperties": False,
            },
            "at /properties/items/items ['category', 'note'] are not",
        ),
    ],
)
def test_openai_strict_mode_refuses_a_loose_schema_at_load(schema: Any, problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        config("openai", "responses", response_format=schema)
    config("openai", "responses", response_format={"schema": schema, "strict": False})
    config("anthropic", "messages", response_format=schema)  # no strict mode there


# --- through the CLI ----------------------------------------------------------------------------

PROMPT = """\
name: Triage
versions:
  - version: 1
    status: active
    system_prompt: Classify the email.
    user_prompt: "{{ email }}"
    model_config:
      provider: openai
      api: chat_completions
      model: gpt-4o-mini
      response_format: %s
  - version: 2
    system_prompt: Classify the email.
    user_prompt: "{{ email }}"
    model_config: { provider: openai, api: chat_completions, model: gpt-4o-mini }
tests:
  - name: answers in its schema
    dataset: emails
    versions: %s
    evaluators:
      - { type: format, config: { format: json, schema: response_format } }
"""
DATASET = """\
mode: single_turn
rows:
  - name: duplicate
    variables: { email: "I was charged twice." }
"""
runner = CliRunner()


def test_format_checks_the_reply_against_the_versions_schema(httpx2_mock, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-0123456789")
    write_project(tmp_path, {"triage": PROMPT % (json.dumps(SCHEMA), "[1]")}, {"emails": DATASET})
    answers = iter([ANSWER, '{"category": "spam"}'])
    route = httpx2_mock.post("https://api.openai.com/v1/chat/completions").mock(
        side_effect=lambda request: httpx.Response(
            200,
            json={
                **chat_answer(),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": next(answers)},
                    }
                ],
            },
        )
    )
    assert runner.invoke(app, ["run-tests"]).exit_code == 0
    assert body(route)["response_format"] == {**STRICT, "json_schema": {**STRICT["json_schema"]}}
    failed = runner.invoke(app, ["run-tests"])
    assert failed.exit_code == 1
    assert "'spam' is not one of ['billing', 'other']" in " ".join(failed.output.split())


def test_schema_response_format_needs_a_version_that_has_one(tmp_path):
    write_project(
        tmp_path, {"triage": PROMPT % (json.dumps(SCHEMA), "[1, 2]")}, {"emails": DATASET}
    )
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert (
        "version 2 (openai/chat_completions gpt-4o-mini) has no response_format, so schema: "
        "response_format has no schema to check; add one under versions[1].model_config."
        "response_format"
    ) in out
