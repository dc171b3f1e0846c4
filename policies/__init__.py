"""Pure policies: features in, decisions out. Imports nothing of router/ or training/."""

from policies.base import REGISTRY, Policy, PolicyError, from_dict, load, save
from policies.builtin import AlwaysSleep, Learned, TestTimeOnly, Threshold, builtin_baselines
from policies.cost import ModelPrice, Prices, price_of
from policies.features import query_words
from policies.types import (
    ROUTES,
    ContextFeatures,
    QueryDecision,
    QueryFeatures,
    Route,
    SleepDecision,
)

__all__ = [
    "REGISTRY",
    "ROUTES",
    "AlwaysSleep",
    "ContextFeatures",
    "Learned",
    "ModelPrice",
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
    "price_of",
    "query_words",
    "save",
]
