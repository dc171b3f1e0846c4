"""`report --prices FILE` (issue 18, item 5): dollars per query per point and the dollar
ratio at the best test-time-only accuracy; without the flag the summary is as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from outcome_rows import outcome_row

from router.errors import ConfigError
from training.commands.report import main
from training.outcomes import OUTCOMES, RUN, write_outcomes

PRICES = """
[models."m"]
input = 1.0
cached_input = 0.5
output = 10.0
sleep_discount = 0.5
"""


def write_table(folder: Path, learned_model: str = "") -> Path:
    """Test-time only is right at rung 3 only (300 tokens); after one sleep pass (400 prompt
    and 200 completion tokens per context, 4 queries each) rung 0 is right too (5 tokens)."""
    rows = []
    for c in range(6):
        for q in range(4):
            for k, rung, ok, tokens in ((0, 0, False, 5), (0, 3, True, 300), (1, 0, True, 5)):
                qid = f"c{c}/q{q}"
                rows.append(outcome_row(f"c{c}", qid, k, rung, ok, tokens, queries=4, cached=40,
                                        sleep_prompt=400 * k, sleep=200 * k, sleep_latency=1.0,
                                        test_model=learned_model if k else ""))  # fmt: skip
    folder.mkdir()
    write_outcomes(folder / OUTCOMES, rows)
    (folder / RUN).write_text(json.dumps({"model": "m"}))
    return folder


def report(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main([*argv, "--json", "--no-mlflow", "--no-plots", "--bootstrap", "50"]) == 0
    return json.loads(capsys.readouterr().out)


def call(completion: float) -> float:
    return (1.0 * 60 + 0.5 * 40 + 10.0 * completion) / 1e6  # 100 prompt tokens, 40 cached


def test_prices_add_dollars_per_point_and_the_ratio_at_the_best_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_table(tmp_path / "t")
    (tmp_path / "prices.toml").write_text(PRICES)
    summary = report([str(table), "--prices", str(tmp_path / "prices.toml")], capsys)
    sleep_share = (400 * 1.0 + 200 * 10.0) * 0.5 / 1e6 / 4
    points = {(k, p["rung"]): p for k, ps in summary["dollar_curves"].items() for p in ps}
    assert points[("0", 3)]["dollars_per_query"] == pytest.approx(call(300))
    assert points[("1", 0)]["dollars_per_query"] == pytest.approx(call(5) + sleep_share)
    assert points[("1", 0)]["sleep_dollars"] == pytest.approx(sleep_share)
    ratio = call(300) / (call(5) + sleep_share)
    assert summary["dollar_cost_ratio_at_best_test_only_accuracy"] == pytest.approx(ratio)
    comparison = summary["comparisons"]["1"]
    assert comparison["dollar_cost_ratio_at_best_test_only_accuracy"] == pytest.approx(ratio)
    assert comparison["dollars_at_best_test_only_accuracy"]["sleep_rung"] == 0
    keys = list(summary)  # the dollar ratio stands right beside the full-cost one
    assert keys.index("dollar_cost_ratio_at_best_test_only_accuracy") == 1 + keys.index(
        "full_cost_ratio_at_best_test_only_accuracy"
    )
    assert summary["prices"]["m"]["sleep_discount"] == 0.5


def test_a_small_model_answering_on_the_learned_context_is_priced_at_its_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_table(tmp_path / "t", learned_model="small")
    small = '[models."small"]\ninput = 0.1\noutput = 1.0\n'
    (tmp_path / "prices.toml").write_text(PRICES + small)
    summary = report([str(table), "--prices", str(tmp_path / "prices.toml")], capsys)
    learned = summary["dollar_curves"]["1"][0]
    assert learned["test_dollars"] == pytest.approx((0.1 * 100 + 1.0 * 5) / 1e6)
    assert learned["sleep_dollars"] == pytest.approx((400 + 200 * 10.0) * 0.5 / 1e6 / 4)


def test_without_prices_the_summary_has_no_dollars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_table(tmp_path / "t")
    (tmp_path / "prices.toml").write_text(PRICES)
    plain = report([str(table)], capsys)
    priced = report([str(table), "--prices", str(tmp_path / "prices.toml")], capsys)
    assert not {"dollar_curves", "prices", "dollar_cost_ratio_at_best_test_only_accuracy"} & set(
        plain
    )
    added = {"dollar_curves", "prices", "dollar_cost_ratio_at_best_test_only_accuracy"}
    assert set(priced) - set(plain) == added
    assert {k: v for k, v in priced.items() if k not in added | {"comparisons"}} == {
        k: v for k, v in plain.items() if k != "comparisons"
    }


def test_the_text_report_prints_dollars_per_thousand_queries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_table(tmp_path / "t")
    (tmp_path / "prices.toml").write_text(PRICES)
    argv = [str(table), "--prices", str(tmp_path / "prices.toml"), "--no-mlflow", "--no-plots"]
    assert main([*argv, "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert f"test-time only: r0 ${1000 * call(5):.4f}, r3 ${1000 * call(300):.4f}" in out
    assert "dollar cost ratio at the best test-time-only accuracy: " in out


def test_a_model_missing_from_the_price_file_or_a_bad_entry_stops_the_report(
    tmp_path: Path,
) -> None:
    table = write_table(tmp_path / "t")
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES.replace('"m"', '"other"'))
    with pytest.raises(ConfigError, match="no price for model 'm'"):
        main([str(table), "--prices", str(prices), "--no-mlflow", "--no-plots"])
    prices.write_text(PRICES.replace("output = 10.0", "output = -1"))
    with pytest.raises(ConfigError, match=r'\[models."m"\]: \'output\' must be'):
        main([str(table), "--prices", str(prices), "--no-mlflow", "--no-plots"])
