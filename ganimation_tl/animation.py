"""AU-interpolation animations of a photo: the frames, an animated GIF and a labelled contact sheet.

:func:`animate` edits the chosen faces of a photo at ``N`` AU vectors interpolated linearly from each
face's own (estimated) AUs to the target (:func:`ganimation_tl.editing.interpolate_aus`), and pastes each
step back into the photo. The GIF / MP4 frames are the whole photo, downscaled so that the longer side is at
most ``max_side`` pixels (the crops are pasted straight into the downscaled photo, so a huge photo never
exists N times in memory); the contact-sheet tiles show the region around the edited faces at the photo's
full resolution. The MP4 writer is :func:`ganimation_tl.video.write_mp4`.

Images are uint8 [H, W, 3] RGB NumPy arrays throughout.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ganimation_tl.aus import AU_NAMES, NUM_AUS
from ganimation_tl.editing import FaceEdit, FaceEditor, PreparedFaces, interpolate_aus
from ganimation_tl.faces import paste_back_many

__all__ = ["Animation", "animate", "step_labels", "contact_sheet", "write_gif", "DEFAULT_MAX_SIDE"]

#: Default longer side (pixels) of the GIF / MP4 frames.
DEFAULT_MAX_SIDE = 1024
#: Default longer side (pixels) of a contact-sheet tile.
DEFAULT_TILE_SIDE = 192
#: AUs whose change from source to target is below this are not named in the step labels.
LABEL_MIN_CHANGE = 0.05


@dataclasses.dataclass(frozen=True, eq=False)
class Animation:
    """Result of :func:`animate` (N steps, F faces).

    Attributes:
        steps_aus: float32 [N, F, 17] AUs of each step, in [0, 1]; ``[0]`` = source, ``[-1]`` = target.
        frames: N uint8 [h, w, 3] RGB frames: the whole photo, longer side <= max_side.
        tiles: N uint8 RGB crops of the region around the edited faces (contact-sheet tiles).
        labels: N tile labels (step number and the changing AUs of the first face, several lines).
        photo: uint8 [H, W, 3] RGB, the full-resolution photo at the last step (the target).
        edits: the :class:`~ganimation_tl.editing.FaceEdit` of each face at the last step.
    """

    steps_aus: np.ndarray
    frames: List[np.ndarray]
    tiles: List[np.ndarray]
    labels: List[str]
    photo: np.ndarray
    edits: List[FaceEdit]


def _scaled_size(height: int, width: int, max_side: int) -> Tuple[int, int]:
    scale = min(1.0, float(max_side) / max(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[2, 3] affine ``a`` after ``b``."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def _resize_matrix(src_hw: Tuple[int, int], dst_hw: Tuple[int, int]) -> np.ndarray:
    """[2, 3] map from resized-image pixels back to source pixels (pixel-centre convention, as cv2.resize)."""
    sy, sx = dst_hw[0] / float(src_hw[0]), dst_hw[1] / float(src_hw[1])
    return np.array([[1.0 / sx, 0.0, 0.5 / sx - 0.5], [0.0, 1.0 / sy, 0.5 / sy - 0.5]])


def face_region(matrices: Sequence[np.ndarray], crop_size: int, shape: Tuple[int, int], pad: float = 0.1
                ) -> Tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) around the crops' footprints in the photo.

    The union of the crop squares mapped back to the photo, grown by ``pad`` times its larger side on every
    side and clipped to the photo (``shape`` = (H, W)); at least 1 pixel wide and high.
    """
    corners = np.array([[-0.5, -0.5, 1], [crop_size - 0.5, -0.5, 1], [-0.5, crop_size - 0.5, 1],
                        [crop_size - 0.5, crop_size - 0.5, 1]], np.float64)
    pts = np.concatenate([corners @ cv2.invertAffineTransform(np.asarray(m, np.float64)).T for m in matrices])
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    margin = pad * max(x1 - x0, y1 - y0)
    h, w = shape
    ix0 = int(np.clip(math.floor(x0 - margin), 0, w - 1))
    iy0 = int(np.clip(math.floor(y0 - margin), 0, h - 1))
    ix1 = int(np.clip(math.ceil(x1 + margin), ix0 + 1, w))
    iy1 = int(np.clip(math.ceil(y1 + margin), iy0 + 1, h))
    return ix0, iy0, ix1, iy1


