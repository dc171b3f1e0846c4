"""Stateful datasets: sentence splitting, the bundled GSM8K loaders, user JSONL files."""

from __future__ import annotations

import json
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from router.errors import DatasetError
from router.grading import normalize_number
from training.datasets import (
    LoadReport,
    StatefulProblem,
    load_dataset,
    load_jsonl,
    load_multi_query_gsm8k,
    load_stateful_gsm8k,
    split_context_and_question,
    split_sentences,
)
from training.datasets.lines import bundled

# --- sentence splitting -------------------------------------------------------


@pytest.mark.parametrize(
    "sentences",
    [
        "Pens cost $0.7 each.|She buys 3.",
        "It weighs 3.5 kg.|Rope is 1.25 m, or .5 m more.",
        "He paid $1,000.50 for it.|Then he sold it.",
        "Mr. Smith and Dr. Lee met Mrs. Brown.|They ate.",
        "She sleeps at 10 p.m. and wakes at 6 a.m.|She is tired.",
        "He buys pens from A.T. Cross Luxury Pens.|Each costs $2.",
        "He has 55 goats in Farm Y.|He sells 10.",
        'She said "Stop!"|Then she left.',
        "Cost is $2.00.|3 boys came.",
    ],
)
def test_split_sentences_keeps_decimals_and_abbreviations(sentences: str) -> None:
    expected = sentences.split("|")
    assert split_sentences(" ".join(expected)) == expected


@pytest.mark.parametrize(
    ("text", "context", "question"),
    [
        (
            "Tom has 3 apples. He buys 2.5 kg more. How many kg does he have?",
            "Tom has 3 apples. He buys 2.5 kg more.",
            "How many kg does he have?",
        ),
        (  # the question in the middle
            "Ann buys 4 pens. How much does she pay if each costs $2? She pays in cash.",
            "Ann buys 4 pens. She pays in cash.",
            "How much does she pay if each costs $2?",
        ),
        (  # "If ..., how many ...?" as its own sentence after the facts
            "A bus holds 40 people. If 3 buses are full, how many people ride?",
            "A bus holds 40 people.",
            "If 3 buses are full, how many people ride?",
        ),
        (  # no "?": an imperative
            "Bo has 40 crabs. Rani has 10 more. Calculate the total number of crabs.",
            "Bo has 40 crabs. Rani has 10 more.",
            "Calculate the total number of crabs.",
        ),
        (  # no "?": ", then calculate"
            "James and Ali own $250. If James owns $40 more, then calculate what James owns.",
            "James and Ali own $250.",
            "If James owns $40 more, then calculate what James owns.",
        ),
        (  # no "?" and no comma
            "Milk is $2. If there is a 10% tax how much did everything cost.",
            "Milk is $2.",
            "If there is a 10% tax how much did everything cost.",
        ),
        (  # a remark right after the question belongs to it
            "Soup costs $2.00 a pound. What is the cost? (Round to the nearest integer.)",
            "Soup costs $2.00 a pound.",
            "What is the cost? (Round to the nearest integer.)",
        ),
        (  # single sentence: no context, still a question
            "If Ann is 9 years old, how old will she be in 3 years?",
            "",
            "If Ann is 9 years old, how old will she be in 3 years?",
        ),
        (  # nothing asks: the whole problem becomes the query
            "Tom has 3 apples.  He eats one.",
            "",
            "Tom has 3 apples. He eats one.",
        ),
    ],
)
def test_split_context_and_question(text: str, context: str, question: str) -> None:
    assert split_context_and_question(text) == (context, question)


# --- bundled GSM8K ----------------------------------------------------------------


def test_first_bundled_problem_is_janets_ducks() -> None:
    [problem] = load_stateful_gsm8k(limit=1)
    assert problem.id == "gsm8k-test-0000"
    assert problem.source == "gsm8k-test"
    assert problem.context.startswith("Janet\u2019s ducks lay 16 eggs per day.")
    assert problem.context.endswith("for $2 per fresh duck egg.")
    [query] = problem.queries
    assert query.id == "gsm8k-test-0000/q0"
    assert query.question == "How much in dollars does she make every day at the farmers' market?"
    assert (query.answer, query.kind) == ("18", "final")
    assert problem.has_context


def test_gold_with_thousands_separator_is_canonical() -> None:
    problems = load_stateful_gsm8k()
    golds = {q.answer for p in problems for q in p.queries}
    assert "2125" in golds and "2,125" not in golds


def test_whole_bundled_test_set() -> None:
    report = LoadReport()
    problems = load_stateful_gsm8k(report=report)
    print("\n" + report.summary())
    assert len(problems) == report.problems == 1319
    assert all(len(p.queries) == 1 and p.queries[0].question.strip() for p in problems)
    assert all(normalize_number(p.queries[0].answer) is not None for p in problems)
    assert len({p.id for p in problems}) == len(problems)
    with_context = sum(p.has_context for p in problems)
    assert with_context == report.with_context
    assert with_context >= 0.95 * len(problems)
    assert report.question_not_found == 0
    assert report.question_not_last == 3  # each followed by a "(Round ...)"-style remark


