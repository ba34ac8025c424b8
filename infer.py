"""Edit the expression of a face in a photo with a trained GANimation.

    python infer.py --image PHOTO --aus "AU12=0.8,AU25=0.5" --workdir DIR --output OUT.png

Finds the faces (MTCNN), aligns each to the training crop, sets the named action units (values in
[0, 1] = OpenFace intensity / 5; every AU not named keeps the face's own value, estimated by the
critic's AU head), edits, and blends the result back into the photo at its original size. Also
writes the attention mask of each edited face (white = kept from the input). ``--print_aus``
prints the estimated AUs of each face and exits. Bad input exits with status 2 and a message.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

from ganimation_tl.aus import AU_NAMES, parse_au_string
from ganimation_tl.errors import InputError

flags.DEFINE_string("image", None, "Photo to edit (JPEG, PNG, BMP, WebP; any size).")
flags.DEFINE_string("aus", "", "Target AUs, e.g. \"AU12=0.8,AU25=0.5\" (names AU01..AU45 or 01..45; values in [0, 1]).")
flags.DEFINE_string("workdir", None, "Training workdir: the newest checkpoint is used.")
flags.DEFINE_string("output", None, "Edited photo to write (format from the extension). "
                    "Default: <image stem>_edited<ext> beside the image.")
flags.DEFINE_string("attention_output", None, "Where to write the attention mask(s) (PNG). "
                    "Default: <output stem>_attention.png (with _<i> per face when several).")
flags.DEFINE_string("face", "largest", "Which face to edit: largest, all, or a 0-based index (by size).")
flags.DEFINE_float("min_face_size", 40, "Ignore faces smaller than this many pixels.")
flags.DEFINE_bool("print_aus", False, "Print the estimated AUs of each face as a table and exit.")
FLAGS = flags.FLAGS


def _default_output(image: str) -> str:
    stem, ext = os.path.splitext(image)
    return stem + "_edited" + (ext or ".png")


def _au_table(rows) -> str:
    """Format ``[(label, aus[17])]`` as a table with one column per AU (values in [0, 1])."""
    lines = ["%-10s" % "face" + " ".join("%5s" % n for n in AU_NAMES)]
    for label, aus in rows:
        lines.append("%-10s" % label + " ".join("%5.2f" % v for v in aus))
    return "\n".join(lines)


def edit_photo() -> int:
    from ganimation_tl.au_data import read_image, write_image_atomic
    from ganimation_tl.checkpoints import load_model_from_workdir
    from ganimation_tl.editing import FaceEditor
    from ganimation_tl.faces import FaceDetector

    if not FLAGS.image:
        raise InputError("--image is required")
    if not FLAGS.workdir:
        raise InputError("--workdir is required (the training workdir with checkpoints/)")
    settings = parse_au_string(FLAGS.aus)
    output = FLAGS.output or _default_output(FLAGS.image)
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK):
        raise InputError("cannot write --output %s: folder %s does not exist or is not writable" % (output, out_dir))
    rgb = read_image(FLAGS.image)
    model = load_model_from_workdir(FLAGS.workdir)
    editor = FaceEditor(model, FaceDetector(min_face_size=FLAGS.min_face_size))
    if FLAGS.print_aus:
        faces = editor.find_faces(rgb, FLAGS.face, FLAGS.image)
        _, aus, _ = editor.estimate(rgb, faces)
        print(_au_table([("%d" % i, a) for i, a in enumerate(aus)]))
        return 0
    if not settings:
        print("warning: no --aus given; the faces are re-rendered with their own estimated AUs", file=sys.stderr)
    edited, edits = editor.edit(rgb, settings, FLAGS.face, image_name=FLAGS.image)
    for warning in editor.warnings:
        print("warning: %s" % warning, file=sys.stderr)
    attention_base = FLAGS.attention_output or os.path.splitext(output)[0] + "_attention.png"
    write_image_atomic(output, edited)
    for i, edit in enumerate(edits):
        path = attention_base if len(edits) == 1 else "%s_%d%s" % (os.path.splitext(attention_base)[0], i,
                                                                  os.path.splitext(attention_base)[1] or ".png")
        mask = (edit.attention_mask * 255.0 + 0.5).clip(0, 255).astype("uint8")
        write_image_atomic(path, mask[..., None].repeat(3, axis=-1))
    print("edited %d face(s) of %s -> %s" % (len(edits), FLAGS.image, output))
    rows = []
    for i, edit in enumerate(edits):
        rows += [("%d source" % i, edit.source_aus), ("%d target" % i, edit.target_aus)]
    print(_au_table(rows))
    return 0


def main(argv):
    if len(argv) > 1:
        raise app.UsageError("unexpected arguments: %s" % " ".join(argv[1:]))
    try:
        return edit_photo()
    except InputError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2


def run():
    """Console-script entry point (``ganimation-infer``)."""
    app.run(main)


if __name__ == "__main__":
    run()
