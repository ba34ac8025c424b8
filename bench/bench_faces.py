"""Time face detection, alignment and paste-back (ganimation_tl.faces) on the astronaut photo.

    python bench/bench_faces.py [--repeats 5]

Prints the median wall time of: MTCNN detection on the 512x512 astronaut, on it upscaled to 1000x1000
(1 megapixel) and to 8000x8000 (downscaled to 1024 px for detection), and align_face + paste_back per face at
those sizes. Uses only data shipped with scikit-image.
"""
import argparse
import sys
import time
from pathlib import Path

import cv2
import skimage.data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ganimation_tl.faces import FaceDetector, align_face, paste_back  # noqa: E402
from ganimation_tl.timing import median_seconds  # noqa: E402


def median_time(fn, repeats):
    return median_seconds(fn, repeats, warmup=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    detector = FaceDetector()
    astronaut = skimage.data.astronaut()
    t0 = time.perf_counter()
    detector.detect(astronaut)
    print("first detect (imports TensorFlow + mtcnn, builds the 3 nets): %.2f s" % (time.perf_counter() - t0))
    for side in (512, 1000, 8000):
        photo = astronaut if side == 512 else cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_LINEAR)
        face = detector.detect(photo)[0]
        t_det = median_time(lambda: detector.detect(photo), args.repeats)
        crop, m = align_face(photo, face)
        t_align = median_time(lambda: align_face(photo, face), args.repeats * 4)
        t_paste = median_time(lambda: paste_back(photo, crop, m), args.repeats * 4)
        t_resid = median_time(lambda: paste_back(photo, crop, m, original_crop=crop), args.repeats * 4)
        t_seam = median_time(lambda: paste_back(photo, crop, m, method="seamless"), args.repeats)
        print("%5d x %-5d face %4.0f px: detect %.3f s | align %.1f ms | paste alpha %.1f ms, residual %.1f ms, "
              "seamless %.1f ms" % (side, side, face.size, t_det, t_align * 1e3, t_paste * 1e3, t_resid * 1e3,
                                    t_seam * 1e3))


if __name__ == "__main__":
    main()
