"""Faces in photos: detect them, align each to the canonical training crop, paste edited crops back.

GANimation edits tight 128x128 face crops (Pumarola et al., ECCV 2018; shared/docs/ganimation.md "Input
faces"): the EmotioNet crops of the official sample are a face detector's box with the face filling the frame.
To edit a face in an arbitrary photo, ``infer.py`` does::

    detector = FaceDetector()
    faces = select_faces(detector.detect(photo), "largest")   # photo: [H, W, 3] uint8 RGB
    crop, M = align_face(photo, faces[0])                      # crop: [128, 128, 3] uint8, M: photo -> crop
    edited = ...generator(crop)...                             # [128, 128, 3] uint8
    photo = paste_back(photo, edited, M, original_crop=crop)   # only the face region changes

:func:`align_face` maps the 5 landmarks onto :data:`CANONICAL_LANDMARKS_128`, measured on the real training
crops, so a photo's face is framed like the faces the generator was trained on.

Conventions used throughout:

* Images are NumPy arrays in HWC layout, RGB channel order, dtype uint8, values [0, 255].
* Points are (x, y) in pixels with OpenCV's convention: pixel (row i, column j) has its centre at (x=j, y=i).
* Affine matrices are float64 [2, 3] and map homogeneous points ``p_dst = M @ [x, y, 1]``, as
  ``cv2.warpAffine`` uses them.
* The 5 landmarks are in MTCNN's order (Zhang et al., "Joint Face Detection and Alignment using Multi-task
  Cascaded Convolutional Networks", IEEE SPL 2016): ``left_eye, right_eye, nose, mouth_left, mouth_right``,
  where "left" means the IMAGE left (smaller x), i.e. the subject's right eye and right mouth corner for a
  face looking at the camera. Checked on ``skimage.data.astronaut()``: left_eye x=203.5 < right_eye x=245.4.

The detector wraps the ``mtcnn`` package (1.0.0, MIT, weights shipped inside the wheel, runs on TensorFlow); it
is imported lazily, so ``import ganimation_tl.faces`` needs only NumPy and OpenCV.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ganimation_tl.errors import InputError

#: Names of the 5 landmarks in MTCNN's order; "left"/"right" are the image left/right (see module docstring).
LANDMARK_NAMES: Tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

#: Crop side (pixels) for which :data:`CANONICAL_LANDMARKS_128` is given.
TEMPLATE_SIZE: int = 128

# Canonical template: where the 5 MTCNN landmarks fall in a 128x128 GANimation training crop, (x, y) pixels.
# Measured by bench/measure_crop_template.py on the 8 real EmotioNet crops in shared/data (4 in
# emotionet_sample/imgs, 4 in openface_sample/imgs): each crop padded by 64 px (50 %) on every side with
# BORDER_REPLICATE, upscaled x1.5 to 384 px (INTER_CUBIC), run through MTCNN (this module's FaceDetector with
# min_face_size=0, min_score=0: a face found in all 8, scores 0.927-0.999), the landmarks mapped back to
# 128-px crop coordinates, averaged over the 8 crops, and made left-right symmetric (mean of each point and
# its mirror image, x -> 127 - x, left/right swapped) because training flips crops horizontally at random.
# Raw mean over the 8 crops (x, y) and standard deviation (x, y), 128-px crop pixels:
#   left_eye    (37.7, 35.3) sd (3.7, 5.5)     right_eye   (92.1, 36.3) sd (5.4, 4.9)
#   nose        (65.6, 69.1) sd (9.5, 4.0)     mouth_left  (39.9, 94.2) sd (4.7, 7.6)
#   mouth_right (88.4, 94.9) sd (2.8, 7.8)
# (the spread is mostly head pose: two of the 8 faces look sideways). A crop's landmarks lie 7.5 px from the
# template on average (21 px at most). Inter-ocular distance 54.5 px (43 % of the crop side), eyes-to-mouth
# 58.8 px: the crops are tight, eyes at 28 % of the height, mouth at 74 %, chin partly cut off. Other
# paddings (25 %, 100 %), scales (256-512 px) or BORDER_REFLECT_101 move the template by at most 1.0 px.
CANONICAL_LANDMARKS_128: np.ndarray = np.array([
    [36.3, 35.8],   # left_eye (image left: the subject's right eye)
    [90.7, 35.8],   # right_eye
    [63.5, 69.1],   # nose
    [39.2, 94.5],   # mouth_left
    [87.8, 94.5],   # mouth_right
], dtype=np.float64)
CANONICAL_LANDMARKS_128.setflags(write=False)

#: A face is flagged :attr:`Face.is_profile` when its nose, projected on the eye-to-eye axis, lies outside
#: [PROFILE_NOSE_MARGIN, 1 - PROFILE_NOSE_MARGIN] of the way from the image-left eye to the image-right eye...
PROFILE_NOSE_MARGIN: float = 0.15
#: ...or when the inter-ocular distance is below this fraction of the eyes-to-mouth distance (the eyes
#: nearly coincide). Measured with MTCNN on CFP identities 001-030 (4 frontal + 4 profile photos each):
#: frontal nose position 0.36..0.61, ratio 0.80..1.17 (none flagged); profile: 110 of 120 found, 96 % of
#: them flagged; WolfgangLanger video (yaw up to about 34 degrees): nose position 0.37..0.69, ratio
#: 0.87..1.29 (none flagged).
PROFILE_MIN_EYE_MOUTH_RATIO: float = 0.6

#: Least-squares weights of the 5 landmarks in :func:`alignment_matrix` (left_eye, right_eye, nose,
#: mouth_left, mouth_right). The mouth corners move with the expression (AU12 lip corner puller, AU20 lip
#: stretcher, AU25/26 lips part / jaw drop) while the eyes and the nose stay put, so weighting the eyes lets
#: the alignment depend less on the expression that GANimation is about to change. Measured on 40 frames of
#: the WolfgangLanger video (neutral to laughing/crying): the aligned eye midpoint moves with a standard
#: deviation of (0.65, 0.67) px with these weights vs (0.94, 1.40) px with equal weights, the inter-ocular
#: distance in the crop 1.35 vs 1.82 px; on the astronaut the eyes land within 1.6 px of the template (3.0).
LANDMARK_WEIGHTS: Tuple[int, ...] = (4, 4, 2, 1, 1)

#: :class:`RejectedFace` reasons.
REJECT_TOO_SMALL: str = "too_small"
REJECT_LOW_SCORE: str = "low_score"

# MTCNN's PNet pyramid starts at faces of 20 px (its default min_face_size). Passing another value to
# mtcnn 1.0.0 is unsafe: its build_scale_pyramid() ignores min_face_size when counting pyramid levels, the
# smallest levels then fall below PNet's 12-px input, TensorFlow raises InvalidArgumentError and mtcnn
# swallows it as "no face" (measured: a 1000x1000 astronaut with min_face_size=40 gives []). So this module
# always detects with the default and filters by size afterwards.
_MTCNN_MIN_FACE = 20
_PNET_INPUT = 12  # MTCNN's proposal net needs at least this many pixels; smaller images cannot hold a face


def canonical_landmarks(size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The canonical 5-landmark template scaled to a ``size`` x ``size`` crop.

    Args:
        size: crop side in pixels (>= 8).

    Returns:
        float64 array [5, 2] of (x, y) pixel positions in :data:`LANDMARK_NAMES` order (pixel-centre
        convention, so the template scales about the crop's corner at (-0.5, -0.5)).

    Raises:
        InputError: ``size`` is not an integer >= 8.
    """
    size = _check_size(size)
    return (CANONICAL_LANDMARKS_128 + 0.5) * (size / TEMPLATE_SIZE) - 0.5


