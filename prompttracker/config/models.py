"""The file formats: one strict pydantic model per kind of YAML file (``extra="forbid"``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prompttracker.api_types import ApiType
from prompttracker.errors import ConfigError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(Strict):
    """Who answers: provider, API, model and its parameters."""

    provider: str
    api: str | None = None
    model: str | None = None
    assistant_id: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    tools: list[str] = Field(default_factory=list)
    tool_config: dict[str, Any] = Field(default_factory=dict)
    tool_resources: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

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
        if api_type is not ApiType.OPENAI_ASSISTANTS and self.assistant_id:
            raise ValueError("'assistant_id' is only used with provider openai, api 'assistants'")
        if api_type not in (ApiType.OPENAI_ASSISTANTS, ApiType.MOCK) and not self.model:
            raise ValueError(f"api {self.api!r} needs 'model'")
        return self

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
    type: str
    name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.type


class Test(Strict):
    name: str
    dataset: str
    versions: list[int] | None = None
    evaluators: list[EvaluatorSpec] = Field(default_factory=list)
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
        names = [r.name for r in named]
        repeated = sorted({n for n in names if names.count(n) > 1})
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
