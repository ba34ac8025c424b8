"""Load a trained GANimation from a training workdir (for inference and export).

A workdir written by ``train.py --model=ganimation`` holds:

* ``config.json``: ``{"model": "ganimation", "config": {...GANimationConfig fields...}, ...}``
  (written by :mod:`ganimation_tl.ganimation_task`);
* ``checkpoints/ckpt-N.index`` + ``ckpt-N.data-*``: ``tf.train.Checkpoint`` files written by
  :class:`ganimation_tl.trainer.Trainer` (network weights, optimizer state, step counter).

:func:`load_model_from_workdir` rebuilds the networks from ``config.json`` and restores the newest
checkpoint's network weights (the optimizer state and step counter are left out: inference does not
need them). Used by ``infer.py`` and ``python -m ganimation_tl.export``.

TensorFlow and TensorLayer are imported only when a model is built, so reading and checking
``config.json`` (:func:`read_workdir_config`) is cheap and fails fast on a bad workdir.
"""
from __future__ import annotations

import json
import os
from typing import Optional, Tuple

from ganimation_tl.errors import InputError

__all__ = ["CONFIG_FILE", "read_workdir_config", "load_model_from_workdir", "load_model_and_checkpoint"]

#: Name of the run description inside a workdir.
CONFIG_FILE = "config.json"


def read_workdir_config(workdir):
    """Read and validate ``<workdir>/config.json`` of a GANimation run.

    Args:
        workdir: a training workdir (``train.py --workdir``).

    Returns:
        The run's :class:`ganimation_tl.model.GANimationConfig` (unknown keys, e.g. written by a
        later version, are ignored; missing keys take the defaults).

    Raises:
        InputError: the workdir is not a folder; ``config.json`` is missing, unreadable, not JSON,
            not a GANimation run (``"model"`` is not ``"ganimation"``), or holds invalid settings.
            The message names the file.
    """
    workdir = os.fspath(workdir)
    if not os.path.isdir(workdir):
        raise InputError("workdir %s is not a folder (expected a training workdir with %s and checkpoints/)"
                         % (workdir, CONFIG_FILE))
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise InputError("%s not found: %s is not a training workdir (train.py --workdir writes it)"
                         % (path, workdir))
    try:
        with open(path, encoding="utf-8") as f:
            payload = json.load(f)
    except (OSError, UnicodeDecodeError) as error:
        raise InputError("cannot read %s: %s" % (path, error)) from None
    except ValueError as error:  # json.JSONDecodeError
        raise InputError("%s is not valid JSON (%s); the workdir is corrupt" % (path, error)) from None
    if not isinstance(payload, dict):
        raise InputError("%s: expected a JSON object with \"model\" and \"config\", got %s"
                         % (path, type(payload).__name__))
    model_name = payload.get("model")
    if model_name != "ganimation":
        raise InputError("%s: this workdir holds model %r, not 'ganimation'" % (path, model_name))
    values = payload.get("config")
    if not isinstance(values, dict):
        raise InputError("%s: field \"config\" is missing or not an object" % path)

    from ganimation_tl.model import GANimationConfig  # imports TensorFlow + TensorLayer

    try:
        return GANimationConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise InputError("%s: invalid GANimation settings in \"config\": %s" % (path, error)) from None


def load_model_and_checkpoint(workdir, checkpoint: Optional[str] = None) -> Tuple[object, str]:
    """Like :func:`load_model_from_workdir`, also returning the checkpoint path restored.

    Args:
        workdir: a training workdir.
        checkpoint: a checkpoint path prefix (``.../checkpoints/ckpt-N``) to restore instead of the
            newest one.

    Returns:
        ``(model, checkpoint_path)``.

    Raises:
        InputError: see :func:`load_model_from_workdir`.
    """
    config = read_workdir_config(workdir)
    from ganimation_tl.model import GANimation
    from ganimation_tl.trainer import latest_checkpoint

    workdir = os.fspath(workdir)
    path = checkpoint if checkpoint is not None else latest_checkpoint(workdir)
    if path is None:
        raise InputError("no checkpoint found in %s (expected %s/checkpoints/ckpt-N.index); train first"
                         % (workdir, workdir))
    if not os.path.isfile(path + ".index"):
        raise InputError("checkpoint %s not found (no %s.index)" % (path, path))
    model = GANimation(config, build_optimizers=False)
    import tensorflow as tf

    # Only the network weights: the checkpoint's optimizer slots and step counter are not read.
    ckpt = tf.train.Checkpoint(generator_weights=list(model.generator.all_weights),
                               critic_weights=list(model.critic.all_weights))
    try:
        ckpt.restore(path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise InputError("checkpoint %s does not match the model described by %s (%s)"
                         % (path, os.path.join(workdir, CONFIG_FILE), str(error).strip().splitlines()[0])) from None
    model.generator.eval()
    model.critic.eval()
    return model, path


def load_model_from_workdir(workdir, checkpoint: Optional[str] = None):
    """Rebuild a trained GANimation from its training workdir.

    Reads ``<workdir>/config.json`` (architecture and other settings), builds the generator and the
    critic, and restores the network weights of the newest checkpoint in ``<workdir>/checkpoints``
    (or of ``checkpoint``). Optimizer state is not restored. Both networks are switched to eval mode
    (GANimation has no layer that behaves differently, but TensorLayer requires a mode).

    Args:
        workdir: a training workdir (``train.py --workdir``).
        checkpoint: optional checkpoint path prefix (``<workdir>/checkpoints/ckpt-N``); default: the
            newest.

    Returns:
        A :class:`ganimation_tl.model.GANimation`; use ``model.edit(images, aus)`` (images float32
        ``[B, H, W, 3]`` NHWC RGB in [-1, 1], aus float32 ``[B, 17]`` in [0, 1] = OpenFace
        intensity / 5) and ``model.estimate_aus(images)``.

    Raises:
        InputError: the workdir or its ``config.json`` is missing, corrupt or not a GANimation run;
            there is no checkpoint; or the checkpoint does not match the configured architecture.
    """
    return load_model_and_checkpoint(workdir, checkpoint)[0]
