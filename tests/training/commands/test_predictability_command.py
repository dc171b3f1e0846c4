"""`sleeptime predictability` writes nowhere but --out and --save, and a bad input ends in
one line and a non-zero exit."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from synthetic_outcomes import write_synthetic

from router import cli
from training.commands import predictability
from training.outcome_features import FEATURES
from training.outcomes import OUTCOMES, SLEEP

PLOT = "predictability_quintiles.png"
CURVE = "predictability_cached.png"  # the cached route's precision-coverage


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A table, a working directory and a cache folder, all under tmp_path."""
    write_synthetic(tmp_path / "tables" / "t", contexts=20)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("SLEEPTIME_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert predictability.main([*argv, "--no-mlflow", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_writes_only_where_out_and_save_say(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(work)
    summary = run(
        [str(work / "tables" / "t"), "--out", str(work / "o"), "--save", str(work / "e.pkl")],
        capsys,
    )
    after = snapshot(work)
    assert set(after) - set(before) == {f"o/{PLOT}", f"o/{CURVE}", "e.pkl"}
    assert all(after[name] == data for name, data in before.items())  # the table is untouched
    assert summary["saved"] == str(work / "e.pkl")
    assert summary["plot"] == str(work / "o" / PLOT)
    assert after[f"o/{PLOT}"][:4] == b"\x89PNG"


def test_by_default_the_plot_goes_under_the_run_folder_and_no_estimators_are_kept(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(work)
    summary = run([str(work / "tables" / "t")], capsys)
    new = set(snapshot(work)) - set(before)
    assert new == {f"work/mlruns/predictability/t/{name}" for name in (PLOT, CURVE)}
    assert summary["saved"] is None
    assert not (work / "cache").exists()
    text = _text(work, capsys)
    assert "estimators not saved" in text and f"mlruns/predictability/t/{PLOT}" in text
    assert "cached route, request-time features, held out: AUC" in text
    assert "threshold from training contexts:" in text
    assert f"precision-coverage plot: mlruns/predictability/t/{CURVE}" in text


def _text(work: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert predictability.main([str(work / "tables" / "t"), "--no-mlflow"]) == 0
    return capsys.readouterr().out


def test_every_flag_has_help() -> None:
    actions = [a for a in predictability.build_parser()._actions if a.dest != "help"]
    assert actions and all(a.help for a in actions), [a.dest for a in actions if not a.help]


def _bad_table(work: Path, kind: str) -> list[str]:
    table = work / "tables" / "t"
    if kind == "missing":
        return [str(work / "nope")]
    if kind == "empty folder":
        (work / "empty").mkdir()
        return [str(work / "empty")]
    if kind == "a file":
        return [str(table / OUTCOMES)]
    if kind == "not csv":
        (table / OUTCOMES).write_bytes(b"not gzip at all")
    elif kind == "wrong columns":
        with gzip.open(table / OUTCOMES, "wt") as handle:
            handle.write("a,b\n1,2\n")
    elif kind == "no features, no sleep":
        (table / FEATURES).unlink()
        (table / SLEEP).unlink()
    elif kind == "rung never asked":
        return [str(table), "--low-rung", "4"]
    return [str(table)]


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "empty folder",
        "a file",
        "not csv",
        "wrong columns",
        "no features, no sleep",
        "rung never asked",
    ],
)
def test_a_bad_table_ends_in_one_line_and_exit_1(
    work: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _bad_table(work, kind)
    before = snapshot(work)
    assert cli.main(["predictability", *argv, "--no-mlflow"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sleeptime predictability: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert snapshot(work) == before


def test_a_share_outside_0_1_is_a_usage_error(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        predictability.main([str(work / "tables" / "t"), "--test-share", "1.5"])
    assert exit_info.value.code == 2
    assert "not a share between 0 and 1" in capsys.readouterr().err


def test_the_default_out_folder_is_named_after_the_tables(tmp_path: Path) -> None:
    """The default output folder is derived from the table's name, never inside it."""
    out = predictability.default_out([Path("benchmarks/gsm8k-qwen2.5-coder-1.5b")])
    assert out == Path("mlruns/predictability/gsm8k-qwen2.5-coder-1.5b")
    both = predictability.default_out([tmp_path / "a", tmp_path / "b"])
    assert both == Path("mlruns/predictability/a+b")
