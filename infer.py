"""Edit the facial expression in a photo or video with a trained GANimation (action units, AUs).

Usage::

    # Set AUs (values in [0, 1] = OpenFace intensity / 5; names AU12 or 12). AUs not named keep the
    # face's own value, estimated by the critic's AU head.
    python infer.py --image face.jpg --aus "AU12=0.8,AU25=0.5" --workdir runs/demo --output smile.jpg

    # Same with an exported SavedModel (a version folder, or its base folder: the highest version is used)
    python infer.py --image face.jpg --aus "AU12=0.8" --saved_model export/ganimation/1

    # Expression transfer: the target AUs are those of the largest face of another photo; --aus on top
    # overrides the AUs it names.
    python infer.py --image face.jpg --reference laughing.jpg [--aus "AU45=0"] --workdir runs/demo

    # Animation: N steps from the face's own AUs to the target -> smile.jpg (last step), smile.gif,
    # smile.mp4 (mp4v) and smile_sheet.png (the face region at every step, labelled with the AUs)
    python infer.py --image face.jpg --aus "AU12=1" --frames 8 [--fps 10] --workdir runs/demo --output smile.jpg

    # Masks: smile_face<i>_attention.png, _color.png and _panel.png (input | edited | attention | colour)
    python infer.py --image face.jpg --aus "AU12=1" --save_masks --workdir runs/demo --output smile.jpg

    # Video: every frame edited with the same target (faces detected per frame; frames without a usable
    # face are copied unchanged and counted in a warning); same fps and size, MP4 (mp4v)
    python infer.py --video clip.mp4 --aus "AU12=1" --workdir runs/demo --output clip_smile.mp4 [--max_frames 100]

    # Print the estimated AUs of every face (and of the --reference face) as a table, write nothing
    python infer.py --image group.jpg --workdir runs/demo --print_aus

    # On CPUs with native bfloat16 (avx512_bf16 / AMX) the generator runs in bfloat16 by default (about 1.6x
    # faster, a few grey levels off); float32 everywhere:
    python infer.py --image face.jpg --aus "AU12=0.8" --workdir runs/demo --nobf16

Faces: MTCNN finds every face; each is aligned by a similarity transform onto the 128x128 training crop,
edited, and blended back with a feathered mask (no seam, pixels away from the face unchanged).
``--face=largest|all|INDEX`` picks faces (INDEX counts frontal faces, largest first: 0 is the largest);
faces smaller than ``--min_face_size`` pixels are ignored and profile faces are skipped with a warning; when
no usable face is left the run stops with an error naming the reason.

Outputs: the edited photo has the input's size and format (``--output`` without an extension, or with the
input's extension; default ``<image stem>_edited<ext>``), JPEG/WebP at quality 95; another extension
converts. It is written upright with no EXIF orientation tag (other EXIF fields and the ICC profile are
kept), so it looks the same way up as the input in any viewer. Derived names come from the output's stem.
Everything is checked before anything is written; every file is written to a temporary name and renamed
only when all of them are ready, so an error leaves no output behind. Details:
``ganimation_tl/inference.py``.

Exit status: 0 on success; 2 for bad input (bad flags or flag combinations, unreadable image or video,
no usable face, malformed ``--aus``, an output that cannot be written, ...) with ``error: <message>``
naming the problem; 1 if OpenCV cannot write an MP4.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

from ganimation_tl.errors import InputError

flags.DEFINE_string("image", None, "Photo to edit (JPEG, PNG, WebP, BMP, TIFF, ...; any size).")
flags.DEFINE_string("video", None, "Video to edit instead of a photo (anything OpenCV/FFmpeg decodes).")
flags.DEFINE_string("workdir", None, "Training workdir: its newest checkpoint is used.")
flags.DEFINE_string("saved_model", None, "SavedModel export folder (python -m ganimation_tl.export), "
                    "e.g. export/ganimation/1. Give --workdir or --saved_model, not both.")
flags.DEFINE_string("output", None, "Edited photo (format from the extension; none or the input's = the "
                    "input's format) or video (.mp4). Default: <input stem>_edited<ext> beside the input.")
flags.DEFINE_string("aus", "", "Target AUs, e.g. \"AU12=0.8,AU25=0.5\" (AU01..AU45 or 01..45; values in [0, 1] "
                    "= OpenFace intensity / 5). AUs not named keep the face's (or the reference's) value.")
flags.DEFINE_string("reference", None, "Photo whose largest face gives the target AUs (expression transfer).")
flags.DEFINE_string("face", "largest", "Which faces: largest, all, or a 0-based index (frontal faces, largest "
                    "first). With --print_aus the default is all.")
flags.DEFINE_float("min_face_size", 40, "Ignore faces whose box is smaller than this many pixels.")
flags.DEFINE_bool("print_aus", False, "Print the estimated AUs of each face as a table and exit.")
flags.DEFINE_integer("frames", None, "Write an animation of this many steps (>= 2) from the face's own AUs to "
                     "the target: <stem>.gif, <stem>.mp4 and <stem>_sheet.png.")
flags.DEFINE_float("fps", 10.0, "Animation frames per second.")
flags.DEFINE_integer("max_side", 1024, "Longer side of the GIF/MP4 animation frames (pixels).")
flags.DEFINE_bool("save_masks", False, "Also write <stem>_face<i>_attention.png, _color.png and _panel.png.")
flags.DEFINE_integer("max_frames", 0, "With --video: edit at most this many frames (0: all).")
flags.DEFINE_bool("bf16", None, "Run the generator in bfloat16 (about 1.6x faster on CPUs with avx512_bf16 / AMX; "
                  "the result differs by a few grey levels). Unset (the default): on where the CPU supports it "
                  "natively, as GANimation's training default; --nobf16 for float32.")
FLAGS = flags.FLAGS


def options_from_flags():
    """The flags as an :class:`ganimation_tl.inference.InferOptions`."""
    from ganimation_tl.inference import InferOptions

    face = FLAGS.face
    if FLAGS.print_aus and not FLAGS["face"].present:
        face = "all"
    return InferOptions(image=FLAGS.image, video=FLAGS.video, workdir=FLAGS.workdir, saved_model=FLAGS.saved_model,
                        output=FLAGS.output, aus=FLAGS.aus, reference=FLAGS.reference, face=face,
                        min_face_size=FLAGS.min_face_size, print_aus=FLAGS.print_aus, frames=FLAGS.frames,
                        fps=FLAGS.fps, max_side=FLAGS.max_side, save_masks=FLAGS.save_masks,
                        max_frames=FLAGS.max_frames, bf16=FLAGS.bf16)


def _progress(done: int, total: int) -> None:
    if done % 50 == 0 or done == total:
        print("  frame %d%s" % (done, "/%d" % total if total else ""), file=sys.stderr, flush=True)


def main(argv) -> int:
    if len(argv) > 1:
        print("error: unexpected arguments: %s" % " ".join(argv[1:]), file=sys.stderr)
        return 2
    from ganimation_tl import inference
    from ganimation_tl.video import VideoWriteError

    try:
        report = inference.run(options_from_flags(), progress=_progress)
    except InputError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    except VideoWriteError as error:
        print("error: %s" % error, file=sys.stderr)
        return 1
    for warning in report.warnings:
        print("warning: %s" % warning, file=sys.stderr)
    if report.precision == "bfloat16":
        print("note: the generator ran in bfloat16 (native on this CPU); --nobf16 for float32", file=sys.stderr)
    print(report.summary)
    for path in report.written:
        print("wrote %s" % path)
    if report.au_rows:
        print(inference.format_au_table(report.au_rows))
    return 0


def _parse_flags(argv):
    """absl flag parsing; a malformed flag value is bad input: ``error: ...`` and exit status 2."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        print("error: %s" % error, file=sys.stderr)
        sys.exit(2)


def run():
    """Console-script entry point (``ganimation-infer``)."""
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
