"""Time the photo editor (infer.py's path) with the FULL-size 128-px GANimation, both model backends.

    python bench/bench_infer.py [--repeats 5] [--batches 1,4,8] [--keep DIR]

Builds GANimation(GANimationConfig()) with random weights (the paper's architecture: 8.5M generator and
44.9M critic parameters; random weights cost exactly as much as trained ones), saves it as a training
workdir (config.json + a checkpoint with the trainer's keys) and exports it as a SavedModel, all in a
temporary folder. Then, on a 1-megapixel photo (scikit-image's astronaut upscaled to 1000x1000), prints:

* load time of each backend (``load_backend(workdir=...)`` and ``load_backend(saved_model=...)``) and the
  first edit call (tracing / graph optimisation);
* MTCNN detection time (the photo is detected at its size: 1000 px <= max_detect_side);
* per face, after loading: align, AU estimate (critic), generate (generator), paste back, and their
  total (the target is < 150 ms for one face on 2 cores), plus the whole ``FaceEditor.edit`` call;
* SavedModel ``serving_default`` throughput at each batch size (images/s).

With ``--bf16`` the generator runs in bfloat16 (``ganimation_tl.editing.onednn_bfloat16``, ``infer.py --bf16``).

Each figure is the median of ``--repeats`` timed calls after one warm-up call.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from ganimation_tl.timing import median_seconds as median_time  # noqa: E402


def make_workdir(root: Path):
    """A workdir like train.py writes, holding a random-weight full-size model; returns (workdir, model)."""
    import dataclasses

    import tensorflow as tf

    from ganimation_tl.model import GANimation, GANimationConfig

    config = GANimationConfig()
    model = GANimation(config, build_optimizers=False)
    workdir = root / "workdir"
    (workdir / "checkpoints").mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps({"model": "ganimation", "config": dataclasses.asdict(config)}))
    checkpoint = tf.train.Checkpoint(generator_weights=list(model.generator.all_weights),
                                     critic_weights=list(model.critic.all_weights))
    tf.train.CheckpointManager(checkpoint, str(workdir / "checkpoints"), max_to_keep=1).save()
    return workdir, model


def bench_backend(name, backend, photo, detector, repeats):
    from ganimation_tl.editing import FaceEditor, to_model_range
    from ganimation_tl.faces import align_face, paste_back

    editor = FaceEditor(backend, detector)
    face = editor.find_faces(photo)[0]
    crop, matrix = align_face(photo, face, backend.image_size)
    x = to_model_range(crop[None])
    aus = np.clip(backend.estimate_aus(x), 0, 1).astype(np.float32)
    aus[:, 8] = 1.0
    edited = (np.clip((backend.edit(x, aus)[0][0] + 1) * 127.5 + 0.5, 0, 255)).astype(np.uint8)
    t = {
        "align": median_time(lambda: align_face(photo, face, backend.image_size), repeats),
        "estimate": median_time(lambda: backend.estimate_aus(x), repeats),
        "generate": median_time(lambda: backend.edit(x, aus), repeats),
        "paste": median_time(lambda: paste_back(photo, edited, matrix, original_crop=crop), repeats),
    }
    total = sum(t.values())
    prepared = editor.prepare(photo)
    edit_only = median_time(lambda: editor.edit_prepared(photo, prepared, aus), repeats)
    whole = median_time(lambda: editor.edit(photo, {8: 1.0}), repeats)
    print("%-11s per face: align %.1f ms, AU estimate %.1f ms, generate %.1f ms, paste %.1f ms -> %.0f ms "
          "(target < 150 ms: %s)" % (name, 1e3 * t["align"], 1e3 * t["estimate"], 1e3 * t["generate"],
                                    1e3 * t["paste"], 1e3 * total, "met" if total < 0.150 else "NOT met"))
    print("%-11s FaceEditor.edit_prepared (generate + paste): %.0f ms; FaceEditor.edit (detect + align + "
          "estimate + generate + paste): %.0f ms" % (name, 1e3 * edit_only, 1e3 * whole))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", default="1,4,8")
    ap.add_argument("--keep", default=None, help="Write the workdir and export here and keep them.")
    ap.add_argument("--bf16", action="store_true", help="Enable oneDNN bfloat16 first (infer.py --bf16).")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import tensorflow as tf  # noqa: F401

    import cv2
    import skimage.data

    from ganimation_tl.editing import load_backend
    from ganimation_tl.export import export_saved_model
    from ganimation_tl.faces import FaceDetector

    print("import TensorFlow + ganimation_tl: %.1f s" % (time.perf_counter() - t0))
    if args.bf16:
        from ganimation_tl.editing import cpu_supports_bfloat16
        args.bf16 = cpu_supports_bfloat16()
        print("bfloat16 generator (oneDNN auto mixed precision): %s"
              % ("on" if args.bf16 else "CPU has no native bfloat16, so off"))
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_infer_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        workdir, model = make_workdir(root)
        export = export_saved_model(model, root / "export" / "ganimation", 1)
        del model
        print("build + save checkpoint + export SavedModel (setup, not part of inference): %.1f s"
              % (time.perf_counter() - t0))

        photo = cv2.resize(skimage.data.astronaut(), (1000, 1000), interpolation=cv2.INTER_CUBIC)
        detector = FaceDetector()
        t0 = time.perf_counter()
        faces = detector.detect(photo)
        print("first detection (builds MTCNN): %.2f s; %d face(s)" % (time.perf_counter() - t0, len(faces)))
        print("MTCNN detection on 1000x1000: %.0f ms" % (1e3 * median_time(lambda: detector.detect(photo),
                                                                            args.repeats)))
        x1 = np.zeros((1, 128, 128, 3), np.float32)
        a1 = np.zeros((1, 17), np.float32)
        results = {}
        for name, kwargs in (("checkpoint", {"workdir": workdir}), ("SavedModel", {"saved_model": export})):
            t0 = time.perf_counter()
            backend = load_backend(**kwargs, bfloat16=args.bf16)
            loaded = time.perf_counter() - t0
            t0 = time.perf_counter()
            backend.edit(x1, a1)
            backend.estimate_aus(x1)
            first = time.perf_counter() - t0
            print("%-11s load %.1f s, first edit + estimate call %.1f s" % (name, loaded, first))
            results[name] = bench_backend(name, backend, photo, detector, args.repeats)
            if name == "SavedModel":
                rng = np.random.default_rng(0)
                for b in (int(v) for v in args.batches.split(",")):
                    x = rng.uniform(-1, 1, (b, 128, 128, 3)).astype(np.float32)
                    a = rng.uniform(0, 1, (b, 17)).astype(np.float32)
                    sec = median_time(lambda b=backend: b.edit(x, a), args.repeats)
                    print("SavedModel  serving_default batch %d: %.0f ms/batch, %.1f images/s (%.0f ms/image)"
                          % (b, 1e3 * sec, b / sec, 1e3 * sec / b))
            del backend
        import resource
        print("peak RSS: %.0f MB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
