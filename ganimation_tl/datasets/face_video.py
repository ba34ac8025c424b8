"""Face tracks from a real video: detect the face, follow it, crop every frame to a fixed-size square.

Used by the DrNet face-video configuration (``--drnet_data=face_video``; Denton and Birodkar, NIPS 2017, who
train on talking-head videos the same way: one tracked face crop per frame). The face is found with the
project's MTCNN detector (:class:`ganimation_tl.faces.FaceDetector`) on every ``detect_every``-th frame (the
largest face), the box centres are linearly interpolated to every frame and smoothed with a centred moving
average, and each frame is cut to a square of one side for the whole video (``margin`` x the median box
height, at most the frame's shorter side) around the smoothed centre, replicating border pixels where the
square leaves the frame, then resized (area interpolation) to ``image_size``.

A fixed crop side keeps the face's scale steady, so what changes between frames is the expression and the
head's rotation and residual motion: the "pose" of DrNet, while the person's identity is the "content".

Frames are float32 NHWC ``[N, S, S, 3]`` RGB in [0, 1].

:func:`block_split` holds out whole blocks of consecutive frames (every ``test_every``-th block) so that test
clips never share frames with training clips, and expressions from across the video appear in both.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from ganimation_tl.errors import InputError

__all__ = ["FaceTrack", "load_face_video", "block_split", "clip_starts"]


@dataclasses.dataclass(frozen=True)
class FaceTrack:
    """A tracked face crop per frame.

    Attributes:
        frames: float32 ``[N, S, S, 3]`` RGB in [0, 1].
        centres: float32 ``[N, 2]``: (x, y) centre of each frame's crop in video pixels.
        side: side of the square crop in video pixels (the same for every frame).
        detected: int64 ``[M]``: frames in which MTCNN found the face (the others are interpolated).
        fps: frames per second of the video.
        path: the video file.
    """

    frames: np.ndarray
    centres: np.ndarray
    side: float
    detected: np.ndarray
    fps: float
    path: str


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of ``values`` ``[N, D]`` over ``window`` frames (edges: replicated)."""
    if window <= 1 or len(values) < 2:
        return values
    half = window // 2
    padded = np.concatenate([np.repeat(values[:1], half, 0), values, np.repeat(values[-1:], half, 0)])
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    return np.stack([np.convolve(padded[:, d], kernel, mode="valid") for d in range(values.shape[1])], 1)


