"""Any labelled map-style ``Dataset`` as an episode source: a torchvision data set, a ``TensorDataset`` of token ids
or feature vectors, a Hugging Face data set in torch format; anything whose item ``i`` holds an input and a label.

``LabelledSamples`` serves a split's classes through the interface ``EpisodeDataset`` reads (``num_classes``,
``num_samples``, ``get``, ``input_shape``), so episodes stay a pure function of ``(seed, index)`` whatever the source.
Labels are read once, from the data set's own record when it keeps one; samples are read only when an episode draws
them. PIL images are decoded and resized by ``preprocessing.photo_pixels``, the conversion a checkpoint records, so
that ``predict_task`` prepares new images exactly as training did.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm.auto import tqdm

from lightning_meta.data.class_split import STAGES, split_classes
from lightning_meta.data.preprocessing import describe, photo_pixels
from lightning_meta.errors import ConfigError, DataError

Key = int | str
"""Where an item keeps its input and its label: a position in a tuple, or a key of a dict."""

_LABELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Labels read by one pass over a data set, kept while the data set lives (setup runs per stage and per rank)."""


def is_dataset(value: object) -> bool:
    """A map-style data set: it has a length and items by index."""
    return hasattr(value, "__getitem__") and hasattr(value, "__len__") and not isinstance(value, (str, bytes, Mapping))


def read_labels(dataset: Any, labels: Sequence[Hashable] | None = None, label_key: Key = 1) -> list[Hashable]:
    """One label per item: ``labels`` if given, else the data set's ``targets``, ``labels``, ``get_labels()``, its label
    tensor or column, and otherwise one pass over the data (with a progress bar), remembered for the data set."""
    n = len(dataset)
    found = labels
    if found is None:
        found = _recorded_labels(dataset, label_key)
    if found is None:
        try:
            found = _LABELS.get(dataset)
        except TypeError:  # not weak-referenceable or unhashable: read again next time
            pass
    if found is None:
        found = [_part(dataset[i], label_key, "label") for i in tqdm(range(n), desc="Reading labels", leave=False)]
        try:
            _LABELS[dataset] = found
        except TypeError:
            pass
    found = found.tolist() if isinstance(found, (Tensor, np.ndarray)) else list(found)
    if len(found) != n:
        raise DataError(f"{len(found)} labels for a data set of {n} items. Fix: give one label per item.")
    return found


def _recorded_labels(dataset: Any, label_key: Key) -> Sequence | None:
    for attribute in ("targets", "labels"):
        value = getattr(dataset, attribute, None)
        if value is not None and not callable(value):
            return value
    if callable(getattr(dataset, "get_labels", None)):
        return dataset.get_labels()
    tensors = getattr(dataset, "tensors", None)  # TensorDataset: items are (x, y, ...)
    if isinstance(tensors, tuple) and isinstance(label_key, int) and len(tensors) > label_key:
        return tensors[label_key]
    if isinstance(label_key, str) and label_key in (getattr(dataset, "column_names", None) or ()):
        return dataset[label_key]  # a Hugging Face data set's label column
    return None


def _check_hashable(label: object) -> None:
    try:
        hash(label)
    except TypeError:
        raise DataError(f"Labels must be hashable (an int or a string), got a {type(label).__name__}: {label!r:.60}. "
                        "Fix: give labels= one int or string per item, or a label_key that points at the class label.") from None


def _part(item: Any, key: Key, what: str) -> Any:
    try:
        return item[key]
    except (KeyError, IndexError, TypeError):
        shape = f"keys {list(item)[:6]}" if isinstance(item, Mapping) else f"a {type(item).__name__}"
        raise DataError(f"Cannot take the {what} at {key!r} from a data set item ({shape}). Fix: set "
                        f"dataset_kwargs.{what}_key to where each item keeps its {what}.") from None


