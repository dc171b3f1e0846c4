"""Files the store writes are its owner's alone: contexts, answers and spend are in them."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private(database: Path) -> None:
    """The file exists, 0600, before SQLite opens it: SQLite gives its -wal and -shm the
    database's mode. A file an older version left readable is tightened, -wal/-shm too."""
    os.close(os.open(database, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for path in (database, *(database.with_name(database.name + end) for end in ("-wal", "-shm"))):
        tighten(path, PRIVATE_FILE)


def private_dir(directory: Path) -> None:
    directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    tighten(directory, PRIVATE_DIR)


def tighten(path: Path, mode: int) -> None:
    """Another user's file is left as it is: opening it will say what is wrong."""
    try:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except (FileNotFoundError, PermissionError):
        pass
