"""Seeded, reproducible synthetic AU-labelled faces: sampling, augmentation and writing a data set to disk.

Why: EmotioNet (GANimation's training data) has no head-pose variety, no occlusion, AU labels estimated by a
detector and discrete intensities (the course slides' list of its limits). Here every label is exact and
continuous: the 17 AU intensities that drove the renderer, the 68 landmarks, the head pose, the identity, an
occlusion mask and one region mask per AU.

Typical use::

    faces = SyntheticFaces(image_size=128, seed=0, num_identities=1000)
    s = faces.sample(12)                  # FaceSample: image, aus, landmarks, pose, identity, masks
    b = faces.batch(0, 25)                # FaceBatch: the same fields stacked
    smile = faces.render(s.identity, aus=np.eye(17)[8])   # same person, only AU12 at full intensity

Everything is a pure function of ``(seed, index)``: the same seed gives identical samples on every run (on the
same library versions). A sample's identity is ``index % num_identities`` and an identity's face (shape, skin,
hair, eye colour) is a pure function of ``(seed, identity)``, so one person can be re-rendered with other AUs,
poses, lighting or occluders.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ganimation_tl.aus import AU_COLUMNS, AU_NAMES, NUM_AUS, OPENFACE_MAX
from ganimation_tl.errors import InputError
from ganimation_tl.synthetic import backgrounds, geometry
from ganimation_tl.synthetic.render import OCCLUDERS, Lighting, render_face

#: Image sizes accepted: at least this, at most MAX_IMAGE_SIZE, and a multiple of SIZE_MULTIPLE.
MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 1024
#: The generator networks here halve the resolution twice, so sizes must be multiples of 4.
SIZE_MULTIPLE = 4
#: Largest |yaw|, |pitch|, |roll| in degrees the head model renders plausibly (beyond, the far eye leaves the face).
MAX_POSE = (45.0, 30.0, 45.0)
_IDENTITY_TAG = 0x1D
_TEST_SPLIT_TAG = 0x7E57
_STREAMS = 4   # expression, scene, occlusion, camera


# ----------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Augmentations:
    """Probability of each augmentation (each in [0, 1]).

    Attributes:
        photo_background: background is a random crop of a real photo (else procedural).
        random_lighting: random light direction, colour and intensity (else a frontal white light).
        occlusion: an occluder is drawn; which one follows ``occluder_weights``.
        occluder_weights: relative weights of ``render.OCCLUDERS`` (glasses, hand, hair strands, face mask).
        crop_jitter: the crop is shifted (up to 6 % of its side) and scaled (0.92-1.08), like a face detector's.
        gaze: the eyes look somewhere other than straight ahead.
        colour_jitter: brightness, contrast, saturation and gamma change.
        blur: Gaussian or motion blur.
        noise: Gaussian camera noise.
        jpeg: JPEG compression artefacts.
        grayscale: the image becomes grey (3 equal channels).
    """

    photo_background: float = 0.6
    random_lighting: float = 0.9
    occlusion: float = 0.25
    occluder_weights: Tuple[float, ...] = (0.35, 0.2, 0.2, 0.25)
    crop_jitter: float = 0.9
    gaze: float = 0.7
    colour_jitter: float = 0.5
    blur: float = 0.25
    noise: float = 0.35
    jpeg: float = 0.25
    grayscale: float = 0.03

    @classmethod
    def off(cls) -> "Augmentations":
        """No augmentation: procedural backgrounds, frontal light, no occluder, exact crop, clean camera."""
        return cls(photo_background=0.0, random_lighting=0.0, occlusion=0.0, crop_jitter=0.0, gaze=0.0,
                   colour_jitter=0.0, blur=0.0, noise=0.0, jpeg=0.0, grayscale=0.0)

    def validate(self) -> None:
        """Raises InputError naming the first probability outside [0, 1] or bad occluder weights."""
        for field in dataclasses.fields(self):
            if field.name == "occluder_weights":
                continue
            value = getattr(self, field.name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise InputError("augmentation probability %s must be in [0, 1], got %r" % (field.name, value))
        w = np.asarray(self.occluder_weights, np.float64)
        if w.shape != (len(OCCLUDERS),) or np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise InputError("occluder_weights must be %d non-negative numbers (%s) with a positive sum, got %r"
                             % (len(OCCLUDERS), ", ".join(OCCLUDERS), self.occluder_weights))


@dataclasses.dataclass
class FaceSample:
    """One synthetic face and its exact labels.

    Attributes:
        image: uint8 ``[H, W, 3]`` RGB, HWC.
        aus: float32 ``[17]`` AU intensities in [0, 1] (= OpenFace 0..5 / 5), model order ``aus.AU_NAMES``.
        landmarks: float32 ``[68, 2]`` (x, y) pixels, iBUG 68 order (see :mod:`.geometry`), pixel centres at
            integers; 3D landmarks projected, so under yaw the far jaw points lie inside the silhouette.
        pose: float32 ``[3]`` (yaw, pitch, roll) in degrees; positive yaw turns the face to the image right,
            positive pitch tilts it down, positive roll turns it clockwise in the image.
        identity: identity id (int); same id, same person.
        occlusion_mask: bool ``[H, W]``, True where an occluder covers the image.
        region_masks: bool ``[17, H, W]``: per AU, where that AU moves or changes the face.
        index: the sample index, or None for :meth:`SyntheticFaces.render`.
    """

    image: np.ndarray
    aus: np.ndarray
    landmarks: np.ndarray
    pose: np.ndarray
    identity: int
    occlusion_mask: np.ndarray
    region_masks: np.ndarray
    index: Optional[int] = None


@dataclasses.dataclass
class FaceBatch:
    """Stacked :class:`FaceSample` fields for ``n`` faces.

    Attributes:
        images: uint8 ``[n, H, W, 3]`` RGB (NHWC).
        aus: float32 ``[n, 17]`` in [0, 1].
        landmarks: float32 ``[n, 68, 2]`` (x, y) pixels.
        pose: float32 ``[n, 3]`` (yaw, pitch, roll) degrees.
        identity: int64 ``[n]``.
        occlusion_mask: bool ``[n, H, W]``.
        region_masks: bool ``[n, 17, H, W]``.
        index: int64 ``[n]`` sample indices.
    """

    images: np.ndarray
    aus: np.ndarray
    landmarks: np.ndarray
    pose: np.ndarray
    identity: np.ndarray
    occlusion_mask: np.ndarray
    region_masks: np.ndarray
    index: np.ndarray


# ----------------------------------------------------------------------------------------------------------------
# AU sampling: a mixture of emotion prototypes, random sparse AUs and neutral faces, with small OpenFace-like
# activations sprinkled on top. Prototypes from shared/docs/facs.md (Ekman and Friesen's EMFACS combinations).
def _idx(*codes: int) -> Tuple[int, ...]:
    return tuple(AU_NAMES.index("AU%02d" % c) for c in codes)


#: name -> (weight, core AUs, {optional AU: probability}).
PROTOTYPES: Dict[str, Tuple[float, Tuple[int, ...], Dict[int, float]]] = {
    "happiness": (0.17, _idx(6, 12), dict(zip(_idx(25, 26, 10), (0.5, 0.12, 0.1)))),
    "sadness": (0.07, _idx(1, 4, 15), dict(zip(_idx(17, 6), (0.35, 0.1)))),
    "surprise": (0.07, _idx(1, 2, 5, 26), dict(zip(_idx(25,), (0.85,)))),
    "fear": (0.04, _idx(1, 2, 4, 5, 7, 20, 26), dict(zip(_idx(25,), (0.7,)))),
    "anger": (0.06, _idx(4, 5, 7, 23), dict(zip(_idx(17, 10, 25), (0.3, 0.2, 0.2)))),
    "disgust": (0.05, _idx(9, 10, 15), dict(zip(_idx(17, 25, 4), (0.3, 0.3, 0.3)))),
    "contempt": (0.03, _idx(12, 14), {}),
}
NEUTRAL_WEIGHT = 0.2
RANDOM_WEIGHT = 0.31
_AU25, _AU26, _AU45 = _idx(25, 26, 45)


def sample_aus(rng: np.random.Generator) -> np.ndarray:
    """Draw realistic, sparse AU intensities.

    A mixture of: neutral faces (weight 0.2), the emotion prototypes in :data:`PROTOTYPES` (happiness 6+12(+25),
    sadness 1+4+15, surprise 1+2+5+26, fear 1+2+4+5+7+20+26, anger 4+5+7+23, disgust 9+10+15, contempt 12+14;
    one overall intensity per face, each AU jittered), and 1-4 random AUs (weight 0.31). Then small activations
    (< 0.15) are sprinkled on ~10 % of the AUs as OpenFace reports them, AU45 (blink) is set on ~6 % of faces,
    and a jaw drop (AU26 > 0.3) always parts the lips (AU25). Many values are exactly 0, like real data.

    Args:
        rng: NumPy generator.

    Returns:
        float32 ``[17]`` in [0, 1], model order.
    """
    aus = np.zeros(NUM_AUS, np.float64)
    names = list(PROTOTYPES)
    weights = np.array([NEUTRAL_WEIGHT, RANDOM_WEIGHT] + [PROTOTYPES[n][0] for n in names])
    choice = rng.choice(len(weights), p=weights / weights.sum())
    if choice == 1:
        k = int(rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1]))
        which = rng.choice(NUM_AUS - 1, size=k, replace=False)          # AU45 is handled below
        aus[which] = rng.beta(1.3, 1.8, size=k)
    elif choice >= 2:
        _, core, optional = PROTOTYPES[names[choice - 2]]
        g = 0.15 + 0.85 * rng.beta(2.0, 1.6)
        for i in core:
            if rng.random() < 0.9:
                aus[i] = g * rng.uniform(0.6, 1.25)
        for i, prob in optional.items():
            if rng.random() < prob:
                aus[i] = g * rng.uniform(0.3, 1.0)
    small = rng.random(NUM_AUS) < 0.1
    aus = np.where(small, np.maximum(aus, rng.uniform(0.0, 0.15, NUM_AUS)), aus)
    r = rng.random()
    if r < 0.06:
        aus[_AU45] = rng.uniform(0.5, 1.0)
    elif r < 0.14:
        aus[_AU45] = max(aus[_AU45], rng.uniform(0.05, 0.3))
    if aus[_AU26] > 0.3:
        aus[_AU25] = max(aus[_AU25], aus[_AU26] * rng.uniform(0.6, 1.0))
    return np.clip(aus, 0.0, 1.0).astype(np.float32)


_NOISE_BANKS: Dict[int, np.ndarray] = {}


def _noise_bank(size: int) -> np.ndarray:
    """Fixed standard-normal noise, float32 ``[2*size, 2*size, 3]``; random windows of it are the camera noise."""
    bank = _NOISE_BANKS.get(size)
    if bank is None:
        bank = np.random.default_rng(20181008).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)
        _NOISE_BANKS[size] = bank
    return bank


def au_occurrence(aus: np.ndarray, threshold: float = 1.0 / OPENFACE_MAX) -> np.ndarray:
    """AU presence from intensities: ``aus >= threshold``.

    The default threshold is OpenFace intensity 1 (FACS level A) on the 0..5 scale, i.e. 0.2 in model units
    (``shared/docs/facs.md``, "Occurrence versus intensity").

    Args:
        aus: float ``[..., 17]`` in [0, 1].
        threshold: model-unit threshold.

    Returns:
        bool array of the same shape.
    """
    return np.asarray(aus) >= threshold


def camera_effects(image: np.ndarray, rng: np.random.Generator, aug: Augmentations) -> np.ndarray:
    """Colour jitter, blur, noise, JPEG artefacts and greyscale, each with its probability in ``aug``.

    Args:
        image: uint8 ``[H, W, 3]`` RGB.
        rng: NumPy generator.
        aug: probabilities.

    Returns:
        uint8 ``[H, W, 3]`` RGB (a new array when anything changed).
    """
    size = image.shape[0]
    u = rng.random(5)
    out = image
    if u[0] < aug.colour_jitter:
        s, c, b, g = rng.uniform(0.6, 1.3), rng.uniform(0.75, 1.25), rng.uniform(0.75, 1.2), rng.uniform(0.8, 1.25)
        grey = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2GRAY)
        out = cv2.addWeighted(out, s, cv2.merge([grey, grey, grey]), 1.0 - s, 0.0)           # saturation
        mean = float(grey.mean())
        out = cv2.addWeighted(out, c, out, 0.0, mean * (b - c))                              # contrast, brightness
        lut = np.clip(255.0 * (np.arange(256) / 255.0) ** g, 0, 255).astype(np.uint8)      # gamma
        out = cv2.LUT(out, lut)
    if u[1] < aug.blur:
        if rng.random() < 0.7:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.2) * size / 128.0)
        else:
            length = max(3, int(round(rng.uniform(2, 6) * size / 128.0)) | 1)
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2, :] = 1.0 / length
            rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
            kernel = cv2.warpAffine(kernel, rot, (length, length))
            out = cv2.filter2D(out, -1, kernel / max(kernel.sum(), 1e-6))
    if u[2] < aug.noise:
        bank = _noise_bank(size)
        y0, x0 = rng.integers(0, size, 2)
        noise = bank[y0:y0 + size, x0:x0 + size] * np.float32(rng.uniform(1.5, 7.0))
        out = cv2.add(out, noise, dtype=cv2.CV_8U)
    if u[3] < aug.jpeg:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(out[..., ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 91))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    if u[4] < aug.grayscale:
        grey = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2GRAY)
        out = cv2.merge([grey, grey, grey])
    return np.ascontiguousarray(out)


# ----------------------------------------------------------------------------------------------------------------
def _check_int(name: str, value, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError("%s must be an integer, got %r" % (name, value))
    value = int(value)
    if value < low or (high is not None and value > high):
        raise InputError("%s must be %s, got %d" % (name, ("in [%d, %d]" % (low, high)) if high is not None
                                                    else (">= %d" % low), value))
    return value


def _check_float(name: str, value, low: float, high: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError("%s must be a number, got %r" % (name, value)) from None
    if not np.isfinite(value) or not low <= value <= high:
        raise InputError("%s must be in [%g, %g], got %r" % (name, low, high, value))
    return value


def validate_image_size(image_size) -> int:
    """Return ``image_size`` as int if it is an integer in [32, 1024] and a multiple of 4, else raise InputError."""
    size = _check_int("image_size", image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
    if size % SIZE_MULTIPLE:
        raise InputError("image_size must be a multiple of %d (the generator halves the resolution twice), got %d"
                         % (SIZE_MULTIPLE, size))
    return size


class SyntheticFaces:
    """An endless, seeded data set of synthetic AU-labelled faces (see the module docstring).

    Args:
        image_size: side S of the square images; integer in [32, 1024], multiple of 4.
        seed: non-negative integer; everything is a pure function of (seed, index).
        num_identities: number of distinct people (>= 1); sample ``i`` shows identity ``i % num_identities``.
        max_yaw: yaw drawn from a triangular distribution on [-max_yaw, max_yaw] degrees (0..45).
        max_pitch: same for pitch (0..30).
        max_roll: same for roll (0..45).
        frontal_only: all poses (0, 0, 0).
        augment: augmentation probabilities; default :class:`Augmentations`; ``Augmentations.off()`` for none.
        supersample: render at ``image_size * supersample`` and shrink (1..4); None: 2 for sizes up to 64 (about
            as fast as 128 px, and smoother), else 1.
        photos: background photos (uint8 ``[h, w, 3]`` RGB) to use instead of the ones shipped with scikit-image
            and scikit-learn (:mod:`.backgrounds`).

    Raises:
        InputError: any argument out of range (the message names it).
    """

    def __init__(self, image_size: int = 128, seed: int = 0, num_identities: int = 1000, *,
                 max_yaw: float = 30.0, max_pitch: float = 15.0, max_roll: float = 15.0, frontal_only: bool = False,
                 augment: Optional[Augmentations] = None, supersample: Optional[int] = None,
                 photos: Optional[Sequence[np.ndarray]] = None):
        self.image_size = validate_image_size(image_size)
        self.seed = _check_int("seed", seed, 0)
        self.num_identities = _check_int("num_identities", num_identities, 1)
        self.max_yaw = _check_float("max_yaw", max_yaw, 0.0, MAX_POSE[0])
        self.max_pitch = _check_float("max_pitch", max_pitch, 0.0, MAX_POSE[1])
        self.max_roll = _check_float("max_roll", max_roll, 0.0, MAX_POSE[2])
        self.frontal_only = bool(frontal_only)
        self.augment = Augmentations() if augment is None else augment
        if not isinstance(self.augment, Augmentations):
            raise InputError("augment must be an Augmentations, got %r" % (augment,))
        self.augment.validate()
        if supersample is None:
            supersample = 2 if self.image_size <= 64 else 1
        self.supersample = _check_int("supersample", supersample, 1, 4)
        self._photos = None if photos is None else [backgrounds._prepare(p) for p in photos]
        if self._photos is not None:
            self._photos = [p for p in self._photos if p is not None]
        self._identities: Dict[int, Tuple[geometry.IdentityParams, np.ndarray, np.ndarray]] = {}
        w = np.asarray(self.augment.occluder_weights, np.float64)
        self._occluder_p = w / w.sum()

    def __repr__(self) -> str:
        return ("SyntheticFaces(image_size=%d, seed=%d, num_identities=%d, max_yaw=%g, max_pitch=%g, max_roll=%g, "
                "frontal_only=%s, supersample=%d)" % (self.image_size, self.seed, self.num_identities, self.max_yaw,
                                                       self.max_pitch, self.max_roll, self.frontal_only,
                                                       self.supersample))

    # -- identities ------------------------------------------------------------------------------------------
    def identity_params(self, identity: int) -> geometry.IdentityParams:
        """The face of identity ``identity`` (a pure function of ``(seed, identity)``)."""
        return self._identity(identity)[0]

    def _identity(self, identity: int):
        identity = _check_int("identity", identity, 0, self.num_identities - 1)
        entry = self._identities.get(identity)
        if entry is None:
            p = geometry.sample_identity(np.random.default_rng([self.seed, _IDENTITY_TAG, identity]))
            neutral = geometry.neutral_points(p)
            entry = (p, neutral, geometry.au_basis(p, neutral))
            if len(self._identities) >= 4096:
                self._identities.clear()
            self._identities[identity] = entry
        return entry

    def identity_of(self, index: int) -> int:
        """Identity id shown by sample ``index``."""
        return _check_int("index", index, 0) % self.num_identities

    def test_identities(self, fraction: float) -> np.ndarray:
        """Identity ids held out for testing: ``round(fraction * num_identities)`` of them, at least one when
        ``fraction > 0`` and there are two or more identities, never all of them.

        Returns:
            int64 ``[k]`` sorted ids.
        """
        fraction = _check_float("test_fraction", fraction, 0.0, 1.0)
        if fraction >= 1.0:
            raise InputError("test_fraction must be below 1 (some identities must stay for training), got %g"
                             % fraction)
        k = self.num_identities
        n = int(round(fraction * k))
        if fraction > 0 and k >= 2:
            n = min(max(n, 1), k - 1)
        perm = np.random.default_rng([self.seed, _TEST_SPLIT_TAG]).permutation(k)
        return np.sort(perm[:n]).astype(np.int64)

    # -- sampling --------------------------------------------------------------------------------------------
    def _pose(self, rng: np.random.Generator) -> np.ndarray:
        if self.frontal_only:
            return np.zeros(3, np.float32)
        out = []
        for m in (self.max_yaw, self.max_pitch, self.max_roll):
            out.append(rng.triangular(-m, 0.0, m) if m > 0 else 0.0)
        return np.asarray(out, np.float32)

    def aus_of(self, index: int) -> np.ndarray:
        """The AUs of :meth:`sample` ``(index)`` without rendering it (float32 [17] in [0, 1]).

        Cheap (about 30 us), so a training pipeline can plan an epoch's target AUs up front.
        """
        index = _check_int("index", index, 0)
        r_expr = np.random.default_rng(np.random.SeedSequence([self.seed, index]).spawn(_STREAMS)[0])
        return sample_aus(r_expr)

    def sample(self, index: int) -> FaceSample:
        """The face with this index (deterministic).

        Args:
            index: non-negative integer.

        Returns:
            FaceSample.

        Raises:
            InputError: a negative or non-integer index.
        """
        index = _check_int("index", index, 0)
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence([self.seed, index]).spawn(_STREAMS)]
        r_expr, r_scene, r_occ, r_cam = streams
        aug = self.augment
        identity = index % self.num_identities
        aus = sample_aus(r_expr)
        pose = self._pose(r_expr)
        gaze = np.clip(r_expr.normal(0.0, 9.0, 2), -22, 22) if r_expr.random() < aug.gaze else np.zeros(2)
        lighting = Lighting.random(r_scene) if r_scene.random() < aug.random_lighting else Lighting()
        if r_scene.random() < aug.crop_jitter:
            crop = (r_scene.uniform(-0.06, 0.06), r_scene.uniform(-0.06, 0.06), r_scene.uniform(0.92, 1.08))
        else:
            crop = (0.0, 0.0, 1.0)
        # Last in its stream: how many numbers a background consumes depends on its kind and size.
        background = backgrounds.random_background(r_scene, self.image_size * self.supersample,
                                                   aug.photo_background, self._photos)
        occluder = None
        if r_occ.random() < aug.occlusion:
            occluder = OCCLUDERS[int(r_occ.choice(len(OCCLUDERS), p=self._occluder_p))]
        sample = self._render(identity, aus, pose, lighting, background, occluder, r_occ, crop, gaze)
        sample.image = camera_effects(sample.image, r_cam, aug)
        sample.index = index
        return sample

    def __getitem__(self, index: int) -> FaceSample:
        return self.sample(index)

    def _render(self, identity, aus, pose, lighting, background, occluder, rng, crop, gaze) -> FaceSample:
        p, neutral, basis = self._identity(identity)
        points = geometry.deform(p, neutral, aus, basis)
        res = render_face(p, points, aus, pose, size=self.image_size, background=background, lighting=lighting,
                          occluder=occluder, rng=rng, crop=crop, gaze=gaze, supersample=self.supersample)
        return FaceSample(image=res.image, aus=np.asarray(aus, np.float32), landmarks=res.landmarks,
                          pose=np.asarray(pose, np.float32), identity=int(identity),
                          occlusion_mask=res.occlusion_mask, region_masks=res.region_masks)

    def render(self, identity: int, aus: Union[Sequence[float], np.ndarray, None] = None,
               pose: Optional[Sequence[float]] = None, *, lighting: Union[Lighting, str, None] = None,
               background: Union[str, np.ndarray] = "plain", occlusion: Optional[str] = None,
               camera: bool = False, gaze: Sequence[float] = (0.0, 0.0),
               crop: Sequence[float] = (0.0, 0.0, 1.0), seed: int = 0) -> FaceSample:
        """Render one identity with chosen AUs, pose, lighting, background and occluder.

        Args:
            identity: identity id in [0, num_identities).
            aus: float ``[17]`` in [0, 1] (model order); None for a neutral face.
            pose: (yaw, pitch, roll) degrees; None for frontal.
            lighting: a :class:`Lighting`, ``"random"`` (drawn from ``seed``) or None (frontal white light).
            background: ``"plain"``, ``"procedural"``, ``"photo"`` (random photo crop from ``seed``; procedural
                when no photo is available) or a uint8 ``[h, w, 3]`` RGB image (resized to fit).
            occlusion: None, ``"random"`` or one of ``render.OCCLUDERS`` (placement drawn from ``seed``).
            camera: apply the camera effects (blur, noise, JPEG, ...) with this data set's probabilities.
            gaze: (horizontal, vertical) gaze in degrees.
            crop: (dx, dy, scale) crop offset (fraction of the half-side) and size factor.
            seed: non-negative integer for every random choice above.

        Returns:
            FaceSample with ``index=None``.

        Raises:
            InputError: bad identity, AUs (shape, range, NaN), pose, option name or seed.
        """
        identity = _check_int("identity", identity, 0, self.num_identities - 1)
        seed = _check_int("seed", seed, 0)
        if aus is None:
            aus = np.zeros(NUM_AUS, np.float32)
        aus = np.asarray(aus, np.float64)
        if aus.shape != (NUM_AUS,):
            raise InputError("aus must have %d values (%s), got shape %s" % (NUM_AUS, ", ".join(AU_NAMES), aus.shape))
        if not np.all(np.isfinite(aus)) or np.any(aus < 0) or np.any(aus > 1):
            raise InputError("aus must be finite and in [0, 1] (OpenFace intensity / 5), got %s" % np.round(aus, 3))
        pose = np.zeros(3) if pose is None else np.asarray(pose, np.float64)
        if pose.shape != (3,) or not np.all(np.isfinite(pose)) or np.any(np.abs(pose) > np.asarray(MAX_POSE)):
            raise InputError("pose must be (yaw, pitch, roll) in degrees within +-%g, +-%g, +-%g, got %r"
                             % (MAX_POSE + (tuple(np.round(pose, 3).tolist()) if pose.shape == (3,) else pose,)))
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence([self.seed, seed, 0x5E]).spawn(3)]
        r_scene, r_occ, r_cam = streams
        if lighting is None:
            lighting = Lighting()
        elif isinstance(lighting, str):
            if lighting != "random":
                raise InputError("lighting must be a Lighting, 'random' or None, got %r" % lighting)
            lighting = Lighting.random(r_scene)
        elif not isinstance(lighting, Lighting):
            raise InputError("lighting must be a Lighting, 'random' or None, got %r" % (lighting,))
        R = self.image_size * self.supersample
        if isinstance(background, np.ndarray):
            bg = backgrounds._prepare(background)
            if bg is None:
                raise InputError("background image must be uint8 [h, w, 3] RGB of at least 32x32, got shape %s"
                                 % (background.shape,))
            bg = cv2.resize(bg, (R, R), interpolation=cv2.INTER_AREA)
        elif background == "plain":
            bg = backgrounds.plain_background(R)
        elif background == "procedural":
            bg = backgrounds.procedural_background(r_scene, R)
        elif background == "photo":
            bg = backgrounds.random_background(r_scene, R, 1.0, self._photos)
        else:
            raise InputError("background must be 'plain', 'procedural', 'photo' or an image, got %r" % (background,))
        if occlusion == "random":
            occlusion = OCCLUDERS[int(r_occ.choice(len(OCCLUDERS), p=self._occluder_p))]
        elif occlusion is not None and occlusion not in OCCLUDERS:
            raise InputError("occlusion must be None, 'random' or one of %s, got %r" % (", ".join(OCCLUDERS),
                                                                                      occlusion))
        sample = self._render(identity, aus, pose, lighting, bg, occlusion, r_occ, tuple(crop), tuple(gaze))
        if camera:
            sample.image = camera_effects(sample.image, r_cam, self.augment)
        return sample

    def batch(self, start: int, n: int) -> FaceBatch:
        """Samples ``start .. start + n - 1`` stacked into arrays (see :class:`FaceBatch`).

        Raises:
            InputError: negative start or n < 1.
        """
        start = _check_int("start", start, 0)
        n = _check_int("n", n, 1)
        S = self.image_size
        out = FaceBatch(images=np.empty((n, S, S, 3), np.uint8), aus=np.empty((n, NUM_AUS), np.float32),
                        landmarks=np.empty((n, geometry.NUM_LANDMARKS, 2), np.float32),
                        pose=np.empty((n, 3), np.float32), identity=np.empty(n, np.int64),
                        occlusion_mask=np.empty((n, S, S), bool), region_masks=np.empty((n, NUM_AUS, S, S), bool),
                        index=np.arange(start, start + n, dtype=np.int64))
        for j in range(n):
            s = self.sample(start + j)
            out.images[j], out.aus[j], out.landmarks[j], out.pose[j] = s.image, s.aus, s.landmarks, s.pose
            out.identity[j], out.occlusion_mask[j], out.region_masks[j] = s.identity, s.occlusion_mask, s.region_masks
        return out


# ----------------------------------------------------------------------------------------------------------------
def _fmt(values, digits: int) -> List[str]:
    return [("%%.%df" % digits) % float(v) for v in values]


def write_dataset(out_dir: Union[str, os.PathLike], count: int, faces: SyntheticFaces, *, test_fraction: float = 0.1,
                  overwrite: bool = False, progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, int]:
    """Write ``count`` faces in the layout ``train.py`` reads (the official GANimation layout plus extras).

    Layout of ``out_dir``::

        imgs/<id>.png            RGB faces, <id> = 000000, 000001, ...
        aus.csv                  file,AU01_r,...,AU45_r   (OpenFace scale 0..5 = model AUs * 5, 4 decimals)
        landmarks.csv            file,x0,y0,...,x67,y67   (pixels, iBUG 68 order)
        pose.csv                 file,yaw,pitch,roll      (degrees)
        identities.csv           file,identity
        occlusion/<id>.png       occlusion masks, 0 / 255 single channel
        train_ids.csv, test_ids.csv   one file name per line, no header; split by identity
        synthetic.json           the generator settings (for reproducing the set)

    Writing is atomic: everything goes to a temporary folder beside ``out_dir`` which is renamed at the end.

    Args:
        out_dir: destination folder; must not exist or be empty unless ``overwrite``.
        count: number of faces (>= 1); sample indices 0 .. count-1 of ``faces``.
        faces: the generator.
        test_fraction: fraction of identities held out (:meth:`SyntheticFaces.test_identities`).
        overwrite: replace an existing non-empty ``out_dir``.
        progress: called as ``progress(done, count)`` now and then.

    Returns:
        {"count": n, "train": n_train, "test": n_test}.

    Raises:
        InputError: bad count / test_fraction, ``out_dir`` is a file, or is non-empty without ``overwrite``.
    """
    count = _check_int("count", count, 1)
    test_ids = set(int(i) for i in faces.test_identities(test_fraction))
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("output path %s exists and is not a folder" % out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError("output folder %s exists and is not empty; pass --overwrite to replace it" % out)
    parent = out.resolve().parent
    if not parent.is_dir():
        raise InputError("parent folder %s of the output does not exist" % parent)
    tmp = parent / (".%s.tmp-%d-%s" % (out.name, os.getpid(), uuid.uuid4().hex[:8]))
    width = max(6, len(str(count - 1)))
    try:
        (tmp / "imgs").mkdir(parents=True)
        (tmp / "occlusion").mkdir()
        au_rows, lm_rows, pose_rows, id_rows, train, test = [], [], [], [], [], []
        for i in range(count):
            s = faces.sample(i)
            name = "%0*d.png" % (width, i)
            if not cv2.imwrite(str(tmp / "imgs" / name), np.ascontiguousarray(s.image[..., ::-1])):
                raise OSError("could not write %s" % (tmp / "imgs" / name))
            cv2.imwrite(str(tmp / "occlusion" / name), s.occlusion_mask.astype(np.uint8) * 255)
            au_rows.append([name] + _fmt(np.asarray(s.aus, np.float64) * OPENFACE_MAX, 4))
            lm_rows.append([name] + _fmt(s.landmarks.reshape(-1), 3))
            pose_rows.append([name] + _fmt(s.pose, 3))
            id_rows.append([name, str(s.identity)])
            (test if s.identity in test_ids else train).append(name)
            if progress is not None and (i + 1) % 500 == 0:
                progress(i + 1, count)
        _write_csv(tmp / "aus.csv", ["file"] + list(AU_COLUMNS), au_rows)
        _write_csv(tmp / "landmarks.csv", ["file"] + [c % k for k in range(geometry.NUM_LANDMARKS)
                                                     for c in ("x%d", "y%d")], lm_rows)
        _write_csv(tmp / "pose.csv", ["file", "yaw", "pitch", "roll"], pose_rows)
        _write_csv(tmp / "identities.csv", ["file", "identity"], id_rows)
        (tmp / "train_ids.csv").write_text("".join(n + "\n" for n in train))
        (tmp / "test_ids.csv").write_text("".join(n + "\n" for n in test))
        meta = {"generator": "ganimation_tl.synthetic", "count": count, "image_size": faces.image_size,
                "seed": faces.seed, "num_identities": faces.num_identities, "max_yaw": faces.max_yaw,
                "max_pitch": faces.max_pitch, "max_roll": faces.max_roll, "frontal_only": faces.frontal_only,
                "supersample": faces.supersample, "test_fraction": test_fraction,
                "augmentations": dataclasses.asdict(faces.augment), "au_columns": list(AU_COLUMNS),
                "au_scale": "OpenFace 0..5 (model value * 5)",
                "pose": "degrees; +yaw: face turns to image right, +pitch: down, +roll: clockwise in the image"}
        (tmp / "synthetic.json").write_text(json.dumps(meta, indent=2) + "\n")
        _swap_in(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress is not None:
        progress(count, count)
    return {"count": count, "train": len(train), "test": len(test)}


def _write_csv(path: Path, header: Sequence[str], rows: List[List[str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue())


def _swap_in(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished ``tmp`` folder to ``out`` (replacing an empty one, or any one with ``overwrite``)."""
    if out.is_dir():
        if any(out.iterdir()):
            if not overwrite:
                raise InputError("output folder %s exists and is not empty; pass --overwrite to replace it" % out)
            old = out.parent / (".%s.old-%d-%s" % (out.name, os.getpid(), uuid.uuid4().hex[:8]))
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
            return
        out.rmdir()
    os.replace(tmp, out)
