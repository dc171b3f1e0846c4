"""Pure policies: features in, decisions out. Imports nothing of router/ or training/."""

from policies.base import REGISTRY, Policy, PolicyError, from_dict, load, save
from policies.builtin import AlwaysSleep, Learned, TestTimeOnly, Threshold, builtin_baselines
from policies.types import (
    ROUTES,
    ContextFeatures,
    Prices,
    QueryDecision,
    QueryFeatures,
    Route,
    SleepDecision,
    query_words,
)

__all__ = [
    "REGISTRY",
    "ROUTES",
    "AlwaysSleep",
    "ContextFeatures",
    "Learned",
    "Policy",
    "PolicyError",
    "Prices",
    "QueryDecision",
    "QueryFeatures",
    "Route",
    "SleepDecision",
    "TestTimeOnly",
    "Threshold",
    "builtin_baselines",
    "from_dict",
    "load",
    "query_words",
    "save",
]
