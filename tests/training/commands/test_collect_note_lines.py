"""`collect --note-lines N`: a c' prompt carries the learned lines that match its query, the
measurement of compact notes on a format that otherwise carries them all (number)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_upstream import FakeUpstream, Recorded, Reply, completion, json_reply, usage_body

from router.note_match import TITLE
from router.sleep import SYSTEM as SLEEP_SYSTEM
from training.commands.collect import main
from training.commands.collect_args import parse_args
from training.outcomes import RUN

SLEEP_TEXT = """NOTES:
- Eggs laid each day: 16
- Muffins baked each day: 4 eggs
QUESTIONS:
Q: How much does Janet earn at the market each day?
A: 18"""


def scripted(request: Recorded) -> Reply:
    if request.method == "GET":
        return json_reply({"object": "list", "data": [{"id": "m", "object": "model"}]})
    asked = request.json
    if asked["messages"][0]["content"] == SLEEP_SYSTEM:
        return completion(SLEEP_TEXT, usage=usage_body(100, 50))
    return completion("Answer: 18", usage=usage_body(20, 5))


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(scripted) as server:
        yield server


def learned_prompts(upstream: FakeUpstream, tmp_path: Path, *flags: str) -> list[str]:
    data = tmp_path / "one.jsonl"
    query = {"question": "How much does Janet earn each day?", "answer": "18"}
    data.write_text(json.dumps({"id": "a", "context": "Janet's ducks.", "queries": [query]}))
    out = tmp_path / "out"
    argv = ["--dataset", str(data), "--out", str(out), "--upstream-url", upstream.url]
    argv += ["--cache", str(tmp_path / "c.sqlite"), "--rungs-raw", "none", "--json"]
    assert main([*argv, "--rungs-learned", "0", *flags]) == 0
    posts = [r.json for r in upstream.requests if r.method == "POST"]
    answers = [p for p in posts if p["messages"][0]["content"] != SLEEP_SYSTEM]
    return [json.dumps(p["messages"]) for p in answers]


def test_a_number_context_carries_its_whole_learned_context_by_default(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    (prompt,) = learned_prompts(upstream, tmp_path)
    assert "Muffins baked each day" in prompt and TITLE not in prompt
    assert json.loads((tmp_path / "out" / RUN).read_text())["plan"]["note_lines"] is None


def test_note_lines_carry_only_the_lines_that_match_the_query(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    (prompt,) = learned_prompts(upstream, tmp_path, "--note-lines", "1")
    assert TITLE in prompt
    assert "How much does Janet earn at the market each day? A: 18" in prompt
    assert "Muffins baked each day" not in prompt and "Eggs laid each day" not in prompt
    assert json.loads((tmp_path / "out" / RUN).read_text())["plan"]["note_lines"] == 1


@pytest.mark.parametrize("value", ["-1", "1,2", "many"])
def test_note_lines_is_one_count(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--out", "x", "--note-lines", value])
    assert "--note-lines" in capsys.readouterr().err
