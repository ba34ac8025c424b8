"""Throughput of the synthetic face generator (faces per second, one process, one OpenCV thread).

Usage: ``python bench/bench_synthetic.py [--n 400] [--rounds 5] [--sizes 64 128]``. Measures
``SyntheticFaces.sample`` (render, labels, region masks and, when on, augmentations) in CPU time, after a warm-up
that loads the background photos and builds the identities' caches; prints the best and the median round.
Target (issue 3): at least 200 faces/s at 128x128 on one core.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cv2  # noqa: E402

from ganimation_tl.synthetic import Augmentations, SyntheticFaces  # noqa: E402


def measure(size: int, augment: bool, n: int, rounds: int = 5, num_identities: int = 100, supersample=None):
    """Faces per second for ``n`` samples split into ``rounds`` rounds, after a warm-up pass over every identity.

    Returns (best round, median round) rates in CPU time (``time.process_time``): on a shared machine the best
    round is the least disturbed estimate of what one core does; the median shows the spread.
    """
    faces = SyntheticFaces(image_size=size, seed=0, num_identities=num_identities, supersample=supersample,
                           augment=None if augment else Augmentations.off())
    for i in range(num_identities):       # warm-up: photos, identity caches
        faces.sample(i)
    per_round = max(1, n // rounds)
    rates = []
    index = num_identities
    for _ in range(rounds):
        cpu = time.process_time()
        for i in range(index, index + per_round):
            faces.sample(i)
        index += per_round
        rates.append(per_round / max(time.process_time() - cpu, 1e-9))
    rates.sort()
    return rates[-1], rates[len(rates) // 2], faces.supersample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400, help="faces per measurement")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--supersample", type=int, default=None, help="default: the generator's (2 up to 64 px, else 1)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    for size in args.sizes:
        for augment in (False, True):
            best, median, ss = measure(size, augment, args.n, rounds=args.rounds, supersample=args.supersample)
            print("size=%4d augment=%-5s supersample=%d: %6.1f faces/s (best of %d rounds; median %6.1f)"
                  % (size, augment, ss, best, args.rounds, median), flush=True)


if __name__ == "__main__":
    main()
