"""Evaluate DrNet on the real face video (``configs/drnet_face_debug.cfg``): train under a time budget (or reuse a
trained workdir), then print the checks with PASS/FAIL and write ``docs/results/drnet_face.json`` atomically.

    python bench/eval_drnet_face.py --budget_minutes=14           # train (resumes the workdir) + evaluate
    python bench/eval_drnet_face.py --skip_train --eval_workdir=...

The video has one person, so identity (content) cannot be swapped between people; what can be checked is
that content and pose split the way DrNet promises inside the video. Every test frame comes from the held-out
blocks (every ``drnet_video_test_every``-th block of ``drnet_video_block`` frames); pairs (a, b) are drawn with
``a`` and ``b`` in different held-out blocks (at least one block apart, > 2 s) for the swaps.

1. reconstruction: MSE of D(E_c(x^t), E_p(x^{t+k})) vs x^{t+k} (k as in training) <= 0.5 x the copy-frame
   baseline MSE(x^t, x^{t+k});
2. pose swap: D(E_c(x_a), E_p(x_b)) reproduces x_b (same person, another time): MSE <= 0.5 x MSE(x_a, x_b)
   (copying the content frame) and <= 0.5 x MSE(D(E_c(x_a), E_p(x_a)), x_b) (the content frame's own pose);
3. content is time-invariant: MSE(D(E_c(x_a), E_p(x_b)), x_b) <= 1.25 x MSE(D(E_c(x_b), E_p(x_b)), x_b)
   (content from a frame > 2 s away works about as well as the frame's own content);
4. scene discriminator accuracy in [45%, 70%] (informative);
5. LSTM prediction MSE over the n_future frames below repeating the last observed frame.
A grid of swaps is written next to the JSON (``drnet_face.png``).
"""
from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import app, flags

from bench import eval_drnet as base  # noqa: E402  (its flags: --config, --eval_workdir, --budget_minutes, ...)
from bench._common import checkpoint_step  # noqa: E402

FLAGS = flags.FLAGS
FLAGS.set_default("config", "configs/drnet_face_debug.cfg")
FLAGS.set_default("eval_workdir", "runs/eval_drnet_face")
FLAGS.set_default("budget_minutes", 14.0)
FLAGS.set_default("num_test", 400)
FLAGS.set_default("output", "docs/results/drnet_face.json")


def far_pairs(block_id: np.ndarray, frames_idx: np.ndarray, count: int, rng: np.random.Generator):
    """``count`` pairs (a, b) of held-out frame indices from different blocks: int arrays ``[count]`` each."""
    a = rng.choice(frames_idx, count)
    b = np.empty_like(a)
    for i, ai in enumerate(a):
        others = frames_idx[block_id[frames_idx] != block_id[ai]]
        b[i] = rng.choice(others)
    return a, b


