import pytest

from router.ladder import LADDER, rung


def test_ladder_has_five_rungs_with_growing_budgets() -> None:
    assert len(LADDER) >= 5
    budgets = [r.max_tokens for r in LADDER]
    assert budgets == sorted(budgets) and len(set(budgets)) == len(budgets)
    assert [r.level for r in LADDER] == list(range(len(LADDER)))


def test_lookup_by_name_or_level() -> None:
    assert rung("answer") is rung(0)
    assert rung("careful").level == 4
    with pytest.raises(KeyError, match="0=answer"):
        rung("ultra")


def test_reasoning_effort_only_when_supported() -> None:
    assert rung(4).request_params() == {"max_tokens": rung(4).max_tokens}
    assert rung(4).request_params(supports_reasoning_effort=True)["reasoning_effort"] == "high"
