"""Predictability estimators: the one module that imports scikit-learn.

Two questions decide whether sleep-time compute pays for a query: is the
nearest anticipated answer right (then the cached route is safe), and will the
cheapest rung on the learned context be right (then the enriched route is). Both
are calibrated probabilities from features the router has at request time. A
context-level model scores a context from its sleep-time artifacts alone,
before any query arrives. All follow scikit-learn's estimator contract (params
stored as given, `fit` returns self, learned state ends in `_`), so `clone`,
grid search and Optuna treat them alike.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from policies.features import CONTEXT_SIGNALS

FORMAT_VERSION = 1

# Known from the context's sleep-time artifacts alone, before any query arrives.
CONTEXT_FEATURES = CONTEXT_SIGNALS  # policies.features computes them, here and in replay
# Known at request time: how the query relates to what was anticipated, plus the above.
QUERY_FEATURES = (
    "similarity",
    "second_similarity",
    "margin",
    "cached_support",
    "cached_agreement",
    *CONTEXT_FEATURES,
)
# The paper's predictability measure, mean per-token log p(query | context), where
# `sleeptime logprob` wrote it. Offline only: the proxy would need a prefill of the whole
# context per request to know it, so no saved estimator reads it.
LOGPROB_FEATURE = "query_logprob"


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """A calibrated binary classifier over named features."""

    def __init__(
        self,
        kind: str = "logistic",
        c: float = 1.0,
        calibration: str = "sigmoid",
        features: Sequence[str] = QUERY_FEATURES,
    ) -> None:
        self.kind = kind
        self.c = c
        self.calibration = calibration
        self.features = features

    def _base(self) -> Any:
        if self.kind == "gbm":
            return HistGradientBoostingClassifier(max_depth=3, max_iter=150, learning_rate=0.05)
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.c, max_iter=1000))

    def fit(self, x: np.ndarray, y: np.ndarray) -> CalibratedModel:
        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        self.__dict__.pop("terms_", None)  # read again from the new fit
        if len(np.unique(y)) < 2:  # nothing to separate: a constant, honest probability
            self.constant_ = float(y.mean()) if len(y) else 0.0
            self.model_ = None
            return self
        folds = int(min(3, np.bincount(y).min()))
        base = self._base()
        self.model_ = (
            CalibratedClassifierCV(base, method=self.calibration, cv=folds) if folds >= 2 else base
        ).fit(x, y)
        self.constant_ = None
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.model_ is None:
            p = np.full(len(x), self.constant_)
            return np.column_stack([1 - p, p])
        terms = self._linear_terms()
        if terms is None:
            return self.model_.predict_proba(x)
        p = np.mean([_sigmoid(a * (((x - m) / s) @ w + c) + b) for m, s, w, c, a, b in terms], 0)
        return np.column_stack([1 - p, p])

    def _linear_terms(self) -> list[tuple] | None:
        """The fitted logistic ensemble as plain arrays, read once: on a single row scikit-learn
        spends about a millisecond per fold in validation and dispatch, numpy microseconds, and
        the router scores every request. Same numbers (tested); None where it does not apply."""
        cached = getattr(self, "terms_", False)
        if cached is not False:
            return cached
        self.terms_: list[tuple] | None = None
        if self.kind == "logistic" and self.calibration == "sigmoid":
            parts = getattr(self.model_, "calibrated_classifiers_", None)
            pairs = [(p.estimator, p.calibrators[0]) for p in parts] if parts else None
            if pairs is None and hasattr(self.model_, "named_steps"):
                pairs = [(self.model_, None)]
            if pairs:
                self.terms_ = [_terms(pipeline, calibrator) for pipeline, calibrator in pairs]
        return self.terms_

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] >= 0.5).astype(int)


def _terms(pipeline: Any, calibrator: Any) -> tuple:
    """(mean, scale, weights, intercept, a, b): p = sigmoid(a * f + b) with f the logistic's
    decision value; scikit-learn's sigmoid calibration is 1 / (1 + exp(A f + B)), so a = -A."""
    scaler, logistic = (
        pipeline.named_steps["standardscaler"],
        pipeline.named_steps["logisticregression"],
    )
    if calibrator is None:  # an uncalibrated logistic: its own probability
        a, b = 1.0, 0.0
    else:
        a, b = -float(calibrator.a_), -float(calibrator.b_)
    scale = np.where(scaler.scale_ == 0, 1.0, scaler.scale_)
    return scaler.mean_, scale, logistic.coef_[0], float(logistic.intercept_[0]), a, b


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def matrix(rows: Sequence[Any], features: Sequence[str]) -> np.ndarray:
    """Feature matrix from objects or dicts with the named attributes ("margin" is derived)."""

    def value(row: Any, name: str) -> float:
        if name == "margin":
            return value(row, "similarity") - value(row, "second_similarity")
        return float(row[name] if isinstance(row, dict) else getattr(row, name))

    return np.array([[value(r, f) for f in features] for r in rows], dtype=float).reshape(
        len(rows), len(features)
    )


def estimators_for(policy: Path) -> Path:
    """Where `sleeptime train` saves the estimators a policy was tuned on: beside it, so
    `serve` and `bench replay` find them by default."""
    return policy.with_name(policy.stem + ".estimators.pkl")


def save_models(path: Path, models: dict[str, CalibratedModel], meta: dict[str, Any]) -> Path:
    import sklearn

    payload = {
        "format_version": FORMAT_VERSION,
        "sklearn_version": sklearn.__version__,
        "models": models,
        "meta": meta,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(payload))
    return path


def load_models(path: Path) -> tuple[dict[str, CalibratedModel], dict[str, Any]]:
    """Only load files you wrote: pickle runs code. The version is checked first."""
    payload = pickle.loads(path.read_bytes())
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: estimator format {payload.get('format_version')}, "
            f"expected {FORMAT_VERSION}; retrain with `sleeptime predictability`"
        )
    return payload["models"], payload["meta"]