@dataclasses.dataclass(frozen=True, eq=False)
class Face:
    """One detected face, in photo pixel coordinates.

    Attributes:
        box: (x, y, w, h) float: top-left corner, width and height of the detector's box, in photo pixels.
        score: detector confidence in [0, 1].
        landmarks: float32 [5, 2] (x, y) in :data:`LANDMARK_NAMES` order: left_eye, right_eye, nose,
            mouth_left, mouth_right, where left/right are the IMAGE left/right (the subject's right eye is
            ``left_eye`` when the subject faces the camera).
    """

    box: Tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    def __post_init__(self):
        box = tuple(float(v) for v in self.box)
        if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] < 0 or box[3] < 0:
            raise InputError("face box must be 4 finite numbers (x, y, w, h) with w, h >= 0, got %r"
                             % (self.box,))
        landmarks = np.array(self.landmarks, dtype=np.float32).reshape(-1, 2) if np.size(self.landmarks) == 10 \
            else None
        if landmarks is None or not np.all(np.isfinite(landmarks)):
            raise InputError("face landmarks must be 5 finite (x, y) points, got an array of shape %s"
                             % (np.shape(self.landmarks),))
        landmarks.setflags(write=False)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "landmarks", landmarks)

    @property
    def area(self) -> float:
        """Box area w * h in square photo pixels."""
        return self.box[2] * self.box[3]

    @property
    def size(self) -> float:
        """The box's shorter side in photo pixels (what ``min_face_size`` is compared with)."""
        return min(self.box[2], self.box[3])

    @property
    def eye_distance(self) -> float:
        """Inter-ocular distance (between the two eye landmarks) in photo pixels."""
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))

    @property
    def nose_position(self) -> float:
        """Where the nose projects on the eye-to-eye axis: 0 at the image-left eye, 1 at the image-right eye.

        About 0.5 for a frontal face; below 0 or above 1 when the nose is outside the eye span (profile).
        """
        le, re, nose = (self.landmarks[i].astype(np.float64) for i in range(3))
        axis = re - le
        n2 = float(axis @ axis)
        if n2 <= 1e-12:
            return float("inf")
        return float((nose - le) @ axis / n2)

    @property
    def eye_mouth_ratio(self) -> float:
        """Inter-ocular distance / distance from the eyes' midpoint to the mouth corners' midpoint.

        About 0.8 to 1.2 for frontal faces, about 0.5 for profiles (the eyes nearly coincide).
        """
        lm = self.landmarks.astype(np.float64)
        eye_mid, mouth_mid = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
        d = float(np.linalg.norm(mouth_mid - eye_mid))
        return float("inf") if d <= 1e-12 else self.eye_distance / d

    @property
    def is_profile(self) -> bool:
        """True for a strong profile (or a landmark fit too distorted to align), which should be skipped.

        Flagged when the nose lies outside the middle of the eye span (:attr:`nose_position` outside
        [PROFILE_NOSE_MARGIN, 1 - PROFILE_NOSE_MARGIN]) or the eyes nearly coincide (:attr:`eye_mouth_ratio`
        < PROFILE_MIN_EYE_MOUTH_RATIO). Thresholds measured on CFP, see :data:`PROFILE_MIN_EYE_MOUTH_RATIO`.
        """
        t = self.nose_position
        return (not PROFILE_NOSE_MARGIN <= t <= 1.0 - PROFILE_NOSE_MARGIN
                or self.eye_mouth_ratio < PROFILE_MIN_EYE_MOUTH_RATIO)

    def to_dict(self) -> dict:
        """JSON-friendly summary: box, score, landmarks by name, is_profile."""
        return {"box": [round(v, 2) for v in self.box], "score": round(self.score, 4),
                "landmarks": {n: [round(float(v), 2) for v in p] for n, p in zip(LANDMARK_NAMES, self.landmarks)},
                "is_profile": self.is_profile}

    def __repr__(self) -> str:
        x, y, w, h = self.box
        return "Face(box=(%.1f, %.1f, %.1f, %.1f), score=%.4f%s)" % (
            x, y, w, h, self.score, ", profile" if self.is_profile else "")


