"""Evaluate single-image 3D reconstruction (``--model=shape3d``): voxel vs silhouette supervision.

Usage::

    python bench/eval_shape3d.py [--flagfile_model=configs/shape3d_debug.cfg] [--eval_workdir=runs/eval_shape3d]
        [--train_minutes=10] [--out=docs/results/shape3d.json]

The silhouette model needs about 60 epochs: ``--flagfile_model=configs/shape3d_debug_e60.cfg
--train_minutes=20`` (both checks pass there; ``docs/results/shape3d.md``).

Trains two models through the library (``registry.get('shape3d').train``, i.e. ``python train.py
--model=shape3d --flagfile=configs/shape3d_debug.cfg --shape3d_supervision=voxel|mask``) in
``<eval_workdir>/voxel`` and ``<eval_workdir>/mask`` (``--train_minutes`` each), then measures the
voxel IoU on the held-out generated shapes (seed + 1000). The IoU threshold of each predictor (and of
the mean-shape baseline: the mean training occupancy) is chosen on 200 training shapes. Reconstructions
are solid: enclosed cavities of the thresholded grid are filled for every predictor
(``shape3d.fill_cavities``; silhouettes carry no information about the inside); the IoU without filling
and the share of interior voxels found are printed and stored too. ``--skip_train`` re-evaluates the
checkpoints of an existing ``--eval_workdir``. Checks (on the solid IoU):

1. voxel-supervised IoU >= mean-shape IoU + 0.10 ("well above");
2. mask-supervised IoU >= voxel-supervised IoU - 0.15 (the stated distance).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from bench._common import model_flags  # noqa: E402

flags.DEFINE_string("flagfile_model", "configs/shape3d_debug.cfg", "Model flagfile.")
flags.DEFINE_string("eval_workdir", "runs/eval_shape3d", "Parent of the two training workdirs.")
flags.DEFINE_float("train_minutes", 10.0, "Training time budget of each of the two runs (minutes).")
flags.DEFINE_string("out", "docs/results/shape3d.json", "Result JSON.")
flags.DEFINE_bool("skip_train", False, "Only evaluate the checkpoints already in --eval_workdir.")
FLAGS = flags.FLAGS
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def best_threshold(predicted, truth, solid=True):
    import numpy as np
    from other_models.shape3d import voxel_iou
    scores = [float(np.mean(voxel_iou(predicted, truth, t, solid=solid))) for t in THRESHOLDS]
    return THRESHOLDS[int(np.argmax(scores))]


def main(argv):
    import numpy as np
    from ganimation_tl import sibling
    from ganimation_tl.trainer import write_json_atomic
    import other_models.shape3d as s3d

    results, timings = {}, {}
    data = None
    for mode in ("voxel", "mask"):
        workdir = os.path.join(FLAGS.eval_workdir, mode)
        fv = model_flags(s3d.define_flags, FLAGS.flagfile_model, "--workdir=" + workdir,
                         "--shape3d_supervision=" + mode, "--max_minutes=%g" % FLAGS.train_minutes)
        start = time.time()
        if not FLAGS.skip_train:
            s3d.train(fv)
        timings[mode] = None if FLAGS.skip_train else time.time() - start   # None: trained by an earlier run
        config = sibling.config_or_input_error(s3d.Shape3DConfig, fv)
        if data is None:
            data = s3d.load_data(config)
        train_set, test_set = data
        model = s3d.Shape3D(config)
        checkpoint = s3d.restore(workdir, model)
        calib = slice(0, min(200, len(train_set.images)))
        calib_pred, test_pred = model.predict(train_set.images[calib]), model.predict(test_set.images)
        entry = {"train_seconds": timings[mode], "checkpoint": checkpoint}
        for solid, suffix in ((True, ""), (False, "_raw")):
            t = best_threshold(calib_pred, train_set.voxels[calib], solid)
            iou = s3d.voxel_iou(test_pred, test_set.voxels, t, solid=solid)
            entry.update({"iou" + suffix: float(np.mean(iou)), "threshold" + suffix: t,
                          "per_kind" + suffix: {k: float(np.mean(iou[test_set.kinds == i]))
                                                for i, k in enumerate(s3d.SHAPE_KINDS) if np.any(test_set.kinds == i)}})
        entry["interior_recall_raw"] = s3d.interior_recall(test_pred, test_set.voxels, entry["threshold_raw"])
        results[mode] = entry
    train_set, test_set = data
    mean_shape = train_set.voxels.astype(np.float32).mean(axis=0, keepdims=True)
    calib = slice(0, min(200, len(train_set.images)))
    t = best_threshold(np.repeat(mean_shape, len(train_set.voxels[calib]), 0), train_set.voxels[calib])
    mean_iou = float(np.mean(s3d.voxel_iou(np.repeat(mean_shape, len(test_set.voxels), 0), test_set.voxels, t,
                                           solid=True)))
    checks = [
        ("voxel-supervised IoU >= mean shape + 0.10", results["voxel"]["iou"], mean_iou + 0.10,
         results["voxel"]["iou"] >= mean_iou + 0.10),
        ("mask-supervised IoU >= voxel-supervised - 0.15", results["mask"]["iou"], results["voxel"]["iou"] - 0.15,
         results["mask"]["iou"] >= results["voxel"]["iou"] - 0.15),
    ]
    print("shape3d on %d held-out shapes (%d training), %s" % (len(test_set.voxels), len(train_set.voxels),
                                                               FLAGS.flagfile_model))
    print("  mean-shape baseline IoU %.4f (threshold %.1f)" % (mean_iou, t))
    for mode in ("voxel", "mask"):
        r = results[mode]
        print("  %-5s supervision  IoU %.4f (threshold %.1f, %s s training) per kind: %s"
              % (mode, r["iou"], r["threshold"], "-" if r["train_seconds"] is None else "%.0f" % r["train_seconds"],
                 ", ".join("%s %.3f" % kv for kv in r["per_kind"].items())))
        print("        without filling cavities: IoU %.4f (threshold %.1f); interior voxels found %.3f"
              % (r["iou_raw"], r["threshold_raw"], r["interior_recall_raw"]))
    for name, value, threshold, ok in checks:
        print("  %-48s %.4f vs %.4f  %s" % (name, value, threshold, "PASS" if ok else "FAIL"))
    os.makedirs(os.path.dirname(FLAGS.out) or ".", exist_ok=True)
    write_json_atomic(FLAGS.out, {
        "model": "shape3d", "config_file": FLAGS.flagfile_model, "train_shapes": len(train_set.voxels),
        "test_shapes": len(test_set.voxels), "mean_shape_iou": mean_iou, "voxel": results["voxel"],
        "mask": results["mask"], "train_minutes_each": FLAGS.train_minutes, "skip_train": FLAGS.skip_train,
        "iou_note": "iou: enclosed cavities of the thresholded grid filled (solid reconstructions, every model and "
                    "the mean shape); iou_raw: without filling",
        "checks": [{"check": n, "value": v, "threshold": th, "pass": bool(ok)} for n, v, th, ok in checks]})
    print("wrote %s" % FLAGS.out)


if __name__ == "__main__":
    app.run(main)
