"""Convert the official GANimation data layout to an AU CSV that ganimation-tl reads.

The official layout (Pumarola et al., ECCV 2018, official code's data folder):

    <dataset>/imgs/<id>.jpg
    <dataset>/aus_openface.pkl     Python-2 pickle: dict id -> float64[17], OpenFace intensities 0..5
    <dataset>/train_ids.csv        one <id>.jpg per line, no header (optional)
    <dataset>/test_ids.csv         same (optional)

Output: ``file,AU01_r,...,AU45_r`` with the image file names found in imgs/ and intensities at OpenFace scale
0..5 (4 decimals), written atomically. Examples:

    python data/convert_official.py /path/to/dataset                 # every id -> dataset/aus.csv
    python data/convert_official.py /path/to/dataset --split train   # train_ids.csv -> dataset/aus_train.csv

Exit status 2 with ``error: ...`` on bad input.
"""
import argparse
import os
import sys

from ganimation_tl.au_data import convert_official
from ganimation_tl.errors import InputError


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line (``argv`` without the program name; None = sys.argv[1:])."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset",
                        help="folder with aus_openface.pkl, imgs/ and optionally train_ids.csv / test_ids.csv")
    parser.add_argument("--split", choices=("all", "train", "test"), default="all",
                        help="all: every id in the pickle; train/test: the ids in <split>_ids.csv (default: all)")
    parser.add_argument("--out", help="output CSV (default: <dataset>/aus.csv, or aus_<split>.csv for a split)")
    parser.add_argument("--pkl", help="AU pickle (default: <dataset>/aus_openface.pkl)")
    parser.add_argument("--image-dir", help="image folder (default: <dataset>/imgs)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the conversion; returns the exit status (0 ok, 2 bad input)."""
    args = parse_args(argv)
    pkl = args.pkl or os.path.join(args.dataset, "aus_openface.pkl")
    ids = None if args.split == "all" else os.path.join(args.dataset, "%s_ids.csv" % args.split)
    out = args.out or os.path.join(args.dataset, "aus.csv" if args.split == "all" else "aus_%s.csv" % args.split)
    image_dir = args.image_dir or os.path.join(args.dataset, "imgs")
    try:
        count = convert_official(pkl, out, ids_csv=ids, image_dir=image_dir)
    except InputError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    print("wrote %d rows to %s" % (count, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
