"""Evaluate LaplaceKL (``--model=laplacekl``) against its checks; writes ``docs/results/laplacekl.json``.

Trains two models from ``configs/laplacekl_debug.cfg`` through the library (the registry entry's
``train``), each for at most ``--max_minutes / 2`` minutes:

1. LaplaceKL (softargmax + Laplace KL + semi-supervised adversarial branch);
2. the L2-softargmax baseline (same config, ``--laplacekl_loss=l2``).

Checks (issue #3, spec batch2 section 3 (f)):
  (i)  held-out NME of LaplaceKL <= 0.5 x the mean-shape baseline's NME (detector-like jittered
       test crops; the ground-truth-aligned protocol is reported too);
  (ii) LaplaceKL heatmaps are sharper (smaller mean Laplace scale b) than the L2 baseline's, at
       similar NME (LaplaceKL NME <= 1.25 x the L2 baseline's NME).

Usage (from the repository root): ``python bench/eval_laplacekl.py --max_minutes=24``
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from absl import app, flags  # noqa: E402

from bench._common import model_flags, write_json_atomic  # noqa: E402

flags.DEFINE_float("max_minutes", 24.0, "Total training budget in minutes (split over the two runs).")
flags.DEFINE_string("workdir_root", "runs/eval_laplacekl", "Folder for the two runs' workdirs (wiped first).")
flags.DEFINE_string("out", "docs/results/laplacekl.json", "Where to write the JSON results.")
flags.DEFINE_string("config", "configs/laplacekl_debug.cfg", "Flagfile to train from.")
FLAGS = flags.FLAGS


def train_run(workdir: str, minutes: float, extra=()):
    """Train one model through the registry from the debug flagfile; returns (metrics, seconds)."""
    from ganimation_tl import registry
    import other_models.laplacekl as lkl
    fv = model_flags(lkl.define_flags, FLAGS.config, "--workdir=" + workdir, "--max_minutes=%g" % minutes,
                     "--image_every=0", *extra)
    start = time.time()
    metrics = registry.get("laplacekl").train(fv)
    return metrics, time.time() - start


def main(argv):
    del argv
    os.chdir(REPO)
    if os.path.isdir(FLAGS.workdir_root):
        shutil.rmtree(FLAGS.workdir_root)
    per_run = FLAGS.max_minutes / 2.0
    t0 = time.time()
    lap, lap_seconds = train_run(os.path.join(FLAGS.workdir_root, "laplace_kl"), per_run)
    l2, l2_seconds = train_run(os.path.join(FLAGS.workdir_root, "l2"), per_run, ["--laplacekl_loss=l2"])
    steps = {}
    for name in ("laplace_kl", "l2"):
        with open(os.path.join(FLAGS.workdir_root, name, "checkpoints", "checkpoint")) as f:
            steps[name] = int(f.readline().split("ckpt-")[1].strip().strip('"'))
    checks = []

    def check(name, value, baseline, passed, rule):
        checks.append({"check": name, "value": value, "baseline": baseline, "rule": rule,
                       "result": "PASS" if passed else "FAIL"})

    check("NME vs mean shape (jittered test crops)", lap["heldout/nme"], lap["heldout/mean_shape_nme"],
          lap["heldout/nme"] <= 0.5 * lap["heldout/mean_shape_nme"], "nme <= 0.5 * mean-shape nme")
    similar = lap["heldout/nme"] <= 1.25 * l2["heldout/nme"]
    check("LaplaceKL NME similar to L2-softargmax NME", lap["heldout/nme"], l2["heldout/nme"], similar,
          "nme_laplacekl <= 1.25 * nme_l2")
    check("LaplaceKL heatmap scale b smaller than L2-softargmax (px)", lap["heldout/mean_laplace_scale_px"],
          l2["heldout/mean_laplace_scale_px"],
          lap["heldout/mean_laplace_scale_px"] < l2["heldout/mean_laplace_scale_px"],
          "b_laplacekl < b_l2")
    info = {
        "aligned_crops": {"laplacekl_nme": lap["heldout/nme_aligned"], "l2_nme": l2["heldout/nme_aligned"],
                          "mean_shape_nme": lap["heldout/mean_shape_nme_aligned"],
                          "laplacekl_scale_px": lap["heldout/mean_laplace_scale_px_aligned"],
                          "l2_scale_px": l2["heldout/mean_laplace_scale_px_aligned"]},
        "steps": steps, "train_seconds": {"laplace_kl": lap_seconds, "l2": l2_seconds},
        "final_beta": {"laplace_kl": lap.get("generator/beta"), "l2": l2.get("generator/beta")},
        "num_test_images": lap["heldout/num_images"],
    }
    print("\nLaplaceKL evaluation (%s, %d + %d steps, %.1f min wall-clock)"
          % (FLAGS.config, steps["laplace_kl"], steps["l2"], (time.time() - t0) / 60))
    for c in checks:
        print("  %-60s %.4f vs baseline %.4f  [%s] (%s)" % (c["check"], c["value"], c["baseline"], c["result"],
                                                           c["rule"]))
    print("  aligned (ground-truth crop) protocol: %s" % json.dumps(info["aligned_crops"]))
    write_json_atomic(FLAGS.out, {"model": "laplacekl", "config": FLAGS.config, "checks": checks, "info": info,
                                  "wall_clock_minutes": (time.time() - t0) / 60.0,
                                  "max_minutes": FLAGS.max_minutes})
    print("wrote %s" % FLAGS.out)


if __name__ == "__main__":
    app.run(main)
