"""Which Omniglot characters each stage serves, under which class names and alphabets: Vinyals' or Lake's split.

Both Omniglot sources (the shipped arrays, the official zips) name their characters
``background/Alphabet/characterNN`` or ``evaluation/...`` and ask ``stage_characters`` what to serve.

- **Vinyals** (``split=vinyals``): 1028 / 172 / 423 characters listed in the shipped split files, each served
  at 4 rotations (0/90/180/270 degrees) as 4 classes, as the files list them.
- **Lake** (``split=lake``, Lake et al. 2015): the 30 background alphabets (964 characters) are the training side,
  the 20 evaluation alphabets (659 characters) are tested. Validation holds out ``val_alphabets`` whole background
  alphabets, ``random.Random(split_seed).sample`` of their sorted names; the default (5, seed 0) is Futurama,
  Grantha, N_Ko, Syriac_(Estrangelo) and Tagalog, 142 characters, leaving 822 to train (``trainval=true`` trains
  on all 964). With ``rotations`` (the default) training-side characters (train and val) are served at 4
  rotations as 4 classes, as in Vinyals' split; test characters never are.

Each class's alphabet is recorded for within-alphabet episodes (``EpisodeSpec.within_alphabet``, the protocol of
Lake's 20-way one-shot runs). A rotated class belongs to the rotated alphabet, e.g. ``Latin/rot090``: every
character of a within-alphabet episode is then drawn in one orientation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from lightning_meta.errors import ConfigError, DataError

ROTATIONS = ("rot000", "rot090", "rot180", "rot270")
STAGES = ("train", "val", "test")
Split = Literal["vinyals", "lake"]


def rotate(images: Tensor, k: int) -> Tensor:
    """View ``k`` of a character: its images rotated by ``k * 90`` degrees counterclockwise."""
    return torch.rot90(images, k, dims=(-2, -1))


@dataclass(frozen=True)
class StageCharacters:
    """A stage's stored characters in order, and per served class (``views`` per character) its name and alphabet."""

    characters: list[str]
    class_names: list[str]
    alphabets: list[str]
    views: int


def alphabet_of(character: str) -> str:
    """``Alphabet`` of ``[background/]Alphabet/characterNN[/rotNNN]``."""
    parts = character.split("/")
    return parts[1] if parts[0] in ("background", "evaluation") else parts[0]


def stage_characters(
    names: Sequence[str], split: Split, rotations: bool = True, val_alphabets: int = 5, split_seed: int = 0
) -> dict[str, StageCharacters]:
    """The three stages of ``split`` over the characters ``names`` (``background/Alphabet/characterNN``)."""
    if split == "vinyals":
        if not rotations:
            raise ConfigError("split=vinyals serves the 4 rotations its split files list. "
                              "Fix: drop rotations=false, or use split=lake.")
        by_char = {n.split("/", 1)[1]: n for n in names}
        out = {}
        for stage in STAGES:
            lines = vinyals_lines(stage)
            chars = [by_char.get(c, c) for c in (line.rsplit("/", 1)[0] for line in lines[:: len(ROTATIONS)])]
            rotated_alphabets = [f"{alphabet_of(line)}/{line.rsplit('/', 1)[1]}" for line in lines]
            out[stage] = StageCharacters(chars, lines, rotated_alphabets, len(ROTATIONS))
        return out
    background = [n for n in names if n.startswith("background/")]
    alphabets = sorted({alphabet_of(n) for n in background})
    if not 1 <= val_alphabets < len(alphabets):
        raise ConfigError(f"val_alphabets={val_alphabets}: Lake's validation holds out 1 to {len(alphabets) - 1} of the "
                          f"{len(alphabets)} background alphabets. Fix: set val_alphabets in that range (default 5).")
    held_out = set(random.Random(split_seed).sample(alphabets, val_alphabets))
    stages = {
        "train": ([n for n in background if alphabet_of(n) not in held_out], rotations),
        "val": ([n for n in background if alphabet_of(n) in held_out], rotations),
        "test": ([n for n in names if n.startswith("evaluation/")], False),
    }
    return {stage: _lake_stage(chars, rotated) for stage, (chars, rotated) in stages.items()}


def _lake_stage(chars: list[str], rotated: bool) -> StageCharacters:
    if not rotated:
        return StageCharacters(chars, chars, [alphabet_of(c) for c in chars], 1)
    return StageCharacters(
        chars, [f"{c}/{r}" for c in chars for r in ROTATIONS], [f"{alphabet_of(c)}/{r}" for c in chars for r in ROTATIONS],
        len(ROTATIONS),
    )


def vinyals_lines(stage: str) -> list[str]:
    """The lines ``Alphabet/characterNN/rotNNN`` of Vinyals' split file for ``stage``, checked to list each
    character at the 4 rotations in order."""
    path = Path(str(resources.files("lightning_meta") / "assets" / "splits" / "omniglot_vinyals" / f"{stage}.txt"))
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    for i in range(0, len(lines), len(ROTATIONS)):
        group = lines[i : i + len(ROTATIONS)]
        char = group[0].rsplit("/", 1)[0]
        if group != [f"{char}/{r}" for r in ROTATIONS]:
            raise DataError(
                f"{path} line {i + 1}: expected {char}/rot000..rot270 in order, got {group}. "
                "The split file is corrupted: reinstall lightning_meta."
            )
    return lines
