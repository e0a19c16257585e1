"""Shared test fixtures: paths to the repository and to the read-only real data beside it."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets beside the repository (``../shared/data``)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"Real data folder {SHARED_DATA} is missing: the tests expect ../shared/data beside the repository.")
    return SHARED_DATA
