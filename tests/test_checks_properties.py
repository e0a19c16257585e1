"""Every user-facing argument, drawn at random: a bad value is refused with a project error when the object is built
(never a TypeError from inside, never a silent run); good values build, and the learners meta-train a step on them.

The allowed values of each field are written out here, independently of the hints in the code, and each table is
checked to cover every parameter, so a new argument without a check fails here. Examples are derandomized (the same
in every run), about 10 per field; the file takes about 15 s on 2 CPU cores with OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_meta.data import LOADERS, EpisodicDataModule
from lightning_meta.data.registry import loader
from lightning_meta.errors import ConfigError
from lightning_meta.launch import check_launch
from lightning_meta.learners import MAML, MetaLearner, ProtoNet, Reptile
from lightning_meta.nets import Conv4, EmbeddingBagEncoder, MLP, ResNet12

BAD = settings(max_examples=10, deadline=None, derandomize=True, database=None)  # per field
GOOD = settings(max_examples=25, deadline=None, derandomize=True, database=None)

BASE = {"lr": "float>0", "weight_decay": "float>=0", "lr_step_size": "int>=1?", "lr_gamma": "float>0",
        "bn_mode": ("transductive", "running"), "channels_last": "bool", "task_threads": "int>=1",
        "lr_schedule": ("step", "cosine", "linear")}
LEARNERS = {
    MetaLearner: BASE,
    MAML: {**BASE, "inner_lr": "float>0", "inner_steps": "int>=1", "inner_steps_eval": "int>=1?", "first_order": "bool",
           "learn_inner_lr": "bool", "multi_step_loss": "bool", "msl_epochs": "int>=0",
           "derivative_order_annealing": "int>=0", "per_step_bn": "bool", "anil": "bool", "batch_tasks": "bool"},
    Reptile: {**{k: BASE[k] for k in ("lr", "bn_mode", "channels_last", "task_threads", "lr_schedule")},
              "inner_lr": "float>0", "inner_steps": "int>=1", "inner_steps_eval": "int>=1",
              "inner_batch_size": "int>=1?", "inner_optimizer": ("adam", "sgd"), "inner_state": ("carried", "fresh"),
              "transductive": "bool"},
    ProtoNet: {**BASE, "distance": ("euclidean", "cosine"), "cosine_scale": "float>0", "test_shift": "int>=0"},
}
SPEC = {"ways": "int>=1", "shots": "int>=1", "queries": "int>=0", "within_alphabet": "bool", "drawers": ("any", "lake")}
DATAMODULE = {"dataset": "str", "root": "path?", "dataset_kwargs": "mapping?", "train": "mapping?", "val": "mapping?",
              "test": "mapping?", "meta_batch_size": "int>=1", "eval_batch_size": "int>=1", "train_episodes": "int>=1",
              "val_episodes": "int>=1", "test_episodes": "int>=1", "num_workers": "int>=0", "seed": "int>=0",
              "trainval": "bool", "augmentation": "callable?",
              **{f"train.{k}": kind for k, kind in SPEC.items()}, "val.queries": "int>=1", "test.queries": "int>=1"}
OMNIGLOT = {"image_size": "int>=1", "split": ("vinyals", "lake"), "download": "bool", "rotations": "bool",
            "val_alphabets": "int>=1", "split_seed": "int>=0"}
LOADER_KWARGS = {"omniglot": OMNIGLOT, "omniglot_zips": OMNIGLOT,
                 **{name: {"image_size": "int>=1", "download": "bool"} for name in ("miniimagenet", "cifarfs", "fc100")},
                 "folder": {"image_size": "int>=1", "channels": (1, 3), "split": "split", "ratios": "fractions",
                            "seed": "int>=0"}}
NETS = {Conv4: {"in_channels": "int>=1", "out_features": "int>=1?", "hidden": "int>=1", "image_size": "int>=1",
                "downsample": ("stride", "pool"), "embedding": ("mean", "flatten", None)},
        ResNet12: {"in_channels": "int>=1", "out_features": "int>=1?", "channels": "widths"},
        MLP: {"in_features": "int>=1", "out_features": "int>=1?", "hidden": "widths", "batch_norm": "bool"},
        EmbeddingBagEncoder: {"vocab_size": "int>=1", "out_features": "int>=1?", "embedding_dim": "int>=1",
                              "hidden": "widths", "batch_norm": "bool", "padding_idx": "int>=0"}}

NAMES = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True).filter(lambda n: n != "self")
FLOATS = st.floats(allow_nan=True, allow_infinity=True)  # 2.0 included: an integer field takes integers only


def bad(kind) -> st.SearchStrategy:
    """Values a field of ``kind`` must refuse (a trailing ``?``: None is allowed)."""
    optional = isinstance(kind, str) and kind.endswith("?")
    kind = kind.rstrip("?") if isinstance(kind, str) else kind
    junk = [st.text(max_size=6), st.booleans(), st.lists(st.integers(), max_size=2), *([] if optional else [st.none()])]
    own = {
        "int>=1": [st.integers(max_value=0), FLOATS],
        "int>=0": [st.integers(max_value=-1), FLOATS],
        "float>0": [st.floats(max_value=0.0), st.integers(max_value=0), st.sampled_from([math.nan, math.inf])],
        "float>=0": [st.floats(max_value=-1e-12), st.integers(max_value=-1), st.sampled_from([math.nan, math.inf])],
        "bool": [st.integers(), FLOATS, st.text(max_size=6), st.none()],
        "str": [st.integers(), FLOATS, st.booleans(), st.none()],
        "callable": [st.integers(), FLOATS, st.text(max_size=6), st.booleans()],
        "path": [st.integers(), FLOATS, st.booleans(), st.lists(st.text(max_size=3), max_size=2)],
        "mapping": [st.integers(), FLOATS, st.text(max_size=6), st.booleans(), st.lists(st.integers(), max_size=2)],
        "split": [st.integers(), FLOATS, st.booleans(), st.lists(st.text(max_size=3), max_size=2)],
        "fractions": [st.lists(st.sampled_from([-0.5, math.nan, "a", None]), min_size=1, max_size=3), st.integers()],
        "widths": [st.just([]), st.lists(st.sampled_from([0, -1, 1.5, "a"]), min_size=1, max_size=3), st.integers()],
    }
    if isinstance(kind, tuple):  # an enumeration
        return st.one_of(st.text(max_size=8), st.integers(), st.booleans(), FLOATS).filter(lambda v: v not in kind)
    if kind in ("int>=1", "int>=0", "float>0", "float>=0"):  # half out of range, half of another type
        return st.one_of(st.one_of(*own[kind]), st.one_of(*junk))
    return st.one_of(*own[kind])


def _parameters(func) -> set[str]:
    return {n for n, p in inspect.signature(func).parameters.items() if n not in ("self", "backbone", "root")}


def test_the_tables_cover_every_argument():
    for learner, fields in LEARNERS.items():
        assert _parameters(learner.__init__) == set(fields), learner
    assert _parameters(EpisodicDataModule.__init__) | {"root"} == {k for k in DATAMODULE if "." not in k}
    for name, fields in LOADER_KWARGS.items():
        assert _parameters(loader(name)) == set(fields), name
    assert set(LOADER_KWARGS) == set(LOADERS)
    for net, fields in NETS.items():
        assert _parameters(net.__init__) == set(fields), net


def _refused(build, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        build()
    text = str(err.value)
    assert field.split(".")[-1] in text and "Fix:" in text and "\n" not in text, text


def _conv4(ways: int | None = 3) -> Conv4:
    return Conv4(1, ways, hidden=8, image_size=14)


def _pairs(tables: dict) -> list:
    return [pytest.param(owner, field, id=f"{getattr(owner, '__name__', owner)}.{field}")
            for owner, fields in tables.items() for field in sorted(fields)]


@pytest.mark.parametrize(("learner", "field"), _pairs(LEARNERS))
@BAD
@given(data=st.data())
def test_a_bad_value_in_any_learner_field_is_refused_when_built(learner, field, data):
    value = data.draw(bad(LEARNERS[learner][field]), label="value")
    _refused(lambda: learner(_conv4(), **{field: value}), field)


def _good_learner_arguments(learner) -> st.SearchStrategy:
    """Values every field allows, small enough for a step in milliseconds, with the combinations the learners refuse
    (lightning_meta/learners: batch_tasks with its unsupported options, anil with per_step_bn, threads with running
    BatchNorm, a step size with an annealing schedule) left out."""
    base = {"lr": st.floats(1e-4, 1e-1), "weight_decay": st.floats(0, 1e-3), "lr_gamma": st.floats(0.1, 1.0),
            "lr_step_size": st.none() | st.integers(1, 1000), "bn_mode": st.sampled_from(["transductive", "running"]),
            "channels_last": st.booleans(), "task_threads": st.integers(1, 2),
            "lr_schedule": st.sampled_from(["step", "cosine", "linear"])}
    own = {MAML: {"inner_lr": st.floats(1e-3, 0.5), "inner_steps": st.integers(1, 2),
                  "inner_steps_eval": st.none() | st.integers(1, 2), "msl_epochs": st.integers(0, 3),
                  "derivative_order_annealing": st.integers(0, 2),
                  **{k: st.booleans() for k in ("first_order", "learn_inner_lr", "multi_step_loss", "per_step_bn",
                                                "anil", "batch_tasks")}},
           Reptile: {"lr": st.floats(1e-2, 1.0), "inner_lr": st.floats(1e-4, 1e-2), "inner_steps": st.integers(1, 3),
                     "inner_steps_eval": st.integers(1, 3),
                     "inner_batch_size": st.none() | st.integers(2, 6),  # BatchNorm needs 2 images at 14 px
                     "inner_optimizer": st.sampled_from(["adam", "sgd"]),
                     "inner_state": st.sampled_from(["carried", "fresh"]), "transductive": st.booleans()},
           ProtoNet: {"distance": st.sampled_from(["euclidean", "cosine"]), "cosine_scale": st.floats(0.1, 20),
                      "test_shift": st.integers(0, 2)}}[learner]
    fields = {k: s for k, s in {**base, **own}.items() if k in LEARNERS[learner]}
    return st.fixed_dictionaries(fields).map(_consistent)


def _consistent(kwargs: dict) -> dict:
    if kwargs.get("batch_tasks"):
        kwargs.update(anil=False, learn_inner_lr=False, per_step_bn=False, multi_step_loss=False, task_threads=1)
    if kwargs.get("anil"):
        kwargs["per_step_bn"] = False
    if kwargs["task_threads"] > 1:
        kwargs["bn_mode"] = "transductive"
    if kwargs["lr_schedule"] != "step":
        kwargs.pop("lr_step_size", None)
    return kwargs


def _episodes(tasks: int, ways: int, shots: int, queries: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(ways)
    return (torch.randn(tasks, ways * shots, 1, 14, 14, generator=g), labels.repeat_interleave(shots).repeat(tasks, 1),
            torch.randn(tasks, ways * queries, 1, 14, 14, generator=g), labels.repeat_interleave(queries).repeat(tasks, 1))


def _meta_trains_a_step(learner, batch) -> None:
    """One meta-training step (meta-loss, backward, update) and one evaluation episode, all finite."""
    before = [p.detach().clone() for p in learner.parameters()]
    loss, acc = learner.meta_loss(batch)
    loss.backward()
    with torch.no_grad():
        for p in learner.parameters():
            if p.grad is not None:
                p -= learner.lr * p.grad
    assert torch.isfinite(loss) and 0 <= float(acc) <= 1
    assert all(torch.isfinite(p).all() for p in learner.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.parameters()))  # the step moved the weights
    logits = learner.adapt_and_predict(batch[0][0], batch[1][0], batch[2][0])
    assert logits.shape == (batch[2].shape[1], int(batch[1].max()) + 1) and torch.isfinite(logits).all()


@pytest.mark.parametrize("learner", [MAML, Reptile, ProtoNet], ids=lambda c: c.__name__)
@GOOD
@given(data=st.data())
def test_good_learner_values_build_and_meta_train_a_step(learner, data):
    kwargs = data.draw(_good_learner_arguments(learner), label="kwargs")
    shots, queries = data.draw(st.integers(1, 2), label="shots"), data.draw(st.integers(1, 2), label="queries")
    torch.manual_seed(0)
    model = learner(_conv4(3 if learner.fixed_ways else None), **kwargs)
    _meta_trains_a_step(model, _episodes(2, 3, shots, queries, seed=shots * 10 + queries))


def _datamodule_arguments(field: str, value) -> dict:
    spec = {"ways": 5, "shots": 1, "queries": 15}
    if "." not in field:
        return {field: value}
    stage, key = field.split(".")
    return {stage: {**spec, key: value}}


@pytest.mark.parametrize("field", sorted(DATAMODULE))
@BAD
@given(data=st.data())
def test_a_bad_value_in_any_datamodule_field_is_refused_when_built(field, data):
    unknown_names = NAMES.filter(lambda n: n not in LOADERS)
    value = data.draw(bad(DATAMODULE[field]) | (unknown_names if field == "dataset" else st.nothing()), label="value")
    _refused(lambda: EpisodicDataModule(**_datamodule_arguments(field, value)), field)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_an_unknown_key_of_an_episode_or_of_the_loader_is_refused_with_the_accepted_ones(data):
    where = data.draw(st.sampled_from(["train", "test", "dataset_kwargs"]), label="where")
    key = data.draw(NAMES.filter(lambda n: n not in {"ways", "shots", "queries", "within_alphabet", "drawers", "root", *OMNIGLOT}))
    given_ = {"dataset_kwargs": {key: 1}} if where == "dataset_kwargs" else {where: {"ways": 5, "shots": 1, key: 1}}
    with pytest.raises(ConfigError, match=rf"got {where}\.{key}=1, which \w+ does not take\. .*takes .*"
                                          rf"{'image_size' if where == 'dataset_kwargs' else 'within_alphabet'}"):
        EpisodicDataModule(**given_)


@pytest.fixture(scope="module")
def empty_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("no_data")


@pytest.mark.parametrize(("name", "field"), [*_pairs(LOADER_KWARGS), *_pairs({n: ["?"] for n in LOADER_KWARGS})])
@BAD
@given(data=st.data())
def test_a_bad_loader_argument_is_refused_before_anything_is_read(name, field, data, empty_folder):
    fields = LOADER_KWARGS[name]
    if field == "?":  # an argument the loader does not take
        field = data.draw(NAMES.filter(lambda n: n not in fields and n != "root"), label="field")
    value = data.draw(bad(fields[field]) if field in fields else st.integers(), label="value")
    # The folder holds no data, so a loader that read before checking would raise DataError instead.
    _refused(lambda: loader(name)(empty_folder, **{field: value}), field)


@pytest.mark.parametrize(("net", "field"), [*_pairs(NETS), *_pairs({net: ["?"] for net in NETS})])
@BAD
@given(data=st.data())
def test_a_bad_backbone_argument_is_refused_when_built(net, field, data):
    fields = NETS[net]
    if field == "?":
        field = data.draw(NAMES.filter(lambda n: n not in fields), label="field")
    value = data.draw(bad(fields[field]) if field in fields else st.integers(), label="value")
    _refused(lambda: net(**{field: value}), field)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(devices=st.integers(1, 8) | st.lists(st.integers(0, 7), min_size=1, max_size=8, unique=True),
       nodes=st.integers(1, 4), size=st.integers(1, 256), strategy=st.sampled_from(["ddp", "ddp_spawn", "auto"]))
def test_a_meta_batch_is_refused_before_launch_exactly_when_it_does_not_split_over_the_processes(
        devices, nodes, size, strategy):
    cfg = {"train": False, "data": {"meta_batch_size": size},
           "trainer": {"strategy": strategy, "devices": devices, "num_nodes": nodes}}
    processes = (len(devices) if isinstance(devices, list) else devices) * nodes
    if size % processes:
        with pytest.raises(ConfigError, match=rf"meta_batch_size={size} does not split over the {processes} DDP"):
            check_launch(cfg)
    else:
        check_launch(cfg)


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(learner=st.sampled_from(["MAML", "ProtoNet", "Reptile"]), queries=st.integers(0, 3), train=st.booleans())
def test_training_episodes_without_queries_are_refused_for_the_learners_that_train_on_them(learner, queries, train):
    cfg = {"train": train, "model": {"_target_": f"lightning_meta.learners.{learner}"},
           "data": {"train": {"ways": 5, "shots": 1, "queries": queries}}}
    if train and queries == 0 and learner != "Reptile":
        with pytest.raises(ConfigError, match=rf"{learner} meta-trains on the query images"):
            check_launch(cfg)
    else:
        check_launch(cfg)


@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(learner=st.sampled_from([MAML, Reptile, ProtoNet]), ways=st.integers(2, 5), shots=st.integers(1, 2),
       queries=st.integers(0, 2), meta_batch_size=st.integers(1, 2), eval_batch_size=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1), trainval=st.booleans(), split=st.sampled_from(["vinyals", "lake"]))
def test_good_datamodule_values_serve_episodes_that_a_learner_meta_trains_on(
        learner, ways, shots, queries, meta_batch_size, eval_batch_size, seed, trainval, split):
    queries = queries if learner is Reptile else max(1, queries)  # MAML's and ProtoNet's loss is on the queries
    dm = EpisodicDataModule(dataset_kwargs={"image_size": 14, "split": split}, seed=seed, trainval=trainval,
                            train={"ways": ways, "shots": shots, "queries": queries},
                            test={"ways": ways, "shots": 1, "queries": 2}, meta_batch_size=meta_batch_size,
                            eval_batch_size=eval_batch_size, train_episodes=2 * meta_batch_size, val_episodes=2,
                            test_episodes=eval_batch_size)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (meta_batch_size, ways * shots, 1, 14, 14) and batch[3].shape == (meta_batch_size, ways * queries)
    assert next(iter(dm.test_dataloader()))[2].shape == (eval_batch_size, ways * 2, 1, 14, 14)
    torch.manual_seed(0)
    _meta_trains_a_step(learner(_conv4(ways if learner.fixed_ways else None)), batch)
