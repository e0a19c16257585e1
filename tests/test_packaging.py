"""The wheel: it ships the configs of ``conf/`` inside the package, and ``lightning-meta`` works after ``pip install``
from any directory, with no file of the repository in reach."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

TINY = ["data.train_episodes=4", "data.meta_batch_size=2", "data.val_episodes=2", "data.test_episodes=6",
        "data.eval_batch_size=3", "image.hidden=8", "logger=csv", "callbacks=none"]


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_of_the_source_tree_is_listed_for_the_wheel():
    # pyproject.toml lists the packages by hand, because lightning_meta.conf is mapped to conf/ (no discovery)
    setuptools = pytest.importorskip("setuptools")
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = set(setuptools.find_packages(str(REPO), include=["lightning_meta", "lightning_meta.*"]))
    found |= {"hydra_plugins." + p for p in setuptools.find_packages(str(REPO / "hydra_plugins"))}
    assert found | {"lightning_meta.conf"} == listed
    assert _pyproject()["tool"]["setuptools"]["package-dir"] == {"lightning_meta.conf": "conf"}


def test_a_source_checkout_reads_the_repository_conf():
    from lightning_meta.configs import CONF_DIR

    assert CONF_DIR == REPO / "conf" and not (REPO / "lightning_meta" / "conf").exists()


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LIGHTNING_META_ROOT")}
    env.update(OMP_NUM_THREADS="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    return env


def _run(args, cwd, timeout=300):
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow  # builds a wheel and an environment, then trains: 9-18 s on 2 CPU cores
def test_the_installed_wheel_trains_from_any_directory(tmp_path):
    pytest.importorskip("setuptools", minversion="77")  # the build backend, used without isolation (no download)
    src = tmp_path / "src"  # a copy, so that the build leaves nothing in the repository
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "conf", "lightning_meta", "hydra_plugins"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", src],
         cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("lightning_meta-*.whl"))

    # A fresh environment on top of this one's packages (torch, Lightning, Hydra...), holding only the wheel:
    # the .pth adds this environment's site-packages as plain paths, so its own lightning_meta stays out of reach.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path).stdout.strip())
    parents = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    (purelib / "_parent_environment.pth").write_text("\n".join(parents) + "\n")
    _run([python, "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q", wheel], cwd=tmp_path)

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([python, "-c", "import lightning_meta.configs as c; print(c.__file__); print(c.CONF_DIR)"], work).stdout
    assert all(line.startswith(str(purelib)) for line in where.split()), where
    assert (purelib / "lightning_meta" / "conf" / "trainer" / "cpu.yaml").is_file()

    helped = _run([venv / "bin" / "lightning-meta", "--help"], work).stdout
    assert "config groups" in helped and re.search(r"trainer +cpu, ddp, gpu", helped) and "quickstart" in helped

    trained = _run([venv / "bin" / "lightning-meta", "train", *TINY, "trainer.max_steps=2", f"paths.root_dir={work}"],
                   work)
    assert "`max_steps=2` reached" in trained.stderr + trained.stdout
    assert "Test accuracy:" in trained.stdout
    assert list((work / "logs" / "train" / "runs").glob("*/csv/*/metrics.csv"))