@dataclasses.dataclass(frozen=True)
class RejectedFace:
    """A detection that :meth:`FaceDetector.detect` dropped, with the reason.

    Attributes:
        face: the dropped detection (photo coordinates).
        reason: :data:`REJECT_TOO_SMALL` or :data:`REJECT_LOW_SCORE`.
        message: human-readable explanation, e.g. ``"face at (12, 30) is 31x38 px, smaller than the minimum
            face size of 40 px"``.
    """

    face: Face
    reason: str
    message: str


class FaceDetector:
    """MTCNN face detector returning boxes, scores and 5 landmarks, with size/score filtering.

    Wraps ``mtcnn.MTCNN`` (package mtcnn 1.0.0; Zhang et al., IEEE SPL 2016). Its weights ship inside the
    wheel (``mtcnn/assets/weights/*.lz4``): nothing is downloaded. TensorFlow and mtcnn are imported on the
    first :meth:`detect` call (about 3 s), not at construction.

    Args:
        min_face_size: detections whose box is narrower or shorter than this (photo pixels) are dropped as
            :data:`REJECT_TOO_SMALL` (the size is :attr:`Face.size`, the box's shorter side). MTCNN's
            image pyramid is built for faces of 20 px and more in the (possibly downscaled) detection image;
            smaller ones are found only sometimes (the 9x12-px face of the astronaut shrunk to 60x60 is).
        max_detect_side: detection runs on a copy downscaled (INTER_AREA) so that its longer side is at most
            this many pixels; boxes and landmarks are scaled back to the photo. Bounds memory and time for
            huge photos (an 8000x8000 photo costs the same as a 1024x1024 one), at the price of missing faces
            smaller than about 20 * long_side / max_detect_side photo pixels.
        min_score: detections with a lower MTCNN confidence are dropped as :data:`REJECT_LOW_SCORE`.
            (MTCNN's own last-stage threshold is 0.8, so values below 0.8 change nothing.)
        device: TensorFlow device for MTCNN.

    Attributes:
        last_rejected: the :class:`RejectedFace` list of the latest :meth:`detect` call.

    Raises:
        InputError: a parameter is out of range.
    """

    def __init__(self, min_face_size: float = 40, max_detect_side: int = 1024, min_score: float = 0.9,
                 device: str = "CPU:0"):
        try:
            min_face_size = float(min_face_size)
            max_detect_side = int(max_detect_side)
            min_score = float(min_score)
        except (TypeError, ValueError) as e:
            raise InputError("FaceDetector: bad parameter (%s)" % e) from None
        if not (math.isfinite(min_face_size) and min_face_size >= 0):
            raise InputError("min_face_size must be >= 0 pixels, got %r" % min_face_size)
        if max_detect_side < 2 * _MTCNN_MIN_FACE:
            raise InputError("max_detect_side must be >= %d pixels, got %r" % (2 * _MTCNN_MIN_FACE, max_detect_side))
        if not (0.0 <= min_score <= 1.0):
            raise InputError("min_score must be in [0, 1], got %r" % min_score)
        self.min_face_size = min_face_size
        self.max_detect_side = max_detect_side
        self.min_score = min_score
        self.device = device
        self.last_rejected: List[RejectedFace] = []
        self._mtcnn = None

    def _model(self):
        if self._mtcnn is None:
            try:
                import importlib.resources
                from mtcnn import MTCNN  # lazy: imports TensorFlow
                from mtcnn.stages import StageONet, StagePNet, StageRNet
            except ImportError as e:  # pragma: no cover - mtcnn is an install requirement
                raise ImportError("face detection needs the 'mtcnn' package (pip install mtcnn==1.0.0): %s" % e)
            # Absolute paths to the weights inside the wheel: given a bare name, mtcnn 1.0.0 first tries
            # that name in the current directory (and unpickles whatever it finds there with joblib).
            assets = importlib.resources.files("mtcnn.assets.weights")
            stages = [StagePNet(weights=str(assets / "pnet.lz4")), StageRNet(weights=str(assets / "rnet.lz4")),
                      StageONet(weights=str(assets / "onet.lz4"))]
            self._mtcnn = MTCNN(stages=stages, device=self.device)
        return self._mtcnn

    def detect(self, rgb: np.ndarray, return_rejected: bool = False
               ) -> Union[List[Face], Tuple[List[Face], List[RejectedFace]]]:
        """Detect faces in a photo.

        Args:
            rgb: uint8 [H, W, 3] RGB photo, values [0, 255]. Greyscale photos are accepted as [H, W] or
                [H, W, 1] (replicated to 3 channels); [H, W, 4] RGBA drops alpha.
            return_rejected: also return the dropped detections.

        Returns:
            The kept faces (photo coordinates) sorted by box area, largest first; ``[]`` when there is none.
            Profiles are kept but flagged (:attr:`Face.is_profile`). With ``return_rejected=True``, a tuple
            ``(faces, rejected)``. The rejected list is also stored in :attr:`last_rejected`.

        Raises:
            InputError: ``rgb`` is not a non-empty uint8 array of shape [H, W], [H, W, 1], [H, W, 3] or
                [H, W, 4].
        """
        image = _check_image(rgb, "image", allow_grey=True)
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        elif image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
        h, w = image.shape[:2]
        scale = min(1.0, self.max_detect_side / float(max(h, w)))
        if scale < 1.0:
            dw, dh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
            small = cv2.resize(image, (dw, dh), interpolation=cv2.INTER_AREA)  # downscale before any copy
        else:
            dw, dh, small = w, h, image
        sx, sy = dw / float(w), dh / float(h)
        faces: List[Face] = []
        if min(dw, dh) >= _PNET_INPUT:
            if small.ndim == 2:
                small = cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)
            rows = self._model().detect_faces(np.ascontiguousarray(small), box_format="xyxy",
                                              output_type="numpy")
            for r in np.asarray(rows, dtype=np.float64).reshape(-1, 16):
                # row: image id, x1, y1, x2, y2, confidence, 5 landmark x's, 5 landmark y's
                x1, x2 = (r[1] + 0.5) / sx - 0.5, (r[3] + 0.5) / sx - 0.5
                y1, y2 = (r[2] + 0.5) / sy - 0.5, (r[4] + 0.5) / sy - 0.5
                lx = (r[6:11] + 0.5) / sx - 0.5
                ly = (r[11:16] + 0.5) / sy - 0.5
                faces.append(Face(box=(x1, y1, max(0.0, x2 - x1), max(0.0, y2 - y1)), score=float(r[5]),
                                  landmarks=np.stack([lx, ly], axis=1)))
        faces.sort(key=lambda f: (-f.area, -f.score))
        kept: List[Face] = []
        rejected: List[RejectedFace] = []
        for f in faces:
            x, y, fw, fh = f.box
            if f.size < self.min_face_size:
                rejected.append(RejectedFace(f, REJECT_TOO_SMALL, "face at (%d, %d) is %dx%d px, smaller than the "
                                             "minimum face size of %g px" % (x, y, fw, fh, self.min_face_size)))
            elif f.score < self.min_score:
                rejected.append(RejectedFace(f, REJECT_LOW_SCORE, "face at (%d, %d) (%dx%d px) has detector "
                                             "confidence %.3f < %g" % (x, y, fw, fh, f.score, self.min_score)))
            else:
                kept.append(f)
        self.last_rejected = rejected
        return (kept, rejected) if return_rejected else kept


