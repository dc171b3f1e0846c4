"""Route each query by the trained policy, on the estimators' request-time scores.

The features are policies.features', the functions training's tables were built with,
computed here from the context's stored sleep-time artifacts and one embedding of the
query, so the policy sees online what it was tuned on offline. The policy also sets each
context's sleep budget: the worker runs its probe pass, then the passes the policy asks
for once the probe's artifacts give the context estimator its features. The cached route serves the
nearest anticipated answer only when the policy's threshold on P(that answer is
right) says it is safe.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from policies import ContextFeatures, Policy, PolicyError, QueryFeatures, load, query_words
from policies.features import context_signals, nearest
from router.estimator_features import request_features, votes
from router.ladder import rung
from router.predictability import CalibratedModel, load_models, matrix
from router.proxy.routing import RouteDecision
from router.sleep import LearnedContext, SleepBudget
from router.store.base import ContextRecord

Encoder = Callable[[Sequence[str]], np.ndarray]
TRAINED_FORMATS = frozenset({"number"})  # a policy file that names none: GSM8K's


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
        formats: frozenset[str] = TRAINED_FORMATS,
    ) -> None:
        self.policy = policy
        # The answer formats the policy was trained for: the proxy passes a request on a
        # context of any other format through as sent (router.proxy.routable).
        self.formats = formats
        self.models = models
        self.encode = encode
        self.max_cached = max_cached
        # The anticipated questions are known at sleep time: embedded once per context version,
        # so a request embeds only its own query. Keyed by tenant too: nothing crosses tenants.
        self._anticipated: dict[tuple[str, str, int, float], np.ndarray] = {}

    @classmethod
    def from_files(cls, policy_path: Path, estimator_path: Path, encode: Encoder) -> PolicyRouter:
        models, _meta = load_models(estimator_path)
        return cls(load(policy_path), models, encode, formats=answer_formats(policy_path))

    def decide(self, tenant: str, context: ContextRecord | None, query: str) -> RouteDecision:
        if context is None or not context.has_learned or not context.anticipated:
            # The policy's full rung: its instruction closes the bare question a client that
            # leaves the answer's shape to sleeptime sends (the proxy asks only about a
            # known context, router.proxy.routable; max_tokens stay the client's).
            unlearned = QueryFeatures(words=query_words(query))
            known = ContextFeatures(0.5, expected_queries(context) if context else 1.0)
            full = self.policy.route(known, unlearned)
            return RouteDecision("full", rung=rung(full.rung).name, reason="no learned context yet")
        features, nearest = self.features(context, query, tenant)
        scores = {name: self._score(name, features, 0.0) for name in self.models}
        known = ContextFeatures(scores.get("context", 0.5), expected_queries(context))
        # Offline, a context the policy would not sleep on has no learned context to route to;
        # the proxy's worker thinks about every queued context, so the policy's own sleep
        # decision gates whether that work is used, or replay and serving disagree.
        worth_it = self.policy.sleep_passes(known)[0] > 0
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
        # On c', the rung the query goes full at when its cheap answer fails its check or is
        # cut at its budget (router.proxy.capped): the policy's, as replay charges it.
        fallback = rung(decision.fallback_rung).name if decision.route == "enriched" else None
        routed = RouteDecision(
            decision.route,
            rung=rung(decision.rung).name,
            fallback_rung=fallback,
            scores=shown,
            reason=f"policy {self.policy.name}",
        )
        if not decision.checked:
            return routed
        return replace(
            routed,
            check_rung=None if decision.check_rung is None else rung(decision.check_rung).name,
            check_answer=nearest["answer"] if decision.check_anticipated else None,
        )

    def features(
        self, context: ContextRecord, query: str, tenant: str = ""
    ) -> tuple[dict[str, Any], dict]:
        anticipated = context.anticipated or []
        sims = self._anticipated_vectors(tenant, context) @ self.encode([query])[0]
        best = anticipated[nearest(sims)]  # type: ignore[index]  # decide() saw some
        return request_features(sims, anticipated, context.text, context.truncated_passes), best

    def passes_after_probe(self, context: ContextRecord, learned: LearnedContext) -> int:
        """How many sleep passes the policy wants in all, once the probe pass's artifacts give
        the context estimator its features (the worker asks after its first pass)."""
        signals = context_signals(
            context.text, votes(learned.anticipated), learned.truncated_passes
        )
        known = ContextFeatures(self._score("context", signals, 0.5), expected_queries(context))
        return self.policy.sleep_passes(known)[0]

    def sleep_budget(self, base: SleepBudget) -> Callable[[ContextRecord], SleepBudget]:
        """The worker's first budget per context: the policy's probe (none where it never
        sleeps at the context's expected query count), in the configured prompt and length."""
        return lambda context: replace(
            base, passes=self.policy.probe_passes(expected_queries(context))
        )

    def _score(self, name: str, features: dict[str, Any], default: float) -> float:
        model = self.models.get(name)
        if model is None:
            return default
        return float(model.predict_proba(matrix([features], model.features))[0, 1])

    def _anticipated_vectors(self, tenant: str, context: ContextRecord) -> np.ndarray:
        key = (tenant, context.context_id, context.version, context.updated)
        vectors = self._anticipated.get(key)
        if vectors is None:
            if len(self._anticipated) >= self.max_cached:
                self._anticipated.clear()
            questions = [a["question"] for a in context.anticipated or []]
            vectors = self._anticipated[key] = self.encode(questions)
        return vectors


def answer_formats(policy_path: Path) -> frozenset[str]:
    """The policy file's optional "answer_formats" list, else "number": every policy trained
    before formats existed was trained on GSM8K's numeric answers."""
    data = json.loads(policy_path.read_text())
    listed = data.get("answer_formats") if isinstance(data, dict) else None
    if listed is None:
        return TRAINED_FORMATS
    if not isinstance(listed, list) or not all(isinstance(f, str) and f for f in listed):
        raise PolicyError(f"{policy_path}: 'answer_formats' must be a list of format names")
    return frozenset(listed)
