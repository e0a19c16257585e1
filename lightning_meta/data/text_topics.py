"""Python's help topics as a few-shot text data set: a class is a topic, a sample a chunk of its text as token ids.

``pydoc_data.topics.topics`` ships with CPython: the text of ``help("TOPIC")`` for each language topic (79 in
Python 3.11: ``if``, ``lambda``, ``formatstrings``, ...), so the data set needs no download and nothing but the
standard library. Each topic's text is lowercased, split into words and single punctuation characters, and cut
into non-overlapping chunks of ``chunk_tokens`` tokens (the tail is dropped), after removing the passages a
topic repeats from a shorter one (``unique_tokens``); topics with fewer than ``min_chunks`` chunks are left out.
The text changes between Python versions, so the data set is deterministic for one interpreter version
(``PYTHON_VERSION``): 39 topics of 10 to 221 chunks with the defaults under Python 3.11, split 20/10/9.

Tokens become ids by a stable hash (CRC-32) into ``1..vocab_size-1``, 0 padding: no vocabulary is built from
any split (so none is built from the test topics), and the ids are the same on every machine and run (Python's
``hash`` of a string is salted per process). Topics are split into train/val/test classes by a seeded shuffle
(``class_split.split_classes``), so the three splits' classes are disjoint.
"""

from __future__ import annotations

import functools
import platform
import re
import zlib
from collections.abc import Sequence
from typing import Literal

import torch
from torch.utils.data import TensorDataset

from lightning_meta.checks import PositiveInt, checked
from lightning_meta.data.class_split import split_classes
from lightning_meta.errors import ConfigError

PYTHON_VERSION = platform.python_version()
"""The interpreter whose ``pydoc_data`` the topics come from: another version gives other texts."""

_TOKEN = re.compile(r"[a-z0-9_]+|[^\sa-z0-9_]")


def tokenize(text: str) -> list[str]:
    """Lowercased words (letters, digits, underscores) and single punctuation characters, in order."""
    return _TOKEN.findall(text.lower())


def token_id(token: str, vocab_size: int) -> int:
    """The token's id in ``1..vocab_size-1`` (0 is padding): a CRC-32 hash, stable across runs and machines."""
    return 1 + zlib.crc32(token.encode()) % (vocab_size - 1)


def unique_tokens(texts: dict[str, list[str]], ngram: int = 8) -> dict[str, list[str]]:
    """Each text without the tokens that lie in an ``ngram``-token sequence of a shorter text (ties: by name).

    Why: help topics repeat each other (``compound`` holds the ``if``, ``for``, ``try``, ... topics word for word,
    ``specialnames`` holds ``customization``), so without this the same chunk would carry two labels, and a test
    topic's text could be trained on under another name. Every text then keeps what only it says."""
    seen: set[tuple[str, ...]] = set()
    out = {}
    for name in sorted(texts, key=lambda k: (len(texts[k]), k)):
        tokens = texts[name]
        grams = [tuple(tokens[i : i + ngram]) for i in range(len(tokens) - ngram + 1)]
        covered = [False] * len(tokens)
        for i, gram in enumerate(grams):
            if gram in seen:
                covered[i : i + ngram] = [True] * ngram
        out[name] = [t for t, c in zip(tokens, covered) if not c]
        seen.update(grams)
    return out


@functools.lru_cache(maxsize=4)
def topic_chunks(chunk_tokens: int, min_chunks: int) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Topic name -> non-overlapping chunks of ``chunk_tokens`` tokens of its unique text (``unique_tokens``), for
    the topics with ``min_chunks`` chunks or more."""
    from pydoc_data.topics import topics

    texts = unique_tokens({name: tokenize(text) for name, text in topics.items()})
    out = {}
    for name in sorted(texts):
        tokens = texts[name]
        chunks = tuple(tuple(tokens[i : i + chunk_tokens]) for i in range(0, len(tokens) - chunk_tokens + 1, chunk_tokens))
        if len(chunks) >= min_chunks:
            out[name] = chunks
    return out


class PydocTopics(TensorDataset):
    """One split's topics: items ``(token ids [chunk_tokens] int64, topic index)``; ``classes`` names the topics."""

    @checked
    def __init__(
        self,
        split: Literal["train", "val", "test"] = "train",
        chunk_tokens: PositiveInt = 32,
        min_chunks: PositiveInt = 10,
        vocab_size: PositiveInt = 16384,
        ratios: Sequence[float] = (0.5, 0.25, 0.25),
        seed: int = 0,
    ) -> None:
        if vocab_size < 2:
            raise ConfigError(f"vocab_size={vocab_size} leaves no id for tokens (0 pads). Fix: vocab_size >= 2, e.g. 16384.")
        chunks = topic_chunks(chunk_tokens, min_chunks)
        self.classes = split_classes(list(chunks), None, ratios, seed, where="the Python help topics")[split]
        ids, labels = [], []
        for label, name in enumerate(self.classes):
            for chunk in chunks[name]:
                ids.append([token_id(t, vocab_size) for t in chunk])
                labels.append(label)
        super().__init__(torch.tensor(ids, dtype=torch.int64), torch.tensor(labels, dtype=torch.int64))
