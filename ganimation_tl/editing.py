"""Edit the expression of faces in a photo: detect, align, estimate AUs, generate, paste back.

The editor works with any *backend* that has ``image_size`` (int), ``edit(images, aus) ->
(edited, attention_mask, color_mask)`` and ``estimate_aus(images) -> aus`` on float32 NHWC images in
[-1, 1] and AUs ``[B, 17]`` in [0, 1]: a :class:`ganimation_tl.model.GANimation` restored from a
checkpoint, or a loaded SavedModel wrapped by ``ganimation_tl.export``.

Source: GANimation (Pumarola et al., ECCV 2018) edits tight face crops; the crop alignment and
blend are ours (``ganimation_tl.faces``).
"""
from __future__ import annotations

import dataclasses
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ganimation_tl.aus import apply_au_settings
from ganimation_tl.errors import InputError
from ganimation_tl.faces import Face, FaceDetector, align_face, paste_back_many, select_faces

__all__ = ["FaceEdit", "FaceEditor", "to_model_range", "to_uint8"]


def to_model_range(rgb_uint8: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] in [0, 255] -> float32 in [-1, 1]."""
    return rgb_uint8.astype(np.float32) / 127.5 - 1.0


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> uint8 in [0, 255] (rounded, clipped)."""
    return np.clip((np.asarray(images, np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True, eq=False)
class FaceEdit:
    """One edited face.

    Attributes:
        face: the detection (photo coordinates).
        matrix: float64 [2, 3] similarity transform photo -> crop.
        crop: uint8 [S, S, 3] aligned input crop.
        edited_crop: uint8 [S, S, 3] generator output composed with the crop.
        attention_mask: float32 [S, S] in [0, 1] (1 keeps the input pixel).
        color_mask: uint8 [S, S, 3] the generator's colour mask C.
        source_aus: float32 [17] in [0, 1], estimated by the critic's AU head (clipped).
        target_aus: float32 [17] in [0, 1], what the face was edited to.
    """

    face: Face
    matrix: np.ndarray
    crop: np.ndarray
    edited_crop: np.ndarray
    attention_mask: np.ndarray
    color_mask: np.ndarray
    source_aus: np.ndarray
    target_aus: np.ndarray


class FaceEditor:
    """Detects faces, edits their AUs with a backend and pastes the result back into the photo.

    Args:
        backend: see the module docstring.
        detector: a :class:`ganimation_tl.faces.FaceDetector` (default: MTCNN with its defaults).
    """

    def __init__(self, backend, detector: Optional[FaceDetector] = None):
        self.backend = backend
        self.detector = detector or FaceDetector()
        self.warnings: List[str] = []

    @property
    def image_size(self) -> int:
        return int(self.backend.image_size)

    def find_faces(self, rgb: np.ndarray, which: str = "largest", image_name: str = "the image") -> List[Face]:
        """Detect faces and pick ``which`` (``largest``, ``all`` or a 0-based index by size).

        Profiles are skipped with a warning (in :attr:`warnings`): the generator was trained on
        frontal-ish crops.

        Raises:
            InputError: no usable face (the message says whether faces were too small, profiles, or
                absent), or a bad ``which``.
        """
        self.warnings = []
        faces, rejected = self.detector.detect(rgb, return_rejected=True)
        frontal = [f for f in faces if not f.is_profile]
        if len(frontal) < len(faces):
            self.warnings.append("skipped %d profile face(s) in %s: GANimation edits frontal faces"
                                 % (len(faces) - len(frontal), image_name))
        if not frontal:
            reasons = sorted({r.message for r in rejected})
            if faces:
                raise InputError("only profile faces found in %s; GANimation needs a frontal face" % image_name)
            if reasons:
                raise InputError("no usable face in %s: %s" % (image_name, "; ".join(reasons)))
            raise InputError("no face found in %s" % image_name)
        return select_faces(frontal, which)

    def estimate(self, rgb: np.ndarray, faces: Sequence[Face]) -> Tuple[np.ndarray, np.ndarray, List[np.ndarray]]:
        """Align ``faces`` and estimate their AUs.

        Returns:
            ``(crops uint8 [N,S,S,3], aus float32 [N,17] in [0,1], matrices [N] of [2,3])``.
        """
        aligned = [align_face(rgb, face, self.image_size) for face in faces]
        crops = np.stack([a[0] for a in aligned])
        aus = np.clip(np.asarray(self.backend.estimate_aus(to_model_range(crops))), 0.0, 1.0).astype(np.float32)
        return crops, aus, [a[1] for a in aligned]

    def edit(self, rgb: np.ndarray, settings: Mapping[int, float], which: str = "largest",
             reference_aus: Optional[np.ndarray] = None, image_name: str = "the image"
             ) -> Tuple[np.ndarray, List[FaceEdit]]:
        """Edit the chosen faces of ``rgb`` (uint8 [H, W, 3]).

        Args:
            settings: ``{au_index: value in [0, 1]}`` (from ``ganimation_tl.aus.parse_au_string``);
                AUs not named keep the face's own estimated value, or the ``reference_aus`` value.
            which: ``largest``, ``all`` or an index.
            reference_aus: optional float32 [17] in [0, 1], the base target (expression transfer).

        Returns:
            ``(edited photo uint8 [H, W, 3], list of FaceEdit)``; pixels away from the faces are
            unchanged.

        Raises:
            InputError: see :meth:`find_faces`.
        """
        faces = self.find_faces(rgb, which, image_name)
        crops, source, matrices = self.estimate(rgb, faces)
        base = source if reference_aus is None else np.repeat(np.asarray(reference_aus, np.float32)[None], len(faces), 0)
        target = apply_au_settings(base, settings)
        edited, attention, color = (np.asarray(t) for t in self.backend.edit(to_model_range(crops), target))
        edited_u8 = to_uint8(edited)
        out = paste_back_many(rgb, list(edited_u8), matrices, original_crops=list(crops))
        edits = [FaceEdit(face=f, matrix=m, crop=c, edited_crop=e, attention_mask=a[..., 0], color_mask=to_uint8(k),
                          source_aus=s, target_aus=t)
                 for f, m, c, e, a, k, s, t in zip(faces, matrices, crops, edited_u8, attention, color, source, target)]
        return out, edits
