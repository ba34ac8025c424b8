"""A contact sheet of the synthetic faces, to check them by eye.

``python -m ganimation_tl.synthetic.contact_sheet --out docs/synthetic_faces.png`` writes one PNG with

(a) a grid of random samples (data-set augmentations on), each with its nonzero AUs printed under it
    (``12:.80`` = AU12 at model intensity 0.80, i.e. OpenFace 4.0);
(b) one identity, frontal, plain background: for each of the 17 AUs the face with that AU at 0 and at 1, and the
    amplified difference with the AU's region mask outlined in green.
"""
from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from ganimation_tl.aus import AU_CODES, AU_DESCRIPTIONS, AU_NAMES, NUM_AUS
from ganimation_tl.errors import InputError
from ganimation_tl.synthetic.dataset import SyntheticFaces

_FONT = cv2.FONT_HERSHEY_PLAIN
_WHITE = (255, 255, 255)
_INK = (20, 20, 20)


def _text(img: np.ndarray, text: str, org, scale: float = 0.9, colour=_INK, thick: int = 1) -> None:
    cv2.putText(img, text, (int(org[0]), int(org[1])), _FONT, scale, colour, thick, cv2.LINE_AA)


def _au_lines(aus: np.ndarray, width_chars: int) -> List[str]:
    items = ["%s:%s" % (AU_CODES[i], ("%.2f" % v)[1:] if v < 1 else "1.0") for i, v in enumerate(aus) if v >= 0.05]
    if not items:
        return ["neutral"]
    lines, cur = [], ""
    for it in items:
        if cur and len(cur) + 1 + len(it) > width_chars:
            lines.append(cur)
            cur = it
        else:
            cur = (cur + " " + it).strip()
    lines.append(cur)
    return lines


def pick_identity(faces: SyntheticFaces) -> int:
    """The first identity with medium skin and hair (the clearest for showing AU effects)."""
    for i in range(faces.num_identities):
        p = faces.identity_params(i)
        if 150 <= p.skin.mean() <= 200 and p.hair_style in (1, 2, 3) and p.stubble == 0:
            return i
    return 0


def contact_sheet(seed: int = 0, identity: Optional[int] = None, n_random: int = 27, columns: int = 9,
                  size: int = 128) -> np.ndarray:
    """Build the contact sheet image.

    Args:
        seed: data-set seed for part (a) and the identity of part (b).
        identity: identity id shown in part (b) (of a 1000-identity set); None picks one with medium skin.
        n_random: number of random faces in part (a).
        columns: faces per row in part (a).
        size: face size in pixels.

    Returns:
        uint8 ``[H, W, 3]`` RGB.
    """
    faces = SyntheticFaces(image_size=size, seed=seed, num_identities=1000)
    identity = pick_identity(faces) if identity is None else identity
    cell_w, pad = size + 4, 4
    text_h = 40
    width = max(columns * cell_w, 3 * (3 * size + 16)) + pad
    rows_a = (n_random + columns - 1) // columns
    part_a_h = 24 + rows_a * (size + text_h + pad)
    part_b_h = 24 + 6 * (size + 20 + pad)
    sheet = np.full((part_a_h + part_b_h + pad, width, 3), 255, np.uint8)
    _text(sheet, "(a) random synthetic faces (seed %d) with their nonzero AUs (model 0..1 = OpenFace 0..5 / 5)"
          % seed, (pad, 17), 1.0, thick=1)
    for j in range(n_random):
        s = faces.sample(j)
        r, c = divmod(j, columns)
        x, y = pad + c * cell_w, 24 + r * (size + text_h + pad)
        sheet[y:y + size, x:x + size] = s.image
        for k, line in enumerate(_au_lines(s.aus, int(size / 6.6))[:3]):
            _text(sheet, line, (x + 1, y + size + 11 + 11 * k), 0.72)
    y0 = part_a_h
    _text(sheet, "(b) identity %d: each AU at 0 | at 1 | difference x3 (green: the AU's region mask)" % identity,
          (pad, y0 + 17), 1.0)
    base = faces.render(identity, np.zeros(NUM_AUS))
    for k in range(NUM_AUS):
        aus = np.zeros(NUM_AUS)
        aus[k] = 1.0
        s = faces.render(identity, aus)
        diff = np.abs(s.image.astype(np.int16) - base.image.astype(np.int16)).max(axis=2)
        heat = cv2.applyColorMap(np.clip(diff * 3, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1].copy()
        region = (s.region_masks[k] | base.region_masks[k]).astype(np.uint8)
        contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(heat, contours, -1, (0, 230, 0), 1, cv2.LINE_AA)
        r, c = divmod(k, 3)
        x, y = pad + c * (3 * size + 16), y0 + 24 + r * (size + 20 + pad)
        _text(sheet, "%s %s" % (AU_NAMES[k], AU_DESCRIPTIONS[k]), (x, y + 13), 0.95)
        sheet[y + 18:y + 18 + size, x:x + size] = base.image
        sheet[y + 18:y + 18 + size, x + size:x + 2 * size] = s.image
        sheet[y + 18:y + 18 + size, x + 2 * size:x + 3 * size] = heat
    return sheet


def write_png(path: str, image: np.ndarray) -> None:
    """Write an RGB image as PNG atomically (temporary name in the same folder, then rename)."""
    out = Path(path)
    if not out.parent.is_dir():
        raise InputError("folder %s for --out does not exist" % out.parent)
    tmp = out.parent / (".%s.tmp-%s.png" % (out.name, uuid.uuid4().hex[:8]))
    try:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise InputError("could not write %s" % out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI: ``--out PNG [--seed 0] [--identity 3]``; exit 2 with ``error: ...`` for bad arguments."""
    ap = argparse.ArgumentParser(prog="python -m ganimation_tl.synthetic.contact_sheet", description=__doc__)
    ap.add_argument("--out", required=True, help="PNG file to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--identity", type=int, default=None, help="identity shown with each AU (0..999); default: "
                    "the first one with medium skin")
    args = ap.parse_args(argv)
    try:
        write_png(args.out, contact_sheet(seed=args.seed, identity=args.identity))
    except InputError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
