"""Client keys: random, stored only as a hash, shown by a prefix, names kept plain."""

from __future__ import annotations

import hashlib

import pytest

from router.apikeys import bearer, is_master, key_hash, mint


def test_a_minted_key_is_sk_and_256_random_bits_stored_only_as_its_hash() -> None:
    key, record = mint("alice", rpm=3, tpm=0, budget_usd=1.5)
    assert key.startswith("sk-") and len(key) >= 3 + 43
    assert record.key_hash == hashlib.sha256(key.encode()).hexdigest() == key_hash(key)
    assert key not in repr(record) and record.prefix == key[:7] + "…"
    assert (record.name, record.rpm, record.budget_usd, record.tenant) == (
        "alice",
        3,
        1.5,
        "k-" + record.key_id,
    )
    assert mint("alice")[0] != key


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "é", "-lead", 'a"b'])
def test_names_that_would_not_fit_a_label_or_url_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="key name"):
        mint(name)


def test_negative_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        mint("a", rpm=-1)


def test_bearer_and_master() -> None:
    assert bearer("Bearer sk-1") == bearer("bearer   sk-1 ") == "sk-1"
    assert bearer(None) == bearer("") == bearer("Basic abc") == bearer("Bearer ") == ""
    assert is_master("m-secret", "m-secret") and not is_master("m-secreT", "m-secret")
    assert not is_master("", "")  # no master key: nothing is the master key
