"""Where the Hydra configs are.

The configs live in ``conf/`` at the repository root. A wheel ships the same folder as
``lightning_meta/conf`` (``pyproject.toml`` maps it as package data), so ``lightning-meta`` works
from any directory after ``pip install``. In a source checkout, editable install included, the
repository's ``conf/`` is used, so an edit there takes effect at once.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def conf_dir() -> Path:
    """The repository's ``conf/`` in a source checkout, else the copy installed inside the package."""
    repo = _PACKAGE.parent
    if (repo / "pyproject.toml").is_file() and (repo / "conf" / "config.yaml").is_file():
        return repo / "conf"
    packaged = _PACKAGE / "conf"
    if (packaged / "config.yaml").is_file():
        return packaged
    raise FileNotFoundError(
        f"No Hydra configs found: neither {repo / 'conf'} (source checkout) nor {packaged} (installed wheel) "
        "holds config.yaml. Reinstall the package (`pip install lightning_meta`) or run from the repository."
    )


CONF_DIR = conf_dir()
