"""A small CNN that regresses the 17 AU intensities from a face crop, trained on synthetic faces.

Why: GANimation's critic has its own AU head, but it is trained jointly with the generator, so it is
no fair judge of the generator's edits. This regressor is independent: it never sees the generator or
its outputs, only synthetic faces (:mod:`ganimation_tl.synthetic`) and their exact AU labels. The
synthetic evaluation (``bench/eval_synthetic.py``) measures edited faces with it, and sibling papers
(AU annotation) can reuse it as a baseline annotator.

Typical use::

    from ganimation_tl.au_regressor import AURegressor, render_faces, train_au_regressor
    from ganimation_tl.synthetic import SyntheticFaces
    images, aus = render_faces(SyntheticFaces(image_size=64, seed=1), 0, 12000)
    regressor = AURegressor(image_size=64)
    history = train_au_regressor(regressor, images, aus, steps=3000)
    regressor.save("runs/au_regressor")
    again = AURegressor.load("runs/au_regressor")
    aus_pred = again.predict(images[:10])           # float32 [10, 17] in [0, 1]

Architecture (ours, not from a paper): five 4x4 stride-2 convolutions (``conv_dim`` x 1, 2, 4, 8, 8
channels) with LeakyReLU(0.2), instance normalisation after the 2nd to 4th, global mean pooling,
Dense(17) + sigmoid. He-normal weights. Trained with Adam and the mean squared error against AUs in
[0, 1], with random horizontal flips (the 17 OpenFace AUs are bilateral, so a mirrored face keeps its
labels).

Checkpoints: ``tf.train.Checkpoint`` over ``model.all_weights`` (TensorLayer's ``save_weights`` does
not round-trip on TF 2.21, see ``../shared/docs/toolchain.md`` section 1.2) plus ``regressor.json``
holding the architecture and the training record.
"""
from __future__ import annotations

import json
import math
import os
import time
import uuid
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorlayer as tl

from ganimation_tl.aus import NUM_AUS
from ganimation_tl.errors import InputError
from ganimation_tl.layers import InstanceNorm2d
from ganimation_tl.networks import unique_model_name

tl.logging.set_verbosity(tl.logging.WARN)

__all__ = ["AURegressor", "build_au_regressor", "render_faces", "train_au_regressor", "mean_absolute_error",
           "REGRESSOR_FILE"]

#: Name of the JSON description inside a saved regressor's folder.
REGRESSOR_FILE = "regressor.json"
_WEIGHTS = "weights"
_NUM_CONVS = 5


def _he_normal(fan_in: int):
    return tl.initializers.random_normal(mean=0.0, stddev=math.sqrt(2.0 / fan_in))


