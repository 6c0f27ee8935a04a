"""The file formats: one strict pydantic model per kind of YAML file (``extra="forbid"``)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prompttracker.api_types import ApiType
from prompttracker.errors import ConfigError


class Strict(BaseModel):
    """Unknown keys are errors, and so are values of another type: ``strict`` stops YAML's
    ``yes``/``on`` (booleans) from passing as ``1`` where a number belongs."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


MAX_REPEAT = 100  # plays of one row in one run (`repeat:` and `--repeat`)

HostedTool = Literal["web_search", "file_search", "code_interpreter"]
FUNCTION_NAME = r"^[A-Za-z0-9_-]{1,64}$"


class FunctionTool(Strict):
    """A function the model may call; its output comes from the row's mock_function_outputs."""

    name: str = Field(pattern=FUNCTION_NAME)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class FileSearchConfig(Strict):
    vector_store_ids: list[str] = Field(default_factory=list)
    max_num_results: int | None = Field(default=None, ge=1, le=50)


class WebSearchConfig(Strict):
    search_context_size: Literal["low", "medium", "high"] | None = None


class CodeInterpreterConfig(Strict):
    file_ids: list[str] = Field(default_factory=list)
    memory_limit: Literal["1g", "4g", "16g", "64g"] | None = None


class ToolConfig(Strict):
    """Per-tool settings; ``functions`` turns on function calling."""

    functions: list[FunctionTool] = Field(default_factory=list)
    file_search: FileSearchConfig | None = None
    web_search: WebSearchConfig | None = None
    code_interpreter: CodeInterpreterConfig | None = None


# The routes whose structured output has OpenAI's strict mode.
OPENAI_STRICT = {
    ApiType.OPENAI_CHAT_COMPLETIONS,
    ApiType.OPENAI_RESPONSES,
    ApiType.OPENAI_ASSISTANTS,
}


def strict_mode_problem(schema: Any, where: str = "") -> str | None:
    """What OpenAI's strict mode refuses in ``schema``: an object whose properties are not all
    required, or that allows other properties. None when it takes it."""
    if isinstance(schema, list):
        found = (strict_mode_problem(item, f"{where}/{i}") for i, item in enumerate(schema))
        return next((p for p in found if p), None)
    if not isinstance(schema, dict):
        return None
    properties = schema.get("properties")
    if isinstance(properties, dict):
        at = where or "/"
        missing = [name for name in properties if name not in (schema.get("required") or [])]
        if missing:
            return f"needs every property required, and at {at} {missing} are not"
        if schema.get("additionalProperties") is not False:
            return f"needs additionalProperties: false on every object, and {at} does not say so"
    found = (
        strict_mode_problem(value, f"{where}/{key}")
        for key, value in schema.items()
        if isinstance(value, dict | list)
    )
    return next((p for p in found if p), None)


class ResponseFormat(Strict):
    """Structured output for the prompt under test: every reply must be JSON matching
    ``schema``. Written either whole (``{name, schema, strict}``) or as the bare JSON Schema."""

    name: str = Field(default="response", pattern=FUNCTION_NAME)
    schema_: dict[str, Any] = Field(alias="schema")
    # OpenAI's strict mode (Chat Completions, Responses, Assistants): every property required
    # and additionalProperties false, and the reply is guaranteed to match. Other routes ignore it.
    strict: bool = True

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _bare_schema(cls, data: Any) -> Any:
        """``response_format: {type: object, …}`` is the schema itself."""
        if isinstance(data, dict) and "schema" not in data and "schema_" not in data:
            return {"schema": data}
        return data

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        from prompttracker.evaluators.structure import schema_validator  # evaluators import us

        schema_validator(schema)
        return schema


# Which tools each route can send. Assistants use the tools stored on the assistant itself.
ROUTE_TOOLS: dict[ApiType, set[str]] = {
    ApiType.OPENAI_CHAT_COMPLETIONS: {"function"},
    ApiType.OPENAI_RESPONSES: {"function", "web_search", "file_search", "code_interpreter"},
    ApiType.OPENAI_ASSISTANTS: {"function", "web_search", "file_search", "code_interpreter"},
    ApiType.ANTHROPIC_MESSAGES: set(),
    ApiType.GOOGLE_GEMINI: set(),
    ApiType.MOCK: {"function", "web_search", "file_search", "code_interpreter"},
}


