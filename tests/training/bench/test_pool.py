"""`sleeptime bench pool`: replay files pooled into one sample (pure, from files)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from policies import Prices
from router.errors import InputError
from training.bench.arms import Asked, summarize
from training.bench.pool import PoolError, load, main, paired_difference, pool, pooled_arm

T = 10.0


def asked(context: str, index: int, correct: bool, tokens: int, route: str = "full", **kw) -> Asked:
    return Asked(context, f"{context}/q{index}", route, "", correct, tokens, 100, 0.5, **kw)


def replay_file(path: Path, plain: list[Asked], routed: list[Asked], sleep: dict[str, int]) -> Path:
    """What `bench replay --out` writes, built by the same summarize."""
    arms = {"pass-through": summarize("pass-through", plain, {}, T),
            "policy": summarize("policy", routed, sleep, T)}  # fmt: skip
    body = {
        "t": T,
        "arms": {name: asdict(arm) for name, arm in arms.items()},
        "queries": {
            "pass-through": [asdict(a) for a in plain],
            "policy": [asdict(a) for a in routed],
        },
    }
    path.write_text(json.dumps(body))
    return path


@pytest.fixture
def two_files(tmp_path: Path) -> tuple[list[Path], list[Asked], list[Asked], dict[str, int]]:
    plain_a = [asked("a", 0, True, 300), asked("a", 1, False, 280), asked("b", 0, False, 250)]
    routed_a = [
        asked("a", 0, True, 3, "enriched", cached_prompt_tokens=400),
        asked("a", 1, True, 310),
        asked("b", 0, False, 260),
    ]
    plain_b = [asked("c", 0, True, 200), asked("c", 1, True, 220)]
    routed_b = [asked("c", 0, False, 4, "enriched"), asked("c", 1, True, 0, "cached")]
    sleep = {"a": 500, "b": 300, "c": 700}
    files = [
        replay_file(tmp_path / "1.json", plain_a, routed_a, {"a": 500, "b": 300}),
        replay_file(tmp_path / "2.json", plain_b, routed_b, {"c": 700}),
    ]
    return files, plain_a + plain_b, routed_a + routed_b, sleep


def test_pooled_arms_equal_one_replay_of_all_the_queries(two_files) -> None:
    files, plain, routed, sleep = two_files
    replays = load(files)
    for name, rows, spent in (("pass-through", plain, {}), ("policy", routed, sleep)):
        whole = summarize(name, rows, spent, T)
        got = pooled_arm(name, replays, Prices())
        assert (got.queries, got.contexts) == (whole.queries, whole.contexts)
        assert got.accuracy == pytest.approx(whole.accuracy, abs=1e-4)
        assert got.test_tokens == pytest.approx(whole.test_tokens, abs=0.01)
        assert got.cost == pytest.approx(whole.cost, abs=0.01)
        assert got.full_cost == pytest.approx(whole.full_cost, abs=0.01)
        assert got.sleep_tokens == pytest.approx(whole.sleep_tokens, abs=0.01)


def test_the_paired_difference_and_where_the_policy_saved(two_files) -> None:
    files, *_ = two_files
    result = pool(load(files))
    # policy right 3 of 5 against pass-through's 3 of 5, over contexts a, b, c
    assert result["accuracy_difference"]["mean"] == pytest.approx(0.0)
    low, high = result["accuracy_difference"]["low"], result["accuracy_difference"]["high"]
    assert low < 0 < high  # context a gains one, context c loses one
    # a/q0 (right on both arms), c/q0 (wrong, pass-through right), c/q1 cached (right on both)
    assert result["served_cheap"] == {"cheap": 3, "policy_right": 2, "pass_through_right": 3}
    assert result["cached_known"] is True


def test_identical_arms_differ_by_exactly_nothing(two_files) -> None:
    files, *_ = two_files
    replay = json.loads(files[0].read_text())
    replay["queries"]["policy"] = replay["queries"]["pass-through"]
    interval = paired_difference([replay])
    assert (interval.mean, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_files_without_cached_tokens_are_flagged_as_an_upper_bound(two_files) -> None:
    files, *_ = two_files
    replay = json.loads(files[1].read_text())
    for rows in replay["queries"].values():
        for row in rows:
            row.pop("cached_prompt_tokens")
    files[1].write_text(json.dumps(replay))
    result = pool(load(files))
    assert result["cached_known"] is False


def test_arms_that_asked_different_queries_are_refused(two_files, capsys) -> None:
    files, *_ = two_files
    replay = json.loads(files[0].read_text())
    replay["queries"]["policy"].pop()
    files[0].write_text(json.dumps(replay))
    with pytest.raises(PoolError, match="different queries"):
        load(files)
    with pytest.raises(InputError, match="different queries"):
        main([str(f) for f in files])


def test_a_file_that_is_no_replay_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text(json.dumps({"t": 10.0}))
    with pytest.raises(InputError, match="not a `bench replay --out` file: no 'queries'"):
        main([str(tmp_path / "other.json")])
    with pytest.raises(InputError, match=r"missing\.json"):
        main([str(tmp_path / "missing.json")])


def test_main_prints_both_arms_and_the_ratios(two_files, capsys) -> None:
    files, *_ = two_files
    assert main([str(f) for f in files]) == 0
    out = capsys.readouterr().out
    assert "pass-through" in out and "paired bootstrap" in out and "answered cheaply: 3" in out
    assert main(["--json", *map(str, files)]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 2