def build_au_regressor(image_size: int = 64, num_aus: int = NUM_AUS, conv_dim: int = 32,
                       name: str = "R") -> tl.models.Model:
    """Build the AU regressor network.

    Args:
        image_size: S, side of the square input; a multiple of 32 (five stride-2 convolutions).
        num_aus: K, outputs (17 OpenFace AUs in model order, ``ganimation_tl.aus.AU_NAMES``).
        conv_dim: channels of the first convolution; later ones use 2x, 4x, 8x, 8x.
        name: layer-name prefix (variables are ``<name>_<layer>/<weight>``) and model name.

    Returns:
        A static ``tl.models.Model`` taking float32 ``[B, S, S, 3]`` in [-1, 1] (NHWC, RGB) and
        returning float32 ``[B, K]`` in [0, 1] (AU intensity / 5 on the OpenFace scale). Call
        ``.train()`` or ``.eval()`` before use (no layer behaves differently).

    Raises:
        InputError: image_size not a positive multiple of 32, or num_aus / conv_dim not positive.
    """
    if not isinstance(image_size, (int, np.integer)) or image_size <= 0 or image_size % 2 ** _NUM_CONVS:
        raise InputError("AU regressor image_size must be a positive multiple of %d, got %r"
                         % (2 ** _NUM_CONVS, image_size))
    if num_aus <= 0 or conv_dim <= 0:
        raise InputError("AU regressor num_aus and conv_dim must be positive, got %r and %r" % (num_aus, conv_dim))
    p = name + "_"
    x = image = tl.layers.Input([None, image_size, image_size, 3], name=p + "image")
    ch_in = 3
    for i, mult in enumerate((1, 2, 4, 8, 8)):
        ch = conv_dim * mult
        norm = 1 <= i <= 3
        x = tl.layers.Conv2d(ch, (4, 4), (2, 2), padding="SAME", W_init=_he_normal(16 * ch_in),
                             b_init=None if norm else tl.initializers.zeros(), in_channels=ch_in,
                             name=p + "c%d" % i)(x)
        if norm:
            x = InstanceNorm2d(ch, name=p + "c%d_in" % i)(x)
        x = tl.layers.Lambda(lambda t: tf.nn.leaky_relu(t, alpha=0.2), name=p + "c%d_lrelu" % i)(x)
        ch_in = ch
    x = tl.layers.GlobalMeanPool2d(name=p + "pool")(x)
    aus = tl.layers.Dense(num_aus, act=tf.nn.sigmoid, in_channels=ch_in,
                          W_init=tl.initializers.random_normal(stddev=math.sqrt(1.0 / ch_in)),
                          b_init=tl.initializers.zeros(), name=p + "aus")(x)
    return tl.models.Model(inputs=image, outputs=aus, name=unique_model_name(name))


def _check_images(images: np.ndarray, image_size: int, what: str = "images") -> np.ndarray:
    """Validate ``[B, S, S, 3]`` uint8 or float [-1, 1] images; returns them as uint8 or float32."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (image_size, image_size, 3):
        raise InputError("%s must be [B, %d, %d, 3] (NHWC, RGB), got shape %s"
                         % (what, image_size, image_size, images.shape))
    if images.dtype == np.uint8:
        return images
    images = images.astype(np.float32)
    if not np.all(np.isfinite(images)) or images.min(initial=0) < -1.001 or images.max(initial=0) > 1.001:
        raise InputError("float %s must be finite and in [-1, 1]" % what)
    return images


def _to_float(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 127.5 - 1.0 if images.dtype == np.uint8 else images


def _as_aus(aus: np.ndarray, n: int, num_aus: int) -> np.ndarray:
    aus = np.asarray(aus, np.float32)
    if aus.shape != (n, num_aus):
        raise InputError("aus must be [%d, %d] (one row per image), got shape %s" % (n, num_aus, aus.shape))
    if not np.all(np.isfinite(aus)) or aus.min(initial=0) < 0 or aus.max(initial=0) > 1:
        raise InputError("aus must be finite and in [0, 1] (OpenFace intensity / 5)")
    return aus


def mean_absolute_error(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error over all faces and AUs (AU units in [0, 1]; x5 gives OpenFace units)."""
    return float(np.mean(np.abs(np.asarray(predicted, np.float64) - np.asarray(target, np.float64))))


