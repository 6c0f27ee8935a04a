"""What a call costs: prices from pydantic's ``genai-prices`` data, or the project's own.

``prices:`` in the settings overrides the library for private, discounted or local models
(``model`` or ``provider/model`` → USD per million input and output tokens). A model with no
known price costs *unknown* — never 0. Under ``--mock`` nothing is spent: calls are priced as
the named model would cost, so that a mock run shows what the real one would.

The library is imported on the first price asked for, not when ``pt`` starts.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prompttracker.config.models import ModelConfig
from prompttracker.config.settings import ModelPrice
from prompttracker.messages import Usage

PRICE_LIBRARY = "genai-prices"
MILLION = 1_000_000


class Pricer:
    """Prices calls from the settings' ``prices:`` first, then from ``genai-prices``."""

    def __init__(self, overrides: dict[str, ModelPrice]) -> None:
        self.overrides = overrides

    def cost(self, config: ModelConfig, usage: Usage) -> float | None:
        """USD for one call of ``config``'s model that used ``usage``; None when unknown."""
        override = self.override(config)
        if override is not None:
            return (
                usage.input_tokens * override.input_per_mtok
                + usage.output_tokens * override.output_per_mtok
            ) / MILLION
        if not config.model:
            return None  # an assistant's own model is not in the request
        return _library_cost(_provider_id(config), config.model, usage)

    def known(self, config: ModelConfig) -> bool:
        """Whether calls of ``config`` can be priced."""
        return self.cost(config, Usage(input_tokens=1, output_tokens=1)) is not None

    def override(self, config: ModelConfig) -> ModelPrice | None:
        model = config.model or config.assistant_id or ""
        return self.overrides.get(f"{config.provider}/{model}") or self.overrides.get(model)

    def source(self) -> dict[str, Any]:
        """What the prices came from, stored with the run: the library's version, overrides."""
        return {
            "library": f"{PRICE_LIBRARY} {library_version() or 'not installed'}",
            "overrides": {key: price.model_dump() for key, price in self.overrides.items()},
        }


def library_version() -> str | None:
    try:
        return version(PRICE_LIBRARY)
    except PackageNotFoundError:
        return None


def _provider_id(config: ModelConfig) -> str | None:
    # A mock call is priced as its model would cost wherever it is sold.
    return None if config.provider == "mock" else config.provider


@cache
def _unknown(provider_id: str | None, model: str) -> bool:
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    try:
        calc_price(PriceUsage(input_tokens=1, output_tokens=1), model, provider_id=provider_id)
    except LookupError:
        return True
    return False


def _library_cost(provider_id: str | None, model: str, usage: Usage) -> float | None:
    if _unknown(provider_id, model):
        return None
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    price = calc_price(
        PriceUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
        model,
        provider_id=provider_id,
    )
    total: Decimal = price.total_price
    return float(total)
