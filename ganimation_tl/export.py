"""Export a trained GANimation for TensorFlow Serving (SavedModel) and TensorFlow Lite.

Command line::

    python -m ganimation_tl.export --workdir runs/ganimation --export_dir export/ganimation --version 1 \\
        [--format saved_model|tflite] [--overwrite] [--noinclude_critic]

writes the TF Serving layout ``<export_dir>/<version>/`` (``saved_model.pb``, ``variables/``,
``assets.extra/ganimation_config.json``; with ``--format tflite`` also ``ganimation.tflite``). Serve it
with ``tensorflow_model_server --model_name=ganimation --model_base_path=/abs/path/<export_dir>``; see
``docs/serving.md``.

Signatures (S = the model's image size, 128 for the paper's model; all layouts NHWC, RGB; the batch
dimension is free; shapes and dtypes are fixed so a mismatched request is refused):

``serving_default``
    inputs ``image`` float32 ``[B, S, S, 3]`` in [-1, 1] (``pixel / 127.5 - 1``) and ``aus`` float32
    ``[B, 17]``: the target action-unit intensities in [0, 1] (OpenFace 0..5 intensity / 5), in the order
    of :data:`ganimation_tl.aus.AU_NAMES`. Outputs ``image`` float32 ``[B, S, S, 3]`` (the edited face,
    in [-1, 1]), ``attention_mask`` float32 ``[B, S, S, 1]`` in [0, 1] (1 keeps the input pixel) and
    ``color_mask`` float32 ``[B, S, S, 3]`` in [-1, 1]; ``image = A * input + (1 - A) * C``
    (GANimation, Pumarola et al., ECCV 2018, section 4.1). Inputs are used as given: values outside the
    ranges are not clipped or rejected.
``serving_uint8``
    the same edit for 8-bit images: input ``image`` uint8 ``[B, S, S, 3]`` in [0, 255] (scaled in the
    graph as ``x / 127.5 - 1``) and ``aus`` as above; outputs ``image_uint8`` uint8 ``[B, S, S, 3]``
    (``clip(floor((y + 1) * 127.5 + 0.5), 0, 255)`` of the edited float image y, i.e. round half up)
    and the two float masks as above.
``estimate_aus`` (absent with ``include_critic=False``)
    input ``image`` float32 ``[B, S, S, 3]`` in [-1, 1]; outputs ``aus`` float32 ``[B, 17]``: the
    critic's AU regression head clipped to [0, 1] (the head is linear and unbounded, trained towards
    AUs in [0, 1]; clipped values are directly usable as ``aus`` of ``serving_default``), and
    ``aus_raw``, the same values unclipped (for evaluation).

Besides the signature's static shapes, the graph checks at run time that ``image`` and ``aus`` have the
same batch size (an ``InvalidArgumentError`` naming both), so a request to a loader that does not
check signature shapes still fails with a clear message instead of broadcasting.

Writing is atomic: everything goes to a hidden temporary folder beside the version folder (TF Serving
only looks at folders named by an integer), which is then renamed to ``<version>``. An existing version
is refused unless ``overwrite=True``; it is then swapped out by two renames, so neither TF Serving nor
a reader ever sees a half-written version folder. (TF Serving does not reload a version it already
serves when its folder changes: export a new version number instead.)

Facts about TF 2.21 + TensorLayer 2.2.5 export behaviour (variables must be referenced by the
``tf.Module``; ``tl.layers.DeConv2d`` breaks the TF1 loader): ``../shared/docs/toolchain.md`` 1.3.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, Optional

from ganimation_tl.errors import InputError

__all__ = [
    "SIGNATURE_EDIT", "SIGNATURE_EDIT_UINT8", "SIGNATURE_ESTIMATE_AUS", "CONFIG_ASSET", "TFLITE_FILENAME",
    "ExportError", "build_serving_module", "serving_signatures", "export_saved_model", "convert_to_tflite",
    "check_tflite", "define_flags", "main", "run",
]

SIGNATURE_EDIT = "serving_default"
SIGNATURE_EDIT_UINT8 = "serving_uint8"
SIGNATURE_ESTIMATE_AUS = "estimate_aus"
#: Export description inside a version folder (``assets.extra`` is TF Serving's place for extra files).
CONFIG_ASSET = os.path.join("assets.extra", "ganimation_config.json")
#: TFLite model inside a version folder (``--format tflite``).
TFLITE_FILENAME = "ganimation.tflite"
#: Largest |TFLite - SavedModel| accepted by :func:`check_tflite` for float outputs (measured: ~1e-5).
TFLITE_TOLERANCE = 1e-3
EXPORT_FORMAT_VERSION = 1


class ExportError(RuntimeError):
    """The export could not be completed or verified (not caused by user input)."""


# ----------------------------------------------------------------------------------------------------
# Serving module
# ----------------------------------------------------------------------------------------------------
def build_serving_module(model, include_critic: bool = True):
    """Wrap a GANimation in a ``tf.Module`` with the serving signatures (see the module docstring).

    Args:
        model: a :class:`ganimation_tl.model.GANimation` (e.g. from
            :func:`ganimation_tl.checkpoints.load_model_from_workdir`).
        include_critic: also export the critic and the ``estimate_aus`` signature (the critic is 5x
            the generator's size: 44.9M vs 8.5M parameters at 128 px).

    Returns:
        A ``tf.Module`` with attributes ``vars`` (the networks' variables, so that
        ``tf.saved_model.save`` can track them), ``edit``, ``edit_uint8`` and (with the critic)
        ``estimate_aus``: ``tf.function``s with fixed input signatures returning dicts of tensors.
        Save it with ``tf.saved_model.save(module, path, signatures=serving_signatures(module))``.
    """
    import tensorflow as tf

    from ganimation_tl.networks import compose

    size = int(model.config.image_size)
    num_aus = int(model.config.num_aus)
    image_spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="image")
    image_uint8_spec = tf.TensorSpec([None, size, size, 3], tf.uint8, name="image")
    aus_spec = tf.TensorSpec([None, num_aus], tf.float32, name="aus")

    def check_inputs(image, aus):
        image = tf.ensure_shape(image, [None, size, size, 3])
        aus = tf.ensure_shape(aus, [None, num_aus])
        check = tf.debugging.assert_equal(
            tf.shape(image)[0], tf.shape(aus)[0],
            message="image and aus must have the same batch size (first dimension)")
        with tf.control_dependencies([check]):
            return tf.identity(image), tf.identity(aus)

    def edit(image, aus):
        image, aus = check_inputs(image, aus)
        # The same computation as GANimation.edit, inlined (no nested tf.function in the export).
        color_mask, attention_mask = model.generator([image, aus])
        edited = compose(image, color_mask, attention_mask)
        return {"image": edited, "attention_mask": attention_mask, "color_mask": color_mask}

    def edit_uint8(image, aus):
        image = tf.ensure_shape(image, [None, size, size, 3])
        result = edit(tf.cast(image, tf.float32) / 127.5 - 1.0, aus)
        pixels = tf.clip_by_value(tf.floor((result["image"] + 1.0) * 127.5 + 0.5), 0.0, 255.0)
        return {"image_uint8": tf.cast(pixels, tf.uint8), "attention_mask": result["attention_mask"],
                "color_mask": result["color_mask"]}

    def estimate_aus(image):
        image = tf.ensure_shape(image, [None, size, size, 3])
        raw = model.critic(image)[1]  # GANimation.estimate_aus
        return {"aus": tf.clip_by_value(raw, 0.0, 1.0), "aus_raw": tf.identity(raw)}

    module = tf.Module(name="ganimation_serving")
    # The functions capture the TensorLayer variables; the module must reference them or
    # tf.saved_model.save refuses ("untracked resource"), toolchain.md 1.3.
    variables = list(model.generator.all_weights)
    if include_critic:
        variables += list(model.critic.all_weights)
    module.vars = variables
    module.edit = tf.function(edit, input_signature=[image_spec, aus_spec])
    module.edit_uint8 = tf.function(edit_uint8, input_signature=[image_uint8_spec, aus_spec])
    if include_critic:
        module.estimate_aus = tf.function(estimate_aus, input_signature=[image_spec])
    return module


def serving_signatures(module) -> Dict[str, object]:
    """The ``signatures=`` dict for ``tf.saved_model.save`` of a :func:`build_serving_module` module."""
    signatures = {SIGNATURE_EDIT: module.edit, SIGNATURE_EDIT_UINT8: module.edit_uint8}
    if hasattr(module, "estimate_aus"):
        signatures[SIGNATURE_ESTIMATE_AUS] = module.estimate_aus
    return signatures


def _export_description(model, include_critic: bool, checkpoint: Optional[str], with_tflite: bool) -> dict:
    import tensorflow as tf

    import ganimation_tl
    from ganimation_tl.aus import AU_DESCRIPTIONS, AU_NAMES, OPENFACE_MAX

    c = model.config
    s = int(c.image_size)
    signatures = {
        SIGNATURE_EDIT: {
            "inputs": {"image": ["float32", [-1, s, s, 3], "[-1, 1] = pixel / 127.5 - 1, NHWC RGB"],
                       "aus": ["float32", [-1, c.num_aus], "[0, 1] = OpenFace intensity / %g" % OPENFACE_MAX]},
            "outputs": {"image": ["float32", [-1, s, s, 3], "[-1, 1] edited face"],
                        "attention_mask": ["float32", [-1, s, s, 1], "[0, 1], 1 keeps the input pixel"],
                        "color_mask": ["float32", [-1, s, s, 3], "[-1, 1]"]}},
        SIGNATURE_EDIT_UINT8: {
            "inputs": {"image": ["uint8", [-1, s, s, 3], "[0, 255] NHWC RGB"],
                       "aus": ["float32", [-1, c.num_aus], "[0, 1] = OpenFace intensity / %g" % OPENFACE_MAX]},
            "outputs": {"image_uint8": ["uint8", [-1, s, s, 3], "[0, 255] = clip(floor((y + 1) * 127.5 + 0.5))"],
                        "attention_mask": ["float32", [-1, s, s, 1], "[0, 1]"],
                        "color_mask": ["float32", [-1, s, s, 3], "[-1, 1]"]}},
    }
    if include_critic:
        signatures[SIGNATURE_ESTIMATE_AUS] = {
            "inputs": {"image": ["float32", [-1, s, s, 3], "[-1, 1] NHWC RGB"]},
            "outputs": {"aus": ["float32", [-1, c.num_aus], "critic AU head clipped to [0, 1]"],
                        "aus_raw": ["float32", [-1, c.num_aus], "critic AU head, unclipped"]}}
    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "model": "ganimation",
        "image_size": s,
        "num_aus": int(c.num_aus),
        "au_names": list(AU_NAMES),
        "au_descriptions": list(AU_DESCRIPTIONS),
        "au_scale": "model AU = OpenFace AUxx_r intensity (0..5) / %g, in [0, 1]" % OPENFACE_MAX,
        "image_layout": "NHWC, RGB; float signatures take pixel / 127.5 - 1 in [-1, 1]",
        "face_crop": "aligned face crop as ganimation_tl.faces.align_face(photo, face, size=image_size)",
        "signatures": signatures,
        "tflite": TFLITE_FILENAME if with_tflite else None,
        "config": dataclasses.asdict(c),
        "checkpoint": checkpoint,
        "ganimation_tl_version": ganimation_tl.__version__,
        "tensorflow_version": tf.__version__,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# ----------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------
def _check_version(version) -> int:
    if isinstance(version, bool):
        raise InputError("--version must be a non-negative integer (the TF Serving version folder), got %r" % version)
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InputError("--version must be a non-negative integer (the TF Serving version folder), got %r"
                         % (version,)) from None
    if number != version and str(number) != str(version).strip():
        raise InputError("--version must be an integer, got %r" % (version,))
    if number < 0:
        raise InputError("--version must be >= 0 (the TF Serving version folder), got %d" % number)
    return number


def _folder_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _chmod_tree(root: str) -> None:
    """mkdtemp creates 0700 folders; give the export the usual permissions so a server running as
    another user can read it."""
    dir_mode = _folder_mode()
    file_mode = dir_mode & 0o666
    os.chmod(root, dir_mode)
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(folder, d), dir_mode)
        for f in files:
            os.chmod(os.path.join(folder, f), file_mode)


def _write_json(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def export_saved_model(model, export_dir, version, *, overwrite: bool = False, tflite: bool = False,
                       include_critic: bool = True, checkpoint: Optional[str] = None) -> str:
    """Write ``model`` as TF Serving version ``<export_dir>/<version>/``, atomically.

    Args:
        model: a :class:`ganimation_tl.model.GANimation` (trained weights, e.g. from
            :func:`ganimation_tl.checkpoints.load_model_from_workdir`).
        export_dir: the model base path TF Serving watches (``--model_base_path``), e.g.
            ``export/ganimation``; created if missing.
        version: the version number, an integer >= 0 (the folder name).
        overwrite: replace an existing ``<version>`` folder (swapped in by renames, never half-written).
        tflite: also convert the SavedModel to ``<version>/ganimation.tflite`` (all signatures) and
            verify it with the TFLite interpreter (:func:`check_tflite`).
        include_critic: export the critic and the ``estimate_aus`` signature.
        checkpoint: the checkpoint the weights came from, recorded in the export description.

    Returns:
        The absolute path of the version folder.

    Raises:
        InputError: bad version; ``export_dir`` is a file or looks like a version folder itself;
            ``<version>`` exists and ``overwrite`` is False.
        ExportError: the TFLite model disagrees with the SavedModel.
        Any error of ``tf.saved_model.save`` is re-raised after the temporary folder is removed; no
        version folder is left behind (an overwritten version stays in place).
    """
    import tensorflow as tf

    export_dir, version, final = _check_destination(export_dir, version, overwrite)
    try:
        os.makedirs(export_dir, exist_ok=True)
    except OSError as error:
        raise InputError("cannot create --export_dir %s: %s" % (export_dir, error)) from None

    tmp = tempfile.mkdtemp(prefix=".tmp-%d-" % version, dir=export_dir)
    try:
        module = build_serving_module(model, include_critic=include_critic)
        tf.saved_model.save(module, tmp, signatures=serving_signatures(module))
        _write_json(os.path.join(tmp, CONFIG_ASSET),
                    _export_description(model, include_critic, checkpoint, tflite))
        if tflite:
            tflite_path = convert_to_tflite(tmp, os.path.join(tmp, TFLITE_FILENAME))
            check_tflite(tflite_path, tmp)
        _chmod_tree(tmp)
        _move_into_place(tmp, final, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _check_destination(export_dir, version, overwrite: bool):
    """Validate the destination; returns ``(abs export_dir, version, abs version folder)``."""
    version = _check_version(version)
    export_dir = os.path.abspath(os.fspath(export_dir))
    if os.path.basename(export_dir).isdigit():
        raise InputError("--export_dir %s ends in a number: give the model's base folder (e.g. export/ganimation); "
                         "the version folder <export_dir>/%d is created by the export" % (export_dir, version))
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise InputError("--export_dir %s exists and is not a folder" % export_dir)
    final = os.path.join(export_dir, str(version))
    if os.path.lexists(final) and not overwrite:
        raise InputError("version %d already exists in %s; export a new --version (TF Serving does not reload a "
                         "version it serves) or pass --overwrite" % (version, export_dir))
    return export_dir, version, final


def _move_into_place(tmp: str, final: str, overwrite: bool) -> None:
    """Rename ``tmp`` to ``final``; with ``overwrite``, first move an existing ``final`` aside (and
    restore it if the second rename fails), then delete it."""
    if not os.path.lexists(final):
        try:
            os.rename(tmp, final)
        except OSError as error:  # someone created it meanwhile (non-empty): never merge into it
            raise InputError("cannot create %s: %s" % (final, error)) from None
        return
    if not overwrite:
        raise InputError("version folder %s appeared during the export; not overwriting it" % final)
    parent = os.path.dirname(final)
    old_holder = tempfile.mkdtemp(prefix=".old-%s-" % os.path.basename(final), dir=parent)
    old = os.path.join(old_holder, "version")
    os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        os.rename(old, final)
        shutil.rmtree(old_holder, ignore_errors=True)
        raise
    shutil.rmtree(old_holder, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------
# TFLite
# ----------------------------------------------------------------------------------------------------
def convert_to_tflite(saved_model_dir: str, output_path: str) -> str:
    """Convert a SavedModel (all its signatures) to a float32 TFLite flatbuffer at ``output_path``.

    Uses ``tf.lite.TFLiteConverter.from_saved_model`` with default settings (no quantisation); the
    file is written to a temporary name in the same folder and renamed. Returns ``output_path``.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    flatbuffer = converter.convert()
    folder = os.path.dirname(os.path.abspath(output_path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(output_path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(flatbuffer)
        os.replace(tmp, output_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return output_path


def _tflite_interpreter(tflite_path: str):
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated ... use ai_edge_litert"
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_path=tflite_path)


def check_tflite(tflite_path: str, saved_model_dir: str, batch_size: int = 2, seed: int = 0,
                 tolerance: float = TFLITE_TOLERANCE) -> Dict[str, float]:
    """Run every signature of the TFLite model and of the SavedModel on the same random inputs.

    Inputs: images uniform in [-1, 1] (uint8 uniform in [0, 255]) and AUs uniform in [0, 1], batch
    ``batch_size``, through the interpreter's signature runners.

    Returns:
        ``{"<signature>/<output>": max |tflite - saved_model|}`` (uint8 outputs in grey levels).

    Raises:
        ExportError: a signature is missing, or a float output differs by more than ``tolerance``
            (a uint8 output by more than 1 grey level).
    """
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    interpreter = _tflite_interpreter(tflite_path)
    runners = interpreter.get_signature_list()
    rng = np.random.default_rng(seed)
    diffs: Dict[str, float] = {}
    for name, function in loaded.signatures.items():
        if name not in runners:
            raise ExportError("TFLite model %s lacks signature %s (has %s)" % (tflite_path, name, sorted(runners)))
        feeds = {}
        for key, spec in function.structured_input_signature[1].items():
            shape = [batch_size] + spec.shape.as_list()[1:]
            if spec.dtype == tf.uint8:
                feeds[key] = rng.integers(0, 256, size=shape, dtype=np.uint8)
            elif key == "aus":
                feeds[key] = rng.uniform(0.0, 1.0, size=shape).astype(np.float32)
            else:
                feeds[key] = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
        expected = {k: v.numpy() for k, v in function(**{k: tf.constant(v) for k, v in feeds.items()}).items()}
        got = interpreter.get_signature_runner(name)(**feeds)
        for key, value in expected.items():
            if key not in got or got[key].shape != value.shape:
                raise ExportError("TFLite %s output %s: shape %s, SavedModel %s"
                                  % (name, key, getattr(got.get(key), "shape", None), value.shape))
            diff = float(np.max(np.abs(got[key].astype(np.float64) - value.astype(np.float64))))
            diffs["%s/%s" % (name, key)] = diff
            limit = 1.0 if value.dtype == np.uint8 else tolerance
            if not diff <= limit:
                raise ExportError("TFLite %s output %s differs from the SavedModel by %g (> %g)"
                                  % (name, key, diff, limit))
    return diffs


# ----------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------
def define_flags(flag_values=None) -> None:
    """Define the export CLI's absl flags (idempotent; call before parsing)."""
    from absl import flags

    from ganimation_tl.flag_utils import define_once

    fv = flags.FLAGS if flag_values is None else flag_values
    define_once("string", "workdir", None, "Training workdir (config.json + checkpoints/) to export.", fv)
    define_once("string", "export_dir", None, "Model base folder for TF Serving, e.g. export/ganimation; "
                "the version is written to <export_dir>/<version>/.", fv)
    define_once("integer", "version", None, "Version number (folder name) to write, >= 0.", fv)
    if "format" not in fv:
        flags.DEFINE_enum("format", "saved_model", ["saved_model", "tflite"],
                          "saved_model: SavedModel only; tflite: SavedModel plus <version>/%s converted from "
                          "it and checked." % TFLITE_FILENAME, flag_values=fv)
    define_once("bool", "overwrite", False, "Replace an existing version folder.", fv)
    define_once("bool", "include_critic", True, "Also export the critic and the estimate_aus signature "
                "(adds 44.9M parameters at 128 px).", fv)
    define_once("string", "checkpoint", None, "Checkpoint prefix to export (default: the newest in "
                "<workdir>/checkpoints).", fv)


def _folder_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main(argv, flag_values=None) -> int:
    """Run the export from parsed flags; returns the exit status (0 ok, 2 bad input, 1 export failed)."""
    from absl import app, flags

    fv = flags.FLAGS if flag_values is None else flag_values
    if len(argv) > 1:
        raise app.UsageError("unexpected arguments: %s" % " ".join(argv[1:]))
    try:
        for name in ("workdir", "export_dir", "version"):
            if fv[name].value is None:
                raise InputError("--%s is required" % name)
        _check_destination(fv.export_dir, fv.version, fv.overwrite)  # fail before the slow model load
        from ganimation_tl.checkpoints import load_model_and_checkpoint

        start = time.time()
        model, checkpoint = load_model_and_checkpoint(fv.workdir, fv.checkpoint)
        loaded = time.time()
        path = export_saved_model(model, fv.export_dir, fv.version, overwrite=fv.overwrite,
                                  tflite=fv.format == "tflite", include_critic=fv.include_critic,
                                  checkpoint=checkpoint)
        done = time.time()
    except InputError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    except ExportError as error:
        print("error: export failed: %s" % error, file=sys.stderr)
        return 1
    print("Exported %s (%d px) to %s: %.1f MB, restore %.1f s, export %.1f s."
          % (checkpoint, model.config.image_size, path, _folder_size(path) / 1e6, loaded - start, done - loaded))
    print("Serve with: tensorflow_model_server --port=8500 --rest_api_port=8501 --model_name=ganimation "
          "--model_base_path=%s" % os.path.dirname(path))
    return 0


def run() -> None:
    """Console entry point (``python -m ganimation_tl.export``)."""
    from absl import app

    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