class AURegressor:
    """The AU regressor network with prediction, saving and loading.

    Args:
        image_size: S, side of the input crops (a multiple of 32; 64 for the CPU GANimation config).
        conv_dim: first-layer channels (32).
        num_aus: K (17).
        name: layer-name prefix ("R").

    Attributes:
        model: the ``tl.models.Model`` (see :func:`build_au_regressor`), in eval mode.
        info: dict of facts about its training (filled by :func:`train_au_regressor`, saved in JSON).
    """

    def __init__(self, image_size: int = 64, conv_dim: int = 32, num_aus: int = NUM_AUS, name: str = "R"):
        self.image_size, self.conv_dim, self.num_aus, self.name = int(image_size), int(conv_dim), int(num_aus), name
        self.model = build_au_regressor(self.image_size, self.num_aus, self.conv_dim, name=name)
        self.model.eval()
        self.info: Dict[str, object] = {}
        self._forward = tf.function(lambda x: self.model(x))

    def predict(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """AU intensities of face crops.

        Args:
            images: ``[B, S, S, 3]`` RGB (NHWC), uint8 in [0, 255] or float in [-1, 1].
            batch_size: faces per forward pass.

        Returns:
            float32 ``[B, 17]`` in [0, 1] (OpenFace intensity / 5, model order ``aus.AU_NAMES``).

        Raises:
            InputError: wrong shape or value range.
        """
        images = _check_images(images, self.image_size)
        out = [self._forward(tf.constant(_to_float(images[i:i + batch_size]))).numpy()
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.num_aus), np.float32)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str) -> str:
        """Write ``weights.index`` / ``weights.data-*`` and ``regressor.json`` into ``directory``.

        Each file is written under a temporary name and renamed into place; the JSON, written last,
        marks a complete save. Returns the checkpoint prefix.
        """
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        tag = ".tmp-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        tmp_prefix = os.path.join(directory, _WEIGHTS + tag)
        written = tf.train.Checkpoint(weights=list(self.model.all_weights)).write(tmp_prefix)
        for path in tf.io.gfile.glob(written + ".*"):
            os.replace(path, os.path.join(directory, _WEIGHTS + path[len(written):]))
        payload = {"model": "au_regressor", "image_size": self.image_size, "conv_dim": self.conv_dim,
                   "num_aus": self.num_aus, "name": self.name, "info": self.info}
        json_tmp = os.path.join(directory, REGRESSOR_FILE + tag)
        with open(json_tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        os.replace(json_tmp, os.path.join(directory, REGRESSOR_FILE))
        return os.path.join(directory, _WEIGHTS)

    @staticmethod
    def exists(directory: str) -> bool:
        """True if ``directory`` holds a complete save (``regressor.json`` and ``weights.index``)."""
        directory = os.fspath(directory)
        return (os.path.isfile(os.path.join(directory, REGRESSOR_FILE))
                and os.path.isfile(os.path.join(directory, _WEIGHTS + ".index")))

    @classmethod
    def load(cls, directory: str) -> "AURegressor":
        """Rebuild a regressor saved by :meth:`save`.

        Raises:
            InputError: the folder, its ``regressor.json`` or its weights are missing, corrupt, or do
                not match each other (the message names the file).
        """
        directory = os.fspath(directory)
        path = os.path.join(directory, REGRESSOR_FILE)
        if not cls.exists(directory):
            raise InputError("%s is not a saved AU regressor (expected %s and %s.index)"
                             % (directory, REGRESSOR_FILE, _WEIGHTS))
        try:
            with open(path, encoding="utf-8") as f:
                payload = json.load(f)
            regressor = cls(image_size=int(payload["image_size"]), conv_dim=int(payload["conv_dim"]),
                            num_aus=int(payload["num_aus"]), name=str(payload.get("name", "R")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError("cannot read %s: %s" % (path, error)) from None
        regressor.info = dict(payload.get("info", {}))
        try:
            tf.train.Checkpoint(weights=list(regressor.model.all_weights)).read(
                os.path.join(directory, _WEIGHTS)).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise InputError("weights in %s do not match %s (%s)"
                             % (directory, path, str(error).strip().splitlines()[0])) from None
        return regressor


def render_faces(faces, start: int, count: int, progress: Optional[Callable[[int, int], None]] = None
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """Render synthetic faces ``start .. start + count - 1`` keeping only images and AU labels.

    Args:
        faces: a :class:`ganimation_tl.synthetic.SyntheticFaces`.
        start, count: sample indices (count >= 1).
        progress: optional ``progress(done, count)``, called every 1000 faces.

    Returns:
        ``(images uint8 [count, S, S, 3] RGB, aus float32 [count, 17] in [0, 1])``.
    """
    if count < 1 or start < 0:
        raise InputError("render_faces needs start >= 0 and count >= 1, got %r, %r" % (start, count))
    S = faces.image_size
    images = np.empty((count, S, S, 3), np.uint8)
    aus = np.empty((count, NUM_AUS), np.float32)
    for j in range(count):
        s = faces.sample(start + j)
        images[j], aus[j] = s.image, s.aus
        if progress is not None and (j + 1) % 1000 == 0:
            progress(j + 1, count)
    return images, aus


def train_au_regressor(regressor: AURegressor, images: np.ndarray, aus: np.ndarray, *, steps: int = 3000,
                       batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0, flip: bool = True,
                       validation: Optional[Tuple[np.ndarray, np.ndarray]] = None, log_every: int = 250,
                       print_fn: Callable[[str], None] = lambda s: None) -> Dict[str, object]:
    """Train ``regressor`` with Adam on the mean squared error, in place.

    Batches are drawn as random permutations of the training set (epoch after epoch); the learning
    rate is constant for the first half of the steps and decays linearly to 10 % of it at the end.

    Args:
        regressor: the :class:`AURegressor` to train (its ``info`` records the run).
        images: ``[N, S, S, 3]`` RGB, uint8 [0, 255] or float [-1, 1]; N >= 1.
        aus: float ``[N, 17]`` in [0, 1], the exact labels.
        steps: Adam steps. batch_size: faces per step (capped at N). learning_rate: initial rate.
        seed: seeds the batch order, the flips and TensorFlow's RNG.
        flip: mirror each face horizontally with probability 0.5 (labels unchanged).
        validation: optional ``(images, aus)`` scored (MAE) at every log line and at the end.
        log_every: steps between ``print_fn`` lines.
        print_fn: where progress lines go.

    Returns:
        dict with ``train_mse`` (mean of the last ``log_every`` steps' losses), ``first_mse`` (first
        step's loss), ``seconds``, ``steps`` and, with validation, ``validation_mae``.

    Raises:
        InputError: wrong shapes or ranges, or non-positive steps / batch_size / learning_rate.
    """
    if steps <= 0 or batch_size <= 0 or not learning_rate > 0:
        raise InputError("steps, batch_size and learning_rate must be positive, got %r, %r, %r"
                         % (steps, batch_size, learning_rate))
    x_all = _check_images(images, regressor.image_size)
    y_all = _as_aus(aus, len(x_all), regressor.num_aus)
    if validation is not None:
        val_x = _check_images(validation[0], regressor.image_size, "validation images")
        val_y = _as_aus(validation[1], len(val_x), regressor.num_aus)
    n = len(x_all)
    batch_size = min(int(batch_size), n)
    model = regressor.model
    model.train()
    optimizer = tf.keras.optimizers.Adam(learning_rate)
    optimizer.build(model.trainable_weights)

    @tf.function
    def step_fn(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        return loss

    rng = np.random.default_rng(seed)
    tf.random.set_seed(seed)
    order, pos = rng.permutation(n), 0
    losses, start = [], time.time()
    for step in range(int(steps)):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        x = _to_float(x_all[idx])
        if flip:
            mirror = rng.random(len(idx)) < 0.5
            x = np.where(mirror[:, None, None, None], x[:, :, ::-1], x)
        frac = step / max(1, steps - 1)
        optimizer.learning_rate.assign(learning_rate * (1.0 if frac < 0.5 else 1.0 - 1.8 * (frac - 0.5)))
        losses.append(float(step_fn(tf.constant(x), tf.constant(y_all[idx]))))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError("AU regressor loss became %s at step %d" % (losses[-1], step))
        if (step + 1) % log_every == 0 or step + 1 == steps:
            line = "AU regressor step %d/%d: mse %.5f" % (step + 1, steps, float(np.mean(losses[-log_every:])))
            if validation is not None:
                model.eval()
                line += ", validation MAE %.4f" % mean_absolute_error(regressor.predict(val_x), val_y)
                model.train()
            print_fn(line)
    model.eval()
    record = {"steps": int(steps), "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
              "num_faces": n, "first_mse": losses[0], "train_mse": float(np.mean(losses[-log_every:])),
              "seconds": round(time.time() - start, 1)}
    if validation is not None:
        record["validation_mae"] = mean_absolute_error(regressor.predict(val_x), val_y)
        record["validation_faces"] = len(val_x)
    regressor.info.update(record)
    return record
