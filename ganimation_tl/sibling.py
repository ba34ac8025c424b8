"""Glue shared by the sibling-paper models of ``other_models/``: common flags and the trainer call.

A sibling model file (``other_models/<paper>.py``) defines

* a frozen config dataclass whose field names are its flag names (flags default to None = "the
  config default", see :func:`ganimation_tl.flag_utils.config_from_flags`). Generic names
  (``batch_size``, ``epochs``, ``seed``, ``image_size``, ``beta1``...) are shared by all models;
  paper-specific names carry the model name as prefix (``drgan_pose_dim``) so models never clash;
* a model object with the trainer interface (:mod:`ganimation_tl.trainer`): ``trackables()``,
  ``train_step(batch, step) -> dict``, ``set_learning_rate_epoch(epoch) -> dict``,
  ``sample_grid(batch) -> uint8 [H, W, 3]`` (or None) and optionally ``check_health``;
* ``define_flags(flag_values)`` calling :func:`define_common_flags` plus its own flags, and
  ``train(flag_values)`` that builds config, data and model and ends with :func:`run_trainer`;
* ``registry.register(ModelEntry(name, summary, define_flags, train))`` at import.

Data flows one way: data (``ganimation_tl.datasets``) -> networks (``ganimation_tl.layers``,
``networks``) -> losses (``ganimation_tl.losses``) -> model train step -> :class:`Trainer` -> CLI.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from absl import flags, logging

from ganimation_tl.errors import InputError
from ganimation_tl.flag_utils import config_from_flags, define_once

__all__ = ["MNIST_ADAM_FLAGS", "define_common_flags", "define_model_flags", "define_config_field_flags", "check_positive_flags",
           "require_flag", "config_or_input_error", "load_digit_domains", "model_workdir", "write_run_json",
           "run_trainer", "train_and_evaluate", "restore_latest", "images_grid"]

# ``extra`` flags of define_model_flags for the models on MNIST digits trained with Adam (Moving MNIST video models).
MNIST_ADAM_FLAGS = (
    ("string", "mnist_path", "Path of the classic mnist.pkl.gz (e.g. ../shared/data/digits/mnist.pkl.gz)."),
    ("float", "learning_rate", "Adam learning rate. Unset: the model's default."),
    ("float", "beta1", "Adam beta1. Unset: the model's default."),
)

# Flag kind of a config field, by the type of its default (see define_config_field_flags).
_FIELD_FLAG_KINDS = {bool: "bool", int: "integer", float: "float", str: "string"}


def define_common_flags(flag_values=flags.FLAGS) -> None:
    """Define the trainer flags every model shares (``--workdir``, ``--max_steps``, ``--max_minutes``,
    ``--log_every``, ``--image_every``, ``--checkpoint_every``, ``--keep_checkpoints``) and the generic
    hyper-parameter names (``--batch_size``, ``--epochs``, ``--seed``, ``--image_size``); idempotent."""
    define_once("string", "workdir", None, "Run folder (checkpoints, TensorBoard, samples). "
                "Default: runs/<model>. Re-running with the same workdir resumes.", flag_values)
    define_once("integer", "max_steps", None, "Stop after this many iterations in total (default: all epochs).",
                flag_values)
    define_once("float", "max_minutes", None, "Stop after this many minutes of wall-clock time in this process "
                "(checked after each iteration; a checkpoint is written). Default: no time limit.", flag_values)
    define_once("integer", "log_every", 10, "Iterations between log lines and scalar summaries.", flag_values)
    define_once("integer", "image_every", 100, "Iterations between sample grids (0: never).", flag_values)
    define_once("integer", "checkpoint_every", 500, "Iterations between checkpoints (also at the end).", flag_values)
    define_once("integer", "keep_checkpoints", 3, "Checkpoints to keep.", flag_values)
    for name, text in (("batch_size", "Batch size."), ("epochs", "Epochs."), ("seed", "Random seed."),
                       ("image_size", "Side of the square images fed to the networks.")):
        define_once("integer", name, None, text + " Unset: the model's config default.", flag_values)


def define_model_flags(flag_help: Mapping[str, Tuple[str, str]], flag_values=flags.FLAGS, *,
                       extra: Sequence[Tuple[str, str, str]] = ()) -> None:
    """Define a sibling model's flags: the common ones (:func:`define_common_flags`), one flag per
    config field of ``flag_help`` and the ``extra`` flags; idempotent (names already defined are kept).

    Args:
        flag_help: ``{name: (kind, help)}``, kind one of ``"string"``, ``"integer"``, ``"float"``,
            ``"bool"``; each flag defaults to None (= the config default) and its help gets
            " Unset: the config default." appended.
        flag_values: the ``FlagValues`` to define them in.
        extra: ``(kind, name, help)`` triples for flags that are not config fields (data paths, test
            limits), defined after ``flag_help`` with default None and the help as given.
    """
    define_common_flags(flag_values)
    for name, (kind, text) in flag_help.items():
        define_once(kind, name, None, text + " Unset: the config default.", flag_values)
    for kind, name, text in extra:
        define_once(kind, name, None, text, flag_values)


def define_config_field_flags(config_cls, prefix: str, help_format: str, flag_values=flags.FLAGS) -> None:
    """Define one flag (default None = the config default) per field of dataclass ``config_cls`` whose
    name starts with ``prefix``; idempotent.

    Args:
        config_cls: a config dataclass; the fields taken must have bool, int, float or str defaults.
        prefix: field-name prefix, e.g. ``"drnet_"``.
        help_format: ``%``-format with two slots: the field name without ``prefix`` and with spaces for
            underscores, and the field's default (``"DrNet %s. Unset: %r."``).
        flag_values: the ``FlagValues`` to define them in.

    Raises:
        KeyError: a selected field has a default of another type.
    """
    for field in dataclasses.fields(config_cls):
        if field.name.startswith(prefix):
            define_once(_FIELD_FLAG_KINDS[type(field.default)], field.name, None,
                        help_format % (field.name[len(prefix):].replace("_", " "), field.default), flag_values)


def require_flag(flag_values, name: str, example: str) -> Any:
    """The value of flag ``--name``, which must be set.

    Args:
        flag_values: parsed flags.
        name: the flag name without dashes.
        example: what the flag should hold, for the message (``"the CFP folder, e.g. ../shared/data/cfp"``).

    Returns:
        The flag's value.

    Raises:
        InputError: ``"--<name> is required (<example>)"`` if the flag is unset or empty.
    """
    value = flag_values[name].value
    if not value:
        raise InputError("--%s is required (%s)" % (name, example))
    return value


def check_positive_flags(flag_values, names: Sequence[str]) -> None:
    """Raise :class:`InputError` naming the flag if any of ``names`` is set and not positive."""
    for name in names:
        value = flag_values[name].value
        if value is not None and not value > 0:
            raise InputError("--%s must be positive, got %r" % (name, value))


def config_or_input_error(cls, flag_values=flags.FLAGS, **overrides):
    """``config_from_flags(cls, ...)``, turning the dataclass's ``ValueError``/``TypeError``
    (raised by its ``__post_init__`` checks) into an :class:`InputError` naming the model."""
    try:
        return config_from_flags(cls, flag_values, **overrides)
    except (ValueError, TypeError) as error:
        raise InputError("invalid %s settings: %s" % (cls.__name__, error))


def load_digit_domains(model_name: str, config, flag_values=flags.FLAGS):
    """Source/target digit domains of a domain-adaptation model, from ``--mnist_path`` and its config.

    Args:
        model_name: the registry name; ``config`` must have ``<model_name>_source``, ``_target``,
            ``_num_source``, ``_num_target``, ``_num_target_test`` and ``seed`` fields.
        config: the model's config dataclass.
        flag_values: parsed flags with ``--mnist_path`` and ``--image_size``.

    Returns:
        :class:`ganimation_tl.digit_domains.DigitDomains`, grey (1 channel) 28x28 digits.

    Raises:
        InputError: ``--mnist_path`` unset or unreadable, ``--image_size`` set to anything but 28, or
            bad domains / counts (the message names the flag).
    """
    from ganimation_tl.digit_domains import load_domain_pair

    mnist_path = require_flag(flag_values, "mnist_path",
                              "the MNIST pickle, e.g. ../shared/data/digits/mnist.pkl.gz")
    if flag_values.image_size not in (None, 28):
        raise InputError("--image_size: %s works on 28x28 digits, got %r" % (model_name, flag_values.image_size))
    field = lambda suffix: getattr(config, "%s_%s" % (model_name, suffix))  # noqa: E731
    return load_domain_pair(field("source"), field("target"), mnist_path, channels=1,
                            num_source=field("num_source"), num_target=field("num_target"),
                            num_target_test=field("num_target_test"), seed=config.seed)


def model_workdir(model_name: str, flag_values=flags.FLAGS) -> str:
    """The run folder: ``--workdir``, or ``runs/<model_name>`` when it is unset."""
    return flag_values.workdir or os.path.join("runs", model_name)


def write_run_json(model_name: str, flag_values, filename: str, record) -> str:
    """Write ``record`` (JSON-serialisable) to ``<workdir>/<filename>`` atomically.

    Args:
        model_name: the registry name (default workdir, see :func:`model_workdir`).
        flag_values: parsed flags (``--workdir``).
        filename: file name inside the workdir, e.g. ``"heldout_metrics.json"``.
        record: the JSON value to write.

    Returns:
        The path written.
    """
    from ganimation_tl.trainer import write_json_atomic

    path = os.path.join(model_workdir(model_name, flag_values), filename)
    write_json_atomic(path, record)
    return path


def run_trainer(model_name: str, model, make_dataset: Callable[[int, int], Iterable], *, steps_per_epoch: int,
                epochs: int, flag_values=flags.FLAGS, config=None, data_description: str = "",
                extra: Optional[dict] = None) -> Dict[str, float]:
    """Run :class:`ganimation_tl.trainer.Trainer` on ``model`` with the common flags.

    Writes ``<workdir>/config.json`` (model name, config dataclass, data description, ``extra``)
    atomically first, then trains with resume, checkpoints, TensorBoard summaries and sample grids.

    Args:
        model_name: the registry name (default workdir ``runs/<model_name>``).
        model: object with the trainer interface (see the module docstring).
        make_dataset: ``(epoch, skip_batches) -> iterable of batches`` for one epoch; must be
            deterministic per epoch so a resumed run continues with the same batches.
        steps_per_epoch: batches per epoch (> 0). epochs: epochs to train (> 0).
        flag_values: parsed flags (the common flags of :func:`define_common_flags`).
        config: the model's config dataclass (saved in ``config.json``).

    Returns:
        The last logged metrics.

    Raises:
        InputError: non-positive counts or trainer flags.
    """
    from ganimation_tl.trainer import Trainer, TrainerOptions, write_json_atomic

    check_positive_flags(flag_values, ("max_steps", "log_every", "checkpoint_every", "keep_checkpoints"))
    if flag_values.max_minutes is not None and not flag_values.max_minutes > 0:
        raise InputError("--max_minutes must be positive, got %r" % flag_values.max_minutes)
    if steps_per_epoch <= 0:
        raise InputError("%s: the data gives no full batch per epoch (steps_per_epoch=%d); use a smaller "
                         "--batch_size or more data" % (model_name, steps_per_epoch))
    if epochs <= 0:
        raise InputError("--epochs must be positive, got %d" % epochs)
    workdir = model_workdir(model_name, flag_values)
    os.makedirs(workdir, exist_ok=True)
    record = {"model": model_name, "data": data_description}
    if config is not None:
        record["config"] = dataclasses.asdict(config)
    if extra:
        record.update(extra)
    write_json_atomic(os.path.join(workdir, "config.json"), record)
    options = TrainerOptions(workdir=workdir, epochs=epochs, steps_per_epoch=steps_per_epoch,
                             max_steps=flag_values.max_steps, max_minutes=flag_values.max_minutes,
                             log_every=flag_values.log_every, image_every=flag_values.image_every,
                             checkpoint_every=flag_values.checkpoint_every,
                             keep_checkpoints=flag_values.keep_checkpoints)
    logging.info("%s on %s; %d steps per epoch, %d steps in this run; workdir %s", model_name,
                 data_description or "its data", steps_per_epoch, options.total_steps, workdir)
    return Trainer(model, make_dataset, options).run()


def train_and_evaluate(model_name: str, model, make_dataset: Callable[[int, int], Iterable],
                       evaluate: Callable[[], Dict[str, float]], *, steps_per_epoch: int, epochs: int,
                       flag_values=flags.FLAGS, config=None, data_description: str = "") -> Dict[str, float]:
    """:func:`run_trainer`, then ``evaluate()`` on held-out data, written to ``<workdir>/heldout_metrics.json``
    atomically and logged.

    Args:
        model_name, model, make_dataset, steps_per_epoch, epochs, flag_values, config, data_description:
            as for :func:`run_trainer`.
        evaluate: no-argument callable run after training, returning JSON-serialisable metrics
            (e.g. ``{"heldout/nme": 0.05}``).

    Returns:
        The trainer's last metrics updated with the evaluation metrics.

    Raises:
        InputError: as :func:`run_trainer`.
    """
    metrics = run_trainer(model_name, model, make_dataset, steps_per_epoch=steps_per_epoch, epochs=epochs,
                          flag_values=flag_values, config=config, data_description=data_description)
    result = evaluate()
    write_run_json(model_name, flag_values, "heldout_metrics.json", result)
    logging.info("held-out: %s", json.dumps(result))
    metrics = dict(metrics)
    metrics.update(result)
    return metrics


def images_grid(rows: Sequence, pad: int = 2):
    """Tile image rows into one uint8 panel for sample grids.

    Args:
        rows: a list of rows, each a list/array of images ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``,
            float in [-1, 1] (or [0, 1] if every value is >= 0 and the array is float; pass uint8 to be
            exact) or uint8. All images must share H and W.
        pad: white pixels between images.

    Returns:
        uint8 ``[rows*(H+pad)-pad, cols*(W+pad)-pad, 3]`` RGB.
    """
    import numpy as np

    def to_uint8(img):
        img = np.asarray(img)
        if img.ndim == 2:
            img = img[..., None]
        if img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        if img.dtype != np.uint8:
            img = img.astype(np.float32)
            if img.min() < 0:
                img = (img + 1.0) / 2.0
            img = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
        return img

    rows = [[to_uint8(i) for i in row] for row in rows]
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + pad) - pad, cols * (w + pad) - pad, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = img
    return out


def restore_latest(model, workdir: str) -> str:
    """Restore the newest checkpoint of ``<workdir>/checkpoints`` (as written by :func:`run_trainer`)
    into ``model`` (built with the same config; its ``trackables()`` name what is restored).

    Returns:
        The checkpoint path.

    Raises:
        InputError: the workdir has no checkpoint.
    """
    import tensorflow as tf

    path = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    if path is None:
        raise InputError("no checkpoint in %s/checkpoints (train there first with train.py --workdir=%s)"
                         % (workdir, workdir))
    tf.train.Checkpoint(**model.trackables()).restore(path).expect_partial()
    return path
