"""Mapping files hold no code: reading one never unpickles and never imports a name the file gives."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.fit_command import DEFAULT_MAPPING
from lightning_meta.hpo.mappings import BestOnAverage, ConditionalBestOnAverage, GBMSurrogate, Mapping, MetaSurrogate
from lightning_meta.hpo.mappings.file_format import FORMAT, VERSION
from tests.hpo.test_mappings import SPACE, meta_frame


class CreatesFile:
    """Unpickling this creates the file ``path``: what a crafted mapping file could do instead."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def crafted_pickle(marker: Path) -> bytes:
    """A version-1 (pickle) mapping file whose state creates ``marker`` when unpickled."""
    return pickle.dumps({"format": FORMAT, "version": 1, "class": "lightning_meta.hpo.mappings.gbm:GBMSurrogate",
                         "space": SPACE.to_dict(), "state": CreatesFile(marker)})


def rewrite(path: Path, change_meta=lambda meta: None, **arrays) -> Path:
    """Re-writes the archive at ``path`` with its JSON changed by ``change_meta`` and ``arrays`` added or replaced."""
    with np.load(path, allow_pickle=False) as archive:
        content = {name: archive[name] for name in archive.files}
    meta = json.loads(content["__meta__"].tobytes())
    change_meta(meta)
    content["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    content.update(arrays)
    with path.open("wb") as handle:
        np.savez(handle, **content)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    return BestOnAverage().fit(meta_frame(), SPACE).save(tmp_path_factory.mktemp("files") / "boa.mapping")


def test_a_crafted_pickle_executes_nothing_and_is_a_one_line_config_error(tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "crafted.mapping").write_bytes(crafted_pickle(marker))
    with pytest.raises(ConfigError) as info:
        Mapping.load(tmp_path / "crafted.mapping")
    assert "old pickle format" in str(info.value) and "save() it again" in str(info.value)
    assert "\n" not in str(info.value)
    assert not marker.exists()
    pickle.loads(crafted_pickle(marker))  # the payload is live: unpickling it would have created the marker
    assert marker.exists()


def test_an_archive_with_a_pickled_array_is_refused_without_unpickling_it(saved, tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "object_array.mapping"
    path.write_bytes(saved.read_bytes())
    payload = np.empty(1, dtype=object)
    payload[0] = CreatesFile(marker)
    with pytest.raises(ConfigError, match="corrupted"):
        Mapping.load(rewrite(path, a0=payload))
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["lightning_meta.hpo.mappings.gbm:GBMSurrogate", "os:system", "RandomSearch"])
def test_the_class_comes_from_the_allow_list_never_from_an_import(saved, tmp_path, kind):
    path = tmp_path / "foreign.mapping"
    path.write_bytes(saved.read_bytes())
    with pytest.raises(ConfigError, match=r"names the mapping .* which is not one of \['best_on_average'"):
        Mapping.load(rewrite(path, lambda meta: meta.update({"class": kind})))


def test_other_versions_and_broken_states_are_config_errors(saved, tmp_path):
    path = tmp_path / "edited.mapping"
    path.write_bytes(saved.read_bytes())
    with pytest.raises(ConfigError, match=f"not a lightning_meta mapping file of version {VERSION}"):
        Mapping.load(rewrite(path, lambda meta: meta.update({"version": VERSION + 1})))
    path.write_bytes(saved.read_bytes())
    with pytest.raises(ConfigError, match="corrupted"):
        Mapping.load(rewrite(path, lambda meta: meta["state"].pop("fitted")))
    path.write_bytes(saved.read_bytes())
    with pytest.raises(ConfigError, match="corrupted"):
        Mapping.load(rewrite(path, lambda meta: meta["state"]["settings"].update({"unknown": 1})))


def test_a_gbm_that_refits_differently_on_load_says_so(tmp_path):
    path = GBMSurrogate(members=2, max_iter=20).fit(meta_frame(), SPACE).save(tmp_path / "gbm.mapping")
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive["__meta__"].tobytes())
        probe = meta["state"]["fitted"]["probe"]["__array__"]
        tampered = archive[probe] + 0.01
    with pytest.warns(UserWarning, match="refits differently"):
        Mapping.load(rewrite(path, **{probe: tampered}))


def test_the_shipped_mapping_is_in_the_code_free_format_and_depends_on_the_optimizer_kind():
    assert DEFAULT_MAPPING.read_bytes()[:4] == b"PK\x03\x04"
    with np.load(DEFAULT_MAPPING, allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)
    mapping = Mapping.load(DEFAULT_MAPPING)
    assert isinstance(mapping, ConditionalBestOnAverage) and mapping.space.names == ["lr", "weight_decay"]
    sgd = mapping.suggest({"opt_sgd": 1.0, "opt_adaptive": 0.0}, k=1)[0]
    adam = mapping.suggest({"opt_sgd": 0.0, "opt_adaptive": 1.0}, k=1)[0]
    assert sgd["lr"] > 2 * adam["lr"]  # measured on the shipped pool: SGD's best rates are several times Adam's
    assert mapping.fitted_runs >= 60 * 24
