"""Function calling shared by every route: definitions, mocked outputs, the round cap, and
the refusal on routes that have no tools.

Tests never run real functions: a call is answered with the dataset row's
``mock_function_outputs[name]`` (JSON-encoded), or a default result naming the function and
its arguments, so every call and output ends up in the transcript.
"""

from __future__ import annotations

import json
from typing import Any

from prompttracker.config.models import FunctionTool, ModelConfig
from prompttracker.errors import LLMCallError, NotImplementedRouteError

MAX_TOOL_ROUNDS = 10


def parse_arguments(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """Arguments as a dict; text that is not a JSON object is kept under ``_raw``."""
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


def function_output(name: str, arguments: dict[str, Any], outputs: dict[str, Any]) -> str:
    """The JSON text answering a call: the row's mock output, else a default naming the call."""
    if name in outputs:
        value = outputs[name]
        return value if isinstance(value, str) else json.dumps(value)
    return json.dumps({"mock": True, "function": name, "arguments": arguments, "result": "ok"})


def output_value(text: str) -> Any:
    """A function's output as a value when it is JSON text, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def too_many_rounds(api_label: str) -> LLMCallError:
    """The error when the model keeps calling functions past ``MAX_TOOL_ROUNDS``."""
    return LLMCallError(
        f"{api_label}: the model was still calling functions after {MAX_TOOL_ROUNDS} rounds "
        "in one turn; stopped",
        hint="check mock_function_outputs: the model may be retrying a call whose output it "
        "does not accept",
    )


def function_schema(tool: FunctionTool) -> dict[str, Any]:
    """name/description/parameters(/strict), the common core of every API's function tool."""
    schema: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        schema["description"] = tool.description
    if tool.strict is not None:
        schema["strict"] = tool.strict
    return schema


def refuse_tools(config: ModelConfig, route: str) -> None:
    """Raise ``NotImplementedRouteError`` when ``config`` lists tools a route cannot call.

    The loader refuses these; a config built in code must not lose them silently.
    """
    if config.tools or config.tool_config.functions:
        raise NotImplementedRouteError(
            f"{config.label} lists tools, but tools are not supported on {route}",
            hint="remove the tools from this model_config, or run with --mock",
        )
