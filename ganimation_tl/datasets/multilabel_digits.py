"""Multi-label digit composites: 2x2 tiles of real MNIST digits, 1-4 digits each, multi-hot labels.

The multi-label data of the C2AE / order-free RNN / ML-ZSL issue ("multi-label digit images
composed from real MNIST digits: 2x2 tiles holding 1-4 digits, labels = the digits present").
A composite is a ``2*28 x 2*28`` canvas cut into four 28x28 slots; ``k`` (uniform in
``min_digits..max_digits``) of the slots, chosen at random, receive a random MNIST digit of the
requested split, the others stay black. The label vector is the multi-hot set of digit classes
present (a class drawn twice counts once, so a composite holds 1-4 *distinct* labels; duplicates
can be excluded with ``distinct=True``). The canvas is then resized to ``image_size`` (area
interpolation, OpenCV).

Images are float32 NHWC ``[N, S, S, 1]`` in [0, 1]; labels float32 ``[N, 10]`` in {0, 1}.
Everything is deterministic given ``seed`` (NumPy ``default_rng``).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from ganimation_tl.errors import InputError

__all__ = ["MultiLabelDigits", "compose_multilabel_digits", "load_multilabel_digits", "NUM_CLASSES"]

NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class MultiLabelDigits:
    """A multi-label digit set.

    Attributes:
        images: float32 ``[N, S, S, 1]`` in [0, 1] (NHWC, grey).
        labels: float32 ``[N, 10]`` multi-hot (1 = the digit class appears in the composite).
        slots: int32 ``[N, 4]``: digit class in each slot (row-major: top-left, top-right,
            bottom-left, bottom-right), -1 for an empty slot.
    """

    images: np.ndarray
    labels: np.ndarray
    slots: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def compose_multilabel_digits(digits: np.ndarray, digit_labels: np.ndarray, count: int, seed: int = 0,
                              image_size: int = 56, min_digits: int = 1, max_digits: int = 4,
                              distinct: bool = False) -> MultiLabelDigits:
    """Compose ``count`` 2x2 multi-digit images from single-digit images.

    Args:
        digits: float ``[M, 28, 28]`` or ``[M, 28, 28, 1]`` in [0, 1] (e.g. MNIST).
        digit_labels: int ``[M]`` in 0..9.
        count: number of composites (> 0).
        seed: sampling seed (slot choice, digit choice).
        image_size: side of the output image (the 56x56 canvas is resized with area interpolation).
        min_digits, max_digits: range of the number of filled slots, 1 <= min <= max <= 4.
        distinct: if True, the digits of one composite have distinct classes (then the number of
            labels equals the number of digits).

    Returns:
        :class:`MultiLabelDigits`.

    Raises:
        InputError: bad shapes, counts or ranges.
    """
    digits = np.asarray(digits, np.float32)
    if digits.ndim == 4 and digits.shape[-1] == 1:
        digits = digits[..., 0]
    digit_labels = np.asarray(digit_labels).astype(np.int64).reshape(-1)
    if digits.ndim != 3 or digits.shape[1:] != (28, 28):
        raise InputError("compose_multilabel_digits expects digits [M, 28, 28(, 1)], got %s" % (digits.shape,))
    if len(digits) != len(digit_labels) or len(digits) == 0:
        raise InputError("digits (%d) and digit_labels (%d) must be non-empty and of equal length"
                         % (len(digits), len(digit_labels)))
    if digit_labels.min() < 0 or digit_labels.max() >= NUM_CLASSES:
        raise InputError("digit labels must lie in 0..9")
    if count <= 0:
        raise InputError("the number of composites must be positive, got %d" % count)
    if not 1 <= min_digits <= max_digits <= 4:
        raise InputError("need 1 <= min_digits <= max_digits <= 4, got %d..%d" % (min_digits, max_digits))
    if image_size <= 0:
        raise InputError("image_size must be positive, got %d" % image_size)
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(digit_labels == c) for c in range(NUM_CLASSES)]
    present = [c for c in range(NUM_CLASSES) if len(by_class[c])]
    if distinct and len(present) < max_digits:
        raise InputError("distinct composites of %d digits need %d classes, the data has %d"
                         % (max_digits, max_digits, len(present)))
    canvas = np.zeros((count, 56, 56), np.float32)
    slots = np.full((count, 4), -1, np.int32)
    labels = np.zeros((count, NUM_CLASSES), np.float32)
    for i in range(count):
        k = int(rng.integers(min_digits, max_digits + 1))
        where = rng.choice(4, size=k, replace=False)
        if distinct:
            classes = rng.choice(present, size=k, replace=False)
            picks = [by_class[c][rng.integers(len(by_class[c]))] for c in classes]
        else:
            picks = rng.integers(0, len(digits), size=k)
        for slot, index in zip(where, picks):
            r, c = divmod(int(slot), 2)
            canvas[i, 28 * r:28 * r + 28, 28 * c:28 * c + 28] = digits[index]
            slots[i, slot] = digit_labels[index]
            labels[i, digit_labels[index]] = 1.0
    if image_size != 56:
        import cv2
        interpolation = cv2.INTER_AREA if image_size < 56 else cv2.INTER_LINEAR
        canvas = np.stack([cv2.resize(img, (image_size, image_size), interpolation=interpolation) for img in canvas])
    images = np.clip(canvas, 0.0, 1.0)[..., None].astype(np.float32)
    return MultiLabelDigits(images=images, labels=labels, slots=slots)


def load_multilabel_digits(mnist_path: str, split: str, count: int, seed: int = 0, image_size: int = 56,
                           min_digits: int = 1, max_digits: int = 4, distinct: bool = False,
                           flag_name: Optional[str] = "mnist_path") -> MultiLabelDigits:
    """Composites of the MNIST digits of ``split`` (``train``/``valid``/``test``) read from
    ``mnist.pkl.gz`` at ``mnist_path``; see :func:`compose_multilabel_digits` for the other arguments.

    Train, valid and test composites use disjoint MNIST digits (the pickle's own split).

    Raises:
        InputError: missing/unreadable file (the message names ``--<flag_name>`` and the path),
            bad arguments.
    """
    import os
    from ganimation_tl.datasets.digits import load_mnist

    if not mnist_path or not os.path.isfile(mnist_path):
        raise InputError("%sMNIST file %r not found (expected the classic mnist.pkl.gz, e.g. "
                         "../shared/data/digits/mnist.pkl.gz)"
                         % ("--%s: " % flag_name if flag_name else "", mnist_path))
    digits, digit_labels = load_mnist(mnist_path, split)
    return compose_multilabel_digits(digits, digit_labels, count, seed=seed, image_size=image_size,
                                     min_digits=min_digits, max_digits=max_digits, distinct=distinct)
