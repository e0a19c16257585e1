"""README.md's examples run: every Python and shell block, at a tiny size, so that an example that breaks fails here.

Mechanism: the fences of README.md are found with a regular expression and run by this file, not by a kept library.
pytest-markdown-docs and phmdoctest run a block exactly as written, at most with globals injected; the README's
examples are real trainings (10 epochs of 3200 episodes, 60-epoch presets, 20-trial searches), and shrinking them
means changing the sizes the examples themselves write, which neither library does:

- a Python block runs as written, in a fresh namespace and an empty temporary directory, except that the size
  arguments of the calls named in ``TINY_CALLS`` are rewritten in its syntax tree (its tracebacks point at
  README.md's lines) and the placeholders a reader replaces (``PLACEHOLDER``, image files) get real values;
- a shell command runs with ``TINY`` appended (a later Hydra override wins over the line's own value), each in an
  empty temporary directory, where its ``logs/``, sweeps and experience pool land. ``python train.py`` and
  ``lightning-meta`` run in this process (``runpy`` on train.py and the console command's ``main``), so the
  commands share one import of torch and Lightning; a DDP line runs in a subprocess, because Lightning starts
  the other ranks by running the command line again.

Not every line can run here: ``COMPOSED`` lists those that are only composed with Hydra (``--cfg all``, every
override checked in the result) and why; ``NOT_RUN`` lists those not run at all and why.
"""

from __future__ import annotations

import ast
import io
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
import yaml

from lightning_meta.cli.main import main as console_main
from tests.conftest import REPO
from tests.learners.test_predict_task import CHARACTERS, write_omniglot_pngs

README = REPO / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.M | re.S)

# Python blocks: call name -> keyword arguments set in every call of that name (added, or replacing the README's).
TINY_CALLS = {
    "EpisodicDataModule": {"meta_batch_size": 2, "eval_batch_size": 2, "train_episodes": 2, "val_episodes": 2,
                           "test_episodes": 2},
    "Conv4": {"hidden": 8},
    "Trainer": {"max_epochs": 1},
}
# Shell commands that train (`python train.py`, `lightning-meta train`): one meta-iteration of 2 tasks, 2 validation
# and 2 test episodes, an 8-filter Conv4. The callbacks stay, so the runs write checkpoints/last.ckpt.
TINY = ["data.train_episodes=2", "data.val_episodes=2", "data.test_episodes=2", "data.meta_batch_size=2",
        "data.eval_batch_size=2", "trainer.max_steps=1", "model.backbone.hidden=8"]
# More overrides for the lines that hold the argument on the left.
EXTRA = {"hparams_search=optuna_mapping": ["hydra.sweeper.n_trials=2", "hydra.sweeper.warm_start.k=1"]}

# The checkpoint a reader names; here the last.ckpt of the README's `python train.py` run (a tiny ProtoNet).
PLACEHOLDER = "logs/.../checkpoints/last.ckpt"

COMPOSED = {
    "python train.py model=reptile data=miniimagenet data.root=/data/miniimagenet trainer=gpu":
        "needs a GPU and miniImageNet's files in /data/miniimagenet (tests/data/test_miniimagenet.py loads a "
        "fake copy of both layouts)",
    "python train.py trainer=ddp trainer.devices=4":
        "needs 4 GPUs; the same strategy runs on CPU processes in the README's `trainer.accelerator=cpu` line",
    "python train.py trainer=ddp trainer.devices=8 trainer.num_nodes=2":
        "needs 2 nodes of 8 GPUs, started by torchrun or SLURM",
}
NOT_RUN = {
    "make test": "runs this test suite itself",
    "make run": "installs into .venv; the command its recipe runs (the Makefile's `run:` target) runs here instead",
}


# --- the README's blocks -------------------------------------------------------------------------------------------
def fenced_blocks() -> list[tuple[str, int, str, str]]:
    """(language, line of the first code line, code, the heading above) of every fenced block of README.md."""
    text = README.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        headings = re.findall(r"^#{1,6} (.+)$", FENCE.sub("", before), re.M)  # not the comments inside blocks
        blocks.append((match.group(1), before.count("\n") + 2, match.group(2), headings[-1] if headings else ""))
    return blocks


def python_blocks() -> list[tuple[int, str, str]]:
    return [(line, code, heading) for lang, line, code, heading in fenced_blocks() if lang == "python"]


def shell_commands() -> list[tuple[int, list[str]]]:
    """(README line, argv) of every command of the bash blocks; comments and blank lines dropped."""
    commands = []
    for lang, first, code, _ in fenced_blocks():
        if lang == "bash":
            for offset, line in enumerate(code.splitlines()):
                argv = shlex.split(line, comments=True)
                if argv:
                    commands.append((first + offset, argv))
    return commands


