"""Images of one split grouped by class: what episodes are sampled from.

Every data set (Omniglot, miniImageNet, CIFAR-FS, FC100, an image folder) is loaded into one
``ClassImages`` per stage, so the episode sampler never needs to know where images came from.
Images are kept as uint8 in memory (all the standard few-shot sets fit) and turned into float
tensors only for the few images an episode draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lightning_meta.errors import DataError


class ClassImages:
    """A split's images as one uint8 tensor ``[total, C, H, W]`` plus the row range of each class.

    ``view(images, k)`` may derive a class from stored rows, e.g. Omniglot's rotations: stored
    class ``c`` is served as ``views`` classes ``c * views + k``. ``alphabets`` (one per served class, or
    None) groups classes for within-alphabet episodes, e.g. Omniglot's alphabets. ``drawers`` says that row ``r`` of
    every class is by the same drawer ``r`` (Omniglot's ``_YY`` file numbers), which Lake's protocol draws by.
    ``preprocessing`` records how
    the loader made the pixels (``preprocessing.describe``), so that a trained model can be given new images.
    """

    def __init__(
        self,
        images: Tensor,
        class_sizes: Sequence[int],
        class_names: Sequence[str],
        views: int = 1,
        view: Callable[[Tensor, int], Tensor] | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        alphabets: Sequence[str] | None = None,
        drawers: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise DataError(f"ClassImages expects a uint8 tensor [N, C, H, W], got {images.dtype} {tuple(images.shape)}.")
        if sum(class_sizes) != images.shape[0]:
            raise DataError(f"Class sizes add up to {sum(class_sizes)} but there are {images.shape[0]} images.")
        if len(class_names) != len(class_sizes) * views:
            raise DataError(f"{len(class_names)} class names for {len(class_sizes)} stored classes x {views} views.")
        if alphabets is not None and len(alphabets) != len(class_names):
            raise DataError(f"{len(alphabets)} alphabets for {len(class_names)} classes: give one per class.")
        self.images = images
        self.sizes = torch.as_tensor(list(class_sizes), dtype=torch.long)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.sizes.cumsum(0)])
        self.class_names = list(class_names)
        self.views = views
        self.view = view
        self.preprocessing = dict(preprocessing) if preprocessing is not None else None
        self.alphabets = list(alphabets) if alphabets is not None else None
        self.drawers = drawers

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def num_samples(self, c: int) -> int:
        return int(self.sizes[c // self.views])

    @property
    def min_samples(self) -> int:
        return int(self.sizes.min()) if len(self.sizes) else 0

    def get(self, c: int, idx: Sequence[int]) -> Tensor:
        """Float images in [0, 1], shape ``[len(idx), C, H, W]``, of class ``c``."""
        stored, k = divmod(c, self.views)
        rows = self.offsets[stored] + torch.as_tensor(list(idx), dtype=torch.long)
        out = self.images[rows].float().div_(255.0)
        return self.view(out, k) if self.view is not None else out

    def merged(self, other: ClassImages) -> ClassImages:
        """This split's classes followed by ``other``'s (e.g. train + val, the "trainval" protocol)."""
        if self.views != other.views or self.view is not other.view or self.input_shape != other.input_shape:
            raise DataError(
                f"Cannot merge splits with different image shapes or views ({self.input_shape} x {self.views} vs "
                f"{other.input_shape} x {other.views})."
            )
        return ClassImages(
            torch.cat([self.images, other.images]),
            torch.cat([self.sizes, other.sizes]).tolist(),
            self.class_names + other.class_names,
            self.views,
            self.view,
            self.preprocessing,
            self.alphabets + other.alphabets if self.alphabets is not None and other.alphabets is not None else None,
            self.drawers and other.drawers,
        )
