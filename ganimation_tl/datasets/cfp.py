"""CFP (Celebrities in Frontal-Profile, Sengupta et al., WACV 2016): faces with hand-labelled fiducials.

Layout read (the public release)::

    <root>/Data/Images/<id>/{frontal,profile}/<n>.jpg      # ~150x190 RGB photos
    <root>/Data/Fiducials/<id>/{frontal,profile}/<n>.txt   # 30 "x,y" lines, pixels of that photo
    <root>/Data/list_name.txt                              # identity names, one per line

``root`` may be the folder holding ``Data/`` or ``Data/`` itself. Identities are the integers of
the ``<id>`` folder names (001 -> 1). Views: ``frontal`` (10 per identity) and ``profile`` (4).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ganimation_tl.errors import InputError

__all__ = ["CFPRecord", "CFPFaces", "find_root", "list_records", "read_fiducials", "load_faces",
           "split_identities", "NUM_FIDUCIALS", "VIEWS"]

NUM_FIDUCIALS = 30
VIEWS = ("frontal", "profile")


@dataclasses.dataclass(frozen=True)
class CFPRecord:
    """One CFP photo: ``identity`` (1-based int), ``view`` ('frontal'|'profile'), ``index`` (1-based
    photo number), ``image_path`` and ``fiducial_path`` (None if the text file is missing)."""

    identity: int
    view: str
    index: int
    image_path: str
    fiducial_path: Optional[str]


@dataclasses.dataclass
class CFPFaces:
    """Loaded, cropped CFP faces.

    Attributes:
        images: uint8 ``[N, S, S, 3]`` RGB crops (NHWC).
        landmarks: float32 ``[N, 30, 2]`` fiducials as (x, y) pixels of the crop (x right, y down).
        identities: int32 ``[N]`` CFP identity numbers (1-based).
        views: int32 ``[N]``: 0 frontal, 1 profile.
        indices: int32 ``[N]`` photo numbers within the identity and view.
        paths: the source photo paths.
        in_photo: float32 ``[N, S, S]`` in [0, 1]: the part of each crop pixel that lies inside the photo
            (0 where the crop leaves the photo and ``load_faces`` pads by edge replication); None unless
            ``load_faces(..., with_in_photo=True)``.
    """

    images: np.ndarray
    landmarks: np.ndarray
    identities: np.ndarray
    views: np.ndarray
    indices: np.ndarray
    paths: List[str]
    in_photo: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, mask) -> "CFPFaces":
        """The faces where boolean/index array ``mask`` selects."""
        mask = np.asarray(mask)
        idx = np.flatnonzero(mask) if mask.dtype == bool else mask
        return CFPFaces(self.images[idx], self.landmarks[idx], self.identities[idx], self.views[idx],
                        self.indices[idx], [self.paths[i] for i in idx],
                        None if self.in_photo is None else self.in_photo[idx])


def find_root(path: str) -> str:
    """The ``Data`` folder of a CFP copy at ``path`` (``path`` or ``path/Data``).

    Raises:
        InputError: no ``Images/`` folder there.
    """
    for candidate in (os.path.join(path, "Data"), path):
        if os.path.isdir(os.path.join(candidate, "Images")):
            return candidate
    raise InputError("CFP data folder %r not found or has no Data/Images/ (expected the CFP release layout "
                     "<root>/Data/Images/<id>/{frontal,profile}/<n>.jpg)" % path)


def list_records(path: str, identities: Optional[Sequence[int]] = None,
                 views: Sequence[str] = VIEWS) -> List[CFPRecord]:
    """All photos of ``identities`` (default: every identity folder) and ``views``, sorted.

    Raises:
        InputError: missing folder, unknown view, a requested identity that is absent, or no photos.
    """
    root = find_root(path)
    bad = [v for v in views if v not in VIEWS]
    if bad:
        raise InputError("unknown CFP view(s) %s; valid: %s" % (bad, ", ".join(VIEWS)))
    image_root = os.path.join(root, "Images")
    present = {}
    for name in os.listdir(image_root):
        if name.isdigit() and os.path.isdir(os.path.join(image_root, name)):
            present[int(name)] = name
    wanted = sorted(present) if identities is None else [int(i) for i in identities]
    missing = [i for i in wanted if i not in present]
    if missing:
        raise InputError("CFP identities %s are not in %s (it has %d identities: %s..%s)"
                         % (missing[:10], image_root, len(present), min(present, default=None),
                            max(present, default=None)))
    records = []
    for identity in wanted:
        for view in views:
            folder = os.path.join(image_root, present[identity], view)
            if not os.path.isdir(folder):
                continue
            for file in sorted(os.listdir(folder)):
                stem, ext = os.path.splitext(file)
                if ext.lower() not in (".jpg", ".jpeg", ".png") or not stem.isdigit():
                    continue
                fid = os.path.join(root, "Fiducials", present[identity], view, stem + ".txt")
                records.append(CFPRecord(identity, view, int(stem), os.path.join(folder, file),
                                         fid if os.path.exists(fid) else None))
    if not records:
        raise InputError("no CFP photos found under %s for the requested identities/views" % image_root)
    return records


def read_fiducials(path: str) -> np.ndarray:
    """float32 ``[30, 2]`` (x, y) pixel coordinates from a CFP fiducial file ("x,y" per line).

    Raises:
        InputError: unreadable file, a malformed line (named by number) or not 30 points.
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError as error:
        raise InputError("cannot read CFP fiducials %s: %s" % (path, error))
    points = []
    for number, line in enumerate(lines, 1):
        parts = line.replace(" ", "").split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            points.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise InputError("%s line %d: expected 'x,y', got %r" % (path, number, line)) from None
    if len(points) != NUM_FIDUCIALS:
        raise InputError("%s: expected %d fiducial points, found %d" % (path, NUM_FIDUCIALS, len(points)))
    return np.asarray(points, np.float32)


