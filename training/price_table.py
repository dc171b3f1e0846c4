"""A price table per model, for pricing outcome tables in dollars (`report --prices FILE`).

    # dollars per million tokens, as a hosted API publishes them
    [models."qwen2.5-coder-1.5b"]
    input = 0.10
    cached_input = 0.05
    output = 0.40
    sleep_discount = 0.5      # sleep-time work at a batch API's rate

A model is found by its exact name or the longest listed prefix (`policies.cost.price_of`).
An outcome row names the models that answered it and ran its context's sleep passes
(`test_model`, `sleep_model`; "", as in every older table: the run's model), so a small
model answering on a large model's learned context is priced at each one's own rate.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from policies.cost import ModelPrice, price_of
from router.errors import ConfigError, InputError
from training.outcomes import Outcome

PriceTable = dict[str, ModelPrice]


def load_prices(path: Path) -> PriceTable:
    """Every mistake is a ConfigError naming the file and the entry, as for the model list."""
    if not path.is_file():
        raise InputError(f"no price file at {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return parse_prices(data, str(path))


def parse_prices(data: dict[str, Any], where: str = "prices") -> PriceTable:
    models = data.get("models")
    extra = sorted(set(data) - {"models"})
    if extra:
        raise ConfigError(f"{where}: unknown table(s) {', '.join(extra)}; prices go under [models]")
    if not isinstance(models, dict) or not models:
        raise ConfigError(f'{where}: no [models."NAME"] table with a price')
    table = {}
    for name, entry in models.items():
        if not isinstance(entry, dict):
            raise ConfigError(f'{where}: [models."{name}"] must be a table of prices')
        try:
            table[name] = ModelPrice.from_dict(entry)
        except ValueError as exc:
            raise ConfigError(f'{where}: [models."{name}"]: {exc}') from exc
    return table


def model_price(table: PriceTable, model: str) -> ModelPrice:
    price = price_of(table, model) if model else None
    if price is None:
        listed = ", ".join(sorted(table))
        raise ConfigError(f"the price table has no price for model {model!r} (it lists {listed})")
    return price


def models_of(o: Outcome, run_model: str) -> tuple[str, str]:
    """(test model, sleep model) of a row; the run's model where the row names none."""
    return o.test_model or run_model, o.sleep_model or run_model


def answer_dollars(o: Outcome, table: PriceTable, run_model: str) -> float:
    """The row's test-time call, at the answering model's price."""
    price = model_price(table, models_of(o, run_model)[0])
    return float(
        price.dollars(o.test_prompt_tokens, o.test_completion_tokens, o.test_cached_prompt_tokens)
    )


def sleep_dollars(o: Outcome, table: PriceTable, run_model: str) -> float:
    """The row's context's whole sleep-time work (all its queries share it), at the sleep
    model's price times its sleep discount; a row without sleep work costs nothing."""
    if not (o.sleep_prompt_tokens or o.sleep_completion_tokens):
        return 0.0
    price = model_price(table, models_of(o, run_model)[1])
    return float(price.dollars(o.sleep_prompt_tokens, o.sleep_completion_tokens, sleep=True))


def dollar_parts(o: Outcome, table: PriceTable, run_model: str) -> tuple[float, float]:
    """This row's own call, and its share of its context's sleep-time work (the whole
    bill divided by the context's queries)."""
    share = sleep_dollars(o, table, run_model) / max(o.queries_in_context, 1)
    return answer_dollars(o, table, run_model), share


def row_dollars(o: Outcome, table: PriceTable, run_model: str) -> float:
    """Dollars per query for this row's action: its own call plus its share of the
    context's sleep-time work."""
    test, share = dollar_parts(o, table, run_model)
    return test + share