def _fit(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    dh, dw = max(1, int(round(h * side / max(h, w)))), max(1, int(round(w * side / max(h, w))))
    if (dh, dw) == (h, w):
        return image
    return cv2.resize(image, (dw, dh), interpolation=cv2.INTER_AREA if dh < h else cv2.INTER_CUBIC)


def step_labels(steps_aus: np.ndarray, max_aus: int = 3) -> List[str]:
    """Labels for N animation steps of one face: ``"step i/N"`` then ``"AUxx v.vv"`` lines.

    Args:
        steps_aus: float32 [N, 17] AUs of one face per step.
        max_aus: name at most this many AUs: those changing most from the first to the last step (at
            least :data:`LABEL_MIN_CHANGE`; if none does, the one changing most).

    Returns:
        N strings with lines separated by ``"\\n"``.
    """
    steps_aus = np.asarray(steps_aus, np.float32).reshape(-1, NUM_AUS)
    change = np.abs(steps_aus[-1] - steps_aus[0])
    order = [int(j) for j in np.argsort(-change, kind="stable") if change[j] >= LABEL_MIN_CHANGE][:max_aus]
    order = order or [int(np.argmax(change))]
    n = len(steps_aus)
    return ["step %d/%d\n" % (i + 1, n) + "\n".join("%s %.2f" % (AU_NAMES[j], steps_aus[i, j]) for j in order)
            for i in range(n)]


def animate(editor: FaceEditor, rgb: np.ndarray, prepared: PreparedFaces, target_aus: np.ndarray, steps: int,
            max_side: int = DEFAULT_MAX_SIDE, tile_side: int = DEFAULT_TILE_SIDE) -> Animation:
    """Edit ``prepared`` faces of ``rgb`` at ``steps`` AU vectors from their source AUs to ``target_aus``.

    Args:
        editor: the :class:`~ganimation_tl.editing.FaceEditor` (its backend renders the crops, in batches).
        rgb: uint8 [H, W, 3] RGB photo.
        prepared: the faces, from ``editor.prepare(rgb, ...)``.
        target_aus: float32 [F, 17] in [0, 1].
        steps: N >= 2 (both ends included).
        max_side: longer side of the returned frames (pixels); smaller photos keep their size.
        tile_side: longer side of the contact-sheet tiles (pixels).

    Returns:
        An :class:`Animation`.

    Raises:
        InputError: ``steps`` < 2.
    """
    steps_aus = interpolate_aus(prepared.source_aus, target_aus, steps)            # [N, F, 17]
    n, f = steps_aus.shape[:2]
    size = editor.image_size
    crops = list(prepared.crops)
    rendered = editor.render(np.repeat(prepared.crops[None], n, axis=0).reshape(n * f, size, size, 3),
                             steps_aus.reshape(n * f, NUM_AUS))
    edited = rendered.edited.reshape(n, f, size, size, 3)

    h, w = rgb.shape[:2]
    small_hw = _scaled_size(h, w, max_side)
    small = rgb if small_hw == (h, w) else cv2.resize(rgb, small_hw[::-1], interpolation=cv2.INTER_AREA)
    small_matrices = [_compose(m, _resize_matrix((h, w), small_hw)) for m in prepared.matrices]
    x0, y0, x1, y1 = face_region(prepared.matrices, size, (h, w))
    region = rgb[y0:y1, x0:x1]
    region_matrices = [_compose(m, np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])) for m in prepared.matrices]

    frames, tiles = [], []
    for i in range(n):
        frames.append(paste_back_many(small, list(edited[i]), small_matrices, original_crops=crops))
        tiles.append(_fit(paste_back_many(region, list(edited[i]), region_matrices, original_crops=crops), tile_side))
    photo = paste_back_many(rgb, list(edited[-1]), list(prepared.matrices), original_crops=crops)
    last = slice((n - 1) * f, n * f)
    edits = [FaceEdit(index=i, face=fc, matrix=m, crop=c, edited_crop=e, attention_mask=a, color_mask=k,
                      source_aus=s, target_aus=t)
             for i, fc, m, c, e, a, k, s, t in zip(prepared.indices, prepared.faces, prepared.matrices, crops,
                                                   rendered.edited[last], rendered.attention[last],
                                                   rendered.color[last], prepared.source_aus, steps_aus[-1])]
    return Animation(steps_aus=steps_aus, frames=frames, tiles=tiles, labels=step_labels(steps_aus[:, 0]),
                     photo=photo, edits=edits)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)   # scalable (needs FreeType, in the Pillow wheels)
    except (TypeError, OSError, ImportError):      # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def contact_sheet(tiles: Sequence[np.ndarray], labels: Sequence[str], columns: int = 0, font_size: int = 13,
                  margin: int = 6) -> np.ndarray:
    """Lay tiles out in a grid on white, each with its (multi-line) label underneath.

    Args:
        tiles: uint8 [h_i, w_i, 3] RGB images; each cell is as large as the largest tile.
        labels: one string per tile (``"\\n"`` separates lines).
        columns: tiles per row (0: all in one row up to 8, then more rows).
        font_size: label text height in pixels (Pillow's default font).
        margin: gap between cells, pixels.

    Returns:
        uint8 [H, W, 3] RGB sheet.
    """
    if len(tiles) != len(labels) or not len(tiles):
        raise ValueError("contact_sheet needs one label per tile and at least one tile (%d tiles, %d labels)"
                         % (len(tiles), len(labels)))
    columns = int(columns) or min(len(tiles), 8)
    rows = -(-len(tiles) // columns)
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(t.shape[1] for t in tiles)
    line_h = font_size + 3
    label_h = max(len(label.split("\n")) for label in labels) * line_h + margin
    sheet = Image.new("RGB", (margin + columns * (cell_w + margin), margin + rows * (cell_h + label_h + margin)),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font(font_size)
    for k, (tile, label) in enumerate(zip(tiles, labels)):
        r, c = divmod(k, columns)
        x = margin + c * (cell_w + margin)
        y = margin + r * (cell_h + label_h + margin)
        sheet.paste(Image.fromarray(np.ascontiguousarray(tile), "RGB"),
                    (x + (cell_w - tile.shape[1]) // 2, y + (cell_h - tile.shape[0]) // 2))
        for j, line in enumerate(label.split("\n")):
            draw.text((x + 2, y + cell_h + margin // 2 + j * line_h), line, fill=(0, 0, 0), font=font)
    return np.asarray(sheet, dtype=np.uint8).copy()


def write_gif(path, frames: Sequence[np.ndarray], fps: float) -> None:
    """Write uint8 [H, W, 3] RGB frames as a looping animated GIF (Pillow; adaptive palette per frame).

    Not atomic by itself (``ganimation_tl.inference`` writes to a temporary name and renames). GIF frame
    delays are whole centiseconds: ``1 / fps`` is rounded to 10 ms (at least 20 ms: browsers show shorter
    delays as 100 ms). Pillow merges consecutive identical frames into one longer frame, so the total
    duration stays ``len(frames)`` delays.
    """
    if not len(frames):
        raise ValueError("write_gif: no frames")
    images = [Image.fromarray(np.ascontiguousarray(f), "RGB") for f in frames]
    duration = 10 * max(2, int(math.floor(100.0 / float(fps) + 0.5)))
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
