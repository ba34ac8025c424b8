"""Backgrounds for the synthetic faces: random crops of real photos that ship with installed packages, or
procedural ones.

Photos come from scikit-image's ``skimage.data`` (astronaut, coffee, chelsea, rocket, camera, brick, grass,
gravel: all inside the scikit-image wheel) and scikit-learn's ``load_sample_images`` (china, flower). They are
loaded lazily on first use, downscaled once and cached for the process. Any photo that cannot be loaded (package
missing, file missing, a loader that would need a download) is skipped; with none available,
:func:`random_background` falls back to procedural backgrounds, so the synthetic faces never need the network or
``/work/shared``.
"""
from __future__ import annotations

import threading
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

_PHOTO_MAX_SIDE = 384


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data  # noqa: PLC0415  (lazy: importing skimage costs ~0.3 s)
        return getattr(skimage.data, name)()
    return load


def _sklearn(i: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_images  # noqa: PLC0415
        return load_sample_images().images[i]
    return load


#: (name, loader) of every photo tried, in order. Loaders return uint8 [H, W, 3] RGB or [H, W] grey.
PHOTO_SOURCES: List[Tuple[str, Callable[[], np.ndarray]]] = [
    ("skimage.astronaut", _skimage("astronaut")), ("skimage.coffee", _skimage("coffee")),
    ("skimage.chelsea", _skimage("chelsea")), ("skimage.rocket", _skimage("rocket")),
    ("skimage.camera", _skimage("camera")), ("skimage.brick", _skimage("brick")),
    ("skimage.grass", _skimage("grass")), ("skimage.gravel", _skimage("gravel")),
    ("sklearn.china", _sklearn(0)), ("sklearn.flower", _sklearn(1)),
]

_lock = threading.Lock()
_cache: Optional[List[np.ndarray]] = None
_cache_names: List[str] = []


def _prepare(image: np.ndarray) -> Optional[np.ndarray]:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] < 3 or min(image.shape[:2]) < 32:
        return None
    image = image[:, :, :3]
    if image.dtype != np.uint8:
        image = np.clip(image.astype(np.float64) * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    scale = _PHOTO_MAX_SIDE / max(image.shape[:2])
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def photos(sources: Optional[Sequence[Tuple[str, Callable[[], np.ndarray]]]] = None) -> List[np.ndarray]:
    """The background photos available here (loaded once, then cached).

    Args:
        sources: (name, loader) pairs to use instead of :data:`PHOTO_SOURCES` (not cached; for tests).

    Returns:
        list of uint8 ``[H, W, 3]`` RGB photos (longest side at most 384 px); possibly empty.
    """
    global _cache, _cache_names
    if sources is None:
        with _lock:
            if _cache is None:
                _cache, _cache_names = _load(PHOTO_SOURCES)
            return _cache
    return _load(sources)[0]


def photo_names() -> List[str]:
    """Names of the cached photos (after :func:`photos` ran)."""
    photos()
    return list(_cache_names)


def _load(sources) -> Tuple[List[np.ndarray], List[str]]:
    images, names = [], []
    for name, loader in sources:
        try:
            image = _prepare(loader())
        except Exception:  # noqa: BLE001  (a missing package, file or download: skip that photo)
            image = None
        if image is not None:
            images.append(image)
            names.append(name)
    return images, names


_scaled: dict = {}


def _scaled_photos(images: List[np.ndarray], size: int) -> List[np.ndarray]:
    """The photos shrunk so their short side is at most ``2 * size`` (cached per list and size)."""
    key = (id(images), len(images), size)
    out = _scaled.get(key)
    if out is None:
        out = []
        for image in images:
            scale = 2.0 * size / min(image.shape[:2])
            out.append(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                       if scale < 1.0 else image)
        if len(_scaled) > 16:
            _scaled.clear()
        _scaled[key] = out
    return out


def photo_background(rng: np.random.Generator, size: int, images: Optional[List[np.ndarray]] = None
                     ) -> Optional[np.ndarray]:
    """A random crop of a random photo, resized to ``size``; maybe flipped, blurred (depth of field), tinted.

    Args:
        rng: NumPy generator.
        size: output side in pixels.
        images: photos to use (default :func:`photos`).

    Returns:
        uint8 ``[size, size, 3]`` RGB, or None when no photo is available.
    """
    images = photos() if images is None else images
    if not images:
        return None
    image = _scaled_photos(images, size)[int(rng.integers(len(images)))]
    h, w = image.shape[:2]
    side = max(int(min(h, w) * rng.uniform(0.3, 0.95)), 8)
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    crop = image[y0:y0 + side, x0:x0 + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.6:      # depth of field: through a smaller image
        small = max(4, int(size / rng.uniform(1.5, 5.0)))
        out = cv2.resize(cv2.resize(crop, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                         interpolation=cv2.INTER_CUBIC)
    else:
        out = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    gain = rng.uniform(0.7, 1.15, 3) * rng.uniform(0.8, 1.1)
    return cv2.multiply(out, (float(gain[0]), float(gain[1]), float(gain[2]), 0.0))


def procedural_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A procedural background: a colour gradient, smooth colour noise, or a wall with panels.

    Args:
        rng: NumPy generator.
        size: output side in pixels.

    Returns:
        uint8 ``[size, size, 3]`` RGB.
    """
    kind = rng.random()
    c0 = rng.uniform(0, 255, 3)
    if kind < 0.35:        # gradient: bilinear interpolation of 2x2 corner colours
        corners = np.clip(c0 + rng.normal(0, 50, (2, 2, 3)), 0, 255).astype(np.uint8)
        out = cv2.resize(corners, (size, size), interpolation=cv2.INTER_LINEAR)
    elif kind < 0.75:      # smooth colour noise
        cells = int(rng.integers(2, 7))
        grid = np.clip(c0 + rng.normal(0, 45, (cells, cells, 3)), 0, 255).astype(np.uint8)
        out = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    else:                  # wall with panels
        out = np.empty((size, size, 3), np.uint8)
        out[:] = c0.astype(np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            x0, y0 = rng.integers(0, size, 2)
            w, h = rng.integers(size // 8, size, 2)
            colour = np.clip(c0 + rng.normal(0, 40, 3), 0, 255)
            cv2.rectangle(out, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), colour.tolist(), -1, cv2.LINE_AA)
    grain = rng.integers(-4, 5, (size // 4 + 1, size // 4 + 1), dtype=np.int16).astype(np.float32)
    grain = cv2.resize(grain, (size, size), interpolation=cv2.INTER_LINEAR)
    return cv2.add(out, cv2.merge([grain, grain, grain]), dtype=cv2.CV_8U)


def plain_background(size: int, colour: Sequence[float] = (206, 210, 214)) -> np.ndarray:
    """A uniform background, uint8 ``[size, size, 3]`` RGB."""
    out = np.empty((size, size, 3), np.uint8)
    out[:] = np.asarray(colour, np.uint8)
    return out


def random_background(rng: np.random.Generator, size: int, photo_prob: float,
                      images: Optional[List[np.ndarray]] = None) -> np.ndarray:
    """A photo crop with probability ``photo_prob`` (if any photo is available), else a procedural background.

    Returns:
        uint8 ``[size, size, 3]`` RGB.
    """
    if rng.random() < photo_prob:
        out = photo_background(rng, size, images)
        if out is not None:
            return out
    return procedural_background(rng, size)
