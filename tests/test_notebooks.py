"""The notebooks run end to end at their smoke-test size and report sane numbers.

Each notebook is executed in a fresh kernel of this interpreter, in a temporary directory, with
``LIGHTNING_META_NOTEBOOK_SMALL=1``; its last cell (tagged ``summary``) prints a JSON summary that
the checks below read.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ["01_quickstart.ipynb", "02_maml_vs_reptile_vs_protonet.ipynb", "03_hyperparameter_mapping.ipynb",
         "04_text_few_shot.ipynb"]


def _kernel_for_this_interpreter(folder: Path) -> None:
    """Makes the kernel name ``python3`` start this interpreter, whatever kernels the user registered."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))


def execute(name: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[nbformat.NotebookNode, dict, float]:
    """Runs notebook ``name`` in ``workdir``; returns it with outputs, its summary and its duration (s)."""
    _kernel_for_this_interpreter(workdir / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(workdir / "jupyter"))
    monkeypatch.setenv("LIGHTNING_META_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(workdir)}}).execute()
    seconds = time.perf_counter() - start
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    tagged = [c for c in notebook.cells if "summary" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name} needs exactly one cell tagged 'summary'"
    text = "".join(o.get("text", "") for o in tagged[0].outputs if o.output_type == "stream" and o.name == "stdout")
    return notebook, json.loads(text), seconds


def figures(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", []))


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert any("LIGHTNING_META_NOTEBOOK_SMALL" in c.source for c in code)


@pytest.mark.slow
def test_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook, summary, seconds = execute("01_quickstart.ipynb", tmp_path, monkeypatch)
    print(f"01_quickstart: {seconds:.1f} s")
    assert summary["small"] is True
    assert summary["train_steps"] == 20
    assert summary["test_episodes"] == 40
    assert 0.3 < summary["test_acc"] <= 1.0  # chance is 0.2 on 5-way tasks
    assert 0.0 < summary["test_acc_ci95"] < 0.2
    assert 0.0 <= summary["new_task_acc"] <= 1.0
    assert summary["reload_same_predictions"] is True
    assert figures(notebook) >= 4  # two episodes, the learning curves, the new task's predictions
    assert list(tmp_path.glob("quickstart_runs/*/version_0/metrics.csv"))
    assert list(tmp_path.glob("quickstart_runs/*/version_0/checkpoints/best-*.ckpt"))


@pytest.mark.slow
def test_maml_vs_reptile_vs_protonet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook, summary, seconds = execute("02_maml_vs_reptile_vs_protonet.ipynb", tmp_path, monkeypatch)
    print(f"02_maml_vs_reptile_vs_protonet: {seconds:.1f} s")
    learners = summary["learners"]
    assert set(learners) == {"MAML", "Reptile", "ProtoNet"}
    for name, result in learners.items():
        assert result["train_episodes"] == summary["episode_budget"], f"{name} did not get the same budget"
        assert 0.0 < result["test_acc"] <= 1.0
        assert 0.0 < result["test_acc_ci95"] < 0.3
        assert result["train_seconds"] > 0 and result["val_points"] >= 1
    assert figures(notebook) >= 1


@pytest.mark.slow
def test_hyperparameter_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook, summary, seconds = execute("03_hyperparameter_mapping.ipynb", tmp_path, monkeypatch)
    print(f"03_hyperparameter_mapping: {seconds:.1f} s")
    assert summary["recorded"] == 1  # the callback stored the tuned run in the pool
    used = summary["trained_with"]  # the module's values (lr 1e-3, weight_decay 0) where kept, else the proposal
    if summary["changed"]:
        assert 1e-4 <= used["lr"] <= 1.0 and 1e-6 <= used["weight_decay"] <= 1e-1
    else:
        assert used == {"lr": 1e-3, "weight_decay": 0.0}
    low, high = summary["heatmap_range"]
    assert high > low, "the mapping predicts the same score everywhere: it learned nothing from the pool"
    accs = summary["val_acc"]
    assert all(0.0 <= a <= 1.0 for a in accs.values())
    assert accs["mapping"] >= accs["defaults"]
    assert figures(notebook) >= 2  # the LR finder's curve and the heat map
    assert (tmp_path / "experience.db").is_file() and (tmp_path / "digits.mapping").is_file()


@pytest.mark.slow
def test_text_few_shot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook, summary, seconds = execute("04_text_few_shot.ipynb", tmp_path, monkeypatch)
    print(f"04_text_few_shot: {seconds:.1f} s")
    assert summary["small"] is True and summary["train_steps"] == 20
    assert min(summary["topics"].values()) >= 5
    assert summary["test_episodes"] == summary["baseline_episodes"] == 40  # the same episodes for both
    assert 0.0 < summary["test_acc"] <= 1.0 and 0.0 < summary["test_acc_ci95"] < 0.3
    assert 0.3 < summary["baseline_acc"] <= 1.0  # chance is 0.2 on 5-way tasks
    assert 0.0 <= summary["episode_acc"] <= 1.0
    assert figures(notebook) >= 1
    assert list(tmp_path.glob("text_runs/protonet_text/version_0/checkpoints/best-*.ckpt"))
