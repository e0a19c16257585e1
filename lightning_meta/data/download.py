"""Fetching and unpacking public data set archives, checked before they are trusted.

A download is streamed to a temporary file beside its destination and renamed into place only after
its checksum matches, so an interrupted or tampered download never looks like a finished one.
Archives are unpacked only if no member would land outside the target folder.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from lightning_meta.errors import DataError

_CHUNK = 1 << 20


def file_digests(path: str | Path) -> dict[str, str]:
    """The sha256 and md5 hex digests of a file, read in chunks."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def _mismatch(path: Path, expected: dict[str, str], actual: dict[str, str]) -> str | None:
    for kind, value in expected.items():
        if actual[kind] != value.lower():
            return f"{kind} of {path} is {actual[kind]}, expected {value}"
    return None


def download(url: str, dest: str | Path, sha256: str | None = None, md5: str | None = None) -> Path:
    """Download ``url`` to ``dest`` and verify the given checksums; returns ``dest``.

    An existing ``dest`` whose checksums match is kept without downloading again.
    """
    dest = Path(dest)
    expected = {k: v for k, v in (("sha256", sha256), ("md5", md5)) if v}
    if dest.is_file() and expected and _mismatch(dest, expected, file_digests(dest)) is None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as e:
                raise DataError(
                    f"Could not download {url} to {dest}: {e}. Check the network connection and the URL, "
                    f"or download the file by hand and place it at {dest}."
                ) from e
        problem = _mismatch(dest, expected, file_digests(tmp))
        if problem is not None:
            raise DataError(
                f"Checksum mismatch for {dest} downloaded from {url}: {problem}. The download is corrupted or "
                f"the URL serves a different file: delete {dest} if present and retry, or check the URL."
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _inside(dest: Path, member: str) -> bool:
    target = (dest / member).resolve()
    return target == dest or dest in target.parents


def extract(archive: str | Path, dest: str | Path) -> Path:
    """Unpack a ``.zip``, ``.tar``, ``.tar.gz`` or ``.tgz`` archive into ``dest``; returns ``dest``.

    Members with absolute paths, ``..`` components or links pointing outside ``dest`` are refused.
    """
    archive, dest = Path(archive), Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    corrupt = (
        f"Archive {archive} is corrupted or truncated. Delete it and download it again "
        "(or pass download=True to fetch a fresh copy)."
    )
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
                _refuse_traversal(archive, dest, names)
                zf.extractall(dest)
        elif archive.name.endswith((".tar", ".tar.gz", ".tgz")):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                _refuse_traversal(archive, dest, [m.name for m in members])
                links = [str(Path(m.name).parent / m.linkname) for m in members if m.issym()]
                links += [m.linkname for m in members if m.islnk()]
                _refuse_traversal(archive, dest, links)
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(dest, filter="data")
                else:
                    tf.extractall(dest)
        elif archive.suffix == ".zip":
            raise DataError(corrupt)
        else:
            raise DataError(f"Cannot extract {archive}: only .zip, .tar, .tar.gz and .tgz archives are supported.")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{corrupt} ({e})") from e
    return dest


def _refuse_traversal(archive: Path, dest: Path, names: list[str]) -> None:
    for name in names:
        if Path(name).is_absolute() or not _inside(dest, name):
            raise DataError(
                f"Archive {archive} holds the member {name!r} that would be written outside {dest}; refusing to "
                "extract it. Obtain the archive from its official source."
            )
