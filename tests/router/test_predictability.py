"""The calibrated estimators: scikit-learn's contract, and the fast path's exact numbers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from router.predictability import CalibratedModel


def data(rows: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)) * [1.0, 5.0, 0.1, 2.0] + [0.0, 3.0, -1.0, 0.0]
    y = (x[:, 0] + 0.2 * x[:, 1] + rng.normal(scale=0.8, size=rows)) > 0.5
    return x, y


@pytest.mark.parametrize("rows", [300, 3])  # 3 rows: too few to calibrate, a plain logistic
def test_fast_path_gives_scikit_learns_probabilities(rows: int) -> None:
    x, y = data()
    x, y = x[:rows], y[:rows]
    if rows == 3:
        y = np.array([True, False, True])
    model = CalibratedModel(features=("a", "b", "c", "d")).fit(x, y)
    probe = data(50, seed=1)[0]
    assert model._linear_terms() is not None
    np.testing.assert_allclose(model.predict_proba(probe), model.model_.predict_proba(probe))


def test_follows_the_estimator_contract_and_refits_cleanly() -> None:
    x, y = data()
    model = CalibratedModel(c=0.5, features=("a", "b", "c", "d"))
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "model_")
    assert model.fit(x, y) is model
    first = model.predict_proba(x[:5])
    model.fit(x, ~y)  # a refit must not reuse the first fit's cached terms
    np.testing.assert_allclose(model.predict_proba(x[:5]), first[:, ::-1], atol=0.2)
    assert not np.allclose(model.predict_proba(x[:5]), first)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict_proba(x[:5]), model.predict_proba(x[:5]))


def test_one_class_gives_its_rate() -> None:
    x, _ = data()
    constant = CalibratedModel().fit(x, np.zeros(len(x), dtype=bool))
    assert (constant.predict_proba(x[:3])[:, 1] == 0.0).all()
