"""Evaluate DeepMask adapted to frame prediction (``--model=deepmask_frames``) on held-out Moving MNIST.

Trains with configs/deepmask_frames_debug.cfg under ``--budget_minutes`` (resuming ``--eval_workdir``), or
only evaluates with ``--skip_train``; prints PASS/FAIL and writes docs/results/deepmask_frames.json atomically.

Checks (issue; spec section 6(f)), on ``--num_test`` videos made from MNIST *test* digits:
1. per-horizon MSE below the copy-last-frame baseline at every horizon +1..+K;
2. MSE at +1 <= 0.7 x copy baseline (spec);
3. the model's MSE rises with the horizon (strictly increasing).
"""
from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import app, flags

from bench._common import checkpoint_step, model_flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "configs/deepmask_frames_debug.cfg", "Flagfile of the run.")
flags.DEFINE_string("eval_workdir", "runs/eval_deepmask_frames", "Workdir of the evaluated run.")
flags.DEFINE_float("budget_minutes", 10.0, "Training time budget in minutes.")
flags.DEFINE_bool("skip_train", False, "Only evaluate the checkpoint in --eval_workdir.")
flags.DEFINE_integer("num_test", 500, "Held-out test videos.")
flags.DEFINE_string("output", "docs/results/deepmask_frames.json", "JSON results file.")


def main(argv):
    from other_models import deepmask_frames as dmf
    from ganimation_tl.sibling import config_or_input_error
    from ganimation_tl.trainer import write_json_atomic

    t0 = time.time()
    fv = model_flags(dmf.define_flags, FLAGS.config, "--workdir=" + FLAGS.eval_workdir,
                     "--max_minutes=%g" % FLAGS.budget_minutes, known_only=True)
    config = config_or_input_error(dmf.DeepMaskFramesConfig, fv)
    if not FLAGS.skip_train:
        dmf.train(fv)
    train_minutes = (time.time() - t0) / 60.0
    step = checkpoint_step(FLAGS.eval_workdir)
    model = dmf.load_trained(FLAGS.eval_workdir, config)
    digits, labels = dmf.load_digits_for(fv.mnist_path, "test")
    test = dmf.make_sequences(config, digits, labels, FLAGS.num_test, seed=987654)
    inputs, targets = dmf.split_sequences(test.frames, config.deepmask_frames_past)
    pred = np.concatenate([model.predict(inputs[i:i + 100]) for i in range(0, len(inputs), 100)])
    copy = np.repeat(inputs[..., -1:], targets.shape[-1], axis=-1)
    mse = np.mean((pred - targets) ** 2, axis=(0, 1, 2))
    mse_copy = np.mean((copy - targets) ** 2, axis=(0, 1, 2))
    ratio = mse / mse_copy
    checks = [
        {"check": "MSE below copy-last-frame at every horizon", "value": [float(v) for v in mse],
         "baseline": [float(v) for v in mse_copy], "ratio": [float(v) for v in ratio],
         "pass": bool(np.all(mse < mse_copy))},
        {"check": "MSE at +1 <= 0.7 x copy baseline (spec)", "value": float(mse[0]), "baseline": float(mse_copy[0]),
         "threshold": float(0.7 * mse_copy[0]), "pass": bool(mse[0] <= 0.7 * mse_copy[0])},
        {"check": "MSE rises with the horizon", "value": [float(v) for v in mse], "baseline": None,
         "pass": bool(np.all(np.diff(mse) > 0))},
    ]
    for k in range(len(mse)):
        print("horizon +%d: model MSE %.5f  copy-last-frame MSE %.5f  ratio %.3f" % (k + 1, mse[k], mse_copy[k], ratio[k]))
    for c in checks:
        print("%s  %s" % ("PASS" if c["pass"] else "FAIL", c["check"]))
    result = {"model": "deepmask_frames", "config": FLAGS.config, "workdir": FLAGS.eval_workdir, "final_step": step,
              "configured_steps": config.epochs * config.deepmask_frames_epoch_size, "num_test_videos": FLAGS.num_test,
              "train_minutes": train_minutes, "total_minutes": (time.time() - t0) / 60.0, "checks": checks}
    write_json_atomic(FLAGS.output, result)
    print("wrote %s (%.1f min)" % (FLAGS.output, result["total_minutes"]))


if __name__ == "__main__":
    app.run(main)
