"""Set-up shared by the ``bench/eval_*.py`` scripts: model flags from a flagfile, the result JSON, HOG features.

The scripts run as ``python bench/eval_NAME.py`` from the repository root; each puts the root on
``sys.path`` and then imports this module as ``bench._common``.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Callable, Optional

import numpy as np
from absl import flags

__all__ = ["define_eval_flags", "parse_eval_flags", "model_flags", "config_overrides", "run_result_worker",
           "checkpoint_step", "write_json_atomic", "hog_features"]


def define_eval_flags(flag_values: flags.FlagValues, name: str, max_minutes: float) -> None:
    """Define the flags of an evaluation that trains one model from its debug flagfile, then checks it:
    ``--max_minutes`` (default ``max_minutes``), ``--workdir`` (``runs/<name>_eval``), ``--flagfile_path``
    (``configs/<name>_debug.cfg``), ``--output`` (``docs/results/<name>.json``) and ``--max_steps`` (None).

    Args:
        flag_values: the script's own ``FlagValues``.
        name: the registry name of the model, e.g. ``"dagan"``.
        max_minutes: default training budget in minutes (wall clock).
    """
    flags.DEFINE_float("max_minutes", max_minutes, "Training budget in minutes (wall clock).",
                       flag_values=flag_values)
    flags.DEFINE_string("workdir", "runs/%s_eval" % name, "Training workdir (resumed if it has a checkpoint).",
                        flag_values=flag_values)
    flags.DEFINE_string("flagfile_path", "configs/%s_debug.cfg" % name, "Model flagfile.", flag_values=flag_values)
    flags.DEFINE_string("output", "docs/results/%s.json" % name, "Where to write the JSON results.",
                        flag_values=flag_values)
    flags.DEFINE_integer("max_steps", None, "Optional step cap (default: the config's epochs).",
                         flag_values=flag_values)


def parse_eval_flags(flag_values: flags.FlagValues, argv, doc: str) -> None:
    """Parse a script's own ``FlagValues`` from ``argv`` (``argv[0]`` is the program).

    ``-h`` / ``--help`` prints ``doc`` and the flags and exits 0; an unknown flag or a bad value prints
    one line naming it and exits 2 (no traceback).
    """
    import sys
    if any(a in ("-h", "--help", "--helpfull", "-?") for a in argv[1:]):
        print(doc.strip() + "\n\nflags:\n" + flag_values.get_help(include_special_flags=False))
        raise SystemExit(0)
    try:
        flag_values(argv)
    except flags.Error as error:
        print("error: %s (see --help)" % error, file=sys.stderr)
        raise SystemExit(2)


def config_overrides(text: str, config) -> dict:
    """Parse an evaluation's ``--set`` value, ``'field=value,...'``, into ``{field: value}`` typed like the fields
    of the dataclass instance ``config`` (bools: 1/true/yes, anything else false).

    Raises:
        SystemExit: an unknown field or a value of the wrong type (the message names ``--set``, the field and the
            config class).
    """
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, _, value = item.partition("=")
        if not hasattr(config, key):
            raise SystemExit("--set: unknown %s field %r" % (type(config).__name__, key))
        kind = type(getattr(config, key))
        try:
            out[key] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
        except ValueError:
            raise SystemExit("--set: bad value %r for %s (%s)" % (value, key, kind.__name__))
    return out


def run_result_worker(cmd, what: str) -> dict:
    """Run a benchmark worker process and return the JSON object of its ``RESULT {...}`` stdout line.

    Each figure of ``bench/bench_speed.py`` and ``bench/bench_memory.py`` comes from a fresh process, so that its
    peak memory is its own.

    Args:
        cmd: the worker's argv (``[sys.executable, script, "--worker...", ...]``).
        what: names the worker in the error.

    Raises:
        SystemExit: the worker printed no ``RESULT`` line (its stderr tail is written to stderr first).
    """
    import subprocess
    import sys
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    sys.stderr.write(proc.stderr[-3000:])
    raise SystemExit("error: worker %s failed (exit %d)" % (what, proc.returncode))


def model_flags(define_flags: Callable[[flags.FlagValues], None], flagfile: str, *overrides: str,
                model: Optional[str] = None, known_only: bool = False) -> flags.FlagValues:
    """A fresh ``FlagValues`` with a model's flags, parsed from ``flagfile`` and then ``overrides``.

    Args:
        define_flags: the model's ``define_flags(flag_values)``.
        flagfile: path of the model's flagfile (``configs/<name>_debug.cfg``).
        overrides: further ``--flag=value`` arguments; they win over the flagfile.
        model: if given, a ``--model`` flag with this default is defined too (flagfiles that name it).
        known_only: ignore flags the model does not define (as ``FlagValues.__call__``).

    Returns:
        The parsed ``FlagValues``.

    Raises:
        absl.flags.Error: an unknown flag (unless ``known_only``) or a bad value.
    """
    fv = flags.FlagValues()
    define_flags(fv)
    if model is not None:
        flags.DEFINE_string("model", model, "", flag_values=fv)
    fv(["eval", "--flagfile=" + str(flagfile)] + list(overrides), known_only=known_only)
    return fv


def checkpoint_step(workdir: str) -> int:
    """Step of the newest checkpoint in ``<workdir>/checkpoints`` (0 when there is none)."""
    import tensorflow as tf
    path = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    return int(path.rsplit("-", 1)[1]) if path else 0


def write_json_atomic(path: str, record: dict) -> None:
    """Write ``record`` as indented, key-sorted JSON to ``path`` (parent folders created) through a
    temporary file in the same folder and a rename, so readers never see a half-written file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def hog_features(images: np.ndarray) -> np.ndarray:
    """HOG descriptors of face images (scikit-image; grey, S/8-pixel cells, 9 orientations, 2x2 blocks).

    Args:
        images: float ``[N, S, S, 3]`` in [-1, 1].

    Returns:
        float ``[N, D]``, one descriptor per image.
    """
    from skimage.feature import hog
    grey = ((images + 1.0) / 2.0).mean(axis=-1)
    cell = max(2, images.shape[1] // 8)
    return np.stack([hog(g, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2)) for g in grey])