class LabelledSamples:
    """A split's classes, each a list of item indices of a labelled data set; ``get`` reads the drawn items.

    ``image_size`` and ``channels`` say how PIL images are decoded (ignored for tensors). uint8 tensors are images in
    0..255 and come out divided by 255, as ``ClassImages`` serves them; other tensors come out as they are stored.
    """

    def __init__(
        self,
        members: Sequence[tuple[Any, np.ndarray]],
        class_names: Sequence[str],
        input_key: Key = 0,
        image_size: int | None = None,
        channels: int = 3,
    ) -> None:
        self.members = [(dataset, np.asarray(rows, dtype=np.int64)) for dataset, rows in members]
        self.class_names = list(class_names)
        self.input_key = input_key
        self.image_size = image_size
        self.channels = channels
        self.alphabets = None  # no alphabets (within_alphabet episodes) nor drawers (drawers=lake): refused with why
        self.drawers = False

    @property
    def num_classes(self) -> int:
        return len(self.members)

    def num_samples(self, c: int) -> int:
        return len(self.members[c][1])

    @property
    def min_samples(self) -> int:
        return min((len(r) for _, r in self.members), default=0)

    @functools.cached_property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.get(0, [0]).shape[1:])

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """The ``photo`` conversion when the items are PIL images, so a checkpoint can prepare raw ones; else None."""
        dataset, rows = self.members[0]
        first = _part(dataset[int(rows[0])], self.input_key, "input")
        return describe(self.image_size, self.channels, "photo") if isinstance(first, Image.Image) else None

    def get(self, c: int, idx: Sequence[int]) -> Tensor:
        """The inputs ``[len(idx), *input_shape]`` of items ``idx`` of class ``c`` (uint8 images divided by 255)."""
        dataset, rows = self.members[c]
        rows = rows[np.asarray(idx, dtype=np.int64)]
        tensors = getattr(dataset, "tensors", None)
        if isinstance(tensors, tuple) and isinstance(self.input_key, int):
            out = tensors[self.input_key][torch.from_numpy(rows)]
        else:
            items = dataset.__getitems__(rows.tolist()) if hasattr(dataset, "__getitems__") else [dataset[int(i)] for i in rows]
            out = self._stack([self._tensor(_part(item, self.input_key, "input")) for item in items], c)
        return out.float().div_(255.0) if out.dtype == torch.uint8 else out

    def _tensor(self, x: Any) -> Tensor:
        if isinstance(x, Tensor):
            return x
        if isinstance(x, Image.Image):
            if self.image_size is None:
                raise ConfigError("The data set gives PIL images but no image size is set. Fix: set "
                                  "dataset_kwargs.image_size (e.g. 84), or give the data set a transform that makes tensors.")
            return torch.from_numpy(np.ascontiguousarray(photo_pixels(x, self.image_size, self.channels)))
        try:
            return torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as e:
            raise DataError(f"Cannot make a tensor of a data set input of type {type(x).__name__} ({e}). "
                            "Fix: give the data set a transform that returns tensors or PIL images.") from None

    def _stack(self, xs: list[Tensor], c: int) -> Tensor:
        shapes = {tuple(x.shape) for x in xs}
        if len(shapes) > 1:
            raise DataError(f"Inputs of class {self.class_names[c]!r} have different shapes {sorted(shapes)[:3]}: an episode "
                            "stacks them. Fix: give the data set a transform to one shape (e.g. Resize, or pad token ids "
                            "to one length), or set dataset_kwargs.image_size for PIL images.")
        return torch.stack(xs)

    def merged(self, other: LabelledSamples) -> LabelledSamples:
        """This split's classes followed by ``other``'s (the "trainval" protocol)."""
        if not isinstance(other, LabelledSamples) or self.input_shape != other.input_shape:
            raise DataError("Cannot merge splits with different input shapes: trainval needs one kind of data in train and val.")
        return LabelledSamples(self.members + other.members, self.class_names + other.class_names, self.input_key,
                               self.image_size, self.channels)


def labelled_splits(
    dataset: Any,
    labels: Sequence[Hashable] | Mapping[str, Sequence[Hashable]] | None = None,
    split: Mapping[str, Sequence[str]] | str | Path | None = None,
    ratios: Sequence[float] = (0.64, 0.16, 0.20),
    seed: int = 0,
    input_key: Key = 0,
    label_key: Key = 1,
    image_size: int | None = None,
    channels: int = 3,
) -> dict[str, LabelledSamples]:
    """``LabelledSamples`` for train, val and test from a dict of data sets (one per split; ``val`` may be left out
    and then uses the test data) or from one data set whose classes are split by ``split`` or ``ratios``."""
    common = {"input_key": input_key, "image_size": image_size, "channels": channels}
    if isinstance(dataset, Mapping):
        unknown = set(dataset) - set(STAGES)
        if unknown or not {"train", "test"} <= set(dataset):
            raise ConfigError(f"dataset as a dict needs the keys 'train' and 'test' (and optionally 'val'), got {sorted(dataset)}. "
                              "Fix: give one labelled data set per split, e.g. {train: ..., val: ..., test: ...}.")
        if split is not None:
            raise ConfigError("split= divides the classes of one data set, but dataset gives one data set per split. Fix: drop split.")
        out = {}
        for stage in STAGES:
            part = dataset["test"] if dataset.get(stage) is None else dataset[stage]
            stage_labels = labels.get(stage, labels.get("test")) if isinstance(labels, Mapping) else labels
            if not is_dataset(part):
                raise ConfigError(f"dataset.{stage} is a {type(part).__name__}, not a data set. Fix: give a map-style "
                                  "Dataset (with __getitem__ and __len__) whose items hold an input and a label.")
            groups = _groups(read_labels(part, stage_labels, label_key), part)
            out[stage] = LabelledSamples([(part, rows) for rows in groups.values()], list(groups), **common)
        return out
    if not is_dataset(dataset):
        raise ConfigError(f"dataset must be a registered name, a map-style Dataset or a dict of them per split, got a "
                          f"{type(dataset).__name__}. Fix: pass a torch Dataset whose items hold an input and a label.")
    if isinstance(labels, Mapping):
        raise ConfigError("labels per split need one data set per split. Fix: give labels= one label per item of the data set.")
    groups = _groups(read_labels(dataset, labels, label_key), dataset)
    stages = split_classes(list(groups), split, ratios, seed, where=f"the {type(dataset).__name__}", unit="item")
    return {s: LabelledSamples([(dataset, groups[c]) for c in stages[s]], stages[s], **common) for s in STAGES}


def _groups(labels: list[Hashable], dataset: Any) -> dict[str, np.ndarray]:
    """Class name -> the indices of its items, classes in label order (first appearance if labels do not sort)."""
    order: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        try:
            order.setdefault(label, []).append(i)
        except TypeError:
            _check_hashable(label)
    keys = list(order)
    try:
        keys = sorted(keys)
    except TypeError:
        pass
    names = getattr(dataset, "classes", None)  # torchvision: class index -> name
    named = {_class_name(k, names): np.asarray(order[k], dtype=np.int64) for k in keys}
    if len(named) != len(keys):
        raise DataError("Two labels have the same name (e.g. 1 and '1'). Fix: give labels of one type.")
    return named


def _class_name(label: Hashable, names: Any) -> str:
    """``names[label]`` for an int label of a data set that names its classes (torchvision's ``classes``), else the label."""
    if isinstance(label, int) and isinstance(names, Sequence) and 0 <= label < len(names):
        return str(names[label])
    return str(label)