def test_socratic_first_problem_has_sub_questions_with_golds() -> None:
    [problem] = load_multi_query_gsm8k(limit=1)
    assert problem.id == "gsm8k-socratic-0000"
    assert problem.context.startswith("Janet\u2019s ducks lay 16 eggs per day.")
    got = [(q.id, q.question, q.answer, q.kind) for q in problem.queries]
    assert got == [
        ("gsm8k-socratic-0000/q0", "How many eggs does Janet sell?", "9", "sub"),
        ("gsm8k-socratic-0000/q1", "How much does Janet make at the farmers' market?", "18", "sub"),
        (
            "gsm8k-socratic-0000/q2",
            "How much in dollars does she make every day at the farmers' market?",
            "18",
            "final",
        ),
    ]


def test_socratic_sub_question_equal_to_the_final_one_yields_to_it() -> None:
    robe = load_multi_query_gsm8k(limit=2)[1]
    assert [(q.question, q.answer, q.kind) for q in robe.queries] == [
        ("How many bolts of white fiber does it take?", "1", "sub"),
        ("How many bolts in total does it take?", "3", "final"),
    ]


def test_whole_bundled_socratic_set() -> None:
    report = LoadReport()
    problems = load_multi_query_gsm8k(report=report)
    print("\n" + report.summary())
    assert len(problems) == 1319
    assert all(p.queries[-1].kind == "final" for p in problems)
    assert all(q.kind == "sub" for p in problems for q in p.queries[:-1])
    ids = [q.id for p in problems for q in p.queries]
    assert len(ids) == len(set(ids)) == report.queries
    assert all(normalize_number(q.answer) is not None for p in problems for q in p.queries)
    assert report.queries / report.problems > 3
    assert report.sub_questions_skipped_not_question > 0  # "Simplify", "Define a variable"


def _socratic_line(answer: str) -> dict[str, str]:
    return {
        "question": "Ann has 4 pens. She buys 2 more. How many pens does she have?",
        "answer": answer,
    }


def test_socratic_parsing_skips_and_counts(tmp_path: Path) -> None:
    answer = "\n".join(
        [
            "How many pens did she buy? ** She bought 2 pens.",  # no <<>>: last number
            "How many pens did she buy? ** Repeated text, different gold <<1+1=3>>3.",
            "Define a variable ** Let x be the pens.",
            "How long is a pen? ** Let the pen be x cm long.",  # no gold at all
            "How many pens in all? ** 4 + 2 = <<4+2=6>>6 pens, so 6.00 <<6*1=6.00>>",
            "How many pens does she have? ** She has 6.",
            "#### 6",
        ]
    )
    path = tmp_path / "socratic.jsonl"
    path.write_text(json.dumps(_socratic_line(answer)) + "\n", encoding="utf-8")
    report = LoadReport()
    [problem] = load_multi_query_gsm8k(path, report=report)
    assert [(q.question, q.answer, q.kind) for q in problem.queries] == [
        ("How many pens did she buy?", "2", "sub"),
        ("How many pens in all?", "6", "sub"),
        ("How many pens does she have?", "6", "final"),
    ]
    assert report.sub_questions_duplicate == 2
    assert report.sub_questions_skipped_not_question == 1
    assert report.sub_questions_skipped_no_gold == 1


def test_bundled_files_ship_with_their_license() -> None:
    names = {entry.name for entry in (files("training") / "data" / "gsm8k").iterdir()}
    assert {"test.jsonl", "test_socratic.jsonl", "LICENSE", "README.md"} <= names
    assert "MIT" in bundled("LICENSE").read_text(encoding="utf-8")


# --- nothing outside the package ------------------------------------------------

_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], str | Path):
        _opened.append(str(args[0]))


def test_loaders_read_only_the_bundled_copy() -> None:
    global _opened
    sys.addaudithook(_audit)  # cannot be removed: it records only while _opened is a list
    _opened = []
    try:
        load_stateful_gsm8k(limit=2)
        load_multi_query_gsm8k(limit=2)
        load_dataset("gsm8k", limit=1)
        opened = list(_opened)
    finally:
        _opened = None
    data_files = [p for p in opened if p.endswith(".jsonl")]
    assert data_files, "the audit hook saw no dataset file being opened"
    package_dir = str(Path(__file__).resolve().parents[2] / "training" / "data" / "gsm8k")
    assert all(p.startswith(package_dir) for p in data_files), data_files
    assert not any("shared" in Path(p).parts for p in opened)