class ModelConfig(Strict):
    """Who answers: provider, API, model and its parameters."""

    provider: str
    api: str | None = None
    model: str | None = None
    assistant_id: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    tools: list[HostedTool] = Field(default_factory=list)
    tool_config: ToolConfig = ToolConfig()
    tool_resources: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Responses only: chain by previous_response_id (default), keep a Conversations-API
    # conversation, or be stateless: resend the whole conversation each turn with store: false.
    conversation_state: Literal["previous_response_id", "conversation", "stateless"] | None = None
    response_format: ResponseFormat | None = None

    @model_validator(mode="after")
    def _check_route(self) -> ModelConfig:
        try:
            api_type = ApiType.from_config(self.provider, self.api)
        except ConfigError as exc:
            raise ValueError(f"{exc.message}; {exc.hint}") from None
        if api_type is ApiType.OPENAI_ASSISTANTS and not self.assistant_id:
            raise ValueError(
                "api 'assistants' needs 'assistant_id' (the asst_... id); "
                "'model', when set, only overrides the assistant's model"
            )
        if api_type not in (ApiType.OPENAI_ASSISTANTS, ApiType.MOCK) and self.assistant_id:
            raise ValueError("'assistant_id' is only used with provider openai, api 'assistants'")
        if api_type not in (ApiType.OPENAI_ASSISTANTS, ApiType.MOCK) and not self.model:
            raise ValueError(f"api {self.api!r} needs 'model'")
        if self.conversation_state and api_type not in (ApiType.OPENAI_RESPONSES, ApiType.MOCK):
            raise ValueError(
                "'conversation_state' is only used with provider openai, api responses"
            )
        self._check_tools(api_type)
        if self.response_format and self.response_format.strict and api_type in OPENAI_STRICT:
            problem = strict_mode_problem(self.response_format.schema_)
            if problem:
                raise ValueError(
                    f"response_format: OpenAI's strict mode {problem}; fix the schema, or set "
                    "response_format.strict: false (the reply is then not guaranteed to match)"
                )
        return self

    def _check_tools(self, api_type: ApiType) -> None:
        wanted = set(self.tools) | ({"function"} if self.tool_config.functions else set())
        unsupported = sorted(wanted - ROUTE_TOOLS[api_type])
        if unsupported:
            raise ValueError(
                f"{self.provider}/{self.api} cannot use tools {unsupported}; "
                + (
                    "use api: responses for web_search, file_search and code_interpreter"
                    if api_type is ApiType.OPENAI_CHAT_COMPLETIONS
                    else "remove them from this version"
                )
            )
        if (
            "file_search" in self.tools
            and api_type is ApiType.OPENAI_RESPONSES
            and not (self.tool_config.file_search and self.tool_config.file_search.vector_store_ids)
        ):
            raise ValueError(
                "file_search needs tool_config.file_search.vector_store_ids "
                "(see `pt vector-stores list`)"
            )
        names = [f.name for f in self.tool_config.functions]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"function names must be unique; repeated: {repeated}")

    @property
    def api_type(self) -> ApiType:
        return ApiType.from_config(self.provider, self.api)

    @property
    def label(self) -> str:
        """Short human name, e.g. ``openai/chat_completions gpt-4o-mini``."""
        if self.provider == "mock":
            route = f"mock ({self.api})" if self.api else "mock"
        else:
            route = f"{self.provider}/{self.api}"
        return f"{route} {self.model or self.assistant_id or ''}".strip()


class PromptVersion(Strict):
    version: int = Field(ge=1)
    status: Literal["draft", "active", "deprecated"] = "draft"
    system_prompt: str = ""
    user_prompt: str = ""
    variables: dict[str, Any] = Field(default_factory=dict)
    model_config_: ModelConfig = Field(alias="model_config")
    notes: str | None = None

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, protected_namespaces=()
    )


class EvaluatorSpec(Strict):
    """One evaluator of a test: its type, an optional label, what it looks at, its config.

    ``turn`` (1-based) and ``role`` narrow what it looks at: message checks score that turn's
    message of ``role`` (default: the last assistant message); conversation checks look at that
    turn only (default: the whole conversation).
    """

    type: str
    name: str | None = None
    turn: int | None = Field(default=None, ge=1)
    role: Literal["user", "assistant"] | None = None
    config: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.type


class Test(Strict):
    name: str
    dataset: str
    versions: list[int] | None = None
    evaluators: list[EvaluatorSpec] = Field(default_factory=list)
    # Play each row this many times (``--repeat`` overrides it): pass rates, pass^k, flaky rows.
    repeat: int = Field(default=1, ge=1, le=MAX_REPEAT)
    enabled: bool = True
    tags: list[str] = Field(default_factory=list)


class Prompt(Strict):
    name: str
    description: str = ""
    versions: list[PromptVersion] = Field(min_length=1)
    tests: list[Test] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_versions(self) -> Prompt:
        numbers = [v.version for v in self.versions]
        duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
        if duplicates:
            raise ValueError(f"version numbers must be unique; repeated: {duplicates}")
        active = [v.version for v in self.versions if v.status == "active"]
        if len(active) > 1:
            raise ValueError(f"at most one version may be active; active: {active}")
        names = [t.name for t in self.tests]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"test names must be unique; repeated: {repeated}")
        return self

    @property
    def active_version(self) -> PromptVersion | None:
        return next((v for v in self.versions if v.status == "active"), None)

    def version(self, number: int) -> PromptVersion | None:
        return next((v for v in self.versions if v.version == number), None)


class DatasetRow(Strict):
    name: str = ""
    variables: dict[str, Any] = Field(default_factory=dict)
    interlocutor_simulation_prompt: str | None = None
    max_turns: int = Field(default=5, ge=1, le=50)
    mock_function_outputs: dict[str, Any] = Field(default_factory=dict)


class Dataset(Strict):
    mode: Literal["single_turn", "conversational"] = "conversational"
    description: str = ""
    rows: list[DatasetRow] = Field(min_length=1)

    @field_validator("rows")
    @classmethod
    def _name_rows(cls, rows: list[DatasetRow]) -> list[DatasetRow]:
        named = [
            r if r.name else r.model_copy(update={"name": f"row-{i}"})
            for i, r in enumerate(rows, 1)
        ]
        counts = Counter(r.name for r in named)
        repeated = sorted(name for name, count in counts.items() if count > 1)
        if repeated:
            raise ValueError(f"row names must be unique; repeated: {repeated}")
        return named

    @model_validator(mode="after")
    def _check_rows(self) -> Dataset:
        if self.mode == "conversational":
            missing = [
                r.name for r in self.rows if not (r.interlocutor_simulation_prompt or "").strip()
            ]
            if missing:
                raise ValueError(
                    "conversational rows need 'interlocutor_simulation_prompt' (who the simulated "
                    f"user is); missing in: {missing}. "
                    "For one message per row use mode: single_turn"
                )
        return self