def _crop(rgb: np.ndarray, centre, side: float, size: int) -> np.ndarray:
    """Square crop of ``side`` video pixels centred at ``centre``, resized to ``size`` (uint8 [size, size, 3])."""
    import cv2
    scale = size / side
    # affine map video -> crop: scale about the centre, border pixels replicated outside the frame
    m = np.array([[scale, 0.0, size / 2.0 - scale * centre[0]],
                  [0.0, scale, size / 2.0 - scale * centre[1]]], np.float64)
    if scale < 1:  # anti-alias: area-resize the whole frame first, then crop (INTER_AREA is not affine-capable)
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (max(1, int(round(w * scale))), max(1, int(round(h * scale)))),
                           interpolation=cv2.INTER_AREA)
        sx, sy = small.shape[1] / w, small.shape[0] / h
        m = np.array([[scale / sx, 0.0, m[0, 2]], [0.0, scale / sy, m[1, 2]]], np.float64)
        rgb = small
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def load_face_video(path: str, image_size: int, detect_every: int = 8, margin: float = 1.1, smooth: int = 9,
                    max_frames: int = 0, detector=None, flag: str = "--video_path") -> FaceTrack:
    """Read a video and return its tracked face crops (see the module docstring).

    Args:
        path: video file (anything OpenCV/FFmpeg decodes).
        image_size: side S of the returned crops, pixels.
        detect_every: run MTCNN on every n-th frame (0.3 s a 640x360 frame on 2 cores); others are interpolated.
        margin: crop side = margin x the median detected box height (capped at the frame's shorter side).
        smooth: moving-average window (frames) for the crop centres.
        max_frames: read at most this many frames (0: all).
        detector: a :class:`ganimation_tl.faces.FaceDetector` (default: one with ``min_face_size=40``).
        flag: the flag named in error messages.

    Returns:
        :class:`FaceTrack`.

    Raises:
        InputError: the file is missing or not a video, a parameter is out of range, the video has fewer than
            2 frames, or no face is found in any sampled frame.
    """
    from ganimation_tl.video import iter_frames, probe_video

    if image_size <= 0 or detect_every <= 0 or smooth <= 0 or margin <= 0:
        raise InputError("load_face_video: image_size, detect_every, smooth and margin must be positive "
                         "(got %r, %r, %r, %r)" % (image_size, detect_every, smooth, margin))
    if not path:
        raise InputError("%s is required (a video of one face, e.g. ../shared/data/video/WolfgangLanger_Pexels.mp4)"
                         % flag)
    try:
        info = probe_video(path)
    except InputError as e:
        raise InputError("%s: %s" % (flag, e)) from None
    frames = list(iter_frames(path, max_frames))
    if len(frames) < 2:
        raise InputError("%s: %s has %d frame(s); a face video needs at least 2" % (flag, path, len(frames)))
    if detector is None:
        from ganimation_tl.faces import FaceDetector
        detector = FaceDetector(min_face_size=40)
    sampled = sorted(set(range(0, len(frames), detect_every)) | {len(frames) - 1})
    found, centres, heights = [], [], []
    for i in sampled:
        faces = detector.detect(frames[i])
        if not faces:
            continue
        face = max(faces, key=lambda f: f.area)
        x, y, w, h = face.box
        found.append(i)
        centres.append((x + w / 2.0, y + h / 2.0))
        heights.append(h)
    if not found:
        raise InputError("%s: no face found in %s (MTCNN on %d sampled frames)" % (flag, path, len(sampled)))
    found_arr = np.asarray(found, np.int64)
    centres_arr = np.asarray(centres, np.float64)
    t = np.arange(len(frames))
    track = np.stack([np.interp(t, found_arr, centres_arr[:, d]) for d in range(2)], 1)
    track = _smooth(track, smooth)
    height, width = frames[0].shape[:2]
    side = float(min(margin * np.median(heights), min(height, width)))
    crops = np.stack([_crop(f, c, side, image_size) for f, c in zip(frames, track)]).astype(np.float32) / 255.0
    return FaceTrack(frames=crops, centres=track.astype(np.float32), side=side, detected=found_arr,
                     fps=info.fps, path=str(path))


def block_split(num_frames: int, block: int, test_every: int) -> Tuple[np.ndarray, np.ndarray]:
    """Split frame indices into blocks of ``block`` consecutive frames; every ``test_every``-th block (the
    ``test_every - 1``-th, ``2 test_every - 1``-th, ...; 0-based) is test, the rest train.

    Returns:
        ``(block_id [num_frames] int64, is_test [num_frames] bool)``.

    Raises:
        InputError: a non-positive argument, or ``test_every`` < 2 (no training blocks left).
    """
    if num_frames <= 0 or block <= 0 or test_every < 2:
        raise InputError("block_split: need num_frames > 0, block > 0 and test_every >= 2 (got %r, %r, %r)"
                         % (num_frames, block, test_every))
    block_id = np.arange(num_frames) // block
    return block_id, (block_id % test_every) == (test_every - 1)


def clip_starts(block_id: np.ndarray, mask: np.ndarray, span: int) -> np.ndarray:
    """First frames of every clip of ``span`` consecutive frames that lies inside one block and inside ``mask``.

    Args:
        block_id: ``[N]`` block of each frame (:func:`block_split`).
        mask: ``[N]`` bool, the frames allowed (e.g. ``~is_test``).
        span: frames a clip covers ((T - 1) x stride + 1).

    Returns:
        int64 ``[K]`` start indices (possibly empty).
    """
    n = len(block_id)
    starts = [s for s in range(0, n - span + 1)
              if block_id[s] == block_id[s + span - 1] and mask[s:s + span].all()]
    return np.asarray(starts, np.int64)
