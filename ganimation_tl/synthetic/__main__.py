"""Write a synthetic AU-labelled face data set: ``python -m ganimation_tl.synthetic --out DIR --count N``.

The layout is the one ``train.py`` reads (see :func:`ganimation_tl.synthetic.dataset.write_dataset`):
``DIR/imgs/<id>.png``, ``DIR/aus.csv`` (OpenFace 0..5 scale), ``landmarks.csv``, ``pose.csv``,
``identities.csv``, ``occlusion/<id>.png``, ``train_ids.csv`` / ``test_ids.csv`` (split by identity).

Exit status: 0 on success, 2 for bad arguments (``error: ...`` on stderr).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Optional, Sequence

from ganimation_tl.errors import InputError
from ganimation_tl.synthetic.dataset import Augmentations, SyntheticFaces, write_dataset


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    d = Augmentations()
    ap = argparse.ArgumentParser(
        prog="python -m ganimation_tl.synthetic",
        description="Write a synthetic AU-labelled face data set (images, OpenFace-scale AU CSV, landmarks, pose, "
                    "identities, occlusion masks, identity-split train/test ids).")
    ap.add_argument("--out", required=True, help="output folder (created atomically; must not be a non-empty "
                                                  "folder unless --overwrite)")
    ap.add_argument("--count", type=int, required=True, help="number of faces (>= 1)")
    ap.add_argument("--image_size", type=int, default=128, help="image side in pixels: 32..1024, multiple of 4")
    ap.add_argument("--seed", type=int, default=0, help="non-negative seed; same seed, same data set")
    ap.add_argument("--num_identities", type=int, default=1000, help="number of distinct people (>= 1)")
    ap.add_argument("--test_fraction", type=float, default=0.1, help="fraction of identities held out for test")
    ap.add_argument("--max_yaw", type=float, default=30.0, help="max |yaw| in degrees (0..45)")
    ap.add_argument("--max_pitch", type=float, default=15.0, help="max |pitch| in degrees (0..30)")
    ap.add_argument("--max_roll", type=float, default=15.0, help="max |roll| in degrees (0..45)")
    ap.add_argument("--frontal_only", action="store_true", help="all faces frontal (pose 0, 0, 0)")
    ap.add_argument("--supersample", type=int, default=None,
                    help="render at this multiple of the size, then shrink (1..4; default 2 up to 64 px, else 1)")
    ap.add_argument("--no_augment", action="store_true", help="turn every augmentation off (overrides *_prob)")
    for field, help_text in (("photo_background", "background from a real photo"),
                             ("random_lighting", "random light direction and colour"),
                             ("occlusion", "an occluder (glasses, hand, hair strands, face mask)"),
                             ("crop_jitter", "detector-like crop jitter"), ("gaze", "eyes not straight ahead"),
                             ("colour_jitter", "brightness/contrast/saturation/gamma"), ("blur", "blur"),
                             ("noise", "camera noise"), ("jpeg", "JPEG artefacts"), ("grayscale", "grey image")):
        ap.add_argument("--%s_prob" % field, type=float, default=getattr(d, field),
                        help="probability of: %s (default %%(default)s)" % help_text)
    ap.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    return ap


_FLAG_NAMES = ("count", "image_size", "seed", "num_identities", "test_fraction", "max_yaw", "max_pitch", "max_roll",
               "supersample")


def _as_flags(message: str) -> str:
    """Name the command-line flag in a library error message (``seed must ...`` -> ``--seed must ...``)."""
    m = re.match(r"augmentation probability (\w+) (.*)", message)
    if m:
        return "--%s_prob %s" % (m.group(1), m.group(2))
    m = re.match(r"(\w+)( .*)", message)
    if m and m.group(1) in _FLAG_NAMES:
        return "--" + message
    return message


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        if args.no_augment:
            aug = Augmentations.off()
        else:
            aug = Augmentations(**{f: getattr(args, f + "_prob") for f in (
                "photo_background", "random_lighting", "occlusion", "crop_jitter", "gaze", "colour_jitter", "blur",
                "noise", "jpeg", "grayscale")})
        if args.count is None or args.count <= 0:
            raise InputError("--count must be a positive integer, got %s" % args.count)
        faces = SyntheticFaces(image_size=args.image_size, seed=args.seed, num_identities=args.num_identities,
                               max_yaw=args.max_yaw, max_pitch=args.max_pitch, max_roll=args.max_roll,
                               frontal_only=args.frontal_only, augment=aug, supersample=args.supersample)
        start = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if not args.quiet:
                print("%d/%d faces" % (done, total), file=sys.stderr, flush=True)

        stats = write_dataset(args.out, args.count, faces, test_fraction=args.test_fraction,
                              overwrite=args.overwrite, progress=progress)
    except InputError as exc:
        print("error: %s" % _as_flags(str(exc)), file=sys.stderr)
        return 2
    if not args.quiet:
        print("wrote %d faces (%d train, %d test) to %s in %.1f s" % (
            stats["count"], stats["train"], stats["test"], args.out, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
