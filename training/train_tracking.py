"""`sleeptime train` in MLflow: one parent run per study, readable without the README.

A resumed study continues its parent (found by the tag `sleeptime.study`), so a study's
history is one run whatever the number of `train` calls. The parent says what was
trained on what (its description), carries the chosen policy's and every baseline's
accuracy and cost on validation and test (`baseline/<name>/test_accuracy`), the git
commit and command line, the outcome tables as dataset inputs with their digests, and
the files to serve and to review (the policy, its estimators, the summary, the Pareto
plot, every trial in `trials.csv`). Trials are not one run each: 1,000 child runs cost
about 30 s against a 10-15 s study here. The parent gets progress metrics every
PROGRESS_EVERY trials, and child runs are kept only for the Pareto front.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from training.outcomes import OUTCOMES
from training.selection import parse_label

EXPERIMENT = "sleeptime-policy-training"
STUDY_TAG = "sleeptime.study"  # the parent run's key: one per Optuna study
TRIAL_TAG = "sleeptime.trial"  # a Pareto child run's key: its trial number
PROGRESS_EVERY = 25  # trials per step of the parent's progress metrics
CHOSEN = (
    "train_accuracy",
    "train_cost",
    "validation_accuracy",
    "validation_cost",
    "test_accuracy",
    "test_cost",
    "test_full_cost",
    "cost_ratio_at_equal_accuracy",
    "seconds",
    "trials",
    "trials_this_run",
)


def log_training(
    summary: Mapping[str, Any],
    trials: Iterable[Any],
    *,
    uri: str,
    command: str,
    storage: str,
    pareto_runs: bool = True,
    started_ms: int | None = None,
) -> str:
    """Log a `train` call into its study's parent run (created on the study's first call);
    `trials` are the study's Optuna trials. Returns the parent's run id."""
    from training import tracking

    study = summary["study"]
    rows = trial_rows(trials, seeds=summary["seeds"])
    resume = (STUDY_TAG, study)
    with tracking.run(uri, EXPERIMENT, study, resume=resume, started_ms=started_ms) as parent:
        logged = tracking.logged_params()
        tracking.log_params({k: v for k, v in study_params(summary).items() if k not in logged})
        tracking.set_tags(run_tags(summary, command, storage))
        tracking.log_metrics(chosen_metrics(summary), step=summary["trials"], nan=True)
        before = summary["trials"] - summary["trials_this_run"]
        tracking.log_metric_steps(progress_steps(rows, after=before))
        for folder in map(Path, summary["outcomes"]):
            tracking.log_table_input(folder / OUTCOMES, folder.name, "training", {})
        tracking.log_text(trials_csv(rows), "trials.csv")
        tracking.log_dict(summary, "summary.json")
        for key in ("policy_file", "estimators_file", "pareto_plot"):
            tracking.log_artifact(Path(summary[key]))
        if pareto_runs:
            tracking.sync_child_runs(pareto_children(rows), TRIAL_TAG)
        return str(parent.info.run_id)


def study_params(s: Mapping[str, Any]) -> dict[str, Any]:
    """What stays the same for a study (its name is made of them): the run's params."""
    constrained = s["min_accuracy"] is not None
    return {
        "policy_class": s["policy_class"],
        "mode": f"min accuracy {s['min_accuracy']}" if constrained else "pareto",
        "objectives": "cost, subject to accuracy" if constrained else "accuracy, cost",
        "min_accuracy": s["min_accuracy"],
        "t": s["t"],
        "charge_prompt": s["charge_prompt"],
        "outcomes": ", ".join(s["outcomes"]),
        "seed": s["seed"],
        "split": "train / validation / test = 0.6 / 0.2 / 0.2 of contexts",
    }


def run_tags(s: Mapping[str, Any], command: str, storage: str) -> dict[str, str]:
    """What may change when a study resumes: the chosen policy, the description, the source."""
    policy = {f"policy.{k}": str(v) for k, v in s["policy"]["params"].items()}
    return (
        policy
        | source_tags(command)
        | {"sleeptime.optuna_storage": storage, "mlflow.note.content": describe(s)}
    )


