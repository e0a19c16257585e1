"""The mapping file: a NumPy ``.npz`` archive of plain arrays plus one JSON document; it holds no code.

Reading one never unpickles (``np.load(..., allow_pickle=False)`` refuses object arrays) and never
imports a name found in the file: the JSON names the mapping by its key in ``MAPPINGS``. The JSON
(array ``__meta__``, UTF-8 bytes) holds::

    {"format": "lightning_meta.hpo.mapping", "version": 2, "class": "<MAPPINGS key>",
     "space": <SearchSpace.to_dict()>, "state": <tree>}

``state`` is a tree of JSON values in which an array is ``{"__array__": "<name in the archive>"}``
and a torch tensor ``{"__tensor__": "<name>"}``. Version 1 was a pickle: it is refused, not read.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lightning_meta.errors import ConfigError

FORMAT = "lightning_meta.hpo.mapping"
VERSION = 2
_META = "__meta__"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"  # pickle protocol 2 and later, which version 1 used


def write(path: Path, kind: str, space: dict[str, Any], state: dict[str, Any]) -> None:
    """Writes the mapping ``kind`` (a ``MAPPINGS`` key) with its space and state to ``path``."""
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "version": VERSION, "class": kind, "space": space, "state": _pack(state, arrays)}
    arrays[_META] = np.frombuffer(json.dumps(meta, allow_nan=False).encode(), dtype=np.uint8)
    partial = path.with_name(path.name + ".partial")  # a crash mid-write never leaves a half file at ``path``
    with partial.open("wb") as handle:
        np.savez(handle, **arrays)
    partial.replace(path)


def read(path: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(kind, space, state)`` of a file written by ``write``; ConfigError for anything else."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(_PICKLE_MAGIC):
        raise ConfigError(
            f"Mapping file {path} is in the old pickle format, which is not loaded (it could run code): "
            "re-fit the mapping and save() it again."
        )
    if head != _ZIP_MAGIC:
        raise ConfigError(f"Mapping file {path} is corrupted (not a mapping archive): re-create it with save().")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop(_META).tobytes().decode())
        version, kind = meta.get("version"), meta.get("class")
        if meta.get("format") != FORMAT or version != VERSION or not isinstance(kind, str):
            raise ConfigError(
                f"{path} is not a lightning_meta mapping file of version {VERSION} (found {version!r}): "
                "re-fit the mapping and save() it again."
            )
        return kind, meta["space"], _unpack(meta["state"], arrays)
    except ConfigError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as err:
        raise ConfigError(f"Mapping file {path} is corrupted ({type(err).__name__}): re-create it with save().") from None


def _pack(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` as JSON values, its arrays and tensors moved into ``arrays``."""
    if _is_tensor(value):
        name = f"a{len(arrays)}"
        arrays[name] = value.detach().cpu().numpy()
        return {"__tensor__": name}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("object arrays cannot be stored in a mapping file")
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"__array__": name}
    if isinstance(value, dict):
        return {str(k): _pack(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"{type(value).__name__} cannot be stored in a mapping file")


def _is_tensor(value: Any) -> bool:
    """A torch tensor, told without importing torch (a mapping that holds one has imported it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _unpack(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        if set(value) == {"__tensor__"}:
            import torch  # only files of a torch mapping hold tensors

            return torch.from_numpy(arrays[value["__tensor__"]].copy())
        return {k: _unpack(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value
