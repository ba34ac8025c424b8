"""The model registry behind ``train.py --model=NAME``.

Each model (GANimation here, each sibling paper in ``other_models/<paper>.py``) registers a
:class:`ModelEntry`: a name, a one-line summary, a function that defines its absl flags and a
function that trains from parsed flags. Library code never reads global flags: an entry's ``train``
turns the flag values into the model's config object and hands that to the library.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Callable, Dict, List

from ganimation_tl.errors import InputError

__all__ = ["ModelEntry", "register", "get", "names", "load_all"]

_REGISTRY: Dict[str, "ModelEntry"] = {}
_BUILTIN_MODULES = ("ganimation_tl.ganimation_task",)


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A trainable model. ``define_flags(flag_values)`` adds its flags (idempotently);
    ``train(flag_values) -> dict`` trains it and returns its final metrics. ``low_memory_on_cpu``: ``train.py``
    turns the low-memory mode (:mod:`ganimation_tl.runtime`) on by default when this model trains on a host without
    GPU (``--low_memory`` / ``--nolow_memory`` override)."""

    name: str
    summary: str
    define_flags: Callable
    train: Callable
    low_memory_on_cpu: bool = False


def register(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the registry (re-registering the same name replaces it)."""
    _REGISTRY[entry.name] = entry
    return entry


def load_all() -> None:
    """Import the built-in model modules and every module of the ``other_models`` package, each of
    which registers itself on import."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    try:
        package = importlib.import_module("other_models")
    except ImportError:  # the package is optional for library users
        return
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module("other_models." + info.name)


def names() -> List[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> ModelEntry:
    """The entry registered as ``name``.

    Raises:
        InputError: unknown name; the message lists the valid ones.
    """
    if name not in _REGISTRY:
        raise InputError("unknown --model=%r; valid models: %s" % (name, ", ".join(names()) or "(none)"))
    return _REGISTRY[name]
