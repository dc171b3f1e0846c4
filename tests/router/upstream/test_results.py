"""The token estimate used when an upstream sends no usage."""

from __future__ import annotations

from router.upstream import estimate_prompt_tokens, estimate_tokens


def test_estimate_is_four_characters_a_token_rounded_up() -> None:
    assert [estimate_tokens(t) for t in ("", "abc", "abcd", "abcde")] == [0, 1, 1, 2]


def test_estimate_counts_text_parts_only() -> None:
    parts = [{"type": "text", "text": "abcdefgh"}, {"type": "image_url", "image_url": {}}]
    assert estimate_prompt_tokens([{"role": "user", "content": parts}]) == 2 + 4
