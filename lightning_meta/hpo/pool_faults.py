"""What went wrong with the experience pool's database, told apart so that each fault gets its own fix.

A locked SQLite file, a read-only file or folder, a folder given as the file, a corrupted file, a server
that is down or refuses the user: each needs something else done, and the fix for one can cost the runs
of another (moving a read-only or locked pool "away" as if it were corrupted starts an empty one).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import URL

# SQLite's primary result codes (https://sqlite.org/rescode.html); Python reports extended codes, whose low byte
# is the primary one.
_PERM, _BUSY, _LOCKED, _READONLY, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 3, 5, 6, 8, 11, 13, 14, 26


def _detail(error: BaseException) -> str:
    """The driver's own message on one line."""
    original = getattr(error, "orig", None) or error
    return re.sub(r"\s+", " ", str(original)).strip() or type(original).__name__


def sqlite_access_fault(path: Path, detail: str = "") -> str | None:
    """The problem and its fix if the pool file ``path`` cannot be written: it is a folder, it or a journal file
    of it is read-only, or its folder is; None if it can. Checked before SQLite opens it, because SQLite opens a
    read-only file without complaint, gives its new journal files the file's read-only mode (which outlive a
    later ``chmod`` of the file) and fails only at the first write, after the run it was to record."""
    why = f" ({detail})" if detail else ""
    if path.is_dir():
        return f"{path} is a folder, not a database file{why}. Fix: name a file in it, e.g. sqlite:///{path / 'experience.db'}."
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and not os.access(file, os.W_OK):
            what = "the file" if file == path else f"its journal file {file.name}"
            return (f"{what} is read-only{why}. Fix: make it writable (chmod u+w {file}) or copy the pool to a "
                    "writable place and point the pool there; the recorded runs are intact.")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return (f"its folder {path.parent} is read-only, and SQLite keeps its journal (the -wal and -shm files) beside "
                f"the database{why}. Fix: make the folder writable (chmod u+w {path.parent}) or point the pool at a "
                "file in a writable folder; the recorded runs are intact.")
    return None


def sqlite_fault(path: Path | None, error: BaseException, lock_timeout: float) -> str:
    """The problem and its fix for a SQLite error of the pool stored in ``path`` (None: in memory)."""
    detail = _detail(error)
    code = getattr(getattr(error, "orig", None) or error, "sqlite_errorcode", None)
    code = code & 0xFF if isinstance(code, int) else None
    if code in (_BUSY, _LOCKED):
        return (f"another connection has held the database's write lock for over {lock_timeout:g} s ({detail}). "
                f"Fix: let the process writing to {path} finish, or stop it (`fuser {path}` names it); nothing was "
                "written, and the recorded runs are intact.")
    if code in (_NOTADB, _CORRUPT):
        return (f"the file is corrupted or not a SQLite database ({detail}). Fix: move it away (a new pool is created) "
                "or point the pool at another file; keep the file if its runs matter (sqlite3 .recover may save them).")
    access = sqlite_access_fault(path, detail) if path is not None and code in (_READONLY, _CANTOPEN, _PERM) else None
    if access:
        return access
    if code == _FULL:
        return f"the disk is full ({detail}). Fix: free space on the disk of {path}; nothing was written."
    return f"{detail}. Fix: check the file and its folder, or point the pool at another file."


def server_fault(url: URL, error: BaseException, connect_timeout: float) -> str:
    """The problem and its fix for an error of a database server (PostgreSQL) at ``url``."""
    detail = _detail(error)
    text = detail.lower()
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if "connection refused" in text:
        return (f"nothing accepts connections at {where} (connection refused). Fix: check that the server is running "
                f"at {where}, and the URL's host and port.")
    if "timeout expired" in text or "timed out" in text:
        return (f"the server at {where} did not answer within {connect_timeout:g} s ({detail}). Fix: check the host "
                "and port and that no firewall drops the connection, or raise connect_timeout.")
    if "could not translate host name" in text or "name or service not known" in text:
        return f"the host {url.host!r} is unknown ({detail}). Fix: correct the URL's host."
    if "password authentication failed" in text or re.search(r'role "[^"]*" does not exist', text):
        return f"the server at {where} refused user {url.username!r} ({detail}). Fix: correct the URL's user and password."
    if re.search(r'database "[^"]*" does not exist', text):
        return (f"the server at {where} has no database {url.database!r}. Fix: create it (createdb {url.database}) or "
                "correct the URL's database.")
    return (f"{detail}. Fix: check that the server is running and reachable, and the URL's user, password and "
            "database.")
