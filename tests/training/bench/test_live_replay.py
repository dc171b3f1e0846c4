"""`sleeptime bench replay`: the arm figures (pure), and one replay through the real proxy."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import pytest
from fake_upstream import FakeUpstream, Recorded, Reply, completion, stream_reply, usage_body

from policies import Prices, save
from policies.builtin import Threshold
from router.ladder import rung
from router.settings import Settings
from training.bench.live_replay import (
    Asked,
    _inputs,
    parser,
    ratios,
    replay_settings,
    run_arm,
    summarize,
)
from training.bench.resume import WorkMismatch, work_folder
from training.datasets import load_dataset

ROOT = Path(__file__).resolve().parents[3]
ESTIMATORS = ROOT / "benchmarks" / "estimators" / "predictability-gsm8k.pkl"


def asked(context: str, correct: bool, tokens: int, route: str = "full") -> Asked:
    return Asked(context, f"{context}/q", route, "", correct, tokens, 100, 0.5)


def test_summary_amortizes_sleep_over_each_contexts_queries() -> None:
    rows = [asked("a", True, 10), asked("a", False, 30), asked("b", True, 0, route="cached")]
    arm = summarize("policy", rows, {"a": 100, "b": 40}, t=10.0)
    assert arm.queries == 3 and arm.contexts == 2
    assert arm.accuracy == pytest.approx(2 / 3, abs=1e-4)
    assert arm.test_tokens == pytest.approx(40 / 3, abs=0.01)
    assert arm.sleep_tokens == 70.0
    # a: 10*10 + 100/2, 10*30 + 100/2; b: 0 + 40/1
    assert arm.cost == pytest.approx((150 + 350 + 40) / 3, abs=0.01)
    assert arm.routes == {"full": 2, "cached": 1}


def test_full_cost_charges_prompt_tokens_and_discounts_cached_ones() -> None:
    fresh = Asked("a", "a/q0", "full", "", True, 10, 400, 0.5)
    cached = Asked("a", "a/q1", "enriched", "", True, 10, 400, 0.5, cached_prompt_tokens=300)
    arm = summarize("policy", [fresh, cached], {}, t=10.0, prices=Prices(10.0, 0.25, 0.125))
    assert arm.cost == 100.0
    # a/q0: 10 * 0.25 * 400; a/q1: 10 * (0.25 * 100 + 0.125 * 300)
    assert arm.full_cost == pytest.approx(100 + (1000 + 625) / 2)
    assert arm.cached_prompt_tokens == 150.0


def test_ratios_compare_against_pass_through() -> None:
    base = summarize("pass-through", [asked("a", True, 300), asked("b", False, 300)], {}, 10.0)
    policy = summarize("policy", [asked("a", True, 30), asked("b", False, 60)], {"a": 90}, 10.0)
    result = ratios(base, policy)
    assert result["test_token_ratio"] == pytest.approx(300 / 45, abs=1e-3)
    assert result["cost_ratio"] == pytest.approx(3000 / ((300 + 90 + 600) / 2), abs=1e-3)
    assert result["accuracy_difference"] == 0.0
    assert result["full_cost_ratio"] == pytest.approx(
        (3000 + 250) / ((300 + 90 + 600) / 2 + 250), abs=1e-3
    )


SLEEP_TEXT = """NOTES:
- Janet sells 16 - 3 - 4 = 9 eggs a day.
QUESTIONS:
Q: How many eggs does Janet sell?
Work: 16 - 3 - 4 = 9
A: 9"""


def model(request: Recorded) -> Reply:
    """Sleep-time prompts get notes that anticipate the question; queries get 'Answer: 9'."""
    if request.method == "GET":
        from fake_upstream import json_reply

        return json_reply({"object": "list", "data": [{"id": "fake", "object": "model"}]})
    text = json.dumps(request.json)
    reply = SLEEP_TEXT if "QUESTIONS" in text else "16 - 3 - 4 = 9\nAnswer: 9"
    if request.json.get("stream"):  # sleep-time passes stream, so a user can cut them short
        return stream_reply([reply], usage=usage_body(120, 40))
    return completion(reply, usage=usage_body(120, 40))


def problems_file(tmp_path: Path) -> Path:
    """Two contexts of two questions each, every answer 9."""
    data = tmp_path / "data.jsonl"
    context = "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4."
    lines = [
        {"id": f"c{i}", "context": context + f" (day {i})", "queries": [
            {"question": "How many eggs does Janet sell?", "answer": "9"},
            {"question": "How many eggs does Janet sell each day?", "answer": "9"},
        ]}
        for i in range(2)
    ]  # fmt: skip
    data.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return data


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_replay_through_the_proxy(tmp_path: Path) -> None:
    """Both arms through real proxies and the real openai client; the policy arm registers,
    sleeps, and routes with the committed estimators and real embeddings."""
    problems = load_dataset(problems_file(tmp_path))
    policy = save(Threshold(cached_threshold=0.0), tmp_path / "policy.json")  # always cache
    args = argparse.Namespace(
        policy=policy,
        estimators=ESTIMATORS,
        client_rung="steps",
        sleep_passes=1,
        sleep_prompt="solve",
        concurrency=2,
    )
    with FakeUpstream(fallback=model) as fake:
        settings = Settings(cache_dir=tmp_path, upstream_url=fake.url, upstream_model="fake")
        plain, no_sleep = run_arm("pass-through", settings, problems, args, tmp_path)
        routed, slept = run_arm("policy", settings, problems, args, tmp_path)
    asked = [r.json["messages"][-1]["content"] for r in fake.requests if r.method == "POST"]
    assert asked[0].endswith(rung("steps").instruction)  # the client's own prompt, unchanged
    assert no_sleep == {} and {a.route for a in plain} == {"full"}
    assert all(a.correct and a.test_tokens == 40 for a in plain)
    assert slept == {"c0": 40, "c1": 40}
    assert {a.route for a in routed} == {"cached"} and all(a.correct for a in routed)
    assert all(a.test_tokens == 0 for a in routed)


def test_a_killed_replay_asks_only_what_it_had_not_got_back(tmp_path: Path) -> None:
    problems = load_dataset(problems_file(tmp_path))
    first = problems[0]
    kept = Asked(first.id, first.queries[0].id, "full", "", False, 7, 70, 1.0)
    progress = tmp_path / "pass-through.asked.jsonl"
    progress.write_text(json.dumps(asdict(kept)) + '\n{"context": "c1", "que')  # torn by a kill
    args = argparse.Namespace(client_rung="steps", sleep_passes=1, sleep_prompt="solve",
                              concurrency=2)  # fmt: skip
    with FakeUpstream(fallback=model) as fake:
        settings = Settings(cache_dir=tmp_path, upstream_url=fake.url, upstream_model="fake")
        asked, _ = run_arm("pass-through", settings, problems, args, tmp_path)
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 3  # 4 queries, 1 already answered
    assert [a.query for a in asked] == [q.id for p in problems for q in p.queries]
    assert asked[0] == kept and all(a.correct for a in asked[1:])
    again = [line for line in progress.read_text().splitlines() if line.endswith("}")]
    assert len(again) == 4  # every answer is on disk for the next run


def test_a_work_folder_of_other_inputs_is_refused(tmp_path: Path) -> None:
    with work_folder(tmp_path / "w", {"offset": 50, "limit": 24}) as folder:
        (folder / "policy.asked.jsonl").write_text("")
    with work_folder(tmp_path / "w", {"offset": 50, "limit": 24}) as folder:
        assert (folder / "policy.asked.jsonl").exists()  # resumed
    with (
        pytest.raises(WorkMismatch, match="offset differ"),
        work_folder(tmp_path / "w", {"offset": 74, "limit": 24}),
    ):
        pass


def test_the_sleep_flags_turn_their_settings_on_and_are_part_of_the_inputs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("SLEEPTIME_SLEEP_REASK", "SLEEPTIME_SLEEP_ADAPTIVE", "SLEEPTIME_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    policy = ["--policy", str(tmp_path / "p.json")]
    plain = replay_settings(parser().parse_args(policy))
    assert (plain.sleep_reask, plain.sleep_adaptive) == (False, False)
    args = parser().parse_args([*policy, "--sleep-reask", "--sleep-passes", "4"])
    flagged = replay_settings(args)
    args.estimators = tmp_path / "p.estimators.pkl"  # as main resolves it
    assert (flagged.sleep_reask, flagged.sleep_adaptive) == (True, False)
    assert _inputs(args, flagged)["sleep_reask"] is True  # a resumed replay keeps its setup
    monkeypatch.setenv("SLEEPTIME_SLEEP_ADAPTIVE", "true")  # no flag: the setting decides
    assert replay_settings(parser().parse_args(policy)).sleep_adaptive is True