def select_faces(faces: Sequence[Face], which: Union[str, int], flag: str = "--face") -> List[Face]:
    """Pick faces for ``--face=largest|all|INDEX``.

    Args:
        faces: faces as returned by :meth:`FaceDetector.detect` (largest first).
        which: ``"largest"`` (the face with the largest box area; ``[]`` if there is none), ``"all"``, or a
            0-based index into ``faces`` (an int or a string of digits).
        flag: the flag name used in error messages.

    Returns:
        A new list with the chosen faces.

    Raises:
        InputError: ``which`` is none of the above, or the index is out of range; the message names the flag
            and the number of faces found.
    """
    faces = list(faces)
    n = len(faces)
    text = str(which).strip().lower()
    if text == "largest":
        return [max(faces, key=lambda f: f.area)] if faces else []
    if text == "all":
        return faces
    if isinstance(which, bool) or not (text.isdigit() or (text.startswith("-") and text[1:].isdigit())):
        raise InputError("%s=%s: expected 'largest', 'all' or a 0-based face index (%d face%s found)"
                         % (flag, which, n, "" if n == 1 else "s"))
    index = int(text)
    if not 0 <= index < n:
        valid = ("valid indices: 0..%d" % (n - 1)) if n else "no face was found"
        raise InputError("%s=%s: face index out of range, %d face%s found (%s)"
                         % (flag, which, n, "" if n == 1 else "s", valid))
    return [faces[index]]


