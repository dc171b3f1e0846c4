"""`sleeptime predictability`: train and score the predictability estimators.

From outcome tables (and their sleep-time artifacts), split by context so no
context is on both sides: fit P(cached answer right) and P(cheapest rung on c'
right) per query, and a context-level score from sleep artifacts alone; report
AUC and Brier score, the cached route's held-out AUC with a bootstrap interval over
contexts and its precision-coverage curve (`training.cached_confidence`), the
Spearman correlation of predicted vs realized gain, and the paper's quintile analysis
(gain of sleep-time over test-time only per predictability quintile).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from router.errors import InputError
from router.predictability import (
    CONTEXT_FEATURES,
    QUERY_FEATURES,
    CalibratedModel,
    matrix,
    save_models,
)
from router.settings import load_settings
from training import cached_confidence
from training import precision_coverage as pc
from training import stats as metrics
from training.commands.logprob import read_logprobs
from training.outcome_features import (
    FEATURES,
    QueryFeatureRow,
    build_features,
    read_features,
    write_features,
)
from training.outcomes import CONTEXTS, OUTCOMES, SLEEP, Outcome, read_outcomes
from training.predictability_plots import cached_curves, quintiles


class Held(NamedTuple):
    """What the plots draw of the held-out contexts."""

    quintiles: tuple[np.ndarray, np.ndarray]  # each context's score and realized gain
    curves: cached_confidence.Curves  # the cached route's precision-coverage, per estimator


def load_features(folder: Path, *, rebuild: bool = False) -> list[QueryFeatureRow]:
    """Features are derived data: built once with the real embedding model, then reused."""
    path = folder / FEATURES
    if rebuild or not path.exists():
        from router.embeddings import default_embedder

        missing = [n for n in (CONTEXTS, SLEEP) if not (folder / n).is_file()]
        if missing:
            raise InputError(f"{folder}: no {FEATURES}, and no {' or '.join(missing)} to build it")

        write_features(path, build_features(folder, default_embedder().encode))
    return read_features(path)


def split_contexts(contexts: list[str], test_share: float, seed: int) -> set[str]:
    rng = np.random.default_rng(seed)
    shuffled = sorted(contexts)
    rng.shuffle(shuffled)
    return set(shuffled[: max(1, round(len(shuffled) * test_share))])


def labelled_rows(
    outcomes: list[Outcome], features: list[QueryFeatureRow], low_rung: int
) -> list[dict[str, Any]]:
    """One row per (query, k): features, cached_correct, low_correct (enriched at low_rung),
    base_correct (full route at low_rung, the same test budget without sleep)."""
    enriched = {
        (o.query_id, o.sleep_passes): o.correct
        for o in outcomes
        if o.rung == low_rung and o.sleep_passes > 0
    }
    base = {o.query_id: o.correct for o in outcomes if o.rung == low_rung and o.sleep_passes == 0}
    rows = []
    for f in features:
        key = (f.query_id, f.sleep_passes)
        if key in enriched and f.query_id in base:
            rows.append(vars(f) | {"low_correct": enriched[key], "base_correct": base[f.query_id]})
    return rows


def evaluate(
    rows: list[dict[str, Any]],
    test: set[str],
    *,
    kind: str,
    max_wrong: float,
    serve_share: float,
    min_served: int = pc.MIN_SERVED,
) -> tuple[dict[str, Any], dict[str, CalibratedModel], Held]:
    """Fit on the training contexts, score on the held-out ones: the summary, the fitted
    models, each held-out context's score and realized gain (for the quintile plot) and
    the cached route's held-out precision-coverage curves."""
    train_rows = [r for r in rows if r["context_id"] not in test]
    test_rows = [r for r in rows if r["context_id"] in test]
    models = {
        "cached": CalibratedModel(kind=kind, features=QUERY_FEATURES),
        "enriched": CalibratedModel(kind=kind, features=QUERY_FEATURES),
        "context": CalibratedModel(kind="logistic", features=CONTEXT_FEATURES),
    }
    targets = {"cached": "cached_correct", "enriched": "low_correct", "context": "low_correct"}
    scores = {}
    for name, model in models.items():
        model.fit(matrix(train_rows, model.features), [r[targets[name]] for r in train_rows])
        scores[name] = model.predict_proba(matrix(test_rows, model.features))[:, 1]
    label = {name: np.array([r[t] for r in test_rows], dtype=bool) for name, t in targets.items()}
    summary = _summary(test_rows, scores, label, serve_share)
    route, curves = cached_confidence.held_out(
        train_rows, test_rows, kind=kind, max_wrong=max_wrong, min_served=min_served,
        fitted={"cached": models["cached"]},
    )  # fmt: skip
    best = route["cached"]["best"]
    summary |= {
        "cached_route": route,
        "cached_auc_low": route["cached"]["auc_interval"][0],
        "cached_auc_high": route["cached"]["auc_interval"][1],
        "cached_coverage_at_max_wrong": best["coverage"] if best else 0.0,
        "cached_threshold_at_max_wrong": best["threshold"] if best else float("inf"),
        "cached_max_wrong": max_wrong,
    }
    return summary, models, Held(_per_context(test_rows, scores["context"]), curves)