def main(argv):
    from other_models import drnet
    from ganimation_tl.sibling import config_or_input_error, images_grid
    from ganimation_tl.trainer import write_json_atomic

    t0 = time.time()
    fv = base._parse_run_flags([])
    config = config_or_input_error(drnet.DrNetConfig, fv)
    if config.drnet_data != "face_video":
        raise SystemExit("error: %s is not a face-video config (--drnet_data=face_video)" % FLAGS.config)
    clips = drnet.load_face_clips(config, fv.video_path)
    frames = clips.frames
    rng = np.random.default_rng(1)
    n = FLAGS.num_test
    test_idx = np.flatnonzero(clips.is_test)

    # pairs (t, t+k) inside a held-out block, k in [1, max_step] clip frames (x stride video frames)
    starts = rng.choice(clips.starts["test"], n)
    test_clips = np.stack([clips.clip(s) for s in starts])                  # [n, T, S, S, 3]
    t = rng.integers(0, config.sequence_length - config.drnet_max_step, n)
    k = rng.integers(1, config.drnet_max_step + 1, n)
    x_t = test_clips[np.arange(n), t]
    x_tk = test_clips[np.arange(n), t + k]
    a, b = far_pairs(clips.block_id, test_idx, n, rng)
    x_a, x_b = frames[a], frames[b]

    reached = None
    if not FLAGS.skip_train:
        reached = base.train_with_budget()
    train_minutes = (time.time() - t0) / 60.0
    final_step = checkpoint_step(FLAGS.eval_workdir)
    model = drnet.load_trained(FLAGS.eval_workdir, config)

    def mse(p, q):
        return float(np.mean((p - q) ** 2))

    hc_t, _ = model.encode(x_t)
    _, hp_tk = model.encode(x_tk)
    mse_rec = mse(model.decode(hc_t, hp_tk), x_tk)
    mse_copy = mse(x_t, x_tk)

    hc_a, hp_a = model.encode(x_a)
    hc_b, hp_b = model.encode(x_b)
    swap = model.decode(hc_a, hp_b)
    own_pose = model.decode(hc_a, hp_a)
    self_rec = model.decode(hc_b, hp_b)
    mse_swap = mse(swap, x_b)
    mse_copy_far = mse(x_a, x_b)
    mse_own_pose = mse(own_pose, x_b)
    mse_self = mse(self_rec, x_b)

    half = n // 2
    hp_pair = np.concatenate([hp_tk[:half], np.roll(hp_a[half:], 1, axis=0)])
    _, hp_t = model.encode(x_t)
    prob = model.scene_probability(hp_t, hp_pair)
    target = np.concatenate([np.ones(half), np.zeros(n - half)])
    scene_acc = float(np.mean((prob > 0.5) == target))

    n_past = config.drnet_n_past
    pred = model.predict(test_clips, n_past)
    future = test_clips[:, n_past:]
    last = np.repeat(test_clips[:, n_past - 1:n_past], future.shape[1], axis=1)
    mse_pred_h = np.mean((pred - future) ** 2, axis=(0, 2, 3, 4))
    mse_last_h = np.mean((last - future) ** 2, axis=(0, 2, 3, 4))

    checks = [
        {"check": "reconstruction MSE <= 0.5 x copy-frame baseline", "value": mse_rec, "baseline": mse_copy,
         "threshold": 0.5 * mse_copy, "pass": mse_rec <= 0.5 * mse_copy},
        {"check": "pose swap D(Ec(x_a), Ep(x_b)) vs x_b <= 0.5 x copying x_a", "value": mse_swap,
         "baseline": mse_copy_far, "threshold": 0.5 * mse_copy_far, "pass": mse_swap <= 0.5 * mse_copy_far},
        {"check": "pose swap <= 0.5 x D(Ec(x_a), Ep(x_a)) vs x_b (x_a's own pose)", "value": mse_swap,
         "baseline": mse_own_pose, "threshold": 0.5 * mse_own_pose, "pass": mse_swap <= 0.5 * mse_own_pose},
        {"check": "content time-invariant: swap <= 1.25 x D(Ec(x_b), Ep(x_b)) vs x_b", "value": mse_swap,
         "baseline": mse_self, "threshold": 1.25 * mse_self, "pass": mse_swap <= 1.25 * mse_self},
        {"check": "scene discriminator accuracy in [0.45, 0.70] (beta > 0)", "value": scene_acc, "baseline": 0.5,
         "threshold": [0.45, 0.70], "pass": 0.45 <= scene_acc <= 0.70},
        {"check": "LSTM prediction MSE (mean over %d future frames) < repeat last frame" % future.shape[1],
         "value": float(mse_pred_h.mean()), "baseline": float(mse_last_h.mean()),
         "threshold": float(mse_last_h.mean()), "pass": float(mse_pred_h.mean()) < float(mse_last_h.mean()),
         "per_horizon": [float(v) for v in mse_pred_h], "baseline_per_horizon": [float(v) for v in mse_last_h]},
    ]
    for c in checks:
        print("%s  %-72s value=%.4g baseline=%.4g" % ("PASS" if c["pass"] else "FAIL", c["check"], c["value"],
                                                       c["baseline"]))
    grid_path = os.path.splitext(FLAGS.output)[0] + ".png"
    rows = 6
    grid = images_grid([list(x_a[:rows]), list(x_b[:rows]), list(swap[:rows]), list(own_pose[:rows])])
    from ganimation_tl.au_data import write_image_atomic
    write_image_atomic(grid_path, grid)
    result = {"model": "drnet", "data": "face_video", "config": FLAGS.config, "workdir": FLAGS.eval_workdir,
              "video": fv.video_path, "frames": int(len(frames)), "mtcnn_detections": int(len(clips.track.detected)),
              "crop_side_px": clips.track.side, "held_out_frames": int(len(test_idx)),
              "final_step": final_step, "drnet_phase_step_reached": reached,
              "main_steps_configured": config.main_steps, "num_test_pairs": n, "train_minutes": train_minutes,
              "total_minutes": (time.time() - t0) / 60.0, "grid": grid_path,
              "grid_rows": "content frame x_a, pose frame x_b, D(Ec(x_a), Ep(x_b)), D(Ec(x_a), Ep(x_a))",
              "checks": checks}
    write_json_atomic(FLAGS.output, result)
    print("wrote %s and %s (%.1f min)" % (FLAGS.output, grid_path, result["total_minutes"]))


if __name__ == "__main__":
    app.run(main)
