"""A throwaway PostgreSQL server for the store's tests: started in a temporary folder, on
a free port, and gone at the end of the session. Never a system service.

initdb refuses to run as root, and CI runs as root: there the server runs as the
`postgres` user Debian's package creates (else `nobody`), through `runuser`. TCP on
127.0.0.1 asks for the superuser's password (scram), so a wrong password is really
refused; the Unix socket in the temporary folder trusts, for the server's own checks.
`fsync=off`: a test database need not survive a power cut, and tests run faster.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class NoServer(Exception):
    """Why no PostgreSQL server could be started here (the tests skip with it)."""


@dataclass
class PgServer:
    folder: Path
    bin_dir: Path
    port: int
    password: str
    run_as: list[str]

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://postgres:{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database: its URL (tests never share state)."""
        import psycopg

        name = "t_" + secrets.token_hex(8)
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-D", str(self.folder / "data"), "-m", "fast", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [*self.run_as, str(self.bin_dir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise NoServer(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def start() -> PgServer:
    """Raises NoServer, with the reason, when the binaries are missing or will not start."""
    bin_dir = find_binaries()
    folder = Path(tempfile.mkdtemp(prefix="sleeptime-pg-"))
    run_as = _run_as(folder)
    server = PgServer(folder, bin_dir, free_port(), secrets.token_hex(12), run_as)
    (folder / "pw").write_text(server.password + "\n")
    try:
        server._run(
            "initdb", "-D", str(folder / "data"), "-U", "postgres", "--pwfile", str(folder / "pw"),
            "--auth-local=trust", "--auth-host=scram-sha-256", "--locale=C", "-E", "UTF8",
        )  # fmt: skip
        options = (
            f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = str(folder / "log")
        server._run("pg_ctl", "start", "-D", str(folder / "data"), "-w", "-t", "30", "-l", log,
                    "-o", options)  # fmt: skip
    except (NoServer, OSError, subprocess.TimeoutExpired) as exc:
        tail = (folder / "log").read_text()[-500:] if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise NoServer(f"{exc} {tail}".strip()) from None
    return server


def find_binaries() -> Path:
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major)
    if not found:
        raise NoServer("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as(folder: Path) -> list[str]:
    """Nothing as a normal user; as root, an unprivileged user who owns the folder."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        runuser = shutil.which("runuser")
        if runuser is None:
            raise NoServer("running as root and no runuser to start PostgreSQL as another user")
        os.chown(folder, user.pw_uid, user.pw_gid)
        return [runuser, "-u", name, "--"]
    raise NoServer("running as root and neither a postgres nor a nobody user to run initdb")


def _major(path: str) -> int:
    version = Path(path).parts[-3]
    return int(version) if version.isdigit() else 0
