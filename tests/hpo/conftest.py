"""Fixtures of the hpo tests: a throw-away PostgreSQL server and fresh pool URLs on SQLite and on it.

The server is started from the PostgreSQL binaries (``initdb``, ``pg_ctl``) in a temporary folder on
a free port of 127.0.0.1. ``initdb`` refuses to run as root, so as root the server runs as the
``postgres`` user.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ENSURE = "scripts/ensure-postgres.sh"


def _binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[4]))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A running server; ``new_database()`` returns the URL of a fresh, empty database."""

    def __init__(self) -> None:
        initdb, self._pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if initdb is None or self._pg_ctl is None:
            pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl) are missing: run {ENSURE} to install them.")
        self._prefix: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="lightning-meta-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]
        self.data = self.root / "data"
        self.port = _free_port()
        self._names = itertools.count()
        self._run([initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run([self._pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start"])

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(self._prefix + command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}\n{tail}")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"pool_{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(self._prefix + [self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh empty PostgreSQL database for one test."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def pool_url(request, tmp_path) -> str:
    """A fresh pool URL on each backend: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'experience.db'}"
    return request.getfixturevalue("postgres_url")
