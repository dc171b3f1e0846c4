"""The bundled TAT-QA dev split: every question loads, the table reads as a markdown table."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from importlib.resources import files
from pathlib import Path

import pytest

from router.errors import DatasetError
from router.span_metric import read_number, score
from training.datasets import LoadReport, Query, StatefulProblem, load_dataset
from training.datasets.tatqa import bundled_tatqa, load_tatqa, render_table

PROBLEMS = load_tatqa()
FIRST_CONTEXT_HEAD = """\
| Years Ended September 30, | 2019 | 2018 | 2017 |
| --- | --- | --- | --- |
| Fixed Price | $ 1,452.4 | $ 1,146.2 | $ 1,036.9 |
| Other | 44.1 | 56.7 | 70.8 |
| Total sales | $1,496.5 | $1,202.9 | $1,107.7 |

Sales by Contract Type: Substantially all of our contracts are fixed-price type contracts."""


def test_every_context_and_question_loads() -> None:
    report = LoadReport()
    problems = load_dataset("tatqa", report=report)
    assert (len(problems), sum(len(p.queries) for p in problems)) == (278, 1668)
    assert (report.problems, report.queries, report.with_context) == (278, 1668, 278)
    kinds = Counter(q.answer_type for p in problems for q in p.queries)
    assert kinds == {"arithmetic": 718, "span": 701, "multi-span": 217, "count": 32}
    assert {p.answer_format for p in problems} == {"span"}
    assert {p.source for p in problems} == {"tatqa-dev"}


def test_ids_are_the_table_uid_prefix_and_the_question_order() -> None:
    first = PROBLEMS[0]
    assert first.id == "tatqa-dev-3ffd9053"
    assert [q.id for q in first.queries] == [f"tatqa-dev-3ffd9053/q{i}" for i in range(1, 7)]
    ids = [q.id for p in PROBLEMS for q in p.queries]
    assert len(ids) == len(set(ids))


def test_the_context_is_the_table_then_the_paragraphs_in_order() -> None:
    assert PROBLEMS[0].context.startswith(FIRST_CONTEXT_HEAD)
    assert PROBLEMS[0].context.endswith("disaggregated by contract type (in millions):")


def test_golds_keep_every_span_and_the_scale() -> None:
    queries = {q.id: q for q in PROBLEMS[0].queries}
    assert queries["tatqa-dev-3ffd9053/q2"] == Query(
        "tatqa-dev-3ffd9053/q2", "What is the amount of total sales in 2019?", "$1,496.5",
        answers=("$1,496.5",), scale="million", answer_type="span",
    )  # fmt: skip
    contracts = queries["tatqa-dev-3ffd9053/q3"]
    assert contracts.answers == ("fixed-price type", "cost-plus type", "time-and-material type")
    assert contracts.answer == "fixed-price type; cost-plus type; time-and-material type"
    arithmetic = queries["tatqa-dev-3ffd9053/q6"]
    assert (arithmetic.answer, arithmetic.answers, arithmetic.scale) == (
        "-22.22",
        ("-22.22",),
        "percent",
    )


def test_every_gold_restated_with_its_scale_scores_full_marks() -> None:
    """The scorer and the loader agree on every question of the split."""
    suffix = {"percent": "%", "thousand": " thousand", "million": " million", "billion": " billion"}
    for query in (q for p in PROBLEMS for q in p.queries):
        spans = list(query.answers)
        numbers = [i for i, s in enumerate(spans) if (n := read_number(s)) and not n.scale]
        if numbers and query.scale:
            spans[numbers[0]] += suffix[query.scale]
        stated = "; ".join(reversed(spans))
        assert score(stated, query.answers, query.scale).em == 1.0, query.id


def test_unusual_golds_are_counted_not_dropped() -> None:
    report = LoadReport()
    load_tatqa(report=report)
    assert report.odd == {
        "empty gold spans (kept)": 1,
        "spans holding '; ' (joined answer ambiguous)": 1,
    }
    assert "empty gold spans (kept) 1" in report.summary()


def test_loading_is_deterministic_and_limit_takes_the_head() -> None:
    assert load_tatqa(limit=5) == PROBLEMS[:5]
    assert load_tatqa() == PROBLEMS


def test_gsm8k_problems_keep_their_defaults() -> None:
    problem = load_dataset("gsm8k", limit=1)[0]
    assert problem.answer_format == "number"
    assert (problem.queries[0].answers, problem.queries[0].scale) == ((), "")
    assert StatefulProblem("x", "c", (), "s").answer_format == "number"


def test_header_rows_merge_into_one_line() -> None:
    table = [
        ["", "Domestic", "", "International", ""],
        ["", "September 30,", "", "September 30,", ""],
        ["", "2019", "2018", "2019", "2018"],
        ["Discount rate", "4.00%", "3.75%", "1.90%", "2.80%"],
    ]
    assert render_table(table).split("\n") == [
        "|  | Domestic September 30, 2019 | 2018 | International September 30, 2019 | 2018 |",
        "| --- | --- | --- | --- | --- |",
        "| Discount rate | 4.00% | 3.75% | 1.90% | 2.80% |",
    ]


def test_a_single_label_over_the_columns_captions_the_row_labels() -> None:
    table = [
        ["", "", "Fiscal", ""],
        ["", "2019", "2018", "2017"],
        ["", "", "(in millions)", ""],
        ["Transportation Solutions:", "", "", ""],
        ["Automotive", "$ 5,686", "$ 6,092", "$ 5,228"],
    ]
    assert render_table(table).split("\n") == [
        "| Fiscal (in millions) | 2019 | 2018 | 2017 |",
        "| --- | --- | --- | --- |",
        "| Transportation Solutions: |  |  |  |",  # a section label opens the body
        "| Automotive | $ 5,686 | $ 6,092 | $ 5,228 |",
    ]


def test_ragged_rows_and_pipes_in_cells() -> None:
    report = LoadReport()
    text = render_table([["", "2019"], ["A | B", "1", "2"]], report)
    assert text.split("\n") == ["|  | 2019 |  |", "| --- | --- | --- |", "| A \\| B | 1 | 2 |"]
    assert report.odd == {"ragged tables (padded)": 1, "cells with a pipe (escaped)": 1}


def test_a_file_given_by_path_plain_or_gzipped(tmp_path: Path) -> None:
    item = json.loads(gzip.decompress(bundled_tatqa().read_bytes()))[0]
    plain = tmp_path / "one.json"
    plain.write_text(json.dumps([item]))
    assert load_tatqa(plain) == PROBLEMS[:1]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DatasetError, match="invalid JSON"):
        load_tatqa(tmp_path / "bad.json")


def test_the_data_ships_with_its_licence() -> None:
    folder = files("training") / "data" / "tatqa"
    assert "CC BY 4.0" in (folder / "LICENSE.md").read_text()
    assert "tatqa_dataset_dev.json.gz" in (folder / "README.md").read_text()
