"""Settings probe for DrNet on the face video, on a VALIDATION block carved out of the training blocks.

The test blocks of ``bench/eval_drnet_face.py`` are never read here. One training block (``--val_block``, default
8: frames 384-431, as much motion as the test blocks' mean) is removed from training and used to compare settings (augmentation, regularisers, LSTM
options) before a configuration is evaluated on the test blocks:

    python bench/drnet_face_probe.py --set=--drnet_video_shift=0.06 --steps=3000 --lstm_steps=600 \
        --output=/tmp/drnet_face_probe_aug.json

Every ``--eval_every`` DrNet iterations it prints, on the validation block and on (unaugmented) training clips:
the reconstruction MSE of D(E_c(x^t), E_p(x^{t+k})) vs x^{t+k} and its copy-frame baseline MSE(x^t, x^{t+k})
(pairs drawn as in the eval), and the self-reconstruction MSE of D(E_c(x), E_p(x)). After the LSTM phase it
prints the prediction MSE per horizon against repeating the last observed frame (the eval's protocol: n_past
observed frames, content of the last one, predictions fed back). Metrics are the eval's, only the split differs.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from bench._common import model_flags, write_json_atomic  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "configs/drnet_face_debug.cfg", "DrNet face-video flagfile.")
flags.DEFINE_multi_string("set", [], "Extra --flag=value overrides of the flagfile (repeatable).")
flags.DEFINE_integer("val_block", 8, "Training block (0-based, of drnet_video_block frames) used for validation.")
flags.DEFINE_integer("steps", 3000, "DrNet iterations.")
flags.DEFINE_integer("lstm_steps", 600, "LSTM iterations after the DrNet phase (0: none).")
flags.DEFINE_integer("eval_every", 500, "Validation every n DrNet iterations.")
flags.DEFINE_integer("lstm_eval_every", 300, "Validation of the LSTM every n LSTM iterations.")
flags.DEFINE_list("lstm_variants", ["config"], "LSTMs trained one after another on the same DrNet: 'config' (as the "
                  "flagfile says), 'plain' (drnet-py: tanh output) or 'residual' (--drnet_lstm_residual), optionally "
                  "'+feedback' (--drnet_lstm_feedback), e.g. residual+feedback.")
flags.DEFINE_integer("num_pairs", 300, "Validation / training (x^t, x^{t+k}) pairs.")
flags.DEFINE_string("cache", "/tmp/drnet_face_track_%d.npz", "Cache of the tracked crops (%d: image size).")
flags.DEFINE_string("output", "", "JSON file for the curves (optional).")
flags.DEFINE_string("save_dir", "", "If set, a tf.train.Checkpoint of the model after the DrNet phase (optional).")
flags.DEFINE_string("restore", "", "A --save_dir of an earlier probe: restore its E_c, E_p, D, C (use with --steps=0 to "
                    "compare LSTM settings on one DrNet).")


def load_clips(config, video_path):
    """FaceVideoClips with the MTCNN track cached in --cache (the tracking is deterministic)."""
    from other_models import drnet
    from ganimation_tl.datasets.face_video import FaceTrack
    path = FLAGS.cache % config.image_size
    if os.path.isfile(path):
        z = np.load(path)
        track = FaceTrack(frames=z["frames"], centres=z["centres"], side=float(z["side"]), detected=z["detected"],
                          fps=float(z["fps"]), path=video_path)
        return drnet.FaceVideoClips(track, config)
    clips = drnet.load_face_clips(config, video_path)
    t = clips.track
    np.savez(path, frames=t.frames, centres=t.centres, side=t.side, detected=t.detected, fps=t.fps)
    return clips


def pairs(clips, starts, config, n, rng):
    """n (x^t, x^{t+k}) pairs from clips starting at ``starts`` (k in [1, max_step]) and the clips themselves."""
    s = rng.choice(starts, n)
    seqs = np.stack([clips.clip(i) for i in s])
    t = rng.integers(0, config.sequence_length - config.drnet_max_step, n)
    k = rng.integers(1, config.drnet_max_step + 1, n)
    return seqs[np.arange(n), t], seqs[np.arange(n), t + k], seqs


def rec_metrics(model, x_t, x_tk):
    hc_t, _ = model.encode(x_t)
    hc_tk, hp_tk = model.encode(x_tk)
    return {"rec": float(np.mean((model.decode(hc_t, hp_tk) - x_tk) ** 2)),
            "copy": float(np.mean((x_t - x_tk) ** 2)),
            "self": float(np.mean((model.decode(hc_tk, hp_tk) - x_tk) ** 2))}


def lstm_metrics(model, seqs, n_past):
    pred = model.predict(seqs, n_past)
    future = seqs[:, n_past:]
    last = seqs[:, n_past - 1:n_past]
    return {"pred_h": [float(v) for v in np.mean((pred - future) ** 2, axis=(0, 2, 3, 4))],
            "last_h": [float(v) for v in np.mean((last - future) ** 2, axis=(0, 2, 3, 4))]}


def reset_lstm(model, config):
    """A fresh pose LSTM (and its optimiser) on ``model`` built from ``config`` (the DrNet nets are kept)."""
    import tensorflow as tf
    from other_models import drnet
    model.config = config
    model.lstm = drnet.build_pose_lstm(config.drnet_content_dim, config.drnet_pose_dim, config.drnet_lstm_hidden,
                                       config.drnet_lstm_layers, "drnet_lstm", residual=config.drnet_lstm_residual)
    model.opt_lstm = tf.keras.optimizers.Adam(config.drnet_lstm_lr, beta_1=0.9)
    model.opt_lstm.build(model.lstm.trainable_weights)
    model._lstm_step = tf.function(model._lstm_step_impl)


def main(argv):
    import tensorflow as tf
    from other_models import drnet
    from ganimation_tl.sibling import config_or_input_error

    t0 = time.time()
    fv = model_flags(drnet.define_flags, FLAGS.config, *FLAGS.set, known_only=True)
    config = config_or_input_error(drnet.DrNetConfig, fv)
    clips = load_clips(config, fv.video_path)
    from ganimation_tl.datasets.face_video import clip_starts
    val_mask = clips.block_id == FLAGS.val_block
    if clips.is_test[val_mask].any() or not val_mask.any():
        raise SystemExit("error: --val_block=%d is a test block or empty" % FLAGS.val_block)
    clips.starts["val"] = clip_starts(clips.block_id, val_mask, config.clip_span)
    clips.starts["train"] = clip_starts(clips.block_id, ~clips.is_test & ~val_mask, config.clip_span)
    clips.pools["train"] = np.flatnonzero(~clips.is_test & ~val_mask)      # far similarity frames too
    print("config %s %s: %d train / %d val clip starts" % (FLAGS.config, " ".join(FLAGS.set),
                                                         len(clips.starts["train"]), len(clips.starts["val"])))
    rng = np.random.default_rng(1)
    val_t, val_tk, val_seqs = pairs(clips, clips.starts["val"], config, FLAGS.num_pairs, rng)
    tr_t, tr_tk, tr_seqs = pairs(clips, clips.starts["train"], config, FLAGS.num_pairs, rng)
    tf.random.set_seed(config.seed)
    model = drnet.DrNet(config, channels=3)
    curve, lstm_curve = [], []
    if FLAGS.restore:
        parts = {k: v for k, v in model.trackables().items() if "lstm" not in k}
        tf.train.Checkpoint(**parts).read(os.path.join(FLAGS.restore, "drnet")).expect_partial()

    def evaluate(step):
        row = {"step": step, "minutes": (time.time() - t0) / 60.0,
               "val": rec_metrics(model, val_t, val_tk), "train": rec_metrics(model, tr_t, tr_tk)}
        curve.append(row)
        print("step %5d  val rec %.5f (copy %.5f, self %.5f)  train rec %.5f (self %.5f)  %.1f min" % (
            step, row["val"]["rec"], row["val"]["copy"], row["val"]["self"], row["train"]["rec"],
            row["train"]["self"], row["minutes"]), flush=True)

    last_metrics = {}
    for step in range(FLAGS.steps):
        seed = (config.seed * 1000003 + step) % (2 ** 31)
        frames = clips.sample_training(config.batch_size, np.random.default_rng([seed, 1]))
        batch = {"frames4": drnet.frame_tuples_batch(config, frames, seed)}
        model.set_learning_rate_epoch(step / config.drnet_epoch_size)
        last_metrics = {k: float(v) for k, v in model.train_step(batch, step).items()}
        if (step + 1) % FLAGS.eval_every == 0 or step + 1 == FLAGS.steps:
            print("  train metrics:", {k: round(v, 5) for k, v in last_metrics.items()})
            evaluate(step + 1)

    if FLAGS.restore and FLAGS.steps == 0:
        evaluate(0)
    if FLAGS.save_dir:
        tf.train.Checkpoint(**model.trackables()).write(os.path.join(FLAGS.save_dir, "drnet"))

    def evaluate_lstm(step):
        row = {"step": step, "val": lstm_metrics(model, val_seqs, config.drnet_n_past),
               "train": lstm_metrics(model, tr_seqs[:100], config.drnet_n_past)}
        lstm_curve.append(row)
        print("lstm %5d  val pred %s (mean %.5f) vs last %s (mean %.5f)  train pred mean %.5f vs last %.5f" % (
            step, " ".join("%.4f" % v for v in row["val"]["pred_h"]), np.mean(row["val"]["pred_h"]),
            " ".join("%.4f" % v for v in row["val"]["last_h"]), np.mean(row["val"]["last_h"]),
            np.mean(row["train"]["pred_h"]), np.mean(row["train"]["last_h"])), flush=True)

    if FLAGS.lstm_steps:
        evaluate_lstm(0)                    # untrained (a residual LSTM repeats the last pose)
        lstm_curve[-1]["variant"] = "untrained"
    for variant in FLAGS.lstm_variants:
        if variant != "config":
            parts = variant.split("+")
            if not set(parts) <= {"plain", "residual", "feedback"}:
                raise SystemExit("error: unknown --lstm_variants entry %r" % variant)
            reset_lstm(model, dataclasses.replace(config, drnet_lstm_residual="residual" in parts,
                                                  drnet_lstm_feedback="feedback" in parts))
        print("LSTM variant %s (residual=%s, feedback=%s)" % (variant, model.config.drnet_lstm_residual,
                                                              model.config.drnet_lstm_feedback))
        for step in range(FLAGS.lstm_steps):
            seed = (config.seed * 1000003 + 7919 * (step + 1) + FLAGS.steps) % (2 ** 31)
            seqs = clips.sample_training(config.batch_size, np.random.default_rng([seed, 2]), far=False)
            m = model.train_step({"sequences": seqs}, FLAGS.steps + step)
            if (step + 1) % FLAGS.lstm_eval_every == 0 or step + 1 == FLAGS.lstm_steps:
                print("  lstm metrics:", {k: round(float(v), 6) for k, v in m.items()})
                evaluate_lstm(step + 1)
                lstm_curve[-1]["variant"] = variant
    result = {"config": FLAGS.config, "overrides": list(FLAGS.set), "val_block": FLAGS.val_block,
              "steps": FLAGS.steps, "lstm_steps": FLAGS.lstm_steps, "curve": curve, "lstm_curve": lstm_curve,
              "minutes": (time.time() - t0) / 60.0}
    if FLAGS.output:
        write_json_atomic(FLAGS.output, result)
    print("done in %.1f min" % result["minutes"])


if __name__ == "__main__":
    app.run(main)