def alignment_matrix(face: Union[Face, np.ndarray], size: int = TEMPLATE_SIZE) -> np.ndarray:
    """Similarity transform (rotation, uniform scale, translation) taking a face to the canonical crop.

    Weighted least-squares fit (Umeyama's closed form, via ``skimage.transform.SimilarityTransform``; the
    integer :data:`LANDMARK_WEIGHTS` are applied by repeating points) of the face's 5 landmarks onto
    :func:`canonical_landmarks` ``(size)``.

    Args:
        face: a :class:`Face` or a [5, 2] array of (x, y) landmarks in :data:`LANDMARK_NAMES` order.
        size: crop side in pixels.

    Returns:
        float64 [2, 3] matrix M mapping photo (x, y) to crop (x, y).

    Raises:
        InputError: the landmarks are not 5 finite points, or are degenerate (all in one place).
    """
    from skimage.transform import SimilarityTransform  # skimage loads submodules lazily anyway

    size = _check_size(size)
    lm = face.landmarks if isinstance(face, Face) else Face((0, 0, 0, 0), 0.0, face).landmarks
    src = lm.astype(np.float64)
    if np.max(np.ptp(src, axis=0)) < 1e-6:
        raise InputError("face landmarks are degenerate (all 5 points coincide): cannot align")
    weights = np.asarray(LANDMARK_WEIGHTS)
    tform = SimilarityTransform.from_estimate(np.repeat(src, weights, axis=0),
                                              np.repeat(canonical_landmarks(size), weights, axis=0))
    if not tform:  # skimage returns a falsy failure object
        raise InputError("cannot fit a similarity transform to the face landmarks %s" % src.tolist())
    m = np.asarray(tform.params, dtype=np.float64)[:2].copy()
    if not np.all(np.isfinite(m)):
        raise InputError("cannot fit a similarity transform to the face landmarks %s" % src.tolist())
    return m


