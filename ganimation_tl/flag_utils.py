"""Helpers to define absl flags once and to turn flag values into config dataclasses."""
from __future__ import annotations

import dataclasses
from typing import Any, Type, TypeVar

from absl import flags

__all__ = ["define_once", "config_from_flags"]

T = TypeVar("T")

_DEFINERS = {
    "string": flags.DEFINE_string, "integer": flags.DEFINE_integer, "float": flags.DEFINE_float,
    "bool": flags.DEFINE_bool, "enum": flags.DEFINE_enum,
}


def define_once(kind: str, name: str, default: Any, help_text: str, flag_values=flags.FLAGS, **kwargs) -> None:
    """Define flag ``name`` unless a model defined it already (several models share e.g. ``--lambda_gp``).

    Shared flags default to None, meaning "the model's own default" (see :func:`config_from_flags`).
    """
    if name in flag_values:
        return
    _DEFINERS[kind](name, default, help_text, flag_values=flag_values, **kwargs)


def config_from_flags(cls: Type[T], flag_values=flags.FLAGS, **overrides) -> T:
    """Build dataclass ``cls`` from flags named like its fields; flags left at None keep the
    dataclass default. ``overrides`` win over flags."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in flag_values and flag_values[field.name].value is not None:
            values[field.name] = flag_values[field.name].value
    values.update(overrides)
    return cls(**values)