def _summary(
    rows: list[dict[str, Any]],
    scores: dict[str, np.ndarray],
    label: dict[str, np.ndarray],
    serve_share: float,
) -> dict[str, Any]:
    precision, at = metrics.precision_at_coverage(label["cached"], scores["cached"], serve_share)
    context_score, gain = _per_context(rows, scores["context"])
    return {
        "test_rows": len(rows),
        "test_contexts": len(context_score),
        "query_auc": metrics.roc_auc(label["cached"], scores["cached"]),
        "query_brier": metrics.brier(label["cached"], scores["cached"]),
        "cached_base_rate": float(label["cached"].mean()) if len(rows) else float("nan"),
        "cached_precision": precision,
        "cached_precision_at_share": serve_share,
        "cached_threshold_at_share": at,
        "low_route_auc": metrics.roc_auc(label["enriched"], scores["enriched"]),
        "low_route_brier": metrics.brier(label["enriched"], scores["enriched"]),
        "context_auc": metrics.roc_auc(label["context"], scores["context"]),
        "gain_spearman": metrics.spearman(context_score, gain),
        "quintile_gain": metrics.quintile_gain(context_score, gain),
    }


def _per_context(rows: list[dict[str, Any]], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Context-level score (the same for all its queries) and its realized gain:
    accuracy on c' minus accuracy on c, at the same low test-time rung."""
    by_context: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_context[row["context_id"]].append(index)
    score = np.array([scores[ix].mean() for ix in by_context.values()])
    gain = np.array(
        [
            np.mean([rows[i]["low_correct"] - rows[i]["base_correct"] for i in ix])
            for ix in by_context.values()
        ]
    )
    return score, gain


def logprob_analysis(
    folders: list[Path], rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray] | None]:
    """The paper's measure, where `sleeptime logprob` wrote it: each context's mean per-token
    log p(query | context) against its realized gain, over every context (nothing is fit).
    Returns the figures and the per-context (score, gain) arrays, or ({}, None)."""
    logprobs = {k: v for folder in folders for k, v in read_logprobs(folder).items()}
    scored = [r for r in rows if r["query_id"] in logprobs]
    if not scored:
        return {}, None
    score = np.array([logprobs[r["query_id"]].mean_logprob for r in scored])
    context_score, gain = _per_context(scored, score)
    figures = {
        "logprob_contexts": len(context_score),
        "logprob_spearman": metrics.spearman(context_score, gain),
        "logprob_quintile_gain": metrics.quintile_gain(context_score, gain),
    }
    return figures, (context_score, gain)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sleeptime predictability", description=__doc__)
    parser.add_argument(
        "outcomes", nargs="+", type=Path, help="outcome table folders written by `collect`"
    )
    parser.add_argument(
        "--low-rung",
        type=int,
        default=0,
        help="the rung the enriched route answers at on c', compared with the same rung on c "
        "(0 answer, 1 brief, 2 short, 3 steps, 4 careful; default 0)",
    )
    parser.add_argument(
        "--model",
        choices=["logistic", "gbm"],
        default="logistic",
        help="query-level estimator: calibrated logistic regression or gradient boosting",
    )
    parser.add_argument(
        "--test-share",
        type=_share,
        default=0.4,
        help="share of contexts held out for scoring (split by context; default 0.4)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the context split")
    parser.add_argument(
        "--max-wrong",
        type=_share,
        default=0.05,
        help="share of served cached answers that may be wrong at the threshold reported "
        "(default 0.05, the issue's 5 in 100)",
    )
    parser.add_argument(
        "--min-served",
        type=int,
        default=pc.MIN_SERVED,
        help="fewest served answers a threshold must serve for its wrong share to count "
        f"(default {pc.MIN_SERVED})",
    )
    parser.add_argument(
        "--serve-share",
        type=_share,
        default=0.5,
        help="share of queries served from cache for the precision figure (default 0.5)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the quintile plot (default mlruns/predictability/<table names>/)",
    )
    parser.add_argument(
        "--save",
        type=Path,
        default=None,
        help="write the fitted estimators to this file (default: not saved)",
    )
    parser.add_argument(
        "--rebuild-features",
        action="store_true",
        help="recompute features.csv.gz in each table folder with the embedding model "
        "(rewrites that file; otherwise it is built only where missing)",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="do not log an MLflow run")
    parser.add_argument("--config", default=None, help="settings TOML file (docs/settings.md)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings(args.config)
    rows: list[dict[str, Any]] = []
    for folder in args.outcomes:
        outcomes = read_table(folder)
        features = load_features(folder, rebuild=args.rebuild_features)
        rows += labelled_rows(outcomes, features, args.low_rung)
    rows = cached_confidence.with_logprobs(rows, args.outcomes)
    test = split_contexts(_contexts(rows, args), args.test_share, args.seed)
    summary, models, held = evaluate(
        rows, test, kind=args.model, max_wrong=args.max_wrong, serve_share=args.serve_share,
        min_served=args.min_served,
    )  # fmt: skip
    logprob, by_logprob = logprob_analysis(args.outcomes, rows)
    summary |= logprob | {
        "outcomes": [str(f) for f in args.outcomes],
        "model": args.model,
        "low_rung": args.low_rung,
        "rows": len(rows),
    }
    meta = {k: summary[k] for k in ("low_rung", "model")}
    summary["saved"] = str(save_models(args.save, models, meta)) if args.save else None
    out = args.out or default_out(args.outcomes)
    plot = quintiles(summary, held.quintiles, by_logprob, out / "predictability_quintiles.png")
    summary["plot"] = str(plot)
    curve = cached_curves(summary, held.curves, out / "predictability_cached.png")
    summary["precision_coverage_plot"] = str(curve)
    if not args.no_mlflow:
        summary["mlflow_run_id"] = _log(summary, plot, settings.mlflow_uri)
    print(json.dumps(summary, indent=2) if args.json else _text(summary), file=sys.stdout)
    return 0


def default_out(folders: list[Path]) -> Path:
    """Under the project's run folder, never beside the (possibly committed) tables."""
    return Path("mlruns") / "predictability" / "+".join(f.resolve().name for f in folders)


def read_table(folder: Path) -> list[Outcome]:
    """The folder's outcome table, or one line saying why it is not one."""
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "no such folder"
        raise InputError(f"{folder}: {what}; give an outcome table folder written by `collect`")
    try:
        return read_outcomes(folder / OUTCOMES)
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as exc:
        raise InputError(f"{folder / OUTCOMES} is not a readable outcome table: {exc}") from exc


def _contexts(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    contexts = sorted({r["context_id"] for r in rows})
    if len(contexts) < 2:
        raise InputError(
            f"{len(contexts)} context(s) with answers at rung {args.low_rung} on both c and c' "
            f"in {', '.join(map(str, args.outcomes))}: predictability needs at least 2 (collect "
            "with --sleep-budgets and --rungs-learned including that rung)"
        )
    return contexts


def _log(summary: dict[str, Any], plot: Path, uri: str) -> str:
    from training import tracking

    with tracking.run(uri, "sleeptime-predictability", f"predictability {summary['model']}") as run:
        tracking.log_params({k: summary[k] for k in ("model", "low_rung", "rows", "outcomes")})
        tracking.log_metrics(
            {
                k: v
                for k, v in summary.items()
                if isinstance(v, float | int) and not isinstance(v, bool)
            }
        )
        for key in ("quintile_gain", "logprob_quintile_gain"):
            gains = summary.get(key, [])
            tracking.log_metrics({f"{key}_{i + 1}": g for i, g in enumerate(gains)})
        tracking.log_artifact(plot)
        tracking.log_artifact(Path(summary["precision_coverage_plot"]))
        if summary["saved"]:
            tracking.log_artifact(Path(summary["saved"]))
        return str(run.info.run_id)


def _text(s: dict[str, Any]) -> str:
    q = ", ".join(f"{g:+.3f}" for g in s["quintile_gain"])
    return (
        f"{s['rows']} (query, k) rows; test: {s['test_rows']} rows, {s['test_contexts']} contexts\n"
        f"cached answer right: AUC {s['query_auc']:.3f}, Brier {s['query_brier']:.3f}, "
        f"base rate {s['cached_base_rate']:.3f}\n"
        f"  serving the top {s['cached_precision_at_share']:.0%}: "
        f"precision {s['cached_precision']:.3f}\n"
        + cached_confidence.text(s["cached_route"])
        + f"precision-coverage plot: {s['precision_coverage_plot']}\n"
        f"low rung on c' right: AUC {s['low_route_auc']:.3f}, Brier {s['low_route_brier']:.3f}\n"
        f"context-level: AUC {s['context_auc']:.3f}, "
        f"Spearman(pred, gain) {s['gain_spearman']:.3f}\n"
        f"gain by predictability quintile (low -> high): {q}\n"
        + _logprob_text(s)
        + f"quintile plot: {s['plot']}\n"
        + (f"estimators saved to {s['saved']}" if s["saved"] else "estimators not saved (--save)")
    )


def _logprob_text(s: dict[str, Any]) -> str:
    if "logprob_quintile_gain" not in s:
        return "log p(q|c): not computed (sleeptime logprob DIR)\n"
    q = ", ".join(f"{g:+.3f}" for g in s["logprob_quintile_gain"])
    return (
        f"log p(q|c) over {s['logprob_contexts']} contexts: Spearman(log p, gain) "
        f"{s['logprob_spearman']:.3f}; gain by quintile (low -> high): {q}\n"
    )
