"""The experience pool tells its faults apart, each with its own fix, and loses no recorded run to any of them.

Read-only files and folders bind every user but root, so those cases run in a child process as ``nobody``
when the tests run as root (the child drops root's rights; every module it needs is imported before).
"""

import json
import os
import re
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from lightning_meta.errors import PoolError
from lightning_meta.hpo.pool import ExperiencePool

NOBODY = 65534


def _fill(path: Path, runs: int = 2) -> None:
    with ExperiencePool(f"sqlite:///{path}") as pool:
        for i in range(runs):
            pool.record("t", {"n": 1}, {"lr": 0.1 * (i + 1)}, 0.5)


def _count(path: Path) -> int:
    with ExperiencePool(f"sqlite:///{path}") as pool:
        return pool.count()


def _error(url: str, **kwargs) -> str:
    with pytest.raises(PoolError) as info:
        ExperiencePool(url, **kwargs)
    return str(info.value)


def _without_root(body: Callable[[Path], dict], tmp_path: Path) -> dict:
    """``body(folder)`` in a forked child that cannot write where its mode bits forbid it, as JSON through a pipe."""
    _fill(tmp_path / "warm.db", 1)  # imports the SQLite driver and everything a pool touches, before the fork
    assert _count(tmp_path / "warm.db") == 1
    folder = Path(tempfile.mkdtemp(prefix="lightning-meta-pool-"))
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, NOBODY)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        try:
            if os.geteuid() == 0:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            result = body(folder)
        except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
            result = {"child_error": f"{type(err).__name__}: {err}"}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    shutil.rmtree(folder, ignore_errors=True)
    result = json.loads(text)
    assert "child_error" not in result, result
    return result


def _try_open(path: Path) -> str:
    """``"opened"``, or the PoolError's message."""
    try:
        ExperiencePool(f"sqlite:///{path}")
        return "opened"
    except PoolError as err:
        return str(err)


def _open_read_only_file(folder: Path) -> dict:
    path = folder / "pool.db"
    _fill(path)
    messages = []
    for read_only in (path, folder / "pool.db-wal"):  # the file, or a journal file a former run left read-only
        read_only.touch()
        read_only.chmod(0o444)
        messages.append(_try_open(path))
        read_only.chmod(0o644)
    (folder / "pool.db-wal").unlink()
    return {"path": str(path), "messages": messages, "runs": _count(path)}


def _open_in_read_only_folder(folder: Path) -> dict:
    inner = folder / "pools"
    inner.mkdir()
    _fill(inner / "pool.db")
    inner.chmod(0o555)
    messages = []
    for name in ("pool.db", "new.db"):  # an existing pool, and a new one the folder cannot hold
        messages.append(_try_open(inner / name))
    inner.chmod(0o755)
    return {"folder": str(inner), "messages": messages, "runs": _count(inner / "pool.db")}


def test_a_read_only_file_is_named_read_only_not_corrupted_and_keeps_its_runs(tmp_path):
    result = _without_root(_open_read_only_file, tmp_path)
    path, (file, journal) = result["path"], result["messages"]
    assert file == (f"Experience pool sqlite:///{path}: cannot open: the file is read-only. Fix: make it writable "
                    f"(chmod u+w {path}) or copy the pool to a writable place and point the pool there; the recorded "
                    "runs are intact."), file
    assert f"cannot open: its journal file pool.db-wal is read-only. Fix: make it writable (chmod u+w {path}-wal)" \
        in journal, journal
    assert "corrupted" not in file + journal and "move it away" not in file + journal
    assert result["runs"] == 2


def test_a_read_only_folder_is_named_with_its_journal_files(tmp_path):
    result = _without_root(_open_in_read_only_folder, tmp_path)
    for message in result["messages"]:
        assert f"cannot open: its folder {result['folder']} is read-only" in message, message
        assert "-wal and -shm" in message and "corrupted" not in message
    assert result["runs"] == 2


def test_a_folder_given_as_the_pool_file_is_named_a_folder(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "notes.txt").write_text("kept")
    message = _error(f"sqlite:///{folder}")
    assert f"{folder} is a folder, not a database file" in message
    assert f"Fix: name a file in it, e.g. sqlite:///{folder / 'experience.db'}" in message
    assert "corrupted" not in message
    assert [p.name for p in folder.iterdir()] == ["notes.txt"] and (folder / "notes.txt").read_text() == "kept"


def test_a_locked_file_is_named_locked_and_keeps_its_runs(tmp_path):
    path = tmp_path / "pool.db"
    _fill(path)
    pool = ExperiencePool(f"sqlite:///{path}", lock_timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        opening = _error(f"sqlite:///{path}", lock_timeout=0.2)
        with pytest.raises(PoolError) as info:
            pool.record("t", {}, {"lr": 1.0}, 0.9)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for message, action in ((opening, "open"), (str(info.value), "record a run")):
        assert (f"cannot {action}: another connection has held the database's write lock for over 0.2 s (database is "
                f"locked). Fix: let the process writing to {path} finish") in message, message
        assert "corrupted" not in message and "move it away" not in message
    pool.record("t", {}, {"lr": 1.0}, 0.9)  # the same pool writes once the lock is released
    pool.close()
    assert _count(path) == 3


def test_a_corrupted_file_is_named_corrupted_and_left_in_place(tmp_path):
    path = tmp_path / "pool.db"
    content = b"these bytes are no SQLite header" * 256
    path.write_bytes(content)
    message = _error(f"sqlite:///{path}")
    assert "cannot open: the file is corrupted or not a SQLite database (file is not a database)" in message
    assert "read-only" not in message and "locked" not in message
    assert path.read_bytes() == content


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_postgres_server_that_is_down_is_named_with_host_and_port():
    port = _closed_port()
    message = _error(f"postgresql+psycopg://user:secret@127.0.0.1:{port}/pool")
    assert f"cannot open: nothing accepts connections at 127.0.0.1:{port} (connection refused)" in message
    assert "Fix: check that the server is running" in message and "secret" not in message


@pytest.mark.postgres
def test_a_postgres_server_that_refuses_the_user_or_lacks_the_database_says_which(postgres_server):
    missing_db = _error(postgres_server.url("nowhere"))
    assert "has no database 'nowhere'. Fix: create it (createdb nowhere)" in missing_db
    wrong_user = _error(postgres_server.url("postgres").replace("postgres@", "stranger@"))
    assert "refused user 'stranger'" in wrong_user and "Fix: correct the URL's user and password" in wrong_user
