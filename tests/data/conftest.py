"""A local HTTP server for download tests: serves a temporary folder on 127.0.0.1, no network needed."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def http_root(tmp_path) -> Iterator[tuple[Path, str]]:
    """(folder, base URL): files written into the folder are served under the URL."""
    served = tmp_path / "served"
    served.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


ASSETS = Path(__file__).resolve().parents[2] / "lightning_meta" / "assets" / "omniglot"
DRAWINGS = 2  # drawings written per character (the official zips hold 20)


@pytest.fixture(scope="package")
def omniglot_zips(tmp_path_factory) -> Path:
    """A folder holding ``images_background.zip`` and ``images_evaluation.zip`` in the official layout.

    Every one of the 1623 characters is present under its real ``Alphabet/characterNN`` name, with the
    first ``DRAWINGS`` drawings of the shipped arrays as 105x105 mode-"1" PNGs (True = white background).
    """
    import csv
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("omniglot_zips")
    with open(ASSETS / "omniglot_npz_index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    for part in ("background", "evaluation"):
        arrays = np.load(ASSETS / f"images_{part}.npz")["images"]
        with zipfile.ZipFile(folder / f"images_{part}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for row in (r for r in index if r["split"] == part):
                for d in range(DRAWINGS):
                    buf = io.BytesIO()
                    Image.fromarray(arrays[int(row["npz_row"]), d]).save(buf, format="PNG")
                    zf.writestr(row["original_png_pattern"].format(drawer=d + 1), buf.getvalue())
    return folder
