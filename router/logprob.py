"""log p(query | context) from a running llama.cpp server: the paper's predictability measure.

The OpenAI-compatible endpoints cannot give prompt log-probabilities here
(`echo` + `logprobs` came back wrong, see ../shared/notes/local-llm.md), so
this module uses llama.cpp's native API, the one way measured to agree with a
direct log-softmax over the logits: tokenize context + query once; then, for
each query token, ask for one token after the prefix with that token forced by
a logit bias and read its log-probability. The prompt cache makes each step
one token of work, about 0.1 s with the 1.5B model on 2 cores: an offline
analysis tool, never on a request's path.

This is the only module that speaks llama.cpp's native HTTP API (with httpx).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

FORCE = 100.0  # a logit bias that makes the forced token the sampled one


@dataclass(frozen=True)
class QueryLogprob:
    tokens: int
    total: float  # sum of the query tokens' log-probabilities (natural log)

    @property
    def mean(self) -> float:
        """Per token, so long and short questions compare."""
        return self.total / self.tokens if self.tokens else 0.0


def prompt_parts(context: str, query: str) -> tuple[str, str]:
    """The conditioning text and the text scored: the question as a reader meets it."""
    return f"Text:\n{context.strip()}\n\nQuestion:", f" {query.strip()}"


class LlamaLogprob:
    def __init__(self, base_url: str, *, timeout_s: float = 120.0) -> None:
        root = base_url.rstrip("/").removesuffix("/v1")
        self._http = httpx.Client(base_url=root, timeout=timeout_s)

    def score(self, context: str, query: str) -> QueryLogprob:
        prefix, scored = prompt_parts(context, query)
        head = self._tokenize(prefix)
        whole = self._tokenize(prefix + scored)
        if whole[: len(head)] != head:  # the boundary merged tokens: score from the split
            whole = head + self._tokenize(scored)
        total = 0.0
        for index in range(len(head), len(whole)):
            total += self._forced(whole[:index], whole[index])
        return QueryLogprob(len(whole) - len(head), total)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LlamaLogprob:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _tokenize(self, text: str) -> list[int]:
        response = self._http.post("/tokenize", json={"content": text, "add_special": False})
        response.raise_for_status()
        return [int(t) for t in response.json()["tokens"]]

    def _forced(self, prefix: list[int], token: int) -> float:
        body = {
            "prompt": prefix,
            "n_predict": 1,
            "n_probs": 1,
            "logit_bias": [[token, FORCE]],
            "cache_prompt": True,
            "post_sampling_probs": False,
            "temperature": 0.0,
        }
        response = self._http.post("/completion", json=body)
        response.raise_for_status()
        probabilities = response.json()["completion_probabilities"][0]
        if int(probabilities.get("id", token)) != token:
            raise RuntimeError(f"llama.cpp sampled {probabilities.get('id')} instead of {token}")
        return float(probabilities["logprob"])