def make_recipe(target: str) -> list[str]:
    """The command the Makefile's ``target`` runs, as the README would write it (``python ...``)."""
    recipe = re.search(rf"^{target}:.*\n\t(.+)$", (REPO / "Makefile").read_text(), re.M).group(1)
    return shlex.split(recipe.replace("$(BIN)/python", "python"))


def test_the_readme_has_only_python_and_bash_blocks_and_every_table_entry_is_one_of_its_lines():
    text = README.read_text()
    blocks = fenced_blocks()
    assert len(re.findall(r"^```", text, re.M)) == 2 * len(blocks), "a fence this file does not pair"
    assert {lang for lang, *_ in blocks} == {"python", "bash"}, "a block in another language runs nowhere: add it here"
    lines = {" ".join(argv) for _, argv in shell_commands()}
    assert set(COMPOSED) <= lines and set(NOT_RUN) <= lines
    assert PLACEHOLDER in text and "python train.py" in lines
    assert set(CHECKS) == {heading for _, _, heading in python_blocks()}


# --- running a command line ---------------------------------------------------------------------------------------
def run_here(argv: list[str], cwd: Path) -> tuple[str, str]:
    """Runs a README command (``python train.py ...`` or ``lightning-meta ...``) in this process from ``cwd``;
    returns its (stdout, stderr) and fails the test on a non-zero exit."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        patch.setattr(sys, "argv", list(sys.argv))
        patch.delenv("LIGHTNING_META_ROOT", raising=False)  # paths.root_dir is the working directory
        patch.setenv("HYDRA_FULL_ERROR", "1")  # an error surfaces as its traceback, not as Hydra's exit status
        try:
            with redirect_stdout(out), redirect_stderr(err):
                if argv[:2] == ["python", "train.py"]:
                    sys.argv = [str(REPO / "train.py"), *argv[2:]]
                    runpy.run_path(str(REPO / "train.py"), run_name="__main__")
                elif argv[0] == "lightning-meta":
                    console_main(argv[1:])
                else:
                    raise AssertionError(f"no way to run {argv}: add one to tests/test_readme.py")
        except SystemExit as stop:
            if stop.code not in (None, 0):
                pytest.fail(f"`{shlex.join(argv)}` exited with {stop.code!r}\n{err.getvalue()[-3000:]}")
    return out.getvalue(), err.getvalue()


def tiny(argv: list[str]) -> list[str]:
    """``argv`` with the tiny-size overrides of its kind appended."""
    if argv[:2] == ["python", "train.py"] or argv[:2] == ["lightning-meta", "train"]:
        return [*argv, *TINY, *(o for key, extra in EXTRA.items() if key in argv for o in extra)]
    return argv


def fill(text: str, default_run: tuple[Path, str] | None) -> str:
    """``text`` with the checkpoint placeholder replaced by a checkpoint that exists."""
    if PLACEHOLDER not in text:
        return text
    found = sorted(default_run[0].glob(PLACEHOLDER.replace("...", "**")))
    assert len(found) == 1, f"the `python train.py` run wrote {found}, not one {PLACEHOLDER}"
    return text.replace(PLACEHOLDER, str(found[0]))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> tuple[Path, str]:
    """(folder, stdout) of the README's plain ``python train.py``, run once at the tiny size; its last.ckpt stands
    for the checkpoints the README's examples name with a placeholder."""
    cwd = tmp_path_factory.mktemp("python_train_py")
    out, _ = run_here(tiny(["python", "train.py"]), cwd)
    return cwd, out


# --- shell blocks -------------------------------------------------------------------------------------------------
def _command_params():
    params = []
    for line, argv in shell_commands():
        command = " ".join(argv)
        marks = [] if command in COMPOSED or command == "make test" else [pytest.mark.slow]
        params.append(pytest.param(argv, id=f"README.md:{line} {command}", marks=marks))
    return params


def _train_jobs(cwd: Path, argv: list[str]) -> int:
    """How many training jobs the command ran: 1, or the job folders of its sweep."""
    if "-m" in argv or "--multirun" in argv:
        return len(list(cwd.glob("logs/*/multiruns/*/*/.hydra")))
    return 1


@pytest.mark.parametrize("argv", _command_params())
def test_readme_command(argv, tmp_path, request):
    command = " ".join(argv)
    if command in NOT_RUN:
        if argv == ["make", "run"]:
            argv = make_recipe("run")
            assert argv[:2] == ["python", "train.py"]
        else:
            assert argv[0] == "make", f"{command}: only make targets are left out"
            return
    if command in COMPOSED:
        check_composes(argv, tmp_path)
        return
    if command == "python train.py":
        cwd, out = request.getfixturevalue("default_run")  # run once for the whole file
    elif "trainer=ddp" in argv:
        out, cwd = run_in_subprocess(tiny(argv), tmp_path), tmp_path
    else:
        default_run = request.getfixturevalue("default_run") if PLACEHOLDER in command else None
        out, _ = run_here([fill(a, default_run) for a in tiny(argv)], tmp_path)
        cwd = tmp_path
    check_output(argv, out, cwd)


