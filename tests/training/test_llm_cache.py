from pathlib import Path

from router.upstream import ChatResult, Usage
from training.llm_cache import CachingBackend, ResponseCache, request_key


class CountingBackend:
    def __init__(self) -> None:
        self.calls = 0

    def chat(self, messages: list[dict], *, model: str, **params: object) -> ChatResult:
        self.calls += 1
        return ChatResult(f"reply {self.calls}", "stop", Usage(10, 3, 2), 0.25, model)


def test_key_covers_the_whole_request() -> None:
    base = request_key("m", [{"role": "user", "content": "q"}], {"max_tokens": 5, "seed": 0})
    assert base == request_key(
        "m", [{"role": "user", "content": "q"}], {"seed": 0, "max_tokens": 5}
    )
    assert base != request_key(
        "m", [{"role": "user", "content": "q"}], {"max_tokens": 6, "seed": 0}
    )
    assert base != request_key(
        "m2", [{"role": "user", "content": "q"}], {"max_tokens": 5, "seed": 0}
    )
    assert base != request_key(
        "m", [{"role": "user", "content": "Q"}], {"max_tokens": 5, "seed": 0}
    )


def test_second_identical_call_is_served_from_disk_across_reopen(tmp_path: Path) -> None:
    inner = CountingBackend()
    messages = [{"role": "user", "content": "hello"}]
    first = CachingBackend(inner, ResponseCache(tmp_path / "c.sqlite"))
    a = first.chat(messages, model="m", max_tokens=5)
    first.chat(messages, model="m", max_tokens=6)
    again = CachingBackend(inner, ResponseCache(tmp_path / "c.sqlite"))  # a "restarted" run
    b = again.chat(messages, model="m", max_tokens=5)
    assert inner.calls == 2
    assert b == a and b.usage == Usage(10, 3, 2)
    assert (again.hits, again.misses) == (1, 0)
    assert len(ResponseCache(tmp_path / "c.sqlite")) == 2
