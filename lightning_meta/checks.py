"""Checks of user-facing arguments against their type hints, made when an object is built.

A parameter's hint says what it allows (``PositiveInt``, ``PositiveFloat``, ``Literal[...]``, ``bool``); pydantic
validates each given value against it in strict mode, so an integer refuses 2.5, "2" and True, and a rate refuses
-0.1, nan and "fast". A refusal, or an argument the callable does not take, becomes one ``ConfigError`` line naming
the argument, the value, what is allowed and the fix, before any data is read or any process started.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from lightning_meta.errors import ConfigError


@dataclass(frozen=True)
class Allowed:
    """What a hint allows, in the words of the error message (pydantic ignores this metadata)."""

    text: str


PositiveInt = Annotated[int, Field(ge=1), Allowed("an integer >= 1")]
NonNegativeInt = Annotated[int, Field(ge=0), Allowed("an integer >= 0")]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False), Allowed("a finite number > 0")]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False), Allowed("a finite number >= 0")]
ImageSize = Annotated[int, Field(ge=1, le=1024), Allowed("an integer from 1 to 1024 (pixels per side)")]
PositiveInts = Annotated[Sequence[PositiveInt], Field(min_length=1), Allowed("a non-empty list of integers >= 1")]

_STRICT = ConfigDict(strict=True, arbitrary_types_allowed=True)
_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path",
          type(None): "null", Mapping: "a mapping", Sequence: "a list"}


def describe(hint: Any) -> str:
    """What ``hint`` allows, in words: ``"an integer >= 1 or null"``, ``"one of 'adam', 'sgd'"``."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        said = [m.text for m in hint.__metadata__ if isinstance(m, Allowed)]
        return said[0] if said else describe(typing.get_args(hint)[0])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(hint))
    return _WORDS.get(origin or hint, getattr(origin or hint, "__name__", str(hint)))


def check_arguments(owner: Callable, values: Mapping[str, Any], who: str | None = None, prefix: str = "") -> None:
    """Raises ``ConfigError`` for the first of ``values`` that ``owner`` does not take or whose hint refuses it.

    ``owner`` is a function, or a class whose ``__init__`` methods (along its MRO) take the values; ``who`` names
    the owner and ``prefix`` the keys (``"train."``) in the message.
    """
    taken = _parameters(owner)
    name = owner.__qualname__.removesuffix(".__init__")
    who = who or name
    for key, value in values.items():
        if key not in taken:
            near = nearest(str(key), taken)
            guess = f" Did you mean {prefix}{near}?" if near else ""
            raise ConfigError(f"{who} got {prefix}{key}={_show(value)}, which {name} does not take.{guess} Fix: "
                              f"correct or remove it; {name} takes {', '.join(taken)}.")
        func, parameter = taken[key]
        if key not in _hints(func):
            continue
        try:
            _adapter(func, key).validate_python(_plain(value))
        except ValidationError as error:
            reason = next((e["msg"] for e in error.errors() if e["type"] != "none_required"), "it is not null")
            allowed = describe(_hints(func)[key])
            default = "" if parameter.default is parameter.empty else f", e.g. its default {_show(parameter.default)}"
            raise ConfigError(f"{who} got {prefix}{key}={_show(value)}, but {key} must be {allowed} "
                              f"({reason[0].lower()}{reason[1:]}). Fix: set {prefix}{key} to {allowed}{default}.") from None


def nearest(key: str, options: Iterable[str]) -> str | None:
    """The option a misspelt ``key`` most likely meant (``max_epoch`` -> ``max_epochs``), if one is close enough."""
    found = difflib.get_close_matches(key, [str(o) for o in options], n=1, cutoff=0.6)
    return found[0] if found else None


HYDRA_KEYS = frozenset({"_target_", "_recursive_", "_convert_", "_partial_", "_args_"})


def check_target_keys(node: Any, where: str) -> None:
    """Raises ``ConfigError`` for a key of a ``_target_`` node in ``node`` (at any depth) that its target does not
    take, naming the nearest argument it does. Why: a key added with ``+`` or by an experiment file
    (``+trainer.max_epoch=1``) otherwise ends in the target's TypeError, after the data is loaded."""
    if isinstance(node, (DictConfig, ListConfig)):  # unresolved: ${hydra:...} has no value outside a Hydra job
        node = OmegaConf.to_container(node, resolve=False)
    if isinstance(node, (list, tuple)):
        for i, child in enumerate(node):
            check_target_keys(child, f"{where}[{i}]")
        return
    if not isinstance(node, Mapping):
        return
    target = node.get("_target_")
    if isinstance(target, str):
        _check_target(target, [str(k) for k in node if k not in HYDRA_KEYS], node, where)
    for key, child in node.items():
        if isinstance(child, (Mapping, list, tuple)):
            check_target_keys(child, f"{where}.{key}")


