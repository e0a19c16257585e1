"""notebooks/04_text_few_shot.ipynb: stored without outputs, and it runs end to end at its smoke-test size."""

from pathlib import Path

import nbformat
import pytest

from tests.test_notebooks import NOTEBOOKS, execute, figures

NAME = "04_text_few_shot.ipynb"


def test_text_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOKS / NAME, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert any("LIGHTNING_META_NOTEBOOK_SMALL" in c.source for c in code)


@pytest.mark.slow
def test_text_few_shot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook, summary, seconds = execute(NAME, tmp_path, monkeypatch)
    print(f"{NAME}: {seconds:.1f} s")
    assert summary["small"] is True and summary["train_steps"] == 20
    assert min(summary["topics"].values()) >= 5
    assert summary["test_episodes"] == summary["baseline_episodes"] == 40  # the same episodes for both
    assert 0.0 < summary["test_acc"] <= 1.0 and 0.0 < summary["test_acc_ci95"] < 0.3
    assert 0.3 < summary["baseline_acc"] <= 1.0  # chance is 0.2 on 5-way tasks
    assert 0.0 <= summary["episode_acc"] <= 1.0
    assert figures(notebook) >= 1
    assert list(tmp_path.glob("text_runs/protonet_text/version_0/checkpoints/best-*.ckpt"))
