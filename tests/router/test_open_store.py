"""A store is opened from a URL: the one place that knows which engines exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.settings import Settings
from router.store import SqliteStore, StoreError, open_store, sqlite_path, store_url_of


def test_sqlite_urls_and_bare_paths_open_the_same_file(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    first = open_store(f"sqlite:///{db}")
    first.register_context("t", "c", "some text")
    first.close()
    second = open_store(db)
    assert isinstance(second, SqliteStore) and second.get_context("t", "c") is not None
    second.close()


def test_an_engine_not_built_is_named_in_the_error() -> None:
    with pytest.raises(StoreError, match=r"no store for mysql://.*sqlite:///PATH, postgresql://"):
        open_store("mysql://db.example/sleeptime")


def test_the_settings_name_one_store(tmp_path: Path) -> None:
    assert store_url_of(Settings(cache_dir=tmp_path)) == f"sqlite:///{tmp_path}/sleeptime.sqlite"
    assert store_url_of(Settings(db_path=tmp_path / "x.db")) == f"sqlite:///{tmp_path}/x.db"
    assert store_url_of(Settings(store_url="sqlite:///elsewhere.db")) == "sqlite:///elsewhere.db"
    assert sqlite_path("sqlite:///a/b.db") == Path("a/b.db")
    assert sqlite_path("postgresql://h/d") is None
