"""The 17 OpenFace action units (AUs) GANimation is conditioned on, and their scaling.

Source: GANimation (Pumarola et al., ECCV 2018), section 3 and the official data layout; OpenFace 2
``AUxx_r`` intensity columns. OpenFace regresses intensities 0..5 (FACS A..E); the model sees them
divided by 5, i.e. in [0, 1].
"""
from __future__ import annotations

import math
import re
from typing import Dict, Mapping, Sequence

import numpy as np

from ganimation_tl.errors import InputError

#: AU codes in model order (index 0..16).
AU_CODES: tuple = ("01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20",
                   "23", "25", "26", "45")
#: Short names ``AU01`` ... ``AU45`` in model order.
AU_NAMES: tuple = tuple("AU" + c for c in AU_CODES)
#: OpenFace intensity column names ``AU01_r`` ... ``AU45_r`` in model order.
AU_COLUMNS: tuple = tuple(n + "_r" for n in AU_NAMES)
#: Human-readable FACS names, same order.
AU_DESCRIPTIONS: tuple = (
    "inner brow raiser", "outer brow raiser", "brow lowerer", "upper lid raiser", "cheek raiser",
    "lid tightener", "nose wrinkler", "upper lip raiser", "lip corner puller", "dimpler",
    "lip corner depressor", "chin raiser", "lip stretcher", "lip tightener", "lips part",
    "jaw drop", "blink")
NUM_AUS: int = len(AU_NAMES)
#: OpenFace's intensity scale maximum; model AUs = OpenFace intensity / OPENFACE_MAX.
OPENFACE_MAX: float = 5.0


def au_index(name: str) -> int:
    """Return the model index (0..16) of an AU given as ``"AU12"``, ``"au12"``, ``"12"`` or ``"AU12_r"``.

    Raises:
        InputError: the name is not one of the 17 OpenFace intensity AUs (the message lists them).
    """
    text = str(name).strip().upper()
    m = re.fullmatch(r"(?:AU)?0*(\d{1,2})(?:_R)?", text)
    if m:
        code = "%02d" % int(m.group(1))
        if code in AU_CODES:
            return AU_CODES.index(code)
    raise InputError("unknown action unit %r; valid AUs are %s" % (name, ", ".join(AU_NAMES)))


def parse_au_string(text: str) -> Dict[int, float]:
    """Parse ``"AU12=0.8,AU25=0.5"`` into ``{index: value}``.

    Names may be ``AU12`` or ``12``; values are model intensities in [0, 1]. Separators: commas,
    optional spaces. An empty string gives ``{}``.

    Raises:
        InputError: a malformed item (``AU12``, ``AU12=``), an unknown AU (``AU99``), a non-number
            or non-finite value (``nan``, ``inf``), a value outside [0, 1], or an AU named twice.
    """
    result: Dict[int, float] = {}
    if text is None:
        return result
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise InputError("malformed AU setting %r in --aus: expected NAME=VALUE, e.g. AU12=0.8" % item)
        name, _, value_text = item.partition("=")
        name, value_text = name.strip(), value_text.strip()
        if not name or not value_text:
            raise InputError("malformed AU setting %r in --aus: expected NAME=VALUE, e.g. AU12=0.8" % item)
        index = au_index(name)
        try:
            value = float(value_text)
        except ValueError:
            raise InputError("AU value %r for %s in --aus is not a number" % (value_text, AU_NAMES[index])) from None
        if not math.isfinite(value):
            raise InputError("AU value for %s in --aus must be finite, got %r" % (AU_NAMES[index], value_text))
        if not 0.0 <= value <= 1.0:
            raise InputError("AU value for %s in --aus must be in [0, 1] (OpenFace intensity / 5), got %s"
                             % (AU_NAMES[index], value_text))
        if index in result:
            raise InputError("%s is set twice in --aus" % AU_NAMES[index])
        result[index] = value
    return result


def apply_au_settings(base: np.ndarray, settings: Mapping[int, float]) -> np.ndarray:
    """Return a copy of ``base`` (float32 ``[..., 17]`` in [0, 1]) with the indices in ``settings`` replaced."""
    out = np.array(base, dtype=np.float32, copy=True)
    for index, value in settings.items():
        out[..., index] = value
    return out


def format_aus(values: Sequence[float]) -> str:
    """Format a 17-vector of model AUs as ``AU01=0.12,AU02=...`` (round-trips through :func:`parse_au_string`)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.shape[0] != NUM_AUS:
        raise ValueError("expected %d AU values, got %d" % (NUM_AUS, values.shape[0]))
    return ",".join("%s=%.3f" % (n, float(np.clip(v, 0.0, 1.0))) for n, v in zip(AU_NAMES, values))
