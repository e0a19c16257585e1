"""Downloads from a local HTTP server: checksums, atomic placement, safe extraction, Omniglot zips."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import zipfile

import pytest

from lightning_meta.data import omniglot_zips as omniglot_zips_module
from lightning_meta.data.download import download, extract
from lightning_meta.data.omniglot_zips import load_omniglot_zips
from lightning_meta.errors import DataError

PAYLOAD = bytes(range(256)) * 5000  # > 1 MiB, so it streams in several chunks


def test_download_verifies_sha256_and_md5(http_root, tmp_path):
    served, url = http_root
    (served / "blob.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "blob.bin"
    got = download(f"{url}/blob.bin", dest, sha256=hashlib.sha256(PAYLOAD).hexdigest(), md5=hashlib.md5(PAYLOAD).hexdigest())
    assert got == dest and dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["blob.bin"]
    (served / "blob.bin").unlink()  # a verified file in place is kept, not fetched again
    assert download(f"{url}/blob.bin", dest, md5=hashlib.md5(PAYLOAD).hexdigest()).read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing_behind(http_root, tmp_path):
    served, url = http_root
    (served / "blob.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "blob.bin"
    wrong = "ab" * 32
    with pytest.raises(DataError) as e:
        download(f"{url}/blob.bin", dest, sha256=wrong)
    msg = str(e.value)
    assert str(dest) in msg and wrong in msg and hashlib.sha256(PAYLOAD).hexdigest() in msg
    assert "delete" in msg and "check the URL" in msg
    assert list(dest.parent.iterdir()) == []


def test_unreachable_url_is_a_data_error(http_root, tmp_path):
    _, url = http_root
    with pytest.raises(DataError, match="Could not download .*missing.zip"):
        download(f"{url}/missing.zip", tmp_path / "missing.zip", md5="0" * 32)
    assert list(tmp_path.glob("*missing*")) == []


def test_extract_zip_and_tar(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("top/x.txt", "zip content")
    t = tmp_path / "b.tar.gz"
    with tarfile.open(t, "w:gz") as tf:
        info = tarfile.TarInfo("top/y.txt")
        info.size = 11
        tf.addfile(info, io.BytesIO(b"tar content"))
    out = tmp_path / "out"
    extract(z, out)
    extract(t, out)
    assert (out / "top" / "x.txt").read_text() == "zip content"
    assert (out / "top" / "y.txt").read_text() == "tar content"


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil_abs.txt", "ok/../../evil.txt"])
def test_extract_refuses_path_traversal(tmp_path, member):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(member, "x")
    t = tmp_path / "evil.tar.gz"
    with tarfile.open(t, "w:gz") as tf:
        info = tarfile.TarInfo(member)
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    for archive in (z, t):
        with pytest.raises(DataError, match="outside"):
            extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_extract_refuses_escaping_symlink(tmp_path):
    t = tmp_path / "link.tar"
    with tarfile.open(t, "w") as tf:
        info = tarfile.TarInfo("top/link")
        info.type, info.linkname = tarfile.SYMTYPE, "../../etc"
        tf.addfile(info)
    with pytest.raises(DataError, match="outside"):
        extract(t, tmp_path / "out")


def test_extract_truncated_zip(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("x.txt", "content" * 1000)
    z.write_bytes(z.read_bytes()[:100])
    with pytest.raises(DataError, match="a.zip is corrupted or truncated"):
        extract(z, tmp_path / "out")


def test_omniglot_download_from_url_table(http_root, omniglot_zips, tmp_path, monkeypatch):
    served, url = http_root
    table = {}
    for name in omniglot_zips_module.ZIPS:
        shutil.copy(omniglot_zips / name, served / name)
        table[name] = (f"{url}/{name}", {"md5": hashlib.md5((served / name).read_bytes()).hexdigest()})
    monkeypatch.setattr(omniglot_zips_module, "ZIPS", table)
    root = tmp_path / "data"
    splits = load_omniglot_zips(root, image_size=14, split="lake", rotations=False, download=True)
    assert splits["train"].num_classes + splits["val"].num_classes == 964
    assert (root / "images_background.zip").is_file() and (root / "images_evaluation.zip").is_file()
    # A wrong published checksum is caught before the file is trusted.
    table["images_evaluation.zip"] = (table["images_evaluation.zip"][0], {"md5": "f" * 32})
    (root / "images_evaluation.zip").unlink()
    with pytest.raises(DataError, match="Checksum mismatch .*images_evaluation.zip"):
        load_omniglot_zips(root, download=True)
    assert not (root / "images_evaluation.zip").exists()
