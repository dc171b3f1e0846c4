"""log p(query | context) from the real llama.cpp server (the 0.5B test model)."""

from __future__ import annotations

import pytest

from router.local_server import LocalServer
from router.logprob import LlamaLogprob, prompt_parts

CONTEXT = "Janet has 16 eggs. She eats 3 and bakes with 4. She sells the rest for $2 each."


def test_the_scored_text_follows_the_context() -> None:
    prefix, scored = prompt_parts(" c ", " q? ")
    assert prefix == "Text:\nc\n\nQuestion:" and scored == " q?"


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_question_the_context_invites_is_likelier_than_nonsense(
    local_server: LocalServer,
) -> None:
    with LlamaLogprob(local_server.base_url) as scorer:
        natural = scorer.score(CONTEXT, "How many eggs does Janet sell?")
        nonsense = scorer.score(CONTEXT, "Purple giraffe volcano sings quietly?")
        again = scorer.score(CONTEXT, "How many eggs does Janet sell?")
    assert natural.tokens >= 5 and nonsense.tokens >= 5
    assert natural.total < 0 and natural.mean > nonsense.mean + 3  # nats per token
    # cached and fresh prompt evaluation differ in the last digits (measured: 0.3%)
    assert again.total == pytest.approx(natural.total, rel=0.02)