def align_face(rgb: np.ndarray, face: Union[Face, np.ndarray], size: int = TEMPLATE_SIZE
               ) -> Tuple[np.ndarray, np.ndarray]:
    """Cut the face out of the photo as a canonical ``size`` x ``size`` crop like the training crops.

    The similarity transform from :func:`alignment_matrix` puts the 5 landmarks on the template measured from
    the EmotioNet training crops. Faces are first downscaled with ``cv2.INTER_AREA``
    when they are more than twice the crop's size (no aliasing), then resampled with ``cv2.warpAffine``
    (bicubic); parts of the crop outside the photo are filled by reflecting the photo at its border
    (``BORDER_REFLECT_101``).

    Args:
        rgb: uint8 [H, W, 3] RGB photo (greyscale [H, W] is replicated to 3 channels).
        face: a :class:`Face` or its [5, 2] landmarks.
        size: crop side in pixels (the GANimation generator uses 128).

    Returns:
        ``(crop, M)``: crop uint8 [size, size, 3] RGB; M float64 [2, 3] mapping photo (x, y) -> crop (x, y)
        (pass it to :func:`paste_back`).

    Raises:
        InputError: bad image or landmarks.
    """
    image = _check_image(rgb, "image", allow_grey=True)
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    size = _check_size(size)
    m = alignment_matrix(face, size)
    crop = _warp_antialiased(image, m, (size, size), cv2.BORDER_REFLECT_101)
    return crop, m


def crop_for_training(rgb: np.ndarray, face: Union[Face, np.ndarray], size: int = TEMPLATE_SIZE) -> np.ndarray:
    """``align_face(rgb, face, size)[0]``: the uint8 [size, size, 3] canonical RGB crop of one face."""
    return align_face(rgb, face, size)[0]


def face_blend_mask(size: int = TEMPLATE_SIZE, feather: float = 0.2) -> np.ndarray:
    """Soft round alpha mask over the face region of a crop, 1 inside, 0 at and near the crop border.

    A disc centred in the crop: alpha is 0 at radius >= size/2 - 1 (so every border pixel, and the corners,
    have alpha exactly 0) and rises smoothly (smoothstep, C1; the analytic counterpart of a blurred disc edge)
    to 1 at radius size/2 - 1 - feather * size.

    Args:
        size: crop side in pixels.
        feather: width of the soft edge as a fraction of the crop side, in (0, 0.5).

    Returns:
        float32 [size, size] alpha in [0, 1].

    Raises:
        InputError: ``feather`` is out of range.
    """
    size = _check_size(size)
    feather = float(feather)
    if not 0.0 < feather < 0.5:
        raise InputError("feather must be in (0, 0.5) (a fraction of the crop side), got %r" % feather)
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    r = np.hypot(xx - c, yy - c)
    outer = size / 2.0 - 1.0
    band = max(feather * size, 1e-6)
    t = np.clip((outer - r) / band, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def paste_back(rgb: np.ndarray, edited_crop: np.ndarray, M: np.ndarray, feather: float = 0.2,
               method: str = "alpha", original_crop: Optional[np.ndarray] = None) -> np.ndarray:
    """Warp an edited face crop back into the photo and blend it in with a feathered mask.

    The crop is mapped back with the inverse of ``M`` (bicubic; crops more than twice the face's size in the
    photo are first downscaled with ``cv2.INTER_AREA``) and blended as
    ``out = photo + alpha * (warped - photo)``, with the alpha of :func:`face_blend_mask` warped the same way
    (bilinear). Alpha is exactly 0 outside the face disc, so every pixel there keeps its exact input value;
    no box edge is visible.

    With ``original_crop`` (the unedited crop from :func:`align_face`), only the edit is pasted:
    ``out = photo + alpha * warp(edited - original)``. A face larger than the crop then keeps the photo's own
    sharpness wherever the generator changed nothing (an unchanged crop gives back the photo exactly),
    instead of being replaced by an upscaled 128-px crop.

    Args:
        rgb: uint8 [H, W, 3] RGB photo (not modified).
        edited_crop: uint8 [S, S, 3] RGB crop, e.g. the generator output converted from [-1, 1] to [0, 255].
        M: float64 [2, 3] photo -> crop matrix returned by :func:`align_face` for this face and crop size S.
        feather: width of the soft edge as a fraction of the crop side (see :func:`face_blend_mask`).
        method: ``"alpha"`` (feathered alpha blending) or ``"seamless"`` (``cv2.seamlessClone`` Poisson
            blending inside the face disc, which also matches the crop's colours to the photo around it,
            then the same feathered alpha; slower). ``"seamless"`` ignores ``original_crop``.
        original_crop: optional uint8 [S, S, 3] RGB unedited crop (see above).

    Returns:
        uint8 [H, W, 3] RGB photo, a new array.

    Raises:
        InputError: bad image, crop, matrix, feather or method.
    """
    out = _check_image(rgb, "image", allow_grey=False).copy()
    _paste_into(out, edited_crop, M, feather, method, original_crop)
    return out


def paste_back_many(rgb: np.ndarray, edited_crops: Sequence[np.ndarray], matrices: Sequence[np.ndarray],
                    feather: float = 0.2, method: str = "alpha",
                    original_crops: Optional[Sequence[np.ndarray]] = None) -> np.ndarray:
    """Paste several edited crops back, one after the other (later faces drawn over earlier ones).

    Args:
        rgb: uint8 [H, W, 3] RGB photo (not modified).
        edited_crops: sequence of uint8 [S, S, 3] RGB crops.
        matrices: the matching float64 [2, 3] photo -> crop matrices from :func:`align_face`.
        feather, method: as in :func:`paste_back`.
        original_crops: optional matching unedited crops (see :func:`paste_back`).

    Returns:
        uint8 [H, W, 3] RGB photo, a new array.

    Raises:
        InputError: the sequences differ in length, or any item is bad (the message gives its index).
    """
    if len(edited_crops) != len(matrices):
        raise InputError("paste_back_many: %d crops but %d matrices" % (len(edited_crops), len(matrices)))
    if original_crops is not None and len(original_crops) != len(edited_crops):
        raise InputError("paste_back_many: %d crops but %d original crops" % (len(edited_crops), len(original_crops)))
    out = _check_image(rgb, "image", allow_grey=False).copy()
    for i, (crop, m) in enumerate(zip(edited_crops, matrices)):
        try:
            _paste_into(out, crop, m, feather, method, None if original_crops is None else original_crops[i])
        except InputError as e:
            raise InputError("face %d: %s" % (i, e)) from None
    return out


# ----------------------------------------------------------------------------------------------- internals

def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or int(size) < 8:
        raise InputError("crop size must be an integer >= 8 pixels, got %r" % (size,))
    return int(size)


def _check_image(image, name: str, allow_grey: bool) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise InputError("%s must be a NumPy uint8 array (H, W, 3) RGB, got %s" % (name, type(image).__name__))
    if image.dtype != np.uint8:
        raise InputError("%s must have dtype uint8 (values 0..255), got %s; convert e.g. with "
                         "np.clip(x * 255, 0, 255).astype(np.uint8)" % (name, image.dtype))
    ok = image.ndim == 3 and image.shape[2] == 3
    if allow_grey:
        ok = ok or image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 4))
    if not ok:
        want = "[H, W, 3] RGB (or [H, W] / [H, W, 1] grey, [H, W, 4] RGBA)" if allow_grey else "[H, W, 3] RGB"
        raise InputError("%s must have shape %s, got %s" % (name, want, image.shape))
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError("%s is empty (shape %s)" % (name, image.shape))
    return image