def source_tags(command: str) -> dict[str, str]:
    """The command line, and the commit of the code that ran (dirty: uncommitted changes)."""
    tags = {"sleeptime.command": command}
    root = Path(__file__).resolve().parents[1]
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return tags  # not a git checkout (an installed package)
    return tags | {"mlflow.source.git.commit": commit, "sleeptime.git_dirty": str(bool(dirty))}


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def describe(s: Mapping[str, Any]) -> str:
    """The run's description (markdown): what was trained on what, and what it gave."""
    best = s["best_test_time_only"]
    mode = (
        f"the cheapest with accuracy >= {s['min_accuracy']}"
        if s["min_accuracy"] is not None
        else "Pareto search of accuracy against cost"
    )
    ratio = s["cost_ratio_at_equal_accuracy"]
    return (
        f"**{s['policy_class']}** policy tuned by Optuna ({mode}) by replaying the outcome "
        f"tables {', '.join(f'`{Path(o).name}`' for o in s['outcomes'])}: {s['trials']} "
        f"trials in all, {s['trials_this_run']} in the last call, each scored on the "
        f"{s['train_contexts']} train contexts. Chosen on train and validation "
        f"({s['validation_contexts']} contexts); on the {s['test_contexts']} held-out test "
        f"contexts ({s['test_queries']} queries) it reaches accuracy {s['test_accuracy']:.3f} "
        f"at cost {s['test_cost']:.1f} per query, against the best test-time-only baseline "
        f"at {best['accuracy']:.3f} and {best['cost']:.1f}"
        + (f" ({ratio:.2f}x cheaper at equal accuracy)." if ratio else ".")
        + f" Cost: t = {s['t']} per test-time token"
        + (", prompt tokens charged." if s["charge_prompt"] else ", sleep tokens amortized.")
        + "\n\nBaselines are the metrics `baseline/<policy>/<split>_accuracy|cost`. Serve "
        f"the policy with its estimators: `sleeptime serve --policy {Path(s['policy_file']).name}`"
        f" beside `{Path(s['estimators_file']).name}` (artifacts). Every trial: `trials.csv`."
        + "".join(f"\n\n**Warning**: {w}." for w in s["warnings"])
    )


def chosen_metrics(s: Mapping[str, Any]) -> dict[str, float | None]:
    """The chosen policy on each split, and every baseline on validation and test."""
    metrics = {k: s[k] for k in CHOSEN}
    for split, rows in (("validation", s["builtins_validation"]), ("test", s["builtins"])):
        for name, r in rows.items():
            metrics[f"baseline/{slug(name)}/{split}_accuracy"] = r["accuracy"]
            metrics[f"baseline/{slug(name)}/{split}_cost"] = r["cost"]
    return metrics


def slug(label: str) -> str:
    """`always-sleep(passes=1, rung=0)` -> `always-sleep-k1-rung0`: a metric-name part."""
    base, params = parse_label(label)
    words = [base] + [{"passes": "k"}.get(key, key) + value for key, value in params]
    return re.sub(r"[^\w.\-]", "_", "-".join(words))


def trial_rows(trials: Iterable[Any], *, seeds: int) -> list[dict[str, Any]]:
    """One plain row per finished trial, in trial order, its train-split scores and params."""
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        if "accuracy" not in t.user_attrs:
            continue
        done = t.datetime_complete
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "seed": t.number < seeds,
                "train_accuracy": t.user_attrs["accuracy"],
                "train_cost": t.user_attrs["cost"],
                "completed_ms": int(done.timestamp() * 1000) if done else 0,
                "params": dict(t.params),
            }
        )
    front = {r["number"] for r in pareto_front(rows)}
    return [r | {"pareto": r["number"] in front} for r in rows]


def pareto_front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows no other row beats (higher train accuracy at no more cost), cheapest first;
    among equal points the first trial."""
    front: list[dict[str, Any]] = []
    ordered = sorted(rows, key=lambda r: (r["train_cost"], -r["train_accuracy"], r["number"]))
    for row in ordered:
        if not front or row["train_accuracy"] > front[-1]["train_accuracy"]:
            front.append(row)
    return front


def progress_steps(
    rows: list[dict[str, Any]], *, after: int
) -> list[tuple[int, int, dict[str, float]]]:
    """(trials so far, when the last of them finished, metrics of the search so far) every
    PROGRESS_EVERY trials and at the end, for the trials past `after` (logged before)."""
    ends = sorted({*range(PROGRESS_EVERY, len(rows) + 1, PROGRESS_EVERY), len(rows)})
    steps = []
    for n in (n for n in ends if n > after):
        seen = rows[:n]
        best = max(r["train_accuracy"] for r in seen)
        metrics = {
            "search/best_train_accuracy": best,
            "search/min_train_cost_at_best_accuracy": min(
                r["train_cost"] for r in seen if r["train_accuracy"] >= best
            ),
            "search/pareto_size": float(len(pareto_front(seen))),
        }
        steps.append((n, seen[-1]["completed_ms"], metrics))
    return steps


def trials_csv(rows: list[dict[str, Any]]) -> str:
    """Every trial, one line each: the table a reviewer sorts, plots or diffs."""
    names = sorted({k for r in rows for k in r["params"]})
    columns = ["number", "state", "seed", "pareto", "train_accuracy", "train_cost"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns + names)
    for r in rows:
        writer.writerow([r[c] for c in columns] + [r["params"].get(n, "") for n in names])
    return out.getvalue()


def pareto_children(rows: list[dict[str, Any]]) -> dict[str, tuple[str, dict, dict]]:
    """The Pareto front's trials as child runs: their params and train-split scores."""
    return {
        str(r["number"]): (
            f"trial {r['number']}",
            r["params"],
            {"train_accuracy": r["train_accuracy"], "train_cost": r["train_cost"]},
        )
        for r in rows
        if r["pareto"]
    }
