"""Evaluate DrNet (``--model=drnet``) on held-out Moving MNIST: train with configs/drnet_debug.cfg under a time
budget (or reuse a trained workdir), then print the issue's checks with PASS/FAIL and write
``docs/results/drnet.json`` atomically.

    python bench/eval_drnet.py --max_minutes=20            # train (resumes the workdir) + evaluate
    python bench/eval_drnet.py --skip_train --workdir=...  # evaluate a trained workdir

Checks (issue; spec section 4(f)), on ``--num_test`` videos made from MNIST *test* digits:
1. reconstruction MSE of D(E_c(x^t), E_p(x^{t+k})) vs x^{t+k} <= 0.5 x the copy-frame baseline MSE(x^t, x^{t+k})
   and <= 0.3 x the untrained model's value;
2. pose swap: the intensity centroid of each generated digit channel within 2 px (mean) of the pose video's;
3. content swap: an MNIST classifier (scikit-learn MLP on 16x16 digits) reads the content video's digits >= 70%;
4. scene discriminator accuracy in [45%, 70%] (beta > 0; informative);
5. LSTM prediction MSE over the n_future predicted frames below repeating the last observed frame.
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
flags.DEFINE_string("config", "configs/drnet_debug.cfg", "Flagfile of the run to train/evaluate.")
flags.DEFINE_string("eval_workdir", "runs/eval_drnet", "Workdir of the evaluated run.")
flags.DEFINE_float("budget_minutes", 20.0, "Training time budget (75% DrNet phase, 25% LSTM phase).")
flags.DEFINE_bool("skip_train", False, "Only evaluate the checkpoint in --eval_workdir.")
flags.DEFINE_integer("num_test", 500, "Held-out test videos.")
flags.DEFINE_string("output", "docs/results/drnet.json", "JSON results file.")


def _parse_run_flags(extra):
    from other_models import drnet
    return model_flags(drnet.define_flags, FLAGS.config, "--workdir=" + FLAGS.eval_workdir, *extra, known_only=True)


def train_with_budget():
    """Phase 1 (DrNet) with 75% of the budget, phase 2 (LSTM) with the rest; if phase 1 was cut short, the
    LSTM phase starts at the step reached (--epochs lowered to the completed epochs)."""
    from other_models import drnet
    from ganimation_tl.sibling import config_or_input_error
    fv = _parse_run_flags([])
    config = config_or_input_error(drnet.DrNetConfig, fv)
    fv1 = _parse_run_flags(["--max_steps=%d" % config.main_steps,
                            "--max_minutes=%g" % (0.75 * FLAGS.budget_minutes)])
    drnet.train(fv1)
    step = checkpoint_step(FLAGS.eval_workdir)
    extra = ["--max_minutes=%g" % (0.25 * FLAGS.budget_minutes)]
    if step < config.main_steps:
        epochs = max(1, step // config.drnet_epoch_size)
        extra.append("--epochs=%d" % epochs)
        print("DrNet phase stopped at step %d of %d by the budget; LSTM phase from epoch %d" % (
            step, config.main_steps, epochs))
    drnet.train(_parse_run_flags(extra))
    return step


def crop_around(channel, centre, size=16):
    """size x size crop of a [S, S] image centred at centre (x, y), zero-padded."""
    pad = size
    padded = np.pad(channel, pad)
    x, y = int(round(centre[0])) + pad, int(round(centre[1])) + pad
    h = size // 2
    return padded[y - h + 1:y + h + 1, x - h + 1:x + h + 1] if size % 2 == 0 else padded[y - h:y + h + 1, x - h:x + h + 1]


def train_digit_classifier(mnist_path, size, seed=0):
    """MLP on MNIST train digits resized to size x size (with +-1 px shifts); returns (clf, test accuracy)."""
    from sklearn.neural_network import MLPClassifier
    from ganimation_tl.datasets.digits import load_mnist
    from ganimation_tl.datasets.moving_mnist import resize_digits
    rng = np.random.default_rng(seed)
    x, y = load_mnist(mnist_path, "train")
    idx = rng.choice(len(x), 20000, replace=False)
    xs = resize_digits(x[idx], size)
    shifts = rng.integers(-1, 2, size=(len(xs), 2))
    xs = np.stack([np.roll(im, tuple(s), axis=(0, 1)) for im, s in zip(xs, shifts)])
    clf = MLPClassifier(hidden_layer_sizes=(256,), max_iter=25, random_state=seed)
    clf.fit(xs.reshape(len(xs), -1), y[idx])
    xt, yt = load_mnist(mnist_path, "test")
    xt = resize_digits(xt[:2000], size)
    return clf, float(clf.score(xt.reshape(len(xt), -1), yt[:2000]))


def main(argv):
    from other_models import drnet
    from ganimation_tl.datasets.moving_mnist import intensity_centroids
    from ganimation_tl.sibling import config_or_input_error
    from ganimation_tl.trainer import write_json_atomic

    t0 = time.time()
    fv = _parse_run_flags([])
    config = config_or_input_error(drnet.DrNetConfig, fv)
    test_digits, test_labels = drnet.load_digits_for(fv.mnist_path, "test")
    test = drnet.make_sequences(config, test_digits, test_labels, FLAGS.num_test, seed=987654)
    rng = np.random.default_rng(1)
    n = FLAGS.num_test
    t = rng.integers(0, config.sequence_length - config.drnet_max_step, n)
    k = rng.integers(1, config.drnet_max_step + 1, n)
    x_t = test.frames[np.arange(n), t]
    x_tk = test.frames[np.arange(n), t + k]

    def recon_mse(model):
        h_c, _ = model.encode(x_t)
        _, h_p = model.encode(x_tk)
        return float(np.mean((model.decode(h_c, h_p) - x_tk) ** 2))

    untrained = drnet.DrNet(config, config.drnet_num_digits)
    mse_initial = recon_mse(untrained)
    reached = None
    if not FLAGS.skip_train:
        reached = train_with_budget()
    train_minutes = (time.time() - t0) / 60.0
    final_step = checkpoint_step(FLAGS.eval_workdir)
    model = drnet.load_trained(FLAGS.eval_workdir, config, config.drnet_num_digits)

    # 1. reconstruction
    mse_rec = recon_mse(model)
    mse_copy = float(np.mean((x_t - x_tk) ** 2))

    # 2./3. swaps: content of video i (frame t), pose of video i+1 (frame t+k)
    pose_frames = np.roll(x_tk, 1, axis=0)
    pose_labels = np.roll(test.labels, 1, axis=0)
    h_c, _ = model.encode(x_t)
    _, h_p = model.encode(pose_frames)
    swap = model.decode(h_c, h_p)
    c_gen = intensity_centroids(swap)            # [n, D, 2]
    c_pose = intensity_centroids(pose_frames)
    pose_err = np.linalg.norm(c_gen - c_pose, axis=-1)
    random_err = np.linalg.norm(intensity_centroids(np.roll(x_tk, 2, axis=0)) - c_pose, axis=-1)
    clf, clf_acc = train_digit_classifier(fv.mnist_path, config.drnet_digit_size)
    size = config.drnet_digit_size
    crops_gen = np.stack([[crop_around(swap[i, :, :, d], c_gen[i, d], size) for d in range(swap.shape[-1])]
                          for i in range(n)])
    crops_real = np.stack([[crop_around(pose_frames[i, :, :, d], c_pose[i, d], size)
                            for d in range(swap.shape[-1])] for i in range(n)])
    pred_gen = clf.predict(crops_gen.reshape(-1, size * size)).reshape(n, -1)
    pred_real = clf.predict(crops_real.reshape(-1, size * size)).reshape(n, -1)
    content_acc = float(np.mean(pred_gen == test.labels))
    content_acc_pose_labels = float(np.mean(pred_gen == pose_labels))
    real_crop_acc = float(np.mean(pred_real == pose_labels))

    # 4. scene discriminator on held-out pairs (first half same video, second half different videos)
    _, hp_a = model.encode(x_t)
    half = n // 2
    _, hp_tk = model.encode(x_tk)
    hp_b = np.concatenate([hp_tk[:half], np.roll(hp_tk[half:], 1, axis=0)])
    prob = model.scene_probability(hp_a, hp_b)
    target = np.concatenate([np.ones(half), np.zeros(n - half)])
    scene_acc = float(np.mean((prob > 0.5) == target))

    # 5. LSTM prediction
    n_past = config.drnet_n_past
    pred = model.predict(test.frames, n_past)
    future = test.frames[:, n_past:]
    last = np.repeat(test.frames[:, n_past - 1:n_past], future.shape[1], axis=1)
    mse_pred_h = np.mean((pred - future) ** 2, axis=(0, 2, 3, 4))
    mse_last_h = np.mean((last - future) ** 2, axis=(0, 2, 3, 4))

    checks = [
        {"check": "reconstruction MSE <= 0.5 x copy-frame baseline", "value": mse_rec,
         "baseline": mse_copy, "threshold": 0.5 * mse_copy, "pass": mse_rec <= 0.5 * mse_copy},
        {"check": "reconstruction MSE <= 0.3 x untrained model", "value": mse_rec,
         "baseline": mse_initial, "threshold": 0.3 * mse_initial, "pass": mse_rec <= 0.3 * mse_initial},
        {"check": "pose swap: mean centroid error (px) <= 2", "value": float(pose_err.mean()),
         "baseline": float(random_err.mean()), "threshold": 2.0, "pass": float(pose_err.mean()) <= 2.0,
         "fraction_within_2px": float(np.mean(pose_err <= 2.0))},
        {"check": "content swap: classifier reads the content video's digits >= 70%", "value": content_acc,
         "baseline": 0.1, "threshold": 0.7, "pass": content_acc >= 0.7,
         "agreement_with_pose_video_digits": content_acc_pose_labels, "classifier_accuracy_real_crops": real_crop_acc,
         "classifier_accuracy_mnist_test_16px": clf_acc},
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
    result = {"model": "drnet", "config": FLAGS.config, "workdir": FLAGS.eval_workdir, "final_step": final_step,
              "drnet_phase_step_reached": reached, "main_steps_configured": config.main_steps,
              "num_test_videos": n, "train_minutes": train_minutes,
              "total_minutes": (time.time() - t0) / 60.0, "checks": checks}
    write_json_atomic(FLAGS.output, result)
    print("wrote %s (%.1f min)" % (FLAGS.output, result["total_minutes"]))


if __name__ == "__main__":
    app.run(main)
