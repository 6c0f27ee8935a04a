"""Tests against a real model server: llama-server with SmolLM2, or any compatible server.

They run when ``PT_REAL_MODEL_BASE_URL`` names the server (``.ci/run`` starts one through
../shared/real-llm/serve.sh) and skip otherwise, saying why: ``PT_REAL_MODEL_UNAVAILABLE``
carries the reason when ``.ci/run`` tried to start the server and could not.
They check protocol and robustness, never the quality of the model's answers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
URL_ENV = "PT_REAL_MODEL_BASE_URL"
UNAVAILABLE_ENV = "PT_REAL_MODEL_UNAVAILABLE"
NOT_SET = (
    f"{URL_ENV} is not set: .ci/run starts SmolLM2 through ../shared/real-llm/serve.sh; "
    "or start a llama-server yourself and set it"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of this package is a ``real_model`` test (``-m "not real_model"`` skips them)."""
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.real_model)


@pytest.fixture(scope="session")
def real_model_url() -> str:
    """The real server's base URL (no ``/v1``), or skip with the reason it is not there."""
    url = os.environ.get(URL_ENV, "").strip().rstrip("/")
    if url:
        return url
    pytest.skip(os.environ.get(UNAVAILABLE_ENV, "").strip() or NOT_SET)
