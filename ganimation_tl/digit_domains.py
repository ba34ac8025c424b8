"""Source/target digit domain pairs for the domain-adaptation siblings (CyCADA, CDRD).

Used only by ``other_models/cycada.py`` and ``other_models/cdrd.py`` (a new module, no shared module
was edited). It turns the loaders of :mod:`ganimation_tl.datasets.digits` into one
unsupervised-domain-adaptation split:

* source ``sklearn``: scikit-learn's 1,797 8x8 digits (UCI optdigits writers) upsampled to 28x28;
  the last ``source_test`` images (fixed permutation) are held out as the source test set.
* source ``mnist``: MNIST ``train`` split (first ``num_source`` of a fixed permutation).
* target ``mnist``: MNIST ``valid`` split for the unlabelled target training images and MNIST
  ``test`` for the labelled target test set (labels are used only for evaluation).
* target ``digits_m``: the same MNIST images blended onto crops of scikit-learn's sample photos
  (``make_digits_m``, the MNIST-M recipe of Ganin et al. 2016), different crop seeds for train/test.
* target ``sklearn`` (with source ``mnist`` only): scikit-learn's digits as the unlabelled target, the
  direction of the papers' MNIST -> USPS. The first ``num_target`` images of a fixed permutation are the
  unlabelled training images, the last ``num_target_test`` the test set (disjoint).

All images are float32 NHWC in [-1, 1] with ``channels`` channels (grey digits are repeated to 3
channels; colour images are averaged to 1 channel). Labels are int32 in 0..9.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from ganimation_tl.errors import InputError

__all__ = ["DigitDomains", "load_domain_pair", "SOURCES", "TARGETS"]

SOURCES = ("sklearn", "mnist")
TARGETS = ("mnist", "digits_m", "sklearn")


@dataclasses.dataclass(frozen=True)
class DigitDomains:
    """One source/target split; every image array is float32 ``[N, 28, 28, C]`` in [-1, 1].

    Attributes:
        source_train, source_train_labels: labelled source training set.
        source_test, source_test_labels: held-out source images (for the source accuracy).
        target_train: unlabelled target training images (labels kept only in ``target_train_labels``
            for diagnostics; no training code reads them).
        target_test, target_test_labels: labelled target test set (evaluation only).
        description: one line naming the data.
    """

    source_train: np.ndarray
    source_train_labels: np.ndarray
    source_test: np.ndarray
    source_test_labels: np.ndarray
    target_train: np.ndarray
    target_train_labels: np.ndarray
    target_test: np.ndarray
    target_test_labels: np.ndarray
    description: str


def _to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    if images.shape[-1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    return images.mean(axis=-1, keepdims=True)


def _sklearn_head_tail(rng, head: int, tail: int, what: str):
    """scikit-learn's digits (28x28, [0, 1]) in one permutation drawn from ``rng``: the first ``head`` and the
    last ``tail`` images (disjoint) with their labels, ``(x_head, y_head, x_tail, y_tail)``.

    Raises:
        InputError: ``head + tail`` exceeds the 1,797 digits (the message starts with ``what``).
    """
    from ganimation_tl.datasets.digits import load_sklearn_digits

    images, labels = load_sklearn_digits(28)
    if head + tail > len(images):
        raise InputError("%s must be <= %d, got %d + %d" % (what, len(images), head, tail))
    order = rng.permutation(len(images))
    first, last = order[:head], order[len(images) - tail:]
    return images[first], labels[first], images[last], labels[last]


def load_domain_pair(source: str, target: str, mnist_path: str, *, channels: int = 1, num_source: int = 2000,
                     num_target: int = 2000, num_target_test: int = 1000, source_test: int = 297,
                     seed: int = 0, mnist_flag: str = "--mnist_path") -> DigitDomains:
    """Build the source/target digit split.

    Args:
        source: ``sklearn`` or ``mnist``. target: ``mnist``, ``digits_m`` or ``sklearn`` (the last needs
            source ``mnist``).
        mnist_path: path of ``mnist.pkl.gz`` (needed by every combination here).
        channels: 1 (grey) or 3 (RGB).
        num_source: labelled source training images (sklearn: at most 1797 - ``source_test``).
        num_target: unlabelled target training images (<= 10,000, MNIST ``valid``; sklearn: with
            ``num_target_test`` at most 1,797).
        num_target_test: target test images (<= 10,000, MNIST ``test``).
        source_test: held-out source images.
        seed: permutation and Digits-M crop seed.
        mnist_flag: the flag name to put in error messages.

    Returns:
        :class:`DigitDomains`.

    Raises:
        InputError: unknown domain, source and target both ``sklearn``, bad counts, or a missing/unreadable
            MNIST file (naming ``mnist_flag``).
    """
    from ganimation_tl.datasets.digits import load_mnist, make_digits_m

    if source not in SOURCES:
        raise InputError("unknown source domain %r; valid: %s" % (source, ", ".join(SOURCES)))
    if target not in TARGETS:
        raise InputError("unknown target domain %r; valid: %s" % (target, ", ".join(TARGETS)))
    if source == target == "sklearn":   # MNIST -> MNIST keeps train (source) and valid/test (target) apart
        raise InputError("source and target are both 'sklearn' (the same 1,797 digits); "
                         "use source mnist for this target")
    if channels not in (1, 3):
        raise InputError("channels must be 1 or 3, got %r" % channels)
    for name, value in (("num_source", num_source), ("num_target", num_target),
                        ("num_target_test", num_target_test), ("source_test", source_test)):
        if value <= 0:
            raise InputError("%s must be positive, got %r" % (name, value))
    if not mnist_path or not os.path.isfile(mnist_path):
        raise InputError("%s: MNIST file %r not found (expected the classic mnist.pkl.gz)" % (mnist_flag, mnist_path))
    try:
        valid_x, valid_y = load_mnist(mnist_path, "valid")
        test_x, test_y = load_mnist(mnist_path, "test")
    except InputError as error:
        raise InputError("%s: %s" % (mnist_flag, error))
    rng = np.random.default_rng(seed)
    if target == "sklearn":
        target_train, target_train_labels, target_test, target_test_labels = _sklearn_head_tail(
            rng, num_target, num_target_test, "sklearn digits target: num_target + num_target_test")
    else:
        if num_target > len(valid_x) or num_target_test > len(test_x):
            raise InputError("num_target <= %d and num_target_test <= %d required" % (len(valid_x), len(test_x)))
        t_idx = rng.permutation(len(valid_x))[:num_target]
        e_idx = rng.permutation(len(test_x))[:num_target_test]
        target_train, target_train_labels = valid_x[t_idx], valid_y[t_idx]
        target_test, target_test_labels = test_x[e_idx], test_y[e_idx]
    if target == "digits_m":
        target_train = make_digits_m(target_train, seed=seed + 1)
        target_test = make_digits_m(target_test, seed=seed + 2)

    if source == "sklearn":
        source_train, source_train_labels, source_test_x, source_test_labels = _sklearn_head_tail(
            rng, num_source, source_test, "sklearn digits: num_source + source_test")
    else:
        train_x, train_y = load_mnist(mnist_path, "train")
        if num_source + source_test > len(train_x):
            raise InputError("MNIST: num_source + source_test must be <= %d" % len(train_x))
        order = rng.permutation(len(train_x))
        s_train, s_test = order[:num_source], order[num_source:num_source + source_test]
        source_train, source_train_labels = train_x[s_train], train_y[s_train]
        source_test_x, source_test_labels = train_x[s_test], train_y[s_test]

    def prep(x):
        return (_to_channels(np.asarray(x, np.float32), channels) * 2.0 - 1.0).astype(np.float32)

    description = ("source %s (%d labelled) -> target %s (%d unlabelled, %d test), %d channel(s), seed %d"
                   % (source, num_source, target, num_target, num_target_test, channels, seed))
    return DigitDomains(prep(source_train), source_train_labels.astype(np.int32), prep(source_test_x),
                        source_test_labels.astype(np.int32), prep(target_train), target_train_labels.astype(np.int32),
                        prep(target_test), target_test_labels.astype(np.int32), description)