def _builds(value: Any) -> bool:
    """Whether Hydra instantiates ``value`` (a ``_target_`` node, or a list holding one) before passing it on."""
    if isinstance(value, Mapping):
        return "_target_" in value
    return isinstance(value, (list, tuple)) and any(_builds(v) for v in value)


def _check_target(target: str, keys: list[str], node: Any, where: str) -> None:
    from hydra.utils import get_object

    try:
        owner = get_object(target)
    except Exception:  # noqa: BLE001 -- an unknown target: instantiating it names it
        return
    if not callable(owner):
        return
    taken = _keywords(owner)
    if taken is None:
        return
    for key in keys:
        if key not in taken:
            near = nearest(key, taken)
            value = _show(node[key])
            fix = (f": did you mean {where}.{near}? Fix: {where}.{near}={value}" if near else
                   f". Fix: remove it; {target.rsplit('.', 1)[-1]} takes {', '.join(taken)}")
            raise ConfigError(f"{where}.{key}={value} is not an argument of {target}{fix}.")
    # Lightning's own classes get their values checked against their hints here (ours check theirs when built, with
    # their own words; other libraries' hints are not always what they accept). A nested _target_ node is built by
    # Hydra before the call, so its config is not the value the hint describes.
    if target.startswith("lightning.") or target.startswith("pytorch_lightning."):
        given = {k: node[k] for k in keys if not (isinstance(node[k], str) and "${" in node[k]) and not _builds(node[k])}
        try:
            check_arguments(owner, given, who=target.rsplit(".", 1)[-1], prefix=f"{where}.")
        except ConfigError:
            raise
        except Exception:  # noqa: BLE001 -- a library's hint pydantic cannot read: Lightning checks that value itself
            return


@functools.cache
def _keywords(owner: Callable) -> tuple[str, ...] | None:
    """The keyword arguments a call of ``owner`` takes (a class: its first ``__init__`` along the MRO, the one that
    runs); None when that takes ``**kwargs`` or has no signature, so no key can be called unknown."""
    inits = [vars(c).get("__init__") for c in owner.__mro__] if isinstance(owner, type) else [owner]
    func = next((f for f in inits if inspect.isfunction(f) or inspect.ismethod(f)), None)
    try:
        parameters = inspect.signature(func).parameters.values() if func else ()
    except (TypeError, ValueError):
        return None
    if func is None or any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return tuple(p.name for p in parameters if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


F = TypeVar("F", bound=Callable)


def checked(func: F) -> F:
    """Decorator: every call of ``func`` checks its given arguments with ``check_arguments`` first."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def call(*args, **kwargs):
        unknown = {k: v for k, v in kwargs.items() if k not in signature.parameters}
        known = {k: v for k, v in kwargs.items() if k not in unknown}
        given = {**signature.bind_partial(*args, **known).arguments, **unknown}
        given.pop("self", None)
        check_arguments(func, given)
        return func(*args, **kwargs)

    return call  # type: ignore[return-value]


@functools.cache
def _parameters(owner: Callable) -> dict[str, tuple[Callable, inspect.Parameter]]:
    """The named parameters ``owner`` takes (for a class: of each ``__init__`` along its MRO, the first one wins)."""
    inits = [vars(c).get("__init__") for c in owner.__mro__] if isinstance(owner, type) else [owner]
    taken: dict[str, tuple[Callable, inspect.Parameter]] = {}
    for func in (f for f in inits if inspect.isfunction(f)):
        for name, p in inspect.signature(func).parameters.items():
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                taken.setdefault(name, (func, p))
    return taken


@functools.cache
def _hints(func: Callable) -> dict[str, Any]:
    return typing.get_type_hints(inspect.unwrap(func), include_extras=True)


@functools.cache
def _adapter(func: Callable, name: str) -> TypeAdapter:
    return TypeAdapter(_hints(func)[name], config=_STRICT)


def _plain(value: Any) -> Any:
    """OmegaConf containers (Hydra passes nested nodes as such) as the dicts and lists they stand for."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


def _show(value: Any) -> str:
    text = "null" if value is None else repr(_plain(value))
    return text if len(text) <= 60 else text[:57] + "..."
