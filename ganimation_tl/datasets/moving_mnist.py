"""Seeded video generators: Moving MNIST (from the real MNIST digits) and moving shapes.

* :func:`moving_mnist`: ``num_digits`` MNIST digits (resized to ``digit_size``) move with constant
  integer velocities inside an ``image_size`` x ``image_size`` frame and bounce off the borders, as in
  Srivastava et al. (ICML 2015) and the DrNet generators (Denton and Birodkar, NIPS 2017; Lua:
  velocities in {-4..4} \\ {0}; drnet-py: each digit in its own colour channel). Overlapping digits
  combine with ``max``.
* :func:`moving_shapes`: filled squares, discs and triangles moving the same way, optionally with random
  turns (a new random velocity with probability ``turn_prob`` per frame), which makes the in-between
  frames ambiguous given only the first and last frames (used by the video-completion model).

Frames are float32 NTHWC in [0, 1]: ``[N, T, H, W, 1]`` (all objects in one channel) or, with
``separate_channels=True``, ``[N, T, H, W, num_objects]`` (object d alone in channel d). Positions are
the ground-truth centres of each object's box, ``[N, T, num_objects, 2]`` as (x, y) in pixels
(x = column, y = row; pixel centres at integer coordinates), so for a box at top-left (x0, y0) of side S
the centre is ``(x0 + (S - 1) / 2, y0 + (S - 1) / 2)``.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from ganimation_tl.errors import InputError

__all__ = ["VideoBatch", "moving_mnist", "moving_shapes", "resize_digits", "bounce_trajectories",
           "intensity_centroids", "SHAPES"]

SHAPES = ("square", "disc", "triangle")


@dataclasses.dataclass(frozen=True)
class VideoBatch:
    """Generated sequences.

    Attributes:
        frames: float32 ``[N, T, H, W, C]`` in [0, 1] (C = 1, or the object count with separate channels).
        positions: float32 ``[N, T, D, 2]``: (x, y) pixel centre of each object's box in each frame.
        labels: int32 ``[N, D]``: MNIST digit label (moving_mnist) or shape index into :data:`SHAPES`.
    """

    frames: np.ndarray
    positions: np.ndarray
    labels: np.ndarray


def resize_digits(images: np.ndarray, size: int) -> np.ndarray:
    """Resize MNIST digits ``[N, 28, 28, 1]`` (or ``[N, 28, 28]``) in [0, 1] to float32 ``[N, size, size]``
    (OpenCV area interpolation when shrinking, bilinear when enlarging).

    Raises:
        InputError: ``size`` not positive or images not 3-D/4-D.
    """
    import cv2

    if size <= 0:
        raise InputError("digit size must be positive, got %r" % size)
    images = np.asarray(images, np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    if images.ndim != 3:
        raise InputError("expected digit images [N, H, W(, 1)], got shape %s" % (images.shape,))
    if images.shape[1:] == (size, size):
        return images.copy()
    interp = cv2.INTER_AREA if size < images.shape[1] else cv2.INTER_LINEAR
    return np.clip(np.stack([cv2.resize(img, (size, size), interpolation=interp) for img in images]), 0, 1)


def bounce_trajectories(rng: np.random.Generator, num: int, length: int, limit: int, max_speed: int,
                        turn_prob: float = 0.0) -> np.ndarray:
    """Integer top-left positions of ``num`` boxes bouncing in ``[0, limit]`` (both axes).

    Each box starts uniformly in ``[0, limit]^2`` with a velocity per axis drawn from
    ``{-max_speed..max_speed} \\ {0}``; at a border the position is reflected and the velocity flips.
    With ``turn_prob`` > 0 each frame draws a fresh velocity with that probability.

    Returns:
        int64 ``[num, length, 2]`` as (x, y).
    """
    speeds = np.array([v for v in range(-max_speed, max_speed + 1) if v != 0])
    pos = rng.integers(0, limit + 1, size=(num, 2))
    vel = rng.choice(speeds, size=(num, 2))
    out = np.empty((num, length, 2), np.int64)
    for t in range(length):
        out[:, t] = pos
        if turn_prob > 0:
            turn = rng.random(num) < turn_prob
            if turn.any():
                vel[turn] = rng.choice(speeds, size=(int(turn.sum()), 2))
        pos = pos + vel
        low, high = pos < 0, pos > limit
        pos = np.where(low, -pos, pos)
        pos = np.where(high, 2 * limit - pos, pos)
        vel = np.where(low | high, -vel, vel)
        pos = np.clip(pos, 0, limit)
    return out


def _render(sprites: np.ndarray, tops: np.ndarray, image_size: int, separate_channels: bool) -> np.ndarray:
    """sprites [N, D, S, S]; tops [N, T, D, 2] int -> frames [N, T, H, W, C]."""
    n, d, s, _ = sprites.shape
    t_len = tops.shape[1]
    channels = d if separate_channels else 1
    frames = np.zeros((n, t_len, image_size, image_size, channels), np.float32)
    for i in range(n):
        for t in range(t_len):
            for j in range(d):
                x0, y0 = tops[i, t, j]
                c = j if separate_channels else 0
                window = frames[i, t, y0:y0 + s, x0:x0 + s, c]
                np.maximum(window, sprites[i, j], out=window)
    return frames


def _check_common(num_sequences, length, image_size, size, num_objects, max_speed):
    if num_sequences <= 0 or length <= 0 or num_objects <= 0 or max_speed <= 0:
        raise InputError("num_sequences, length, num_objects and max_speed must be positive (got %r, %r, %r, %r)"
                         % (num_sequences, length, num_objects, max_speed))
    if not 0 < size <= image_size:
        raise InputError("object size %r must be in (0, image_size=%r]" % (size, image_size))


def moving_mnist(digits: np.ndarray, digit_labels: np.ndarray, num_sequences: int, length: int = 10,
                 image_size: int = 32, digit_size: int = 16, num_digits: int = 2, max_speed: int = 3,
                 separate_channels: bool = False, seed: int = 0) -> VideoBatch:
    """Moving MNIST from real digits (Srivastava et al. 2015; DrNet's generator, Denton and Birodkar 2017).

    Args:
        digits: MNIST images float ``[M, 28, 28, 1]`` in [0, 1] (from
            :func:`ganimation_tl.datasets.digits.load_mnist`); digits are drawn from them at random.
        digit_labels: int ``[M]`` labels of ``digits``.
        num_sequences: N. length: T frames per sequence. image_size: H = W of the frames.
        digit_size: side S the 28x28 digits are resized to (the whole 28x28 box, MNIST's 20x20 digit inside).
        num_digits: D digits per sequence. max_speed: velocities per axis in {-v..v} \\ {0} pixels/frame.
        separate_channels: digit d in channel d (drnet-py); otherwise one channel (max over digits).
        seed: the same seed gives the same sequences.

    Returns:
        :class:`VideoBatch`: frames ``[N, T, H, W, 1 or D]``, positions ``[N, T, D, 2]`` (box centres, px),
        labels ``[N, D]`` (digit classes).

    Raises:
        InputError: non-positive sizes, digit_size > image_size, or digits/labels of different lengths.
    """
    _check_common(num_sequences, length, image_size, digit_size, num_digits, max_speed)
    digits = np.asarray(digits)
    digit_labels = np.asarray(digit_labels)
    if len(digits) != len(digit_labels) or len(digits) == 0:
        raise InputError("moving_mnist needs as many digit labels as digits (got %d digits, %d labels)"
                         % (len(digits), len(digit_labels)))
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(digits), size=(num_sequences, num_digits))
    sprites = resize_digits(digits[which.reshape(-1)], digit_size).reshape(num_sequences, num_digits,
                                                                           digit_size, digit_size)
    limit = image_size - digit_size
    tops = bounce_trajectories(rng, num_sequences * num_digits, length, limit, max_speed)
    tops = tops.reshape(num_sequences, num_digits, length, 2).transpose(0, 2, 1, 3)
    frames = _render(sprites, tops, image_size, separate_channels)
    centres = (tops + (digit_size - 1) / 2.0).astype(np.float32)
    return VideoBatch(frames, centres, digit_labels[which].astype(np.int32))


def _shape_sprite(kind: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2.0
    if SHAPES[kind] == "square":
        return np.ones((size, size), np.float32)
    if SHAPES[kind] == "disc":
        return ((xx - c) ** 2 + (yy - c) ** 2 <= (size / 2.0) ** 2).astype(np.float32)
    # triangle pointing up: rows fill from the apex (top centre) to the full base
    half_width = (yy + 1) / size * (size / 2.0)
    return (np.abs(xx - c) <= half_width).astype(np.float32)


def moving_shapes(num_sequences: int, length: int = 8, image_size: int = 32, shape_size: int = 8,
                  num_shapes: int = 1, max_speed: int = 3, turn_prob: float = 0.0, separate_channels: bool = False,
                  seed: int = 0, intensities: Optional[tuple] = (0.6, 1.0)) -> VideoBatch:
    """Moving filled shapes (square, disc, triangle) bouncing in the frame, with optional random turns.

    Args:
        num_sequences: N. length: T. image_size: H = W. shape_size: box side S of each shape.
        num_shapes: D shapes per sequence. max_speed: as in :func:`moving_mnist`.
        turn_prob: per-frame probability of drawing a new velocity (0: straight bouncing motion).
        separate_channels: shape d in channel d; otherwise one channel.
        seed: the same seed gives the same sequences.
        intensities: (low, high): each shape's grey level is uniform in this range.

    Returns:
        :class:`VideoBatch` with labels = shape index into :data:`SHAPES`.

    Raises:
        InputError: non-positive sizes, shape_size > image_size, turn_prob outside [0, 1].
    """
    _check_common(num_sequences, length, image_size, shape_size, num_shapes, max_speed)
    if not 0.0 <= turn_prob <= 1.0:
        raise InputError("turn_prob must be in [0, 1], got %r" % turn_prob)
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, len(SHAPES), size=(num_sequences, num_shapes))
    levels = rng.uniform(intensities[0], intensities[1], size=(num_sequences, num_shapes)).astype(np.float32)
    base = np.stack([_shape_sprite(k, shape_size) for k in range(len(SHAPES))])
    sprites = base[kinds] * levels[..., None, None]
    tops = bounce_trajectories(rng, num_sequences * num_shapes, length, image_size - shape_size, max_speed,
                               turn_prob)
    tops = tops.reshape(num_sequences, num_shapes, length, 2).transpose(0, 2, 1, 3)
    frames = _render(sprites, tops, image_size, separate_channels)
    centres = (tops + (shape_size - 1) / 2.0).astype(np.float32)
    return VideoBatch(frames, centres, kinds.astype(np.int32))


def intensity_centroids(images: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Intensity-weighted centroid (x, y) of each channel of each image.

    Args:
        images: float ``[..., H, W, C]`` with non-negative values.

    Returns:
        float32 ``[..., C, 2]`` (x = column, y = row, in pixels); the frame centre where a channel is empty.
    """
    images = np.clip(np.asarray(images, np.float32), 0, None)
    h, w = images.shape[-3], images.shape[-2]
    mass = images.sum(axis=(-3, -2))
    xs = (images * np.arange(w, dtype=np.float32)[:, None]).sum(axis=(-3, -2))
    ys = (images * np.arange(h, dtype=np.float32)[:, None, None]).sum(axis=(-3, -2))
    safe = np.maximum(mass, eps)
    cx = np.where(mass > eps, xs / safe, (w - 1) / 2.0)
    cy = np.where(mass > eps, ys / safe, (h - 1) / 2.0)
    return np.stack([cx, cy], axis=-1).astype(np.float32)
