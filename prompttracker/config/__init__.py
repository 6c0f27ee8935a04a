"""Pydantic models of the YAML files and the one loader that reads them."""

from prompttracker.config.loader import Project, load_project, load_settings
from prompttracker.config.models import (
    Dataset,
    DatasetRow,
    EvaluatorSpec,
    ModelConfig,
    Prompt,
    PromptVersion,
    Test,
)

__all__ = [
    "Dataset",
    "DatasetRow",
    "EvaluatorSpec",
    "ModelConfig",
    "Project",
    "Prompt",
    "PromptVersion",
    "Test",
    "load_project",
    "load_settings",
]