def test_no_dataset_module_mentions_the_shared_folder() -> None:
    package = Path(__file__).resolve().parents[2] / "training" / "datasets"
    for module in package.glob("*.py"):
        assert "/shared" not in module.read_text(encoding="utf-8"), module


# --- user JSONL -------------------------------------------------------------------


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = json.dumps(
    {
        "id": "doc-1",
        "context": "A crate holds 12 bottles. Each bottle costs $1.50.",
        "queries": [
            {"question": "How much does a crate cost?", "answer": "$18.00"},
            {"question": "How many bottles in 2 crates?", "answer": 24, "kind": "sub"},
        ],
    }
)
GSM8K_LINE = json.dumps(
    {
        "question": "Pens cost $0.5 each. Ann buys 4. How much does she pay?",
        "answer": "4*0.5=2\n#### 2",
    }
)


def test_user_jsonl_good_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, [GOOD, "", "   ", GSM8K_LINE])
    report = LoadReport()
    first, second = load_jsonl(path, report=report)
    assert first == StatefulProblem(
        "doc-1",
        "A crate holds 12 bottles. Each bottle costs $1.50.",
        first.queries,
        "mine.jsonl",
    )
    assert [(q.id, q.answer, q.kind) for q in first.queries] == [
        ("doc-1/q0", "18", "final"),
        ("doc-1/q1", "24", "sub"),
    ]
    assert second.id == "mine-0004"  # default id: file stem and line number
    assert second.context == "Pens cost $0.5 each. Ann buys 4."
    assert [(q.question, q.answer) for q in second.queries] == [("How much does she pay?", "2")]
    assert (report.problems, report.queries) == (2, 3)


Q = '{"question": "q?", "answer": "1"}'


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "invalid JSON"),
        ('["a", "list"]', "expected an object"),
        ('{"context": "c"}', "missing field 'queries'"),
        (f'{{"context": 3, "queries": [{Q}]}}', "'context' has type int"),
        ('{"context": "c", "queries": []}', "'queries' is empty"),
        ('{"context": "c", "queries": "q?"}', "'queries' has type str"),
        ('{"context": "c", "queries": [{"question": "q?"}]}', "missing field 'answer'"),
        ('{"context": "c", "queries": [{"question": "q?", "answer": true}]}', "type bool"),
        ('{"context": "c", "queries": [{"question": " ", "answer": "1"}]}', "empty 'question'"),
        ('{"context": "c", "queries": [{"question": "q?", "answer": "1", "kind": "x"}]}', "'kind'"),
        ('{"context": "c", "queries": ["q?"]}', "query 0 is a JSON str"),
        (f'{{"id": "doc-1", "context": "c", "queries": [{Q}]}}', "duplicate id"),
        ('{"question": "How many?", "answer": "no marker"}', "####"),
        ('{"question": "How many?", "answer": "#### lots"}', "not a number"),
        ('{"text": "neither shape"}', "expected 'context'"),
    ],
)
def test_user_jsonl_bad_line_names_its_number(tmp_path: Path, bad: str, message: str) -> None:
    path = _write(tmp_path, [GOOD, "", bad])
    with pytest.raises(DatasetError, match=message) as caught:
        load_jsonl(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith("line 3: ")


def test_user_jsonl_bad_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_bytes(GOOD.encode() + b"\n" + b'{"context": "\xff"}\n')
    with pytest.raises(DatasetError, match="UTF-8") as caught:
        load_jsonl(path)
    assert caught.value.line == 2


def test_user_jsonl_lenient_mode_reports_bad_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, ["{oops", GOOD, '{"context": "c", "queries": []}', GSM8K_LINE])
    report = LoadReport()
    problems = load_jsonl(path, strict=False, report=report)
    assert [p.id for p in problems] == ["doc-1", "mine-0004"]
    assert [line for line, _ in report.bad_lines] == [1, 3]
    assert "invalid JSON" in report.bad_lines[0][1]


def test_user_jsonl_keeps_empty_context_but_flags_it(tmp_path: Path) -> None:
    line = json.dumps({"id": 7, "context": "", "queries": [{"question": "2+2?", "answer": "4"}]})
    [problem] = load_jsonl(_write(tmp_path, [line]))
    assert problem.id == "7"
    assert not problem.has_context


# --- load_dataset -----------------------------------------------------------------


def test_load_dataset_by_name_and_path(tmp_path: Path) -> None:
    assert load_dataset("gsm8k", limit=3)[2].id == "gsm8k-test-0002"
    assert load_dataset("gsm8k-multi", limit=1)[0].source == "gsm8k-socratic"
    assert load_dataset(str(_write(tmp_path, [GOOD])))[0].id == "doc-1"
    with pytest.raises(DatasetError, match="no dataset named 'gsm8K'"):
        load_dataset("gsm8K")
