"""tf.data input pipeline for GANimation training.

An epoch is planned in NumPy from ``(seed, epoch)`` alone: the shuffling order, each sample's
target AUs (another random training sample's AUs plus U(-noise, noise), paper section 5 and the
official code) and its horizontal flip. The plan is therefore reproducible, and a resumed run
continues inside an epoch by skipping the batches already seen, without decoding them. Images are
decoded in parallel (Pillow, so EXIF orientation, grayscale, RGBA, CMYK and 16-bit files are
handled as at inference), resized to the model's size and scaled to [-1, 1]; batches are
prefetched. A :class:`DecodedImageCache` wrapped around the loader keeps decoded images in memory up to a
byte budget, so that later epochs skip decoding (or rendering) the images it holds.

Every element is a dict: ``images`` float32 ``[B, S, S, 3]`` in [-1, 1] (NHWC, RGB), ``aus``
(y_o) float32 ``[B, 17]`` in [0, 1], ``target_aus`` (y_f) float32 ``[B, 17]`` clipped to [0, 1].
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from ganimation_tl.au_data import read_image
from ganimation_tl.errors import InputError

__all__ = ["EpochPlan", "plan_epoch", "steps_per_epoch", "make_dataset", "read_file_source", "load_images_numpy",
           "DecodedImageCache"]


@dataclasses.dataclass(frozen=True)
class EpochPlan:
    """One epoch's sample order and augmentation, all ``[N]`` or ``[N, 17]`` NumPy arrays."""

    order: np.ndarray        # int64 [N]: indices into the table, in visiting order
    target_aus: np.ndarray   # float32 [N, K]: y_f for each visited sample, in [0, 1]
    flip: np.ndarray         # bool [N]: flip this visit horizontally


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped).

    Raises:
        InputError: fewer samples than one batch (the message suggests ``--batch_size``).
    """
    if batch_size <= 0:
        raise InputError("--batch_size must be positive, got %d" % batch_size)
    if num_samples < batch_size:
        raise InputError("the data set has %d faces, fewer than one batch (--batch_size=%d); "
                         "lower --batch_size" % (num_samples, batch_size))
    return num_samples // batch_size


def plan_epoch(aus: np.ndarray, seed: int, epoch: int, target_noise: float = 0.1, flip: bool = True,
               shuffle: bool = True) -> EpochPlan:
    """Plan one epoch deterministically from ``(seed, epoch)``.

    Args:
        aus: ``[N, K]`` float32 source AUs in [0, 1].
        seed, epoch: together seed the NumPy generator.
        target_noise: half-width a of the U(-a, a) noise on the target AUs (0.1 in the paper's code).
        flip: draw a random horizontal flip (p = 0.5) per visit.
        shuffle: visit in a random order (else 0..N-1).

    Returns:
        :class:`EpochPlan`. Target AUs are another random sample's AUs plus noise, clipped to [0, 1]
        (the official code does not clip; clipping keeps them in the documented range).
    """
    aus = np.asarray(aus, dtype=np.float32)
    n = aus.shape[0]
    rng = np.random.default_rng([int(seed), int(epoch)])
    order = rng.permutation(n) if shuffle else np.arange(n)
    donors = rng.integers(0, n, size=n)
    noise = rng.uniform(-target_noise, target_noise, size=aus.shape).astype(np.float32)
    target = np.clip(aus[donors] + noise, 0.0, 1.0).astype(np.float32)
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    return EpochPlan(order=order.astype(np.int64), target_aus=target, flip=flips)


def read_file_source(path, size: int) -> np.ndarray:
    """Default loader: decode the image file ``path`` (str or bytes) to uint8 ``[size, size, 3]``."""
    return read_image(path.decode("utf-8") if isinstance(path, bytes) else str(path), size=int(size))


class DecodedImageCache:
    """A loader that remembers what another loader decoded, up to a byte budget.

    ``cache(source, size)`` returns ``loader(source, size)`` (uint8 ``[size, size, 3]`` RGB), decoding
    each source once: later calls with the same source and size return the stored array. Sources are
    image paths (str or bytes) or integer indices (e.g. generated faces). Once the stored arrays reach
    ``max_bytes``, new sources are decoded every time and not stored (so the first sources an epoch
    visits stay cached; with a shuffled order that is a random subset). Safe for ``tf.data``'s parallel
    calls: two threads may decode the same source at once, and both get the same image (the ``hits`` /
    ``misses`` counters are then approximate).

    The wrapped loader must be deterministic (a file that changes on disk during training keeps its
    first decoded image). Augmentation (flips) is applied after loading, so it is not cached.

    Args:
        loader: ``(source, size) -> uint8 [size, size, 3]``; default :func:`read_file_source`.
        max_bytes: budget of the stored arrays in bytes; 0 stores nothing.

    Raises:
        ValueError: a negative ``max_bytes``.
    """

    def __init__(self, loader: Optional[Callable] = None, max_bytes: int = 1 << 30):
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0, got %r" % max_bytes)
        self.loader = read_file_source if loader is None else loader
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._store = {}

    @staticmethod
    def _key(source, size):
        if isinstance(source, np.ndarray):
            source = source.item()
        if isinstance(source, (bytes, str)):
            return (source.decode("utf-8") if isinstance(source, bytes) else source), int(size)
        return int(source), int(size)

    def __call__(self, source, size) -> np.ndarray:
        key = self._key(source, size)
        image = self._store.get(key)
        if image is not None:
            self.hits += 1
            return image
        self.misses += 1
        image = np.ascontiguousarray(self.loader(source, size))
        if self.bytes + image.nbytes <= self.max_bytes and key not in self._store:
            image.setflags(write=False)
            self._store[key] = image
            self.bytes += image.nbytes
        return image

    def __len__(self) -> int:
        return len(self._store)


def load_images_numpy(files: Sequence[str], image_size: int) -> np.ndarray:
    """Decode ``files`` to float32 ``[N, S, S, 3]`` in [-1, 1] (for evaluation; raises InputError)."""
    return np.stack([read_image(f, size=image_size).astype(np.float32) / 127.5 - 1.0 for f in files])


def make_dataset(files: Sequence, aus: np.ndarray, *, image_size: int, batch_size: int, seed: int,
                 epoch: int = 0, skip_batches: int = 0, target_noise: float = 0.1, flip: bool = True,
                 shuffle: bool = True, num_parallel_calls: Optional[int] = None,
                 loader: Optional[Callable] = None) -> tf.data.Dataset:
    """Build the dataset of one epoch (full batches only), starting after ``skip_batches`` batches.

    Args:
        files: N image sources: file paths (str) for the default loader, or anything ``loader``
            accepts as a NumPy scalar (e.g. int indices of generated faces).
        aus: ``[N, 17]`` float32 in [0, 1] (y_o of each source).
        loader: ``(source, size) -> uint8 [size, size, 3]`` RGB; default :func:`read_file_source`.
        image_size: S, the side images are resized to (area / Lanczos resampling).
        batch_size: B. seed, epoch: see :func:`plan_epoch`.
        skip_batches: batches of this epoch already consumed (resume); they are not decoded.
        num_parallel_calls: decode parallelism (default ``tf.data.AUTOTUNE``).

    Returns:
        A ``tf.data.Dataset`` of dicts (see module docstring), prefetched.

    Raises:
        InputError: fewer files than one batch, or files and aus of different lengths. An image that
            cannot be decoded surfaces while iterating as a ``tf.errors.OpError`` whose message
            holds the InputError text naming the file (``ganimation_tl.trainer`` turns it back into
            an InputError).
    """
    aus = np.asarray(aus, dtype=np.float32)
    if len(files) != aus.shape[0]:
        raise InputError("got %d image files but %d AU rows" % (len(files), aus.shape[0]))
    steps = steps_per_epoch(len(files), batch_size)
    plan = plan_epoch(aus, seed, epoch, target_noise=target_noise, flip=flip, shuffle=shuffle)
    start = min(int(skip_batches), steps) * batch_size
    stop = steps * batch_size
    order = plan.order[start:stop]
    sources = np.asarray(list(files))[order]
    if sources.dtype.kind in "UO":
        sources = sources.astype(str)
    load = read_file_source if loader is None else loader
    tensors = {
        "path": sources,
        "aus": aus[order],
        "target_aus": plan.target_aus[start:stop],
        "flip": plan.flip[start:stop],
    }
    size = int(image_size)

    def decode(element):
        image = tf.numpy_function(load, [element["path"], size], tf.uint8, stateful=False)
        image = tf.reshape(image, [size, size, 3])
        image = tf.cast(image, tf.float32) / 127.5 - 1.0
        image = tf.cond(element["flip"], lambda: tf.reverse(image, axis=[1]), lambda: image)
        return {"images": image, "aus": element["aus"], "target_aus": element["target_aus"]}

    parallel = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    ds = ds.map(decode, num_parallel_calls=parallel, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)
