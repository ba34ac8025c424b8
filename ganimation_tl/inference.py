"""The steps behind ``infer.py``: check everything, load the model, edit, write every output at once.

:func:`run` takes an :class:`InferOptions` (one field per ``infer.py`` flag) and

1. checks the options, reads the photo / probes the video and reads the reference photo, and works out every
   output name and format (:func:`plan_run`), all before TensorFlow is imported, so bad input fails in
   about a second;
2. loads the model (:func:`ganimation_tl.editing.load_backend`), unless a backend is passed in;
3. detects, aligns, estimates and edits (:mod:`ganimation_tl.editing`, :mod:`ganimation_tl.animation`,
   :mod:`ganimation_tl.video`), keeping every result in memory (except video frames, streamed to a
   temporary file);
4. writes each output to a temporary name in its folder and, only once all of them are written, renames
   them into place (:class:`OutputSet`). An error at any step leaves no output file behind (the renames
   of the last step are the only thing that can be interrupted half way).

Output formats. The edited photo keeps the input's format when ``--output`` is not given (default name
``<image stem>_edited<image ext>``), when it has no extension (the exact path given is written, in the
input's format), or when its extension names the same format; another known extension converts (``.png``,
``.jpg``, ``.webp``, ``.bmp``, ``.tiff``, ...). JPEG and WebP are written with quality 95. Orientation:
``read_image`` turns the pixels upright with the EXIF orientation tag, the photo is edited upright, and it
is written upright *without* an orientation tag; the other EXIF fields and the ICC colour profile are kept,
and a greyscale photo stays greyscale.
Every viewer (with or without EXIF support) then shows the output the way an EXIF-aware viewer shows the
input. Transparency is composited on white (``read_image``); the output has no alpha channel.

Derived names, from the stem of the photo output (its path without extension): ``<stem>.gif``,
``<stem>.mp4`` and ``<stem>_sheet.png`` with ``--frames``; ``<stem>_face<i>_attention.png`` (grey, white =
pixel kept from the input), ``<stem>_face<i>_color.png`` and ``<stem>_face<i>_panel.png`` (input crop |
edited crop | attention | colour) with ``--save_masks``, where ``i`` is the face index of ``--face``.

Faces. Profiles are skipped with a warning; faces smaller than ``min_face_size`` are ignored; a photo (or
reference photo) left without a usable face is an error (exit 2) whose message says why. A huge photo is
detected on a copy downscaled to 1024 px (``ganimation_tl.faces``); measured on an 8000x8000 (64 MP) JPEG:
peak memory about 680 MB above the same run on a 512-px photo, i.e. about 3.5 copies of the decoded photo.

Videos. Frames are decoded and encoded with OpenCV (FFmpeg, ``mp4v``); frames without a usable face are
copied unchanged and counted in one warning; a video without any usable face is an error. Known limitation:
OpenCV 5.0's FFmpeg round trip is lossy beyond compression (4:2:0 chroma, and each decode + encode darkens
by about 2-3 grey levels: measured on flat grey frames), so even copied frames are not bit-exact.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ganimation_tl.au_data import read_image
from ganimation_tl.aus import AU_NAMES, parse_au_string
from ganimation_tl.errors import InputError

__all__ = ["InferOptions", "InferReport", "Photo", "Plan", "OutputSet", "plan_run", "run", "read_photo",
           "resolve_photo_output", "save_photo", "format_au_table"]

_ORIENTATION_TAG = 0x0112
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
#: Extension given to a default output whose input extension does not name its format.
_PREFERRED_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tiff", "WEBP": ".webp", "BMP": ".bmp",
                         "GIF": ".gif"}
#: Quality for lossy photo formats.
LOSSY_QUALITY = 95


@dataclasses.dataclass(frozen=True)
class InferOptions:
    """What to edit and where to write it; one field per ``infer.py`` flag (see its docstring).

    Attributes:
        image / video: the input (exactly one).
        workdir / saved_model: the model (exactly one, unless a backend is passed to :func:`run`).
        output: the edited photo or video; default ``<input stem>_edited<ext>`` (``.mp4`` for video).
        aus: target AU string, e.g. ``"AU12=0.8,AU25=0.5"`` (values in [0, 1] = OpenFace intensity / 5).
        reference: photo whose largest face gives the target AUs (``aus`` overrides the named ones).
        face: ``largest``, ``all`` or a 0-based face index (frontal faces, largest first).
        min_face_size: faces with a shorter box side (photo pixels) are ignored.
        print_aus: only estimate and report the AUs of the faces (and of the reference); write nothing.
        frames: number of animation steps (>= 2) from the source AUs to the target, or None.
        fps: animation frame rate (frames per second).
        max_side: longer side of the animation frames, pixels.
        save_masks: also write the attention / colour masks and a panel per face.
        max_frames: with ``video``, edit at most this many frames (0: all).
        bf16: run the generator in bfloat16 where the CPU supports it natively (about 1.6x faster, the
            edit differs by a few grey levels; see ``ganimation_tl.editing.onednn_bfloat16``). True: asked
            for (a warning and float32 on other CPUs); None: automatic, bfloat16 exactly where the CPU has it
            and no GPU is visible (``infer.py``'s default, :func:`ganimation_tl.runtime.resolve_bf16`); False:
            float32. Ignored when :func:`run` is given a backend.
    """

    image: Optional[str] = None
    video: Optional[str] = None
    workdir: Optional[str] = None
    saved_model: Optional[str] = None
    output: Optional[str] = None
    aus: str = ""
    reference: Optional[str] = None
    face: str = "largest"
    min_face_size: float = 40.0
    print_aus: bool = False
    frames: Optional[int] = None
    fps: float = 10.0
    max_side: int = 1024
    save_masks: bool = False
    max_frames: int = 0
    bf16: Optional[bool] = False


@dataclasses.dataclass
class InferReport:
    """What :func:`run` did.

    Attributes:
        written: absolute paths of the files written, in order.
        warnings: messages for the user (skipped profiles, passed-through video frames, ...).
        au_rows: ``[(label, float32 [17] AUs in [0, 1])]`` for the AU table.
        faces: number of faces edited (summed over frames for a video).
        summary: one line describing the result.
        timings: seconds per phase (``load``, ``faces`` (detect, align, estimate), ``edit``, ``write``).
        precision: the generator's arithmetic, ``"bfloat16"`` or ``"float32"`` (``""`` when :func:`run` was given
            a backend).
    """

    written: List[str] = dataclasses.field(default_factory=list)
    warnings: List[str] = dataclasses.field(default_factory=list)
    au_rows: List[Tuple[str, np.ndarray]] = dataclasses.field(default_factory=list)
    faces: int = 0
    summary: str = ""
    timings: Dict[str, float] = dataclasses.field(default_factory=dict)
    precision: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class Photo:
    """A decoded photo with what is needed to write it back in kind.

    Attributes:
        path: the file.
        rgb: uint8 [H, W, 3] RGB, upright (EXIF orientation applied).
        format: Pillow format name of the file (``"JPEG"``, ``"PNG"``, ...).
        exif: EXIF block without the orientation tag (bytes), or None.
        icc_profile: ICC colour profile (bytes), or None.
        grey: the file is greyscale (its edit is written back as greyscale).
    """

    path: str
    rgb: np.ndarray
    format: Optional[str]
    exif: Optional[bytes]
    icc_profile: Optional[bytes]
    grey: bool = False


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """Checked options, decoded inputs and output names (from :func:`plan_run`).

    Attributes:
        options: the options.
        settings: ``{au_index: value}`` from ``options.aus``.
        photo: the input photo, or None for a video.
        reference: uint8 [H, W, 3] RGB reference photo, or None.
        output: the edited photo / video path (absolute); None with ``print_aus``.
        output_format: Pillow format of the photo output.
        stem: output path without extension (derived names start with it).
        animation_outputs: ``{"gif": path, "mp4": path, "sheet": path}`` with ``frames``, else empty.
    """

    options: InferOptions
    settings: Dict[int, float]
    photo: Optional[Photo]
    reference: Optional[np.ndarray]
    output: Optional[str]
    output_format: Optional[str]
    stem: Optional[str]
    animation_outputs: Dict[str, str]

    def mask_paths(self, index: int) -> Dict[str, str]:
        """``{"attention", "color", "panel"}`` paths for face ``index`` (``--save_masks``)."""
        return {k: "%s_face%d_%s.png" % (self.stem, index, k) for k in ("attention", "color", "panel")}


# ----------------------------------------------------------------------------------------------------
# Photos and formats
# ----------------------------------------------------------------------------------------------------
def read_photo(path) -> Photo:
    """Decode a photo upright (``ganimation_tl.au_data.read_image``) and keep its format and metadata.

    Raises:
        InputError: see ``read_image`` (missing, empty, not an image, corrupt, too large or small).
    """
    path = os.fspath(path)
    rgb = read_image(path)
    fmt = exif = icc = None
    grey = False
    try:
        with Image.open(path) as img:
            fmt = img.format
            grey = img.mode in _GREY_MODES
            icc = img.info.get("icc_profile") or None
            data = img.getexif()
            if len(data):
                data.pop(_ORIENTATION_TAG, None)
                exif = data.tobytes() if len(data) else None
    except Exception:  # noqa: BLE001 - metadata is optional; the pixels were decoded above
        exif = icc = None
    return Photo(path=path, rgb=rgb, format=fmt, exif=exif, icc_profile=icc, grey=grey)


def _writable_format(fmt: Optional[str]) -> Optional[str]:
    """Pillow format to write for an input format (MPO, a multi-picture JPEG, is written as JPEG)."""
    if fmt is None:
        return None
    fmt = {"MPO": "JPEG"}.get(fmt.upper(), fmt.upper())
    Image.init()
    return fmt if fmt in Image.SAVE else None


def resolve_photo_output(image_path: str, image_format: Optional[str], output: Optional[str]) -> Tuple[str, str]:
    """Where and in which format to write the edited photo (rules in the module docstring).

    Returns:
        ``(absolute path, Pillow format name)``.

    Raises:
        InputError: an unknown extension, a format Pillow cannot write, or an input format Pillow cannot
            write when the output has no extension.
    """
    Image.init()
    extensions = Image.registered_extensions()
    same = _writable_format(image_format)
    if output is None:
        stem, ext = os.path.splitext(image_path)
        if same is None or extensions.get(ext.lower()) != same:
            same = same or "PNG"
            ext = _PREFERRED_EXTENSIONS.get(same) or next(e for e, f in extensions.items() if f == same)
        return os.path.abspath(stem + "_edited" + ext), same
    ext = os.path.splitext(output)[1].lower()
    if not ext:
        if same is None:
            raise InputError("--output %s has no extension and Pillow cannot write the input's format (%s); "
                             "add an extension such as .png or .jpg" % (output, image_format))
        return os.path.abspath(output), same
    fmt = extensions.get(ext)
    if fmt is None:
        raise InputError("--output %s: unknown image extension %r; use .jpg, .png, .webp, .bmp, .tiff, ..."
                         % (output, ext))
    if fmt not in Image.SAVE:
        raise InputError("--output %s: Pillow can read %s (%s) but not write it; use .png or .jpg" % (output, fmt, ext))
    return os.path.abspath(output), fmt


def save_photo(path, rgb: np.ndarray, fmt: str, exif: Optional[bytes] = None, icc_profile: Optional[bytes] = None,
               grey: bool = False) -> None:
    """Write uint8 [H, W, 3] RGB to ``path`` in Pillow format ``fmt`` (JPEG / WebP quality 95), with the
    given EXIF block and ICC profile where the format holds them (dropped if the encoder refuses them);
    ``grey`` writes 8-bit greyscale (ITU-R 601 luma, Pillow's ``convert("L")``).

    Not atomic by itself (see :class:`OutputSet`).
    """
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if grey:
        image = image.convert("L")
    base = {"quality": LOSSY_QUALITY} if fmt in ("JPEG", "WEBP") else {}
    meta = {}
    if icc_profile:
        meta["icc_profile"] = icc_profile
    if exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        meta["exif"] = exif
    try:
        image.save(path, format=fmt, **base, **meta)
    except (ValueError, OSError, TypeError):
        if not meta:
            raise
        image.save(path, format=fmt, **base)  # e.g. an EXIF block too long for a JPEG APP1 segment


# ----------------------------------------------------------------------------------------------------
# All-or-nothing output
# ----------------------------------------------------------------------------------------------------
class OutputSet:
    """Write several files all or nothing: each to a hidden temporary name in its destination folder,
    then :meth:`commit` renames them all (``os.replace``). Leaving the ``with`` block without a commit
    (an exception) deletes the temporary files; destinations are never touched before the commit.
    """

    def __init__(self):
        self._pending: List[Tuple[str, str]] = []

    def add(self, path, write: Callable[[str], None], suffix: str = ".tmp") -> None:
        """Call ``write(temporary path)``; the file goes to ``path`` at :meth:`commit`.

        Args:
            path: destination.
            write: writes the file at the path it is given.
            suffix: ending of the temporary name (``".tmp.mp4"`` where the writer needs the extension).

        Raises:
            InputError: the temporary file cannot be created or written (OSError), naming ``path``.
        """
        path = os.path.abspath(os.fspath(path))
        if any(path == p for _, p in self._pending):
            raise InputError("two outputs would be written to %s; choose another --output" % path)
        folder = os.path.dirname(path)
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=suffix)
            os.close(fd)
        except OSError as error:
            raise InputError("cannot write %s: %s" % (path, error.strerror or error)) from None
        self._pending.append((tmp, path))
        try:
            write(tmp)
        except OSError as error:
            raise InputError("cannot write %s: %s" % (path, error.strerror or error)) from None

    def commit(self) -> List[str]:
        """Rename every temporary file into place; returns the destinations in order."""
        umask = os.umask(0)
        os.umask(umask)
        done = []
        for tmp, path in self._pending:
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
            done.append(path)
        self._pending = []
        return done

    def discard(self) -> None:
        """Delete the temporary files not yet committed."""
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._pending = []

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()


# ----------------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------------
def _check_face_selector(face) -> str:
    text = str(face).strip().lower()
    if text in ("largest", "all") or text.isdigit():
        return text
    raise InputError("--face=%s: expected 'largest', 'all' or a 0-based face index (0 = the largest face)" % face)


def _check_numbers(o: InferOptions) -> None:
    if o.frames is not None and (isinstance(o.frames, bool) or int(o.frames) != o.frames or o.frames < 2):
        raise InputError("--frames=%s: an animation needs at least 2 frames (the source and the target AUs)"
                         % (o.frames,))
    if not (isinstance(o.fps, (int, float)) and math.isfinite(o.fps) and 0 < o.fps <= 120):
        raise InputError("--fps=%s must be a number in (0, 120] frames per second" % (o.fps,))
    if not 64 <= int(o.max_side) <= 16384:
        raise InputError("--max_side=%s must be in [64, 16384] pixels" % (o.max_side,))
    if int(o.max_frames) < 0:
        raise InputError("--max_frames=%s must be >= 0 (0: every frame)" % (o.max_frames,))
    if not (math.isfinite(o.min_face_size) and o.min_face_size >= 0):
        raise InputError("--min_face_size=%s must be >= 0 pixels" % (o.min_face_size,))


def _check_combinations(o: InferOptions) -> None:
    if (o.image is None) == (o.video is None):
        raise InputError("give exactly one input: --image PHOTO or --video CLIP" + (", not both" if o.image else ""))
    if o.video is not None:
        for flag, value in (("--frames", o.frames is not None), ("--save_masks", o.save_masks),
                            ("--print_aus", o.print_aus)):
            if value:
                raise InputError("%s works on a photo (--image), not with --video" % flag)
    elif o.max_frames:
        raise InputError("--max_frames applies to --video only")


def _check_destinations(paths: Sequence[str], inputs: Sequence[str]) -> None:
    """Every output: in an existing writable folder, not a folder itself, not an input, no duplicates."""
    real_inputs = {os.path.realpath(p): p for p in inputs if p}
    seen = {}
    for path in paths:
        folder = os.path.dirname(path)
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
            raise InputError("cannot write --output %s: folder %s does not exist or is not writable" % (path, folder))
        if os.path.isdir(path):
            raise InputError("cannot write %s: it is a folder" % path)
        real = os.path.realpath(path)
        if real in real_inputs:
            raise InputError("output %s would overwrite the input %s; choose another --output"
                             % (path, real_inputs[real]))
        if real in seen:
            raise InputError("two outputs would be written to %s; choose another --output (or extension)" % path)
        seen[real] = path


def plan_run(options: InferOptions, need_model: bool = True) -> Plan:
    """Check every option, read the inputs and name the outputs; imports no TensorFlow, writes nothing.

    Args:
        options: the run's options.
        need_model: check ``workdir`` / ``saved_model`` (False when :func:`run` is given a backend).

    Raises:
        InputError: naming the flag, file or value at fault.
    """
    o = options
    _check_combinations(o)
    _check_numbers(o)
    _check_face_selector(o.face)
    settings = parse_au_string(o.aus)
    if need_model:
        from ganimation_tl.editing import check_model_source

        check_model_source(o.workdir, o.saved_model)
    photo = read_photo(o.image) if o.image is not None else None
    if o.video is not None:
        from ganimation_tl.video import probe_video

        probe_video(o.video)
    reference = read_image(o.reference) if o.reference is not None else None
    inputs = [o.image, o.video, o.reference]
    if o.print_aus:
        return Plan(o, settings, photo, reference, None, None, None, {})
    animation: Dict[str, str] = {}
    if o.video is not None:
        if o.output is None:
            output = os.path.abspath(os.path.splitext(o.video)[0] + "_edited.mp4")
        elif os.path.splitext(o.output)[1].lower() != ".mp4":
            raise InputError("--output %s: a --video is written as MP4 (mp4v); the name must end in .mp4" % o.output)
        else:
            output = os.path.abspath(o.output)
        fmt, stem = None, os.path.splitext(output)[0]
    else:
        output, fmt = resolve_photo_output(o.image, photo.format, o.output)
        stem = os.path.splitext(output)[0] if os.path.splitext(o.output or output)[1] else output
        if o.frames is not None:
            animation = {"gif": stem + ".gif", "mp4": stem + ".mp4", "sheet": stem + "_sheet.png"}
    _check_destinations([output] + list(animation.values()), inputs)
    return Plan(o, settings, photo, reference, output, fmt, stem, animation)


# ----------------------------------------------------------------------------------------------------
# Run
# ----------------------------------------------------------------------------------------------------
def format_au_table(rows: Sequence[Tuple[str, np.ndarray]]) -> str:
    """Format ``[(label, aus[17])]`` as a text table, one column per AU (values in [0, 1], 2 decimals)."""
    width = max([12] + [len(label) + 1 for label, _ in rows])
    lines = [("%-*s" % (width, "face")) + " ".join("%5s" % n for n in AU_NAMES)]
    for label, aus in rows:
        lines.append(("%-*s" % (width, label)) + " ".join("%5.2f" % v for v in np.asarray(aus).reshape(-1)))
    return "\n".join(lines)


def _mask_images(edit) -> Dict[str, np.ndarray]:
    attention = (np.clip(edit.attention_mask, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    attention_rgb = np.repeat(attention[..., None], 3, axis=-1)
    return {"attention": attention, "color": edit.color_mask,
            "panel": np.concatenate([edit.crop, edit.edited_crop, attention_rgb, edit.color_mask], axis=1)}


def _save_png(array: np.ndarray) -> Callable[[str], None]:
    return lambda path: Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG")


def run(options: InferOptions, backend=None, detector=None,
        progress: Optional[Callable[[int, int], None]] = None) -> InferReport:
    """Do everything ``infer.py`` does for ``options`` (see the module docstring).

    Args:
        options: what to do.
        backend: a loaded model backend (``ganimation_tl.editing``); default: load ``options.workdir`` or
            ``options.saved_model``.
        detector: a ``ganimation_tl.faces.FaceDetector``; default: MTCNN with ``options.min_face_size``.
        progress: for a video, called as ``progress(frames done, total or 0)``.

    Returns:
        An :class:`InferReport` (nothing is printed).

    Raises:
        InputError: bad options or input, or no usable face (nothing is written).
        ganimation_tl.video.VideoWriteError: OpenCV cannot write or read back an MP4 (nothing is written).
    """
    from ganimation_tl.editing import FaceEditor, cpu_supports_bfloat16, load_backend
    from ganimation_tl.runtime import gpu_visible, resolve_bf16
    from ganimation_tl.faces import FaceDetector

    o = options
    plan = plan_run(o, need_model=backend is None)
    report = InferReport()
    t0 = time.perf_counter()
    if backend is None:
        try:
            bfloat16 = resolve_bf16(o.bf16, cpu_supports_bfloat16(), gpu_visible())
        except InputError:
            bfloat16 = False
            report.warnings.append("--bf16: this CPU has no native bfloat16 (avx512_bf16 / amx_bf16); "
                                   "running in float32")
        backend = load_backend(o.workdir, o.saved_model, bfloat16=bfloat16)
        report.precision = "bfloat16" if bfloat16 else "float32"
    report.timings["load"] = time.perf_counter() - t0
    editor = FaceEditor(backend, detector or FaceDetector(min_face_size=o.min_face_size))

    t0 = time.perf_counter()
    reference_aus = None
    if plan.reference is not None:
        reference_aus = editor.estimate_reference(plan.reference, "reference photo %s" % o.reference)
        report.warnings += editor.warnings
        report.au_rows.append(("reference", reference_aus))
    if o.video is not None:
        return _run_video(plan, editor, reference_aus, report, progress)
    prepared = editor.prepare(plan.photo.rgb, o.face, o.image)
    report.warnings += editor.warnings
    report.timings["faces"] = time.perf_counter() - t0
    if o.print_aus:
        report.au_rows += [("face %d" % i, a) for i, a in zip(prepared.indices, prepared.source_aus)]
        report.summary = "%d face(s) in %s" % (len(prepared), o.image)
        return report
    if not plan.settings and reference_aus is None:
        report.warnings.append("no --aus or --reference given; the faces are re-rendered with their own "
                               "estimated AUs")

    t0 = time.perf_counter()
    target = editor.targets(prepared.source_aus, plan.settings, reference_aus)
    animation = None
    if o.frames is not None:
        from ganimation_tl.animation import animate

        animation = animate(editor, plan.photo.rgb, prepared, target, o.frames, max_side=o.max_side)
        photo, edits = animation.photo, animation.edits
    else:
        photo, edits = editor.edit_prepared(plan.photo.rgb, prepared, target)
    report.timings["edit"] = time.perf_counter() - t0
    for edit in edits:
        report.au_rows += [("face %d source" % edit.index, edit.source_aus),
                           ("face %d target" % edit.index, edit.target_aus)]
    report.faces = len(edits)

    t0 = time.perf_counter()
    mask_paths = [plan.mask_paths(e.index) for e in edits] if o.save_masks else []
    _check_destinations([plan.output] + list(plan.animation_outputs.values())
                        + [p for d in mask_paths for p in d.values()], [o.image, o.reference])
    with OutputSet() as outputs:
        src = plan.photo
        outputs.add(plan.output, lambda p: save_photo(p, photo, plan.output_format, src.exif, src.icc_profile,
                                                            src.grey))
        if animation is not None:
            from ganimation_tl.animation import contact_sheet, write_gif
            from ganimation_tl.video import write_mp4

            outputs.add(plan.animation_outputs["gif"], lambda p: write_gif(p, animation.frames, o.fps))
            outputs.add(plan.animation_outputs["mp4"], lambda p: write_mp4(p, animation.frames, o.fps),
                        suffix=".tmp.mp4")
            sheet = contact_sheet(animation.tiles, animation.labels)
            outputs.add(plan.animation_outputs["sheet"], _save_png(sheet))
        for edit, paths in zip(edits, mask_paths):
            for key, image in _mask_images(edit).items():
                outputs.add(paths[key], _save_png(image))
        report.written = outputs.commit()
    report.timings["write"] = time.perf_counter() - t0
    report.summary = "edited %d face(s) of %s -> %s" % (len(edits), o.image, plan.output)
    return report


def _run_video(plan: Plan, editor, reference_aus, report: InferReport, progress) -> InferReport:
    from ganimation_tl.video import edit_video

    o = plan.options
    t0 = time.perf_counter()
    result = {}

    def write(tmp):
        result["video"] = edit_video(editor, o.video, tmp, plan.settings, o.face, reference_aus,
                                     max_frames=o.max_frames, progress=progress)

    with OutputSet() as outputs:
        outputs.add(plan.output, write, suffix=".tmp.mp4")
        report.written = outputs.commit()
    video = result["video"]
    report.timings["edit"] = time.perf_counter() - t0
    report.faces = video.faces_edited
    warning = video.passthrough_warning(o.video)
    if warning:
        report.warnings.append(warning)
    report.summary = ("edited %d face(s) in %d of %d frames of %s -> %s (%dx%d, %.3g fps)"
                      % (video.faces_edited, video.edited, video.frames, o.video, plan.output, video.width,
                         video.height, video.fps))
    return report
