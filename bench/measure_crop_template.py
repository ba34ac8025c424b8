"""Measure where MTCNN's 5 landmarks fall in the real 128x128 GANimation training crops.

The result is hard-coded as ``ganimation_tl.faces.CANONICAL_LANDMARKS_128``. Re-run after changing the
detector or to check the numbers:

    python bench/measure_crop_template.py [--shared ../shared] [--variants]

It reads the 8 EmotioNet crops in shared/data/{emotionet_sample,openface_sample}/imgs (research data: read
here, never copied into the repository). MTCNN does not find a face that fills the whole frame, so each crop
is padded by 50 % of its side on every side with BORDER_REPLICATE and upscaled x1.5 (INTER_CUBIC); the
landmarks are mapped back to 128-px crop coordinates (pixel-centre convention) and averaged. ``--variants``
repeats the measurement with other paddings and scales to show how much the result depends on them.
"""
import argparse
import glob
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ganimation_tl.faces import LANDMARK_NAMES, FaceDetector  # noqa: E402


def crop_landmarks(detector, crop_rgb, pad_frac=0.5, out_side=384, border=cv2.BORDER_REPLICATE):
    """Landmarks [5, 2] of the one face in a crop, in the crop's pixel coordinates, and the score."""
    side = crop_rgb.shape[0]
    pad = int(round(pad_frac * side))
    padded = cv2.copyMakeBorder(crop_rgb, pad, pad, pad, pad, border)
    scale = out_side / padded.shape[0]
    big = cv2.resize(padded, (out_side, out_side), interpolation=cv2.INTER_CUBIC)
    faces = detector.detect(big)
    if not faces:
        return None, 0.0
    face = faces[0]
    lm = (face.landmarks.astype(np.float64) + 0.5) / scale - 0.5 - pad
    return lm, face.score


def measure(detector, files, **kw):
    pts, scores = [], []
    for f in files:
        rgb = cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB)
        if rgb.shape[:2] != (128, 128):
            raise SystemExit("%s: expected a 128x128 crop, got %s" % (f, rgb.shape))
        lm, score = crop_landmarks(detector, rgb, **kw)
        if lm is None:
            print("  no face found in %s" % os.path.basename(f))
            continue
        pts.append(lm)
        scores.append(score)
    return np.array(pts), np.array(scores)


def symmetrise(mean, side=128):
    """Average the template with its mirror image (x -> side-1-x, swapping left/right points)."""
    mirror = mean.copy()
    mirror[:, 0] = (side - 1) - mirror[:, 0]
    mirror = mirror[[1, 0, 2, 4, 3]]
    return (mean + mirror) / 2.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--variants", action="store_true", help="also try other paddings / scales")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.shared, "data", "emotionet_sample", "imgs", "*.jpg")))
    files += sorted(glob.glob(os.path.join(args.shared, "data", "openface_sample", "imgs", "*.jpg")))
    if not files:
        raise SystemExit("no crops found under %s/data" % args.shared)
    detector = FaceDetector(min_face_size=0, min_score=0.0)

    pts, scores = measure(detector, files)
    print("crops: %d, faces found: %d, scores %.4f..%.4f" % (len(files), len(pts), scores.min(), scores.max()))
    mean, std = pts.mean(0), pts.std(0)
    for i, name in enumerate(LANDMARK_NAMES):
        print("  %-11s mean (%6.2f, %6.2f)  std (%4.2f, %4.2f)  min (%6.2f, %6.2f)  max (%6.2f, %6.2f)" % (
            name, mean[i, 0], mean[i, 1], std[i, 0], std[i, 1], pts[:, i, 0].min(), pts[:, i, 1].min(),
            pts[:, i, 0].max(), pts[:, i, 1].max()))
    sym = symmetrise(mean)
    iod = np.linalg.norm(sym[1] - sym[0])
    em = np.linalg.norm((sym[3] + sym[4]) / 2 - (sym[0] + sym[1]) / 2)
    print("symmetrised template (x, y), 128-px crop:")
    for i, name in enumerate(LANDMARK_NAMES):
        print("    [%.1f, %.1f],   # %s" % (sym[i, 0], sym[i, 1], name))
    print("inter-ocular distance %.1f px, eyes-to-mouth %.1f px" % (iod, em))
    per_image_err = np.linalg.norm(pts - sym[None], axis=2)
    print("per-crop distance to the template: mean %.2f px, max %.2f px" % (per_image_err.mean(), per_image_err.max()))

    if args.variants:
        for pad_frac, out_side, border in [(0.25, 384, cv2.BORDER_REPLICATE), (0.5, 512, cv2.BORDER_REPLICATE),
                                           (0.5, 384, cv2.BORDER_REFLECT_101), (0.5, 256, cv2.BORDER_REPLICATE),
                                           (1.0, 512, cv2.BORDER_REPLICATE)]:
            p, s = measure(detector, files, pad_frac=pad_frac, out_side=out_side, border=border)
            if len(p) == 0:
                print("variant pad=%.2f side=%d border=%d: no faces" % (pad_frac, out_side, border))
                continue
            v = symmetrise(p.mean(0))
            print("variant pad=%.2f side=%d border=%d: %d found, max |diff| to main template %.2f px" % (
                pad_frac, out_side, border, len(p), np.abs(v - sym).max()))


if __name__ == "__main__":
    main()
