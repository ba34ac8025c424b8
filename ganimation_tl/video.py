"""Videos: write MP4 (OpenCV ``mp4v``) and check it, and edit every frame of a video with one target.

Frames are uint8 [H, W, 3] RGB NumPy arrays everywhere in this module; OpenCV's BGR order is converted at
the boundary. MP4 files are written with ``cv2.VideoWriter`` and the MPEG-4 Part 2 codec (fourcc ``mp4v``,
available in every opencv-python wheel, unlike H.264), then decoded again with ``cv2.VideoCapture`` to check
that every frame is there. ``mp4v`` needs even frame sides: frames with an odd width or height are padded
by one replicated row / column.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable, Iterator, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from ganimation_tl.errors import InputError

__all__ = ["MP4_FOURCC", "VideoWriteError", "VideoInfo", "VideoReport", "Mp4Writer", "write_mp4", "read_mp4_info",
           "probe_video", "iter_frames", "edit_video"]

#: FourCC of the codec used for every MP4 written here (MPEG-4 Part 2).
MP4_FOURCC = "mp4v"
#: Frames per second assumed when a video does not say (OpenCV reports 0 or NaN).
DEFAULT_FPS = 25.0


class VideoWriteError(RuntimeError):
    """OpenCV could not write an MP4, or the file written does not decode to the expected frames."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What OpenCV reports about a video file.

    Attributes:
        path: the file.
        fps: frames per second (> 0; :data:`DEFAULT_FPS` if the file does not say).
        width, height: frame size in pixels.
        frame_count: the container's frame count (an estimate for some files; 0 if unknown).
    """

    path: str
    fps: float
    width: int
    height: int
    frame_count: int


@dataclasses.dataclass
class VideoReport:
    """Outcome of :func:`edit_video`.

    Attributes:
        frames: frames written.
        edited: frames in which at least one face was edited.
        passed_through: ``[(frame number (0-based), reason)]`` for frames written unchanged (no usable face).
        fps, width, height: of the written video (equal to the input's).
        faces_edited: total faces edited over all frames.
    """

    frames: int = 0
    edited: int = 0
    passed_through: List[Tuple[int, str]] = dataclasses.field(default_factory=list)
    fps: float = 0.0
    width: int = 0
    height: int = 0
    faces_edited: int = 0

    def passthrough_warning(self, name: str) -> Optional[str]:
        """A one-line summary of the passed-through frames, or None if every frame was edited."""
        if not self.passed_through:
            return None
        numbers = [n for n, _ in self.passed_through]
        shown = ", ".join(str(n) for n in numbers[:10]) + (", ..." if len(numbers) > 10 else "")
        return ("%d of %d frames of %s had no usable face and were copied unchanged (frames %s; e.g. %s)"
                % (len(numbers), self.frames, name, shown, self.passed_through[0][1]))


def _even_frame(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        rgb = cv2.copyMakeBorder(rgb, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    return rgb


class Mp4Writer:
    """Append RGB frames to an MP4 file (``mp4v``); use as a context manager.

    Args:
        path: the file to write; its name must end in ``.mp4`` (OpenCV picks the container from it).
        fps: frames per second, > 0.
        size: (width, height) of every frame, pixels; odd sides are padded to even.

    Raises:
        VideoWriteError: OpenCV cannot open the file for writing.
    """

    def __init__(self, path, fps: float, size: Tuple[int, int]):
        self.path = os.fspath(path)
        self.size = (int(size[0]), int(size[1]))
        even = (self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2)
        if not (math.isfinite(fps) and fps > 0):
            raise VideoWriteError("bad frame rate %r for %s" % (fps, self.path))
        self._writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*MP4_FOURCC), float(fps), even)
        if not self._writer.isOpened():
            raise VideoWriteError("OpenCV cannot write an MP4 (%s) to %s" % (MP4_FOURCC, self.path))
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """Append one uint8 [H, W, 3] RGB frame of the writer's size."""
        if rgb.shape[:2] != (self.size[1], self.size[0]) or rgb.dtype != np.uint8:
            raise ValueError("frame %d has shape %s %s, expected uint8 (%d, %d, 3)"
                             % (self.frames, rgb.shape, rgb.dtype, self.size[1], self.size[0]))
        self._writer.write(cv2.cvtColor(_even_frame(np.ascontiguousarray(rgb)), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_mp4_info(path) -> Tuple[int, float, Tuple[int, int]]:
    """Decode a video completely: ``(frames decoded, fps, (width, height))``; frames 0 if unreadable."""
    cap = cv2.VideoCapture(os.fspath(path))
    try:
        if not cap.isOpened():
            return 0, 0.0, (0, 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        n, size = 0, (0, 0)
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            size = (frame.shape[1], frame.shape[0])
        return n, fps, size
    finally:
        cap.release()


def check_mp4(path, expected_frames: int) -> None:
    """Raise :class:`VideoWriteError` unless ``path`` decodes (cv2.VideoCapture) to ``expected_frames`` frames."""
    n, _, _ = read_mp4_info(path)
    if n != expected_frames:
        raise VideoWriteError("the MP4 written to %s decodes to %d frames, expected %d" % (path, n, expected_frames))


def write_mp4(path, frames: Sequence[np.ndarray], fps: float) -> None:
    """Write uint8 [H, W, 3] RGB frames (all the same size) to ``path`` (``.mp4``) and check it decodes
    back to ``len(frames)`` frames.

    Not atomic by itself: write to a temporary ``.mp4`` name and rename (``ganimation_tl.inference`` does).

    Raises:
        VideoWriteError: OpenCV cannot write the file, or it does not decode to every frame.
    """
    if not len(frames):
        raise ValueError("write_mp4: no frames")
    h, w = frames[0].shape[:2]
    with Mp4Writer(path, fps, (w, h)) as writer:
        for frame in frames:
            writer.write(frame)
    check_mp4(path, len(frames))


# ----------------------------------------------------------------------------------------------------
# Reading and editing
# ----------------------------------------------------------------------------------------------------
def probe_video(path) -> VideoInfo:
    """Open a video and decode its first frame.

    Raises:
        InputError: the file is missing, empty, or not a video OpenCV (FFmpeg) can decode.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError("video file not found: %s" % path)
    if os.path.getsize(path) == 0:
        raise InputError("video file %s is empty (0 bytes)" % path)
    cap = cv2.VideoCapture(path)
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None or frame.ndim != 3:
            raise InputError("%s is not a video OpenCV can decode (or it has no frames)" % path)
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        count = int(count) if math.isfinite(count) and count > 0 else 0
    finally:
        cap.release()
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        fps = DEFAULT_FPS
    return VideoInfo(path=path, fps=fps, width=frame.shape[1], height=frame.shape[0], frame_count=count)


def iter_frames(path, max_frames: int = 0) -> Iterator[np.ndarray]:
    """Yield the frames of a video as uint8 [H, W, 3] RGB, at most ``max_frames`` (0: all)."""
    cap = cv2.VideoCapture(os.fspath(path))
    try:
        n = 0
        while not max_frames or n < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def edit_video(editor, video, output, settings: Mapping[int, float], which: str = "largest",
               reference_aus: Optional[np.ndarray] = None, max_frames: int = 0,
               progress: Optional[Callable[[int, int], None]] = None) -> VideoReport:
    """Edit the faces of every frame of ``video`` to the same target and write ``output`` (MP4, mp4v).

    Faces are detected in every frame (:meth:`ganimation_tl.editing.FaceEditor.prepare`). The target of a
    face is ``reference_aus`` (or the face's own AUs in that frame, estimated by the critic) with ``settings``
    applied, so AUs not named follow the video. Frames without a usable face (none, too small, profile only,
    or fewer faces than ``which`` asks for) are written unchanged and reported.

    Args:
        editor: a :class:`ganimation_tl.editing.FaceEditor`.
        video: input video file (anything OpenCV's FFmpeg decodes).
        output: the MP4 to write (name ending in ``.mp4``); same fps and frame size as the input. Written
            in place: pass a temporary name and rename it afterwards for an atomic result.
        settings: ``{au_index: value in [0, 1]}``.
        which: ``largest``, ``all`` or a face index, per frame.
        reference_aus: optional float32 [17] base target in [0, 1].
        max_frames: stop after this many frames (0: all).
        progress: called as ``progress(frames done, expected total or 0)`` after each frame.

    Returns:
        A :class:`VideoReport`.

    Raises:
        InputError: the video cannot be decoded, or no frame has a usable face.
        VideoWriteError: the MP4 cannot be written or does not decode to every frame.
    """
    info = probe_video(video)
    expected = info.frame_count
    if max_frames:
        expected = min(expected, max_frames) if expected else max_frames
    report = VideoReport(fps=info.fps, width=info.width, height=info.height)
    with Mp4Writer(output, info.fps, (info.width, info.height)) as writer:
        for number, rgb in enumerate(iter_frames(info.path, max_frames)):
            if rgb.shape[:2] != (info.height, info.width):
                raise InputError("frame %d of %s is %dx%d, the first frame was %dx%d"
                                 % (number, info.path, rgb.shape[1], rgb.shape[0], info.width, info.height))
            try:
                prepared = editor.prepare(rgb, which, "frame %d" % number)
            except InputError as error:
                report.passed_through.append((number, str(error)))
                out = rgb
            else:
                out, edits = editor.edit_prepared(rgb, prepared,
                                                  editor.targets(prepared.source_aus, settings, reference_aus))
                report.edited += 1
                report.faces_edited += len(edits)
            writer.write(out)
            report.frames += 1
            if progress is not None:
                progress(report.frames, expected)
    if report.frames == 0:
        raise InputError("no frame could be decoded from %s" % info.path)
    if report.edited == 0:
        raise InputError("no usable face in any of the %d frames of %s (frame 0: %s)"
                         % (report.frames, info.path, report.passed_through[0][1]))
    check_mp4(output, report.frames)
    return report
