"""Route each query by the trained policy, on the estimators' request-time scores.

The features are the ones training used (training.outcome_features), computed here from
the context's stored sleep-time artifacts and one embedding of the query, so the
policy sees online what it was tuned on offline. The cached route serves the
nearest anticipated answer only when the policy's threshold on P(that answer is
right) says it is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from policies import ContextFeatures, Policy, QueryFeatures, load, query_words
from router.ladder import rung
from router.predictability import CalibratedModel, load_models, matrix
from router.proxy.routing import RouteDecision
from router.store.base import ContextRecord

Encoder = Callable[[Sequence[str]], np.ndarray]


def expected_queries(context: ContextRecord) -> float:
    """What the client said at registration, or the sightings so far if more. Sightings alone
    undercount: when the first queries are routed, most of a context's queries are still to
    come, and training knew each context's full count."""
    return float(max(context.expected_queries or 0.0, context.seen, 1))


class PolicyRouter:
    def __init__(
        self,
        policy: Policy,
        models: dict[str, CalibratedModel],
        encode: Encoder,
        *,
        max_cached: int = 4096,
    ) -> None:
        self.policy = policy
        self.models = models
        self.encode = encode
        self.max_cached = max_cached
        # The anticipated questions are known at sleep time: embedded once per context version,
        # so a request embeds only its own query. Keyed by tenant too: nothing crosses tenants.
        self._anticipated: dict[tuple[str, str, int, float], np.ndarray] = {}

    @classmethod
    def from_files(cls, policy_path: Path, estimator_path: Path, encode: Encoder) -> PolicyRouter:
        models, _meta = load_models(estimator_path)
        return cls(load(policy_path), models, encode)

    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision:
        if context is None or not context.has_learned or not context.anticipated:
            # Still the policy's full rung: a client that leaves the budget to sleeptime
            # sends the bare question, which must not go out unbudgeted.
            unlearned = QueryFeatures(words=query_words(query))
            known = ContextFeatures(0.5, expected_queries(context) if context else 1.0)
            full = self.policy.route(known, unlearned)
            return RouteDecision("full", rung=rung(full.rung).name, reason="no learned context yet")
        features, nearest = self.features(context, query, tenant)
        scores = {
            name: float(m.predict_proba(matrix([features], m.features))[0, 1])
            for name, m in self.models.items()
        }
        known = ContextFeatures(scores.get("context", 0.5), expected_queries(context))
        # Offline, a context the policy would not sleep on has no learned context to route to;
        # the proxy's worker thinks about every queued context, so the policy's own sleep
        # decision gates whether that work is used, or replay and serving disagree.
        worth_it = self.policy.sleep(known).passes > 0
        decision = self.policy.route(
            known,
            QueryFeatures(
                features["similarity"],
                scores.get("cached", 0.0),
                scores.get("enriched", 0.0),
                worth_it,
                query_words(query),
            ),
        )
        shown = {"similarity": round(features["similarity"], 3)} | {
            k: round(v, 3) for k, v in scores.items()
        }
        if decision.route == "cached":
            return RouteDecision(
                "cached",
                answer=nearest["answer"],
                scores=shown,
                reason=f"anticipated: {nearest['question'][:80]}",
            )
        routed = RouteDecision(
            decision.route,
            rung=rung(decision.rung).name,
            scores=shown,
            reason=f"policy {self.policy.name}",
        )
        if not decision.checked:
            return routed
        return replace(
            routed,
            check_rung=None if decision.check_rung is None else rung(decision.check_rung).name,
            check_answer=nearest["answer"] if decision.check_anticipated else None,
            fallback_rung=rung(decision.fallback_rung).name,
        )

    def features(
        self, context: ContextRecord, query: str, tenant: str = ""
    ) -> tuple[dict[str, Any], dict]:
        anticipated = context.anticipated or []
        sims = self._anticipated_vectors(tenant, context) @ self.encode([query])[0]
        order = np.argsort(-sims)
        best = anticipated[int(order[0])]
        agreements = [float(a.get("agreement", 1.0)) for a in anticipated]
        words = context.text.split()
        return {
            "similarity": float(sims[order[0]]),
            "second_similarity": float(sims[order[1]]) if len(order) > 1 else 0.0,
            "cached_support": int(best.get("support", 1)),
            "cached_agreement": float(best.get("agreement", 1.0)),
            "n_anticipated": len(anticipated),
            "context_agreement": float(np.mean(agreements)),
            "context_consistency": float(np.mean([a == 1.0 for a in agreements])),
            "truncated_passes": context.truncated_passes,
            "context_words": len(words),
            "context_numbers": sum(any(c.isdigit() for c in w) for w in words),
        }, best

    def _anticipated_vectors(self, tenant: str, context: ContextRecord) -> np.ndarray:
        key = (tenant, context.context_id, context.version, context.updated)
        vectors = self._anticipated.get(key)
        if vectors is None:
            if len(self._anticipated) >= self.max_cached:
                self._anticipated.clear()
            questions = [a["question"] for a in context.anticipated or []]
            vectors = self._anticipated[key] = self.encode(questions)
        return vectors
