"""Letters and digits in 22 typefaces as a few-shot tabular data set: 16 numeric features per row, a class per character.

No real tabular data set with many classes ships with Python or this project's dependencies (scikit-learn's
bundled sets have at most 10 classes, and the project uses them elsewhere), so this one is built the way the UCI
Letter Recognition data set was (Frey & Slate 1991, "Letter recognition using Holland-style adaptive
classifiers"): each character is rendered in a typeface and described by the 16 statistics of its raster that
Frey and Slate defined (``glyph_features``). Here the typefaces are the TrueType fonts matplotlib ships (DejaVu
Sans, Sans Mono and Serif in four styles each, STIX General in four, Computer Modern in six), the characters are
``a-z``, ``A-Z`` and ``0-9`` (62 classes), and a row is one (typeface, character): 22 rows per class, 1,364 in
all, without Frey and Slate's random distortions. The rows are real renderings of real typefaces, but the table is
derived data, not a collected one. It needs matplotlib (``pip install "lightning_meta[plots]"``) for the font
files; Pillow renders them. The values depend on FreeType's rasterizer, so the data set is deterministic for one
matplotlib/Pillow build (``RENDERER`` names the versions).

Characters are split into train/val/test classes by a seeded shuffle (``class_split.split_classes``): the three
splits' classes are disjoint. Features are standardized with the mean and standard deviation of the training
classes' rows in every split, so no statistic of the val or test classes is used.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from PIL import __version__ as PIL_VERSION
from PIL import features as pil_features
from torch.utils.data import TensorDataset

from lightning_meta.checks import PositiveInt, checked
from lightning_meta.data.class_split import split_classes
from lightning_meta.errors import DataError

CHARACTERS = string.ascii_lowercase + string.ascii_uppercase + string.digits
"""The classes: one per character."""

FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmb10.ttf", "cmti10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmmi10.ttf",
)
"""matplotlib's fonts that draw all 62 characters as themselves (not its symbol, size-variant or fallback fonts)."""

FEATURES = ("x-box", "y-box", "width", "height", "onpix", "x-bar", "y-bar", "x2bar", "y2bar", "xybar", "x2ybar",
            "xy2bar", "x-ege", "xegvy", "y-ege", "yegvx")
"""Frey and Slate's 16 attributes, in their order."""

RENDERER = f"Pillow {PIL_VERSION}, FreeType {pil_features.version('freetype2')}"
"""What rasterized the glyphs: another FreeType may move a few pixels."""


def glyph_features(on: np.ndarray, origin: tuple[int, int], size: int) -> np.ndarray:
    """Frey and Slate's 16 features of a binary raster ``on`` ([H, W], True = ink) of a glyph drawn at pen
    position ``origin`` (x, baseline y) and ``size`` pixels per em, as floats rather than their 0..15 integers.

    Positions and sizes are in ems; the moments use pixel coordinates centred on the bounding box and divided by
    its width (x) or height (y, upwards); edges are off-to-on transitions along rows (left to right) and columns
    (bottom to top), counted per row or column and correlated with its position."""
    ys, xs = np.nonzero(on)
    if xs.size == 0:
        raise DataError("A glyph rendered without ink: its font does not draw the character.")
    left, right, top, bottom = xs.min(), xs.max(), ys.min(), ys.max()
    box = on[top : bottom + 1, left : right + 1]
    width, height = right - left + 1, bottom - top + 1
    x = (xs - (left + right) / 2) / width
    y = ((top + bottom) / 2 - ys) / height
    padded = np.pad(box, 1)
    row_edges = (padded[1:-1, 1:] & ~padded[1:-1, :-1]).sum(1)  # per row, left to right
    col_edges = (padded[:-1, 1:-1] & ~padded[1:, 1:-1]).sum(0)  # per column, bottom to top
    row_y = ((height - 1) / 2 - np.arange(height)) / height
    col_x = (np.arange(width) - (width - 1) / 2) / width
    return np.array([
        (left - origin[0]) / size, (origin[1] - bottom) / size, width / size, height / size, xs.size / size**2,
        x.mean(), y.mean(), (x**2).mean(), (y**2).mean(), (x * y).mean(), (x**2 * y).mean(), (x * y**2).mean(),
        row_edges.mean(), (row_edges * row_y).mean(), col_edges.mean(), (col_edges * col_x).mean(),
    ])


def font_dir() -> Path:
    """matplotlib's TrueType folder; a ``DataError`` saying how to install it if matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise DataError('The font-letters data set renders the fonts matplotlib ships, and matplotlib is not '
                        'installed. Fix: pip install "lightning_meta[plots]" (or matplotlib).') from None
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.lru_cache(maxsize=2)
def letter_table(size: int = 40) -> np.ndarray:
    """The raw features ``[len(FONTS), len(CHARACTERS), 16]`` of every character in every font at ``size`` px/em."""
    folder = font_dir()
    canvas, origin = 3 * size, (size, 2 * size)
    table = np.empty((len(FONTS), len(CHARACTERS), len(FEATURES)))
    for f, name in enumerate(FONTS):
        font = ImageFont.truetype(str(folder / name), size)
        for c, char in enumerate(CHARACTERS):
            image = Image.new("L", (canvas, canvas), 0)
            ImageDraw.Draw(image).text(origin, char, font=font, fill=255, anchor="ls")
            table[f, c] = glyph_features(np.asarray(image) > 127, origin, size)
    return table


class FontLetters(TensorDataset):
    """One split's characters: items ``(16 standardized features float32, character index)``; ``classes`` names them."""

    @checked
    def __init__(
        self,
        split: Literal["train", "val", "test"] = "train",
        ratios: Sequence[float] = (0.5, 0.25, 0.25),
        seed: int = 0,
        size: PositiveInt = 40,
    ) -> None:
        stages = split_classes(list(CHARACTERS), None, ratios, seed, where="the font letters")
        table = letter_table(size)
        train = table[:, [CHARACTERS.index(c) for c in stages["train"]]].reshape(-1, len(FEATURES))
        mean, std = train.mean(0), train.std(0)
        self.classes = stages[split]
        rows = table[:, [CHARACTERS.index(c) for c in self.classes]]  # [fonts, classes, 16]
        x = (rows.transpose(1, 0, 2).reshape(-1, len(FEATURES)) - mean) / std
        y = np.repeat(np.arange(len(self.classes)), len(FONTS))
        super().__init__(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y))
