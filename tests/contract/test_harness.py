"""The harness itself: it catches a request that breaks the spec, and says what Prism said.

A contract suite that cannot fail is worse than none: these tests send requests that the
spec forbids and check that they are caught.
"""

from __future__ import annotations

import pytest

from tests.contract.prism import DUMMY_KEY, PrismServer

pytestmark = pytest.mark.contract


async def test_a_chat_completion_that_breaks_the_spec_is_caught(prism: PrismServer) -> None:
    """Also proves that chat completion bodies are validated at all (see prism_ready_spec)."""
    import openai

    client = openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=prism.url, max_retries=0)
    try:
        with pytest.raises(openai.UnprocessableEntityError):
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "robot", "content": "Hello"}]
            )
    finally:
        await client.close()

    with pytest.raises(AssertionError) as caught:
        prism.assert_all_accepted()
    report = str(caught.value)
    assert "Prism rejected POST /chat/completions → 422" in report
    assert "messages.0.role must be equal to one of the allowed values" in report
    assert "Request did not pass the validation rules" in report  # the log tail
    prism.recorder.reset()  # the rejection was the point: keep the teardown check quiet


async def test_a_failed_call_explains_what_prism_rejected(prism: PrismServer) -> None:
    import openai

    client = openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=prism.url, max_retries=0)
    try:
        with pytest.raises(AssertionError, match=r"(?s)UnprocessableEntityError.*Prism rejected"):
            await prism.expect_ok(client.vector_stores.create(name=["not", "a", "string"]))  # type: ignore[arg-type]
    finally:
        await client.close()
    prism.recorder.reset()


async def test_an_unknown_path_is_a_rejection(prism: PrismServer) -> None:
    import openai

    client = openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=prism.url, max_retries=0)
    try:
        with pytest.raises(openai.NotFoundError):
            await client.get("/no_such_endpoint", cast_to=object)
    finally:
        await client.close()
    (exchange,) = prism.exchanges
    assert exchange.rejections, "a path the spec does not have must count as rejected"
    prism.recorder.reset()
