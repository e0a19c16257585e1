"""The dependencies pyproject.toml declares are the ones the package imports (deptry), none missing, none unused."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_declared_dependencies_match_the_imports():
    deptry = Path(sys.executable).with_name("deptry")
    done = subprocess.run([str(deptry), ".", "--no-ansi"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "No dependency issues found" in done.stdout + done.stderr
