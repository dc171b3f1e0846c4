"""`sleeptime keys`: the key printed once, kept hashed, accepted and revoked by a running proxy."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from fake_upstream import FakeUpstream, healthy

from router import cli
from router.local_server import free_port
from router.proxy.app import create_app
from router.proxy.config import ProxyConfig
from router.proxy.server import ServerThread
from router.settings import Settings

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def keys(capsys: pytest.CaptureFixture[str], db: Path, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["keys", "--db", str(db), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_prints_the_key_once_and_keeps_only_its_hash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "s.sqlite"
    code, out, err = keys(
        capsys, db, "create", "--name", "alice", "--rpm", "5", "--budget-usd", "2"
    )
    key = out.strip()
    assert code == 0 and key.startswith("sk-") and out.count("\n") == 1
    assert "only this once" in err and key not in err
    assert key.encode() not in db.read_bytes()
    code, out, _ = keys(capsys, db, "list", "--json")
    listed = json.loads(out)
    assert code == 0 and key not in out
    assert [(k["name"], k["rpm"], k["budget_usd"], k["revoked"]) for k in listed] == [
        ("alice", 5, 2.0, False)
    ]
    code, out, _ = keys(capsys, db, "list")
    assert code == 0 and "alice" in out and key[:7] in out and key not in out


def test_errors_are_one_clear_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    assert keys(capsys, db, "create", "--name", "bob")[0] == 0
    code, out, err = keys(capsys, db, "create", "--name", "bob")
    assert (code, out) == (2, "") and "already named 'bob'" in err and len(err.splitlines()) == 1
    code, _, err = keys(capsys, db, "revoke", "nobody")
    assert code == 2 and "no live key named 'nobody'" in err
    code, _, err = keys(capsys, db, "create", "--name", "has space")
    assert code == 2 and "key name" in err


def test_a_running_proxy_accepts_a_created_key_and_refuses_it_once_revoked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake: FakeUpstream
) -> None:
    db = tmp_path / "s.sqlite"
    fake.fallback = healthy
    settings = Settings(
        cache_dir=tmp_path, db_path=db, upstream_url=fake.url, master_key="sk-master-cli"
    )
    app = create_app(ProxyConfig.from_settings(settings, sleep_enabled=False))
    with ServerThread(app, free_port()) as server:
        key = keys(capsys, db, "create", "--name", "carol")[1].strip()
        time.sleep(1.1)  # the proxy reads the key table at most once a second
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.post(f"{server.url}/chat/completions", json=BODY, headers=headers).is_success
        assert keys(capsys, db, "revoke", "carol")[0] == 0
        time.sleep(1.1)
        refused = httpx.post(f"{server.url}/chat/completions", json=BODY, headers=headers)
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