def check_output(argv: list[str], out: str, cwd: Path) -> None:
    """What each kind of command must have done."""
    if argv[:2] == ["python", "train.py"] or argv[:2] == ["lightning-meta", "train"]:
        printed = re.findall(r"^(Test accuracy: .*)$", out, re.M)  # the printed line, not its log record
        if "trainer=ddp" in argv:
            assert printed and len(set(printed)) == 1, out[-3000:]  # each rank prints the same synchronised value
        else:
            jobs = _train_jobs(cwd, argv)
            tested = 0 if "hparams_search=optuna_mapping" in argv else jobs  # a search's trials validate, never test
            assert jobs >= 1 and len(printed) == tested, out[-3000:]
    elif argv[:2] == ["lightning-meta", "suggest"]:
        proposals = [line for line in out.splitlines() if line and not line.startswith("#")]
        assert len(proposals) == 3 and all("lr=" in line for line in proposals), out
    elif argv[:2] == ["lightning-meta", "--help"]:
        assert "config groups" in out and "experiment" in out
    else:
        raise AssertionError(f"no check for `{' '.join(argv)}`: add one to tests/test_readme.py")


def run_in_subprocess(argv: list[str], cwd: Path) -> str:
    assert argv[:2] == ["python", "train.py"], argv
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("LIGHTNING_META_ROOT", None)
    done = subprocess.run([sys.executable, str(REPO / "train.py"), *argv[2:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def check_composes(argv: list[str], tmp_path: Path) -> None:
    """The command's config composes, and holds every value and group option the command sets."""
    out, _ = run_here([*argv, "--cfg", "all"], tmp_path)
    cfg = yaml.safe_load(out)
    choices = cfg["hydra"]["runtime"]["choices"]
    for override in argv[2:]:
        key, value = override.split("=", 1)
        if "." in key:
            node = cfg
            for part in key.split("."):
                node = node[part]
            assert str(node) == value, f"{override}: the config holds {node!r}"
        else:
            assert choices[key] == value, f"{override}: the config chose {choices[key]!r}"


# --- Python blocks ------------------------------------------------------------------------------------------------
class _Shrink(ast.NodeTransformer):
    """Sets the keyword arguments of ``TINY_CALLS`` in every call of those names (``L.Trainer`` or ``Trainer``)."""

    def __init__(self) -> None:
        self.rewritten: set[str] = set()

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        for key, value in TINY_CALLS.get(name, {}).items():
            node.keywords = [k for k in node.keywords if k.arg != key] + [ast.keyword(key, ast.Constant(value))]
            self.rewritten.add(name)
        return node


def write_images(code: str, cwd: Path) -> None:
    """The image files a block names (``"a1.png"``): Omniglot drawings of two characters, alternately."""
    for i, name in enumerate(re.findall(r"[\"']([\w-]+\.png)[\"']", code)):
        written = write_omniglot_pngs(cwd / "drawings", CHARACTERS[i % 2], [i])[0]
        shutil.copy(written, cwd / name)


def check_python_api(ns: dict, cwd: Path) -> None:
    assert (cwd / "maml.ckpt").is_file()
    assert ns["logits"].shape == (len(ns["query_x"]), 5) and torch.isfinite(ns["logits"]).all()


def check_prediction(ns: dict, cwd: Path) -> None:
    result = ns["result"]
    assert len(result.labels) == 2 and set(result.labels) <= {"alpha", "beta"}
    assert result.probabilities.shape == (2, 2)


def check_mapping(ns: dict, cwd: Path) -> None:
    decision = ns["callback"].decision
    assert decision.defaults == {"lr": 1e-3, "weight_decay": 0.01}  # read from the module before anything is written
    assert ns["callback"].mode == "min" and decision.evidence.reason
    assert set(decision.used) == {"lr", "weight_decay"}  # kept or changed, both are what the optimizer trained with


CHECKS = {  # heading above the block -> what running it must have done
    "Python API": check_python_api,
    "Few-shot prediction on your own images": check_prediction,
    "The hyperparameter mapping on any Trainer": check_mapping,
}


@pytest.mark.slow
@pytest.mark.parametrize("block", [pytest.param(b, id=f"README.md:{b[0]} {b[2]}") for b in python_blocks()])
def test_readme_python_block(block, tmp_path, monkeypatch, request):
    line, code, heading = block
    if PLACEHOLDER in code:
        code = fill(code, request.getfixturevalue("default_run"))
    write_images(code, tmp_path)
    tree = ast.parse(code)
    shrink = _Shrink()
    tree = ast.fix_missing_locations(shrink.visit(tree))
    ast.increment_lineno(tree, line - 1)
    assert {n for n in TINY_CALLS if re.search(rf"\b{n}\(", code)} <= shrink.rewritten
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    exec(compile(tree, str(README), "exec"), namespace)  # noqa: S102 - the README's own example
    CHECKS[heading](namespace, tmp_path)
