"""Edit the expression of faces in a photo: detect, align, estimate AUs, generate, paste back.

The editor works with any *backend* that has ``image_size`` (int), ``edit(images, aus) ->
(edited, attention_mask, color_mask)`` and ``estimate_aus(images) -> aus`` on float32 NHWC RGB images in
[-1, 1] and AUs ``[B, 17]`` in [0, 1] (OpenFace intensity / 5). Two backends are provided:

* :class:`GANimationBackend`: a :class:`ganimation_tl.model.GANimation` restored from a training
  checkpoint (``load_backend(workdir=...)``);
* :class:`SavedModelBackend`: a SavedModel written by ``python -m ganimation_tl.export``
  (``load_backend(saved_model=...)``), through its ``serving_default`` and ``estimate_aus`` signatures;
  it needs TensorFlow only (no TensorLayer).

Both return NumPy arrays and accept any batch size without retracing. Typical use::

    editor = FaceEditor(load_backend(workdir="runs/demo"))
    photo = read_image("face.jpg")                                # uint8 [H, W, 3] RGB
    edited, edits = editor.edit(photo, parse_au_string("AU12=0.8"))

Source: GANimation (Pumarola et al., ECCV 2018) edits tight face crops conditioned on 17 AUs; the
critic's AU regression head (section 4.1) estimates a face's own AUs. Crop alignment and blending are
ours (``ganimation_tl.faces``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ganimation_tl.aus import NUM_AUS, apply_au_settings
from ganimation_tl.errors import InputError
from ganimation_tl.faces import Face, FaceDetector, align_face, paste_back_many, select_faces

__all__ = [
    "FaceEdit", "PreparedFaces", "FaceEditor", "GANimationBackend", "SavedModelBackend", "load_backend",
    "check_model_source", "interpolate_aus", "to_model_range", "to_uint8", "onednn_bfloat16",
    "cpu_supports_bfloat16",
]

#: Largest batch of crops sent to the backend at once (bounds memory for long animations).
DEFAULT_BATCH_SIZE = 8


def to_model_range(rgb_uint8: np.ndarray) -> np.ndarray:
    """uint8 ``[..., 3]`` in [0, 255] -> float32 in [-1, 1] (``x / 127.5 - 1``)."""
    return rgb_uint8.astype(np.float32) / 127.5 - 1.0


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> uint8 in [0, 255] (``(x + 1) * 127.5``, rounded half up, clipped)."""
    return np.clip((np.asarray(images, np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def interpolate_aus(source: np.ndarray, target: np.ndarray, steps: int) -> np.ndarray:
    """Linear AU interpolation from ``source`` to ``target`` in ``steps`` steps, both ends included.

    Args:
        source, target: float32 ``[..., 17]`` AUs in [0, 1] (same shape).
        steps: number of steps, >= 2; step ``i`` is ``source + i / (steps - 1) * (target - source)``.

    Returns:
        float32 ``[steps, ..., 17]``; ``[0]`` equals ``source`` and ``[-1]`` equals ``target``.

    Raises:
        InputError: ``steps`` < 2 or the shapes differ.
    """
    source = np.asarray(source, np.float32)
    target = np.asarray(target, np.float32)
    if isinstance(steps, bool) or int(steps) != steps or steps < 2:
        raise InputError("the number of animation frames must be an integer >= 2, got %r" % (steps,))
    if source.shape != target.shape:
        raise InputError("source AUs %s and target AUs %s differ in shape" % (source.shape, target.shape))
    t = np.linspace(0.0, 1.0, int(steps), dtype=np.float32).reshape((-1,) + (1,) * source.ndim)
    out = source[None] + t * (target - source)[None]
    out[-1] = target  # exact end point despite rounding
    return out.astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class FaceEdit:
    """One edited face.

    Attributes:
        index: the face's 0-based index among the frontal faces found, largest first (what ``--face=INDEX``
            and ``--print_aus`` use).
        face: the detection (photo coordinates).
        matrix: float64 [2, 3] similarity transform photo -> crop.
        crop: uint8 [S, S, 3] RGB aligned input crop.
        edited_crop: uint8 [S, S, 3] RGB generator output ``A * crop + (1 - A) * C``.
        attention_mask: float32 [S, S] in [0, 1] (1 keeps the input pixel).
        color_mask: uint8 [S, S, 3] RGB, the generator's colour mask C mapped from [-1, 1].
        source_aus: float32 [17] in [0, 1], estimated by the critic's AU head (clipped).
        target_aus: float32 [17] in [0, 1], what the face was edited to.
    """

    index: int
    face: Face
    matrix: np.ndarray
    crop: np.ndarray
    edited_crop: np.ndarray
    attention_mask: np.ndarray
    color_mask: np.ndarray
    source_aus: np.ndarray
    target_aus: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedFaces:
    """The chosen faces of one photo, aligned and with their AUs estimated (input to the edit methods).

    Attributes:
        indices: 0-based face indices (see :attr:`FaceEdit.index`), one per face.
        faces: the detections.
        crops: uint8 [F, S, S, 3] RGB aligned crops.
        matrices: float64 [F, 2, 3] photo -> crop transforms.
        source_aus: float32 [F, 17] in [0, 1], the critic's estimate, clipped.
    """

    indices: Tuple[int, ...]
    faces: Tuple[Face, ...]
    crops: np.ndarray
    matrices: np.ndarray
    source_aus: np.ndarray

    def __len__(self) -> int:
        return len(self.faces)


@dataclasses.dataclass(frozen=True, eq=False)
class Rendered:
    """Backend output for a batch of crops: uint8 edited [N,S,S,3], float32 attention [N,S,S] in [0, 1],
    uint8 colour masks [N,S,S,3]."""

    edited: np.ndarray
    attention: np.ndarray
    color: np.ndarray


class FaceEditor:
    """Detects faces, edits their AUs with a backend and pastes the result back into the photo.

    Args:
        backend: see the module docstring.
        detector: a :class:`ganimation_tl.faces.FaceDetector` (default: MTCNN with its defaults).
        batch_size: largest number of crops per backend call.

    Attributes:
        warnings: messages of the latest :meth:`find_faces` call (e.g. skipped profile faces).
    """

    def __init__(self, backend, detector: Optional[FaceDetector] = None, batch_size: int = DEFAULT_BATCH_SIZE):
        self.backend = backend
        self.detector = detector or FaceDetector()
        self.batch_size = max(1, int(batch_size))
        self.warnings: List[str] = []

    @property
    def image_size(self) -> int:
        """Side S of the square crops the backend edits (pixels)."""
        return int(self.backend.image_size)

    # ------------------------------------------------------------------ faces
    def find_faces_indexed(self, rgb: np.ndarray, which: str = "largest", image_name: str = "the image"
                           ) -> List[Tuple[int, Face]]:
        """Detect faces and pick ``which`` (``largest``, ``all`` or a 0-based index by size).

        Profiles are skipped with a warning (in :attr:`warnings`): the generator was trained on
        frontal-ish crops. Indices count the remaining (frontal) faces, largest first.

        Args:
            rgb: uint8 [H, W, 3] RGB photo.
            which: face selector (``--face``).
            image_name: how error messages name the photo.

        Returns:
            ``[(index, Face)]`` for the chosen faces.

        Raises:
            InputError: no usable face (the message says whether faces were too small, profiles, or
                absent), or a bad / out-of-range ``which``.
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
        chosen = select_faces(frontal, which)
        return [(next(i for i, f in enumerate(frontal) if f is c), c) for c in chosen]

    def find_faces(self, rgb: np.ndarray, which: str = "largest", image_name: str = "the image") -> List[Face]:
        """Like :meth:`find_faces_indexed`, without the indices."""
        return [f for _, f in self.find_faces_indexed(rgb, which, image_name)]

    def estimate(self, rgb: np.ndarray, faces: Sequence[Face]) -> Tuple[np.ndarray, np.ndarray, List[np.ndarray]]:
        """Align ``faces`` and estimate their AUs with the critic's AU head.

        Returns:
            ``(crops uint8 [N,S,S,3], aus float32 [N,17] in [0,1] (clipped), matrices: N float64 [2,3])``.
        """
        aligned = [align_face(rgb, face, self.image_size) for face in faces]
        crops = np.stack([a[0] for a in aligned])
        return crops, self.estimate_crops(crops), [a[1] for a in aligned]

    def estimate_crops(self, crops: np.ndarray) -> np.ndarray:
        """AUs of aligned crops (uint8 [N,S,S,3]) as float32 [N, 17] clipped to [0, 1]."""
        out = [np.asarray(self.backend.estimate_aus(to_model_range(crops[i:i + self.batch_size])))
               for i in range(0, len(crops), self.batch_size)]
        aus = np.concatenate(out, axis=0).astype(np.float32)
        if aus.shape != (len(crops), NUM_AUS) or not np.all(np.isfinite(aus)):
            raise RuntimeError("the model's AU estimate has shape %s or non-finite values" % (aus.shape,))
        return np.clip(aus, 0.0, 1.0)

    def prepare(self, rgb: np.ndarray, which: str = "largest", image_name: str = "the image") -> PreparedFaces:
        """Find, align and estimate the chosen faces of ``rgb`` (see :meth:`find_faces_indexed`)."""
        chosen = self.find_faces_indexed(rgb, which, image_name)
        faces = [f for _, f in chosen]
        crops, aus, matrices = self.estimate(rgb, faces)
        return PreparedFaces(indices=tuple(i for i, _ in chosen), faces=tuple(faces), crops=crops,
                             matrices=np.stack(matrices), source_aus=aus)

    def estimate_reference(self, rgb: np.ndarray, image_name: str = "the reference photo") -> np.ndarray:
        """AUs of the largest frontal face of a reference photo (expression transfer).

        Returns:
            float32 [17] in [0, 1].

        Raises:
            InputError: the reference has no usable face (the message names ``image_name``).
        """
        return self.prepare(rgb, "largest", image_name).source_aus[0]

    @staticmethod
    def targets(source_aus: np.ndarray, settings: Mapping[int, float],
                reference_aus: Optional[np.ndarray] = None) -> np.ndarray:
        """Target AUs: ``reference_aus`` (or each face's own ``source_aus``) with ``settings`` applied.

        Args:
            source_aus: float32 [F, 17] in [0, 1].
            settings: ``{au_index: value in [0, 1]}`` (``ganimation_tl.aus.parse_au_string``).
            reference_aus: optional float32 [17] in [0, 1].

        Returns:
            float32 [F, 17] in [0, 1].
        """
        source_aus = np.asarray(source_aus, np.float32)
        base = source_aus if reference_aus is None else np.broadcast_to(
            np.asarray(reference_aus, np.float32).reshape(1, NUM_AUS), source_aus.shape)
        return apply_au_settings(base, settings)

    # ------------------------------------------------------------------ generation
    def render(self, crops: np.ndarray, aus: np.ndarray) -> Rendered:
        """Run the generator on aligned crops, in batches of :attr:`batch_size`.

        Args:
            crops: uint8 [N, S, S, 3] RGB.
            aus: float32 [N, 17] target AUs in [0, 1].
        """
        crops = np.asarray(crops)
        aus = np.asarray(aus, np.float32)
        if len(crops) != len(aus):
            raise ValueError("render: %d crops but %d AU vectors" % (len(crops), len(aus)))
        edited, attention, color = [], [], []
        for i in range(0, len(crops), self.batch_size):
            e, a, c = self.backend.edit(to_model_range(crops[i:i + self.batch_size]), aus[i:i + self.batch_size])
            edited.append(to_uint8(e))
            attention.append(np.asarray(a, np.float32)[..., 0])
            color.append(to_uint8(c))
        return Rendered(np.concatenate(edited), np.concatenate(attention), np.concatenate(color))

    def edit_prepared(self, rgb: np.ndarray, prepared: PreparedFaces, target_aus: np.ndarray
                      ) -> Tuple[np.ndarray, List[FaceEdit]]:
        """Edit already prepared faces to ``target_aus`` (float32 [F, 17]) and paste them into ``rgb``.

        Returns:
            ``(edited photo uint8 [H, W, 3], list of FaceEdit)``; pixels away from the faces are unchanged.
        """
        target_aus = np.asarray(target_aus, np.float32)
        r = self.render(prepared.crops, target_aus)
        out = paste_back_many(rgb, list(r.edited), list(prepared.matrices), original_crops=list(prepared.crops))
        edits = [FaceEdit(index=i, face=f, matrix=m, crop=c, edited_crop=e, attention_mask=a, color_mask=k,
                          source_aus=s, target_aus=t)
                 for i, f, m, c, e, a, k, s, t in zip(prepared.indices, prepared.faces, prepared.matrices,
                                                       prepared.crops, r.edited, r.attention, r.color,
                                                       prepared.source_aus, target_aus)]
        return out, edits

    def edit(self, rgb: np.ndarray, settings: Mapping[int, float], which: str = "largest",
             reference_aus: Optional[np.ndarray] = None, image_name: str = "the image"
             ) -> Tuple[np.ndarray, List[FaceEdit]]:
        """Edit the chosen faces of ``rgb`` (uint8 [H, W, 3] RGB).

        Args:
            settings: ``{au_index: value in [0, 1]}`` (from ``ganimation_tl.aus.parse_au_string``);
                AUs not named keep the face's own estimated value, or the ``reference_aus`` value.
            which: ``largest``, ``all`` or an index.
            reference_aus: optional float32 [17] in [0, 1], the base target (expression transfer).
            image_name: how error messages name the photo.

        Returns:
            ``(edited photo uint8 [H, W, 3], list of FaceEdit)``; pixels away from the faces are
            unchanged.

        Raises:
            InputError: see :meth:`find_faces_indexed`.
        """
        prepared = self.prepare(rgb, which, image_name)
        return self.edit_prepared(rgb, prepared, self.targets(prepared.source_aus, settings, reference_aus))


# ----------------------------------------------------------------------------------------------------
# Backends
# ----------------------------------------------------------------------------------------------------
class GANimationBackend:
    """A restored :class:`ganimation_tl.model.GANimation` behind the backend interface.

    ``edit`` and ``estimate_aus`` are ``tf.function``s with a free batch dimension, so batches of any size
    reuse one trace; they return NumPy arrays.

    Args:
        model: a GANimation (e.g. from :func:`ganimation_tl.checkpoints.load_model_from_workdir`).
        bfloat16: run the generator in bfloat16 (:func:`onednn_bfloat16`; use where
            :func:`cpu_supports_bfloat16`).
    """

    def __init__(self, model, bfloat16: bool = False):
        import tensorflow as tf

        self.model = model
        self.bfloat16 = bool(bfloat16)
        self.image_size = int(model.config.image_size)
        s, n = self.image_size, int(model.config.num_aus)
        image_spec = tf.TensorSpec([None, s, s, 3], tf.float32)
        self._edit = tf.function(lambda images, aus: model.edit(images, aus),
                                 input_signature=[image_spec, tf.TensorSpec([None, n], tf.float32)])
        self._estimate = tf.function(lambda images: model.estimate_aus(images), input_signature=[image_spec])

    def edit(self, images: np.ndarray, aus: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """images float32 [B,S,S,3] in [-1,1], aus float32 [B,17] in [0,1] -> (edited [B,S,S,3] in [-1,1],
        attention [B,S,S,1] in [0,1], colour [B,S,S,3] in [-1,1]), all float32 NumPy."""
        with onednn_bfloat16(self.bfloat16):
            edited, attention, color = self._edit(np.asarray(images, np.float32), np.asarray(aus, np.float32))
            return edited.numpy(), attention.numpy(), color.numpy()

    def estimate_aus(self, images: np.ndarray) -> np.ndarray:
        """images float32 [B,S,S,3] in [-1,1] -> the critic's AU head, float32 [B,17] (unclipped)."""
        return self._estimate(np.asarray(images, np.float32)).numpy()


class SavedModelBackend:
    """A SavedModel from ``python -m ganimation_tl.export`` behind the backend interface (TensorFlow only).

    Uses the ``serving_default`` signature (``image`` float32 [B,S,S,3] in [-1,1], ``aus`` float32 [B,17] ->
    ``image``, ``attention_mask``, ``color_mask``) and ``estimate_aus`` (``image`` -> ``aus`` clipped to
    [0, 1]); see ``ganimation_tl.export``. ``image_size`` is read from the signature's input shape, else from
    ``assets.extra/ganimation_config.json``.

    Args:
        path: a version folder (``EXPORT/ganimation/1``), or the model base folder (``EXPORT/ganimation``),
            in which case the highest version is used, as TF Serving does.
        bfloat16: run the edit signature in bfloat16 (:func:`onednn_bfloat16`).

    Attributes:
        path: the version folder loaded.
        image_size: S, the crop side in pixels.
        has_au_estimator: False for exports made with ``--noinclude_critic``.

    Raises:
        InputError: not a SavedModel folder, unreadable, or without the ``serving_default`` signature.
    """

    def __init__(self, path, bfloat16: bool = False):
        import tensorflow as tf

        from ganimation_tl.export import SIGNATURE_EDIT, SIGNATURE_ESTIMATE_AUS

        self.bfloat16 = bool(bfloat16)
        self.path = resolve_saved_model_dir(path)
        try:
            self._loaded = tf.saved_model.load(self.path)  # keeps the variables alive
        except Exception as error:  # noqa: BLE001 - TF raises many types for a corrupt SavedModel
            raise InputError("cannot load the SavedModel in %s: %s" % (self.path, str(error).strip().splitlines()[0])
                             ) from None
        signatures = self._loaded.signatures
        if SIGNATURE_EDIT not in signatures:
            raise InputError("SavedModel %s has no %r signature (has %s); export it with python -m "
                             "ganimation_tl.export" % (self.path, SIGNATURE_EDIT, sorted(signatures)))
        self._edit = signatures[SIGNATURE_EDIT]
        self._estimate = signatures.get(SIGNATURE_ESTIMATE_AUS)
        self.has_au_estimator = self._estimate is not None
        inputs = self._edit.structured_input_signature[1]
        if "image" not in inputs or "aus" not in inputs:
            raise InputError("SavedModel %s: %r takes %s, expected 'image' and 'aus'"
                             % (self.path, SIGNATURE_EDIT, sorted(inputs)))
        size = inputs["image"].shape[1]
        self.image_size = int(size) if size is not None else _image_size_from_config(self.path)
        self.num_aus = inputs["aus"].shape[-1]
        if self.num_aus is not None and int(self.num_aus) != NUM_AUS:
            raise InputError("SavedModel %s takes %s AUs, this tool uses %d" % (self.path, self.num_aus, NUM_AUS))

    def edit(self, images: np.ndarray, aus: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Same contract as :meth:`GANimationBackend.edit`."""
        import tensorflow as tf

        with onednn_bfloat16(self.bfloat16):
            out = self._edit(image=tf.constant(np.asarray(images, np.float32)),
                             aus=tf.constant(np.asarray(aus, np.float32)))
            return out["image"].numpy(), out["attention_mask"].numpy(), out["color_mask"].numpy()

    def estimate_aus(self, images: np.ndarray) -> np.ndarray:
        """images float32 [B,S,S,3] in [-1,1] -> float32 [B,17] in [0,1].

        Raises:
            InputError: the export has no critic (``--noinclude_critic``).
        """
        if self._estimate is None:
            raise InputError("SavedModel %s was exported without the critic (--noinclude_critic), so it cannot "
                             "estimate AUs; export with the critic or use --workdir" % self.path)
        import tensorflow as tf

        return self._estimate(image=tf.constant(np.asarray(images, np.float32)))["aus"].numpy()


def resolve_saved_model_dir(path) -> str:
    """The SavedModel version folder for ``path`` (a version folder, or a base folder of numbered versions).

    Raises:
        InputError: ``path`` is not a folder, or holds neither ``saved_model.pb`` nor numbered version
            folders with one.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise InputError("--saved_model %s is not a folder (expected an export version folder such as "
                         "EXPORT/ganimation/1)" % path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = sorted((int(n) for n in os.listdir(path)
                       if n.isdigit() and os.path.isfile(os.path.join(path, n, "saved_model.pb"))))
    if not versions:
        raise InputError("--saved_model %s holds no saved_model.pb and no numbered version folder with one; "
                         "pass the folder written by python -m ganimation_tl.export (e.g. EXPORT/ganimation/1)"
                         % path)
    return os.path.join(path, str(versions[-1]))


def _image_size_from_config(path: str) -> int:
    from ganimation_tl.export import CONFIG_ASSET

    config = os.path.join(path, CONFIG_ASSET)
    try:
        with open(config, encoding="utf-8") as f:
            return int(json.load(f)["image_size"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError("SavedModel %s: the image size is not in its signature and %s is unreadable (%s)"
                         % (path, config, error)) from None


def check_model_source(workdir=None, saved_model=None) -> None:
    """Cheap checks of the model flags before TensorFlow is imported.

    Exactly one of ``workdir`` / ``saved_model`` must be given; a workdir must hold ``config.json`` and a
    checkpoint index; a SavedModel folder must hold ``saved_model.pb`` (directly or in a numbered version).

    Raises:
        InputError: naming the flag and the problem.
    """
    if (workdir is None) == (saved_model is None):
        raise InputError("give exactly one model: --workdir (a training workdir) or --saved_model (an export "
                         "version folder)" + (", not both" if workdir is not None else ""))
    if saved_model is not None:
        resolve_saved_model_dir(saved_model)
        return
    from ganimation_tl.checkpoints import CONFIG_FILE

    workdir = os.fspath(workdir)
    if not os.path.isdir(workdir):
        raise InputError("--workdir %s is not a folder (expected a training workdir with %s and checkpoints/)"
                         % (workdir, CONFIG_FILE))
    if not os.path.isfile(os.path.join(workdir, CONFIG_FILE)):
        raise InputError("%s not found: --workdir %s is not a training workdir (train.py --workdir writes it)"
                         % (os.path.join(workdir, CONFIG_FILE), workdir))
    ckpt_dir = os.path.join(workdir, "checkpoints")
    if not (os.path.isdir(ckpt_dir) and any(n.endswith(".index") for n in os.listdir(ckpt_dir))):
        raise InputError("no checkpoint found in %s (expected %s/ckpt-N.index); train first" % (workdir, ckpt_dir))


def cpu_supports_bfloat16() -> bool:
    """True if the CPU has native bfloat16 arithmetic (x86 ``avx512_bf16`` or ``amx_bf16``; Linux only)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


@contextlib.contextmanager
def onednn_bfloat16(enabled: bool = True):
    """Context: TensorFlow functions *called* inside run their convolutions and matrix products in bfloat16
    through oneDNN (grappler's ``auto_mixed_precision_onednn_bfloat16`` rewrite); the previous setting is
    restored on exit, so functions called outside keep float32 (TensorFlow keeps one instantiation of a
    function per setting).

    Used for the generator only: it runs about 1.6x faster (128 -> 80 ms per 128-px face, measured on this
    project's 2-core AMD EPYC with avx512_bf16, another job running) and the edited crop moves by up to
    about 6 grey levels (random full-size weights). The critic is left in float32: the rewrite casts its 45M
    weights on every call, which made the AU estimate slower (35 -> 80 ms). Process-wide while active (not
    thread-safe).
    """
    if not enabled:
        yield
        return
    import tensorflow as tf

    key = "auto_mixed_precision_onednn_bfloat16"
    before = bool(tf.config.optimizer.get_experimental_options().get(key, False))
    tf.config.optimizer.set_experimental_options({key: True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({key: before})


def load_backend(workdir=None, saved_model=None, bfloat16: bool = False):
    """Load the model to edit with: the newest checkpoint of ``workdir`` or the SavedModel ``saved_model``.

    Args:
        workdir: a training workdir (``train.py --workdir``).
        saved_model: an export folder (``python -m ganimation_tl.export``).
        bfloat16: run the generator in bfloat16 (see :func:`onednn_bfloat16`; check
            :func:`cpu_supports_bfloat16` first: without native support it is slow).

    Returns:
        A :class:`GANimationBackend` or a :class:`SavedModelBackend`.

    Raises:
        InputError: both or neither given, or the model cannot be loaded (see
            :func:`ganimation_tl.checkpoints.load_model_from_workdir` and :class:`SavedModelBackend`).
    """
    check_model_source(workdir, saved_model)
    if saved_model is not None:
        return SavedModelBackend(saved_model, bfloat16=bfloat16)
    from ganimation_tl.checkpoints import load_model_from_workdir

    return GANimationBackend(load_model_from_workdir(workdir), bfloat16=bfloat16)
