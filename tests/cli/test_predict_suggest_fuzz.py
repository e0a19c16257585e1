"""Property-based tests of ``lightning-meta predict`` and ``suggest``: whatever folders or features a user hands
them, the command prints its answer or ends in one line naming the problem (exit 1), never a traceback (exit 2).

``predict`` gets support and query folders of any shape: no class, one class, empty classes, images of mixed sizes and
modes (1, L, P, RGB, RGBA, I;16), files that are not images, nested folders. ``suggest`` gets any feature names
(known, misspelt, invented) with any values (1e308, -5, nan, inf, text): every name or value it cannot use is named.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from lightning_meta.cli.main import main as console_main
from lightning_meta.hpo.mappings import Mapping
from lightning_meta.hpo.suggest import DEFAULT_MAPPING
from tests.cli.test_predict_cli import checkpoint  # noqa: F401 -- the module-scoped fixture: a 2-step ProtoNet

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

IMAGES = st.tuples(st.just("image"), st.sampled_from(["1", "L", "P", "RGB", "RGBA", "I;16"]), st.integers(1, 64),
                   st.integers(1, 64))
FILES = st.one_of(IMAGES, IMAGES, IMAGES, st.tuples(st.just("text"), st.binary(max_size=40)),
                  st.tuples(st.just("fake_png"), st.binary(max_size=40)))  # images most often, so many examples run
CLASSES = st.lists(st.lists(FILES, max_size=3), max_size=3)


def write(folder: Path, files: list, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, spec in enumerate(files):
        if spec[0] == "image":
            _, mode, w, h = spec
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).convert(mode).save(folder / f"{i}.png")
        elif spec[0] == "text":
            (folder / f"{i}.txt").write_bytes(spec[1])
        else:
            (folder / f"{i}.png").write_bytes(spec[1])


def outcome(args: list[str]) -> str:
    """``"ran"``, or the one line a user's mistake ends in; any other end fails the test."""
    try:
        console_main(args)
    except SystemExit as stop:
        assert isinstance(stop.code, str), f"exit {stop.code}: not a user's mistake but a bug ({args})"
        assert "\n" not in stop.code.strip() and stop.code.startswith(f"lightning-meta {args[0]}: ")
        return stop.code
    return "ran"


@FUZZ
@given(support=CLASSES, query=st.lists(FILES, max_size=3), nested=st.booleans())
def test_predict_answers_or_names_the_problem_for_any_folder_shape(checkpoint, support, query, nested, capsys):  # noqa: F811
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for c, files in enumerate(support):
            write(root / "support" / f"class_{c}", files, c)
        (root / "support").mkdir(exist_ok=True)
        write(root / "query" / ("deeper" if nested else ""), query, 99)
        said = outcome(["predict", f"ckpt_path={checkpoint}", f"support={root / 'support'}", f"query={root / 'query'}"])
        lines = capsys.readouterr().out.splitlines()
        event("predicted" if said == "ran" else said.split(": ", 1)[1].split("/")[0][:40])
        if said == "ran":
            assert len(support) >= 2 and len(lines) == sum(s[0] != "text" for s in query) >= 1


KNOWN = sorted(Mapping.load(DEFAULT_MAPPING).feature_names)
NAMES = st.one_of(st.sampled_from(KNOWN), st.sampled_from(KNOWN), st.sampled_from(KNOWN),  # known names most often
                  st.sampled_from(KNOWN).map(lambda n: n[:-1] or "x"), st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True))
VALUES = st.one_of(st.sampled_from(["1e308", "-5", "-0", "nan", "inf", "0", "3", "0.5", "abc", "ü"]),
                   st.floats(allow_nan=False, allow_infinity=False).map(repr))


@FUZZ
@given(features=st.dictionaries(NAMES, VALUES, max_size=4))
def test_suggest_answers_or_names_every_feature_it_cannot_use(features, capsys):
    said = outcome(["suggest", "--k", "2", "--features", *(f"{k}={v}" for k, v in features.items())]
                   if features else ["suggest", "--k", "2"])
    captured = capsys.readouterr()
    event("suggested" if said == "ran" else "refused")
    if said != "ran":
        assert any(name in said for name in features), said
        return
    used = set(Mapping.load(DEFAULT_MAPPING).used_features())
    for name in features:
        if name not in used:  # given but not read: a warning names it
            assert name in captured.err, (name, captured.err)
