"""Digit data sets: MNIST (the classic pickle), scikit-learn's 8x8 digits, and Digits-M.

* MNIST: ``mnist.pkl.gz`` holding ``(train, valid, test)``, each ``(float32 [N, 784] in [0, 1),
  int64 [N])`` (LeCun et al. 1998; the deeplearning.net pickle: 50k / 10k / 10k).
* scikit-learn ``load_digits``: 1,797 8x8 digits at 17 grey levels from other writers (UCI optdigits),
  upsampled here to 28x28 with the digit box matched to MNIST's 20x20: a real domain shift.
* Digits-M: digits blended onto crops of the real photos that ship with scikit-learn
  (``load_sample_images``), as in the MNIST-M recipe of Ganin et al. (JMLR 2016): output
  ``|photo - digit|`` per channel.

Images are float32 NHWC in [0, 1] (``[N, 28, 28, 1]``; Digits-M ``[N, 28, 28, 3]``), labels int32.
"""
from __future__ import annotations

import gzip
import os
import pickle
from typing import Dict, Optional, Tuple

import numpy as np

from ganimation_tl.errors import InputError

__all__ = ["load_mnist", "load_mnist_for_flag", "load_sklearn_digits", "make_digits_m", "SPLITS"]

SPLITS = ("train", "valid", "test")
_MNIST_CACHE: Dict[str, tuple] = {}


def load_mnist(path: str, split: str = "train") -> Tuple[np.ndarray, np.ndarray]:
    """MNIST images and labels of ``split`` from ``mnist.pkl.gz`` at ``path`` (cached per process).

    Returns:
        ``(images float32 [N, 28, 28, 1] in [0, 1], labels int32 [N] in 0..9)``.

    Raises:
        InputError: missing/unreadable file, wrong structure, unknown split.
    """
    if split not in SPLITS:
        raise InputError("unknown MNIST split %r; valid: %s" % (split, ", ".join(SPLITS)))
    key = os.path.abspath(path)
    if key not in _MNIST_CACHE:
        if not os.path.isfile(path):
            raise InputError("MNIST file %r not found (expected the classic mnist.pkl.gz)" % path)
        try:
            with gzip.open(path, "rb") as f:
                data = pickle.load(f, encoding="latin1")
            parts = []
            for x, y in data:
                x = np.asarray(x, np.float32).reshape(-1, 28, 28, 1)
                y = np.asarray(y).astype(np.int32)
                if len(x) != len(y):
                    raise ValueError("image and label counts differ")
                parts.append((x, y))
            if len(parts) != 3:
                raise ValueError("expected (train, valid, test)")
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as error:
            raise InputError("cannot read MNIST pickle %s: %s" % (path, error))
        _MNIST_CACHE[key] = tuple(parts)
    return _MNIST_CACHE[key][SPLITS.index(split)]


def load_mnist_for_flag(path: Optional[str], split: str, flag: str = "--mnist_path",
                        hint: str = "expected the classic mnist.pkl.gz, e.g. ../shared/data/digits/mnist.pkl.gz"
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`load_mnist` for a path given by a flag, checking first that the file exists.

    Args:
        path: the flag's value (None or empty when unset).
        split: ``train``, ``valid`` or ``test``.
        flag: the flag to name in the error message, with dashes.
        hint: what the file should be, for the message.

    Returns:
        ``(images float32 [N, 28, 28, 1] in [0, 1], labels int32 [N] in 0..9)``.

    Raises:
        InputError: ``"<flag>: MNIST file <path> not found (<hint>)"`` if unset or not a file; else as
            :func:`load_mnist`.
    """
    if not path or not os.path.isfile(path):
        raise InputError("%s: MNIST file %r not found (%s)" % (flag, path, hint))
    return load_mnist(path, split)


def load_sklearn_digits(size: int = 28) -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 digits, upsampled to ``size`` x ``size`` (bicubic, the 8x8 digit
    placed in the central 20/28 of the frame like MNIST).

    Returns:
        ``(images float32 [1797, size, size, 1] in [0, 1], labels int32 [1797])``.
    """
    import cv2
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    inner = max(1, int(round(size * 20 / 28)))
    offset = (size - inner) // 2
    out = np.zeros((len(images), size, size, 1), np.float32)
    for i, img in enumerate(images):
        out[i, offset:offset + inner, offset:offset + inner, 0] = cv2.resize(img, (inner, inner),
                                                                            interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0), bunch.target.astype(np.int32)


def make_digits_m(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Digits-M: blend grey digits onto random crops of scikit-learn's sample photos.

    Args:
        images: float ``[N, H, W, 1]`` in [0, 1].
        seed: crop positions; the same seed gives the same images.

    Returns:
        float32 ``[N, H, W, 3]`` in [0, 1]: ``|crop - digit|`` per channel (MNIST-M recipe).

    Raises:
        InputError: ``images`` not ``[N, H, W, 1]``.
    """
    from sklearn.datasets import load_sample_images

    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 1:
        raise InputError("make_digits_m expects grey images [N, H, W, 1], got shape %s" % (images.shape,))
    photos = [p.astype(np.float32) / 255.0 for p in load_sample_images().images]
    rng = np.random.default_rng(seed)
    n, h, w, _ = images.shape
    out = np.empty((n, h, w, 3), np.float32)
    which = rng.integers(0, len(photos), n)
    for i in range(n):
        photo = photos[which[i]]
        y = rng.integers(0, photo.shape[0] - h)
        x = rng.integers(0, photo.shape[1] - w)
        out[i] = np.abs(photo[y:y + h, x:x + w] - images[i])
    return out