def _check_matrix(M) -> np.ndarray:
    m = np.asarray(M, dtype=np.float64)
    if m.shape != (2, 3) or not np.all(np.isfinite(m)):
        raise InputError("alignment matrix M must be a finite [2, 3] array, got shape %s" % (m.shape,))
    if abs(np.linalg.det(m[:, :2])) < 1e-12:
        raise InputError("alignment matrix M is singular: %s" % m.tolist())
    return m


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[2,3] affine a after b (apply b first)."""
    a3 = np.vstack([a, [0.0, 0.0, 1.0]])
    b3 = np.vstack([b, [0.0, 0.0, 1.0]])
    return (a3 @ b3)[:2]


def _translation(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty]])


def _bbox_of_mapped_rect(m: np.ndarray, width: int, height: int) -> Tuple[float, float, float, float]:
    """Bounding box (x0, y0, x1, y1) of the pixel-centre rectangle [0, width-1] x [0, height-1] mapped by m."""
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], float)
    p = corners @ m.T
    return p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()


def _warp_antialiased(src: np.ndarray, m: np.ndarray, dsize: Tuple[int, int], border_mode: int,
                      interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """cv2.warpAffine(src, m, dsize) (m: src -> dst), but strong minifications first go through INTER_AREA.

    When m shrinks by more than 2x, the source region that the destination needs (plus a margin) is first
    resized by m's scale with ``cv2.INTER_AREA`` (box filter: no aliasing), and the remaining near-unit-scale
    warp uses ``interpolation``. Milder minifications warp directly: measured on the astronaut face, an extra
    area-resize at 0.74x blurs more (round-trip error 3.0 vs 0.6 grey levels) than it saves in aliasing.
    Only the needed region is resized, so a small crop of a huge photo stays cheap; it is clipped to the
    source, so border extrapolation still happens at the source's real border.
    """
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
    if scale < 0.5:
        dw, dh = dsize
        x0, y0, x1, y1 = _bbox_of_mapped_rect(cv2.invertAffineTransform(m), dw, dh)
        margin = 4.0 / scale + 2.0
        sh, sw = src.shape[:2]
        ix0, iy0 = max(0, int(math.floor(x0 - margin))), max(0, int(math.floor(y0 - margin)))
        ix1, iy1 = min(sw, int(math.ceil(x1 + margin)) + 1), min(sh, int(math.ceil(y1 + margin)) + 1)
        if ix1 - ix0 >= 2 and iy1 - iy0 >= 2:
            roi = src[iy0:iy1, ix0:ix1]
            rw, rh = ix1 - ix0, iy1 - iy0
            nw, nh = max(2, int(round(rw * scale))), max(2, int(round(rh * scale)))
            small = cv2.resize(roi, (nw, nh), interpolation=cv2.INTER_AREA)
            fx, fy = nw / float(rw), nh / float(rh)
            # small pixel (u, v) <- source (x, y): u = (x - ix0 + 0.5) * fx - 0.5
            to_small = np.array([[fx, 0.0, (0.5 - ix0) * fx - 0.5], [0.0, fy, (0.5 - iy0) * fy - 0.5]])
            m = _compose(m, cv2.invertAffineTransform(to_small))
            src = small
    return cv2.warpAffine(src, m, dsize, flags=interpolation, borderMode=border_mode)


def _paste_into(out: np.ndarray, edited_crop, M, feather: float, method: str, original_crop=None) -> None:
    """Blend one edited crop into ``out`` (uint8 [H, W, 3]) in place."""
    crop = _check_image(edited_crop, "edited crop", allow_grey=False)
    if crop.shape[0] != crop.shape[1]:
        raise InputError("edited crop must be square [S, S, 3], got shape %s" % (crop.shape,))
    if original_crop is not None:
        original_crop = _check_image(original_crop, "original crop", allow_grey=False)
        if original_crop.shape != crop.shape:
            raise InputError("original crop has shape %s but the edited crop has %s"
                             % (original_crop.shape, crop.shape))
    if method not in ("alpha", "seamless"):
        raise InputError("paste method must be 'alpha' or 'seamless', got %r" % (method,))
    m = _check_matrix(M)
    size = crop.shape[0]
    alpha_crop = face_blend_mask(size, feather)
    inv = cv2.invertAffineTransform(m)  # crop -> photo
    h, w = out.shape[:2]
    x0, y0, x1, y1 = _bbox_of_mapped_rect(inv, size, size)
    ix0, iy0 = max(0, int(math.floor(x0)) - 2), max(0, int(math.floor(y0)) - 2)
    ix1, iy1 = min(w, int(math.ceil(x1)) + 3), min(h, int(math.ceil(y1)) + 3)
    if ix1 <= ix0 or iy1 <= iy0:
        return  # the face lies entirely outside the photo
    rw, rh = ix1 - ix0, iy1 - iy0
    to_roi = _compose(_translation(-ix0, -iy0), inv)  # crop -> ROI pixels
    alpha = _warp_antialiased(alpha_crop, to_roi, (rw, rh), cv2.BORDER_CONSTANT, cv2.INTER_LINEAR)
    alpha = np.clip(alpha, 0.0, 1.0)
    touched = alpha > 0.0
    if not np.any(touched):
        return
    roi = out[iy0:iy1, ix0:ix1]
    roi_f = roi.astype(np.float32)
    if original_crop is not None and method == "alpha":
        delta = crop.astype(np.float32) - original_crop.astype(np.float32)
        change = _warp_antialiased(delta, to_roi, (rw, rh), cv2.BORDER_REPLICATE)
    else:
        warped = _warp_antialiased(crop, to_roi, (rw, rh), cv2.BORDER_REPLICATE)
        if method == "seamless":
            warped = _seamless(warped, roi, alpha)
        change = warped.astype(np.float32) - roi_f
    blended = np.clip(np.rint(roi_f + alpha[..., None] * change), 0, 255).astype(np.uint8)
    roi[touched] = blended[touched]  # untouched pixels keep their exact input value


def _seamless(warped: np.ndarray, roi: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Poisson-blend ``warped`` into ``roi`` inside alpha > 0 (cv2.seamlessClone, NORMAL_CLONE)."""
    mask = (alpha > 0.0).astype(np.uint8) * 255
    if mask.sum() == 0:
        return warped
    pad = 3  # seamlessClone needs the mask away from the image border
    src = cv2.copyMakeBorder(warped, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    dst = cv2.copyMakeBorder(roi, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    mask = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, bw, bh = cv2.boundingRect(mask)
    center = (x + bw // 2, y + bh // 2)  # identity placement: OpenCV puts the mask's box at center - size/2
    try:
        cloned = cv2.seamlessClone(src, dst, mask, center, cv2.NORMAL_CLONE)
    except cv2.error:  # e.g. a mask only a pixel wide; fall back to plain alpha blending
        return warped
    return cloned[pad:-pad, pad:-pad]
