"""The proxy's settings come from the environment, a TOML file or flags alike."""

from __future__ import annotations

from pathlib import Path

from router.proxy.config import ProxyConfig
from router.settings import load_settings


def test_proxy_settings_from_the_environment(tmp_path: Path) -> None:
    env = {
        "SLEEPTIME_CACHE_DIR": str(tmp_path),
        "SLEEPTIME_MODELS": "gpt-4o-mini, gpt-4o",
        "SLEEPTIME_MAX_INFLIGHT_PER_KEY": "3",
        "SLEEPTIME_SLEEP_ENABLED": "off",
    }
    config = ProxyConfig.from_settings(load_settings(environ=env))
    assert config.models == ("gpt-4o-mini", "gpt-4o")
    assert config.max_inflight_per_key == 3 and config.sleep_enabled is False
    assert config.database == tmp_path / "sleeptime.sqlite"
    assert config.journal_dir == tmp_path / "sleeptime.sqlite.journal"


def test_flags_win_and_reach_the_settings(tmp_path: Path) -> None:
    settings = load_settings(environ={"SLEEPTIME_DB_PATH": str(tmp_path / "env.sqlite")})
    config = ProxyConfig.from_settings(
        settings, db_path=tmp_path / "flag.sqlite", sleep_passes=None, record_queue=5
    )
    assert config.database == tmp_path / "flag.sqlite" and config.settings.sleep_passes == 1
    assert config.record_queue == 5