def _crop_box(points: np.ndarray, width: int, height: int, margin: float) -> Tuple[float, float, float]:
    """Square box (centre x, centre y, side) around the fiducials, enlarged by ``margin``."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2.0
    side = float(max(hi - lo)) * (1.0 + margin)
    return float(centre[0]), float(centre[1]), max(side, 8.0)


def load_faces(path: str, image_size: int = 64, identities: Optional[Sequence[int]] = None,
               views: Sequence[str] = VIEWS, crop: str = "fiducials", margin: float = 0.5,
               limit_per_identity: Optional[int] = None, with_in_photo: bool = False) -> CFPFaces:
    """Load CFP photos as square RGB crops with their fiducials mapped into the crop.

    Args:
        path: the CFP folder (holding ``Data/``).
        image_size: output side S in pixels.
        identities: identity numbers to load (default: all).
        views: which of 'frontal', 'profile'.
        crop: 'fiducials' (a square around the 30 points, enlarged by ``margin`` of its side, padded
            by edge replication where it leaves the photo) or 'full' (the whole photo resized to a
            square, aspect ratio not kept).
        margin: extra side fraction for ``crop='fiducials'``.
        limit_per_identity: keep at most this many photos per identity and view.
        with_in_photo: also fill ``CFPFaces.in_photo``.

    Returns:
        :class:`CFPFaces`.

    Raises:
        InputError: missing data, unreadable photo or fiducial file, bad ``crop``/``image_size``.
    """
    import cv2
    from PIL import Image

    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise InputError("image_size must be an integer >= 8, got %r" % (image_size,))
    if crop not in ("fiducials", "full"):
        raise InputError("crop must be 'fiducials' or 'full', got %r" % crop)
    records = list_records(path, identities, views)
    if limit_per_identity is not None:
        counts: Dict[Tuple[int, str], int] = {}
        kept = []
        for r in records:
            key = (r.identity, r.view)
            if counts.get(key, 0) < limit_per_identity:
                kept.append(r)
                counts[key] = counts.get(key, 0) + 1
        records = kept
    images, landmarks, in_photo = [], [], []
    for r in records:
        try:
            with Image.open(r.image_path) as im:
                photo = np.asarray(im.convert("RGB"))
        except OSError as error:
            raise InputError("cannot read CFP photo %s: %s" % (r.image_path, error))
        if r.fiducial_path is None:
            raise InputError("CFP photo %s has no fiducial file (expected under Data/Fiducials/)" % r.image_path)
        points = read_fiducials(r.fiducial_path)
        h, w = photo.shape[:2]
        if crop == "full":
            cx, cy, sx, sy = w / 2.0, h / 2.0, float(w), float(h)
        else:
            cx, cy, side = _crop_box(points, w, h, margin)
            sx = sy = side
        # Affine map from the photo to the S x S crop.
        scale_x, scale_y = image_size / sx, image_size / sy
        matrix = np.array([[scale_x, 0, image_size / 2.0 - cx * scale_x],
                           [0, scale_y, image_size / 2.0 - cy * scale_y]], np.float64)
        interpolation = cv2.INTER_AREA if min(scale_x, scale_y) < 1 else cv2.INTER_LINEAR
        images.append(cv2.warpAffine(photo, matrix, (image_size, image_size), flags=interpolation,
                                     borderMode=cv2.BORDER_REPLICATE))
        if with_in_photo:
            in_photo.append(cv2.warpAffine(np.ones((h, w), np.float32), matrix, (image_size, image_size),
                                           flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0))
        mapped = points * np.array([scale_x, scale_y], np.float32) + matrix[:, 2].astype(np.float32)
        landmarks.append(mapped.astype(np.float32))
    return CFPFaces(np.stack(images), np.stack(landmarks),
                    np.array([r.identity for r in records], np.int32),
                    np.array([VIEWS.index(r.view) for r in records], np.int32),
                    np.array([r.index for r in records], np.int32), [r.image_path for r in records],
                    np.clip(np.stack(in_photo), 0.0, 1.0).astype(np.float32) if with_in_photo else None)


def split_identities(identities: Sequence[int], held_out: int, seed: int = 0) -> Tuple[List[int], List[int]]:
    """Split identity numbers into (train, held-out) disjoint sorted lists; ``held_out`` of them held out,
    chosen with ``seed`` (seed -1: the last ``held_out`` in order, as in "1-100 train, 101-150 test").

    Raises:
        InputError: ``held_out`` not in [1, len(identities) - 1].
    """
    ids = sorted(int(i) for i in identities)
    if not 0 < held_out < len(ids):
        raise InputError("held_out must be between 1 and %d, got %d" % (len(ids) - 1, held_out))
    if seed == -1:
        return ids[:-held_out], ids[-held_out:]
    rng = np.random.default_rng(seed)
    test = sorted(rng.choice(ids, size=held_out, replace=False).tolist())
    return [i for i in ids if i not in set(test)], test
