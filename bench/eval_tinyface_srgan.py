"""Evaluate the tiny-face SR GAN (``--model=tinyface_srgan``); writes ``docs/results/tinyface_srgan.json``.

Trains from ``configs/tinyface_srgan_debug.cfg`` through the library (the registry entry's ``train``)
for at most ``--max_minutes``, then trains the comparison classifier (the same D architecture, face
head only) on bicubic-up-sampled LR crops for as many steps as D had joint steps (capped by
``--classifier_minutes``).

Checks (issue #4, spec batch2 section 4 (f)):
  (i)  PSNR of the refined output G(LR) on held-out faces >= PSNR of bicubic up-sampling + 1 dB;
  (ii) D's face/non-face accuracy on G(LR) of held-out crops >= 90%, and >= the accuracy of the same
       classifier architecture trained and tested on bicubic-up-sampled crops.

Usage (from the repository root): ``python bench/eval_tinyface_srgan.py --max_minutes=14``
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

flags.DEFINE_float("max_minutes", 14.0, "Training budget of the GAN, minutes.")
flags.DEFINE_float("classifier_minutes", 4.0, "Budget of the bicubic comparison classifier, minutes.")
flags.DEFINE_string("workdir", "runs/eval_tinyface_srgan", "Workdir of the run (wiped first).")
flags.DEFINE_string("out", "docs/results/tinyface_srgan.json", "Where to write the JSON results.")
flags.DEFINE_string("config", "configs/tinyface_srgan_debug.cfg", "Flagfile to train from.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    os.chdir(REPO)
    from ganimation_tl import registry
    from ganimation_tl.sibling import config_or_input_error
    import other_models.tinyface_srgan as tfs

    if os.path.isdir(FLAGS.workdir):
        shutil.rmtree(FLAGS.workdir)
    fv = model_flags(tfs.define_flags, FLAGS.config, "--workdir=" + FLAGS.workdir,
                     "--max_minutes=%g" % FLAGS.max_minutes)
    t0 = time.time()
    metrics = registry.get("tinyface_srgan").train(fv)
    train_seconds = time.time() - t0
    with open(os.path.join(FLAGS.workdir, "checkpoints", "checkpoint")) as f:
        steps = int(f.readline().split("ckpt-")[1].strip().strip('"'))
    config = config_or_input_error(tfs.TinyFaceConfig, fv)
    joint_steps = max(steps - config.tinyface_pretrain_steps, 0)
    data = tfs.prepare_data(fv.cfp_dir, config)
    t1 = time.time()
    baseline = tfs.train_bicubic_classifier(data, config, max(joint_steps, 1), FLAGS.classifier_minutes)
    classifier_seconds = time.time() - t1

    checks = []

    def check(name, value, baseline_value, passed, rule):
        checks.append({"check": name, "value": value, "baseline": baseline_value, "rule": rule,
                       "result": "PASS" if passed else "FAIL"})

    check("PSNR refined G(LR) vs bicubic on held-out faces (dB)", metrics["heldout/psnr_refined"],
          metrics["heldout/psnr_bicubic"], metrics["heldout/psnr_refined"] >= metrics["heldout/psnr_bicubic"] + 1.0,
          "psnr_refined >= psnr_bicubic + 1 dB")
    acc = metrics["heldout/face_accuracy_generated"]
    check("D face/non-face accuracy on G(LR) >= 90%", acc, 0.9, acc >= 0.9, "accuracy >= 0.90")
    check("D accuracy on G(LR) vs same classifier on bicubic crops", acc, baseline["bicubic_classifier/accuracy"],
          acc >= baseline["bicubic_classifier/accuracy"], "accuracy_generated >= accuracy_bicubic_classifier")
    info = {k: v for k, v in metrics.items() if k.startswith("heldout/")}
    info.update(baseline)
    info.update({"steps": steps, "pretrain_steps": config.tinyface_pretrain_steps, "joint_steps": joint_steps,
                 "train_seconds": train_seconds, "classifier_seconds": classifier_seconds})
    print("\nTiny-face SR GAN evaluation (%s, %d steps = %d MSE + %d joint, %.1f min wall-clock)"
          % (FLAGS.config, steps, min(steps, config.tinyface_pretrain_steps), joint_steps, (time.time() - t0) / 60))
    for c in checks:
        print("  %-58s %.4f vs baseline %.4f  [%s] (%s)" % (c["check"], c["value"], c["baseline"], c["result"],
                                                           c["rule"]))
    print("  info: %s" % json.dumps(info))
    write_json_atomic(FLAGS.out, {"model": "tinyface_srgan", "config": FLAGS.config, "checks": checks, "info": info,
                                  "wall_clock_minutes": (time.time() - t0) / 60.0,
                                  "max_minutes": FLAGS.max_minutes})
    print("wrote %s" % FLAGS.out)


if __name__ == "__main__":
    app.run(main)
