"""A price table per model: the TOML file, its mistakes (each names the entry), and a row of
an outcome table priced at the models that answered it and slept for it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from outcome_rows import outcome_row

from policies.cost import ModelPrice
from router.errors import ConfigError, InputError
from training.outcomes import Outcome
from training.price_table import load_prices, parse_prices, row_dollars, sleep_dollars

REPO = Path(__file__).resolve().parents[2]
TABLE = {"big": ModelPrice(1.0, 4.0, 0.5, 0.5), "small": ModelPrice(0.1, 0.4)}


def row(k: int = 1, **models: str) -> Outcome:
    # 1e6 prompt tokens (4e5 of them cached), 1e6 completion; sleep 2e6 prompt, 1e6 completion
    return outcome_row("c", "c/q", k, 0, True, 1_000_000, queries=4, predicted="1",
                       prompt=1_000_000, cached=400_000, sleep_prompt=2_000_000 * k,
                       sleep=1_000_000 * k, sleep_latency=1.0, **models)  # fmt: skip


def test_the_committed_example_parses_with_the_small_model_at_a_third() -> None:
    table = load_prices(REPO / "benchmarks" / "prices" / "hosted-qwen2.5-coder.toml")
    big, small = table["qwen2.5-coder-1.5b"], table["qwen2.5-coder-0.5b"]
    assert small.input == pytest.approx(big.input / 3, rel=0.01)
    assert small.output == pytest.approx(big.output / 3, rel=0.01)
    assert big.sleep_discount == small.sleep_discount == 0.5


def test_a_bad_price_file_is_a_config_error_naming_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    for text, says in [
        ('[models."m"]\ninput = 1\n', r'\[models."m"\]: a price needs both'),
        ('[models."m"]\ninput = 1\noutput = "x"\n', r"\[models.\"m\"\]: 'output' must be"),
        ('[models."m"]\ninput = 1\noutput = 2\nbatch = 3\n', "unknown key 'batch'"),
        ('[model."m"]\ninput = 1\noutput = 2\n', "unknown table"),
        ("models = 3\n", "no \\[models"),
        ("[models]\nm = 3\n", r'\[models."m"\] must be a table'),
        ("[models\n", "not valid TOML"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=says) as caught:
            load_prices(path)
        assert str(path) in str(caught.value)
    with pytest.raises(InputError):
        load_prices(tmp_path / "missing.toml")


def test_a_row_is_priced_at_the_models_that_answered_and_slept() -> None:
    # the run's model answers and sleeps: test 0.6 + 0.4 x 0.5 + 4 = 4.8 dollars; sleep
    # (2 + 4) x 0.5 discount = 3 dollars, shared by the context's 4 queries
    assert row_dollars(row(), TABLE, "big") == pytest.approx(4.8 + 3 / 4)
    # the small model answers on the big model's learned context
    small_on_big = row(test_model="small", sleep_model="big")
    assert row_dollars(small_on_big, TABLE, "big") == pytest.approx(0.1 + 0.4 + 3 / 4)
    assert sleep_dollars(row(sleep_model="small"), TABLE, "big") == pytest.approx(0.2 + 0.4)


def test_an_unpriced_model_is_an_error_but_an_unused_sleep_model_is_not() -> None:
    with pytest.raises(ConfigError, match="no price for model 'other'"):
        row_dollars(row(), TABLE, "other")
    test_only = replace(row(k=0), sleep_model="other")
    assert row_dollars(test_only, TABLE, "big") == pytest.approx(4.8)
    assert parse_prices({"models": {"big-": {"input": 1, "output": 1}}})["big-"].input == 1
