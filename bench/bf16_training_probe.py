"""Does bfloat16 training (``train.py --bf16``) hurt GANimation? fp32 and bf16 runs side by side (issue 5).

    python bench/bf16_training_probe.py [--steps=600] [--image_size=64] [--batch_size=16]
        [--out=docs/results/bf16_training.json]

Two fresh worker processes (the oneDNN bfloat16 rewrite is process-wide) train the same GANimation (the CPU
configuration's networks, ``configs/ganimation_cpu.cfg`` sizes and weights, no critic AU warm-up) from the same
initial weights on the same stream of synthetic faces (seed 0) with the same gradient-penalty draws, one in float32
and one with grappler's ``auto_mixed_precision_onednn_bfloat16`` rewrite (bf16 convolutions and matmuls, fp32
weights, Adam state and losses). Each worker prints, and the JSON records:

* one-step fidelity at the shared initial weights: the critic and generator losses of the first batch, and the
  weights after one fused (generator + critic) step compared with float32's: the cosine of the two updates;
* the loss curves (means over windows of 50 iterations) and the time per iteration (after the first window);
* held-out quality after training, on 256 faces of another seed (new identities): the critic's AU mean absolute
  error (AUs in [0, 1]) and the cycle error |G(G(x, y_t), y_o) - x| (images in [-1, 1]); mean attention.

The verdict: bf16 is acceptable if its held-out AU error and cycle error are within 10% (relative) of
float32's; the float32 figures differ between fresh runs by the order of the run-to-run noise, which a second
float32 run with another gradient-penalty seed (``--noise_run``, default on) measures.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("steps", 600, "Training iterations per run.")
flags.DEFINE_integer("image_size", 64, "Image side.")
flags.DEFINE_integer("batch_size", 16, "Batch size.")
flags.DEFINE_integer("window", 50, "Iterations per loss-curve window.")
flags.DEFINE_bool("noise_run", True, "Also train float32 again with other gradient-penalty draws (noise level).")
flags.DEFINE_string("out", "docs/results/bf16_training.json", "Where to write the JSON results.")
flags.DEFINE_string("worker", None, "Internal: fp32|bf16|fp32-noise, run one training in this process.")
flags.DEFINE_string("init", None, "Internal: initial weights (npz) shared by the workers.")
flags.DEFINE_string("result", None, "Internal: where the worker writes its JSON.")
FLAGS = flags.FLAGS

CPU_CONFIG = dict(g_conv_dim=32, g_repeat_num=4, d_conv_dim=32, d_repeat_num=5, lambda_au=160.0, lambda_gp=10.0,
                  lambda_cycle=10.0, lambda_attention=0.1, lambda_tv=6e-5, learning_rate_g=3e-4,
                  learning_rate_d=3e-4, critic_au_warmup_steps=0, n_critic=5)


def _model_and_data(image_size, batch_size, steps):
    import numpy as np
    from ganimation_tl.model import GANimation, GANimationConfig
    from ganimation_tl.synthetic import SyntheticFaces

    config = GANimationConfig(image_size=image_size, batch_size=batch_size, **CPU_CONFIG)
    model = GANimation(config)
    faces = SyntheticFaces(image_size=image_size, seed=0, num_identities=1000)
    rng = np.random.default_rng(0)

    def batch(indices, faces_=faces):
        images = np.stack([faces_.sample(int(i)).image for i in indices]).astype(np.float32) / 127.5 - 1.0
        aus = np.stack([faces_.aus_of(int(i)) for i in indices]).astype(np.float32)
        return images, aus

    order = rng.permutation(steps * batch_size)
    return model, faces, batch, order, rng


def _weights(model):
    import numpy as np
    return [np.array(v.numpy()) for v in list(model.generator.all_weights) + list(model.critic.all_weights)]


def _set_weights(model, values):
    for v, value in zip(list(model.generator.all_weights) + list(model.critic.all_weights), values):
        v.assign(value)


def run_worker(mode, init_path, result_path):
    import numpy as np
    import tensorflow as tf
    from ganimation_tl.synthetic import SyntheticFaces

    if mode == "bf16":
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
    size, b, steps, window = FLAGS.image_size, FLAGS.batch_size, FLAGS.steps, FLAGS.window
    model, faces, batch, order, _ = _model_and_data(size, b, steps)
    model.generator.train()
    model.critic.train()
    if init_path and os.path.exists(init_path):
        with np.load(init_path) as f:
            _set_weights(model, [f["w%d" % i] for i in range(len(f.files))])
    else:
        values = _weights(model)
        tmp = init_path + ".tmp.npz"
        np.savez(tmp, **{"w%d" % i: v for i, v in enumerate(values)})
        os.replace(tmp, init_path)
    target_rng = np.random.default_rng(1)
    gp_rng = np.random.default_rng(2 if mode != "fp32-noise" else 3)

    def make(step):
        images, aus = batch(order[step * b:(step + 1) * b])
        target = aus[target_rng.permutation(b)]
        return {"images": tf.constant(images), "aus": tf.constant(aus), "target_aus": tf.constant(target),
                "gp_alpha": tf.constant(gp_rng.uniform(0, 1, (b, 1, 1, 1)).astype(np.float32))}

    before = _weights(model)
    first = make(0)
    metrics0 = {k: float(v) for k, v in model.train_step(first, 0).items()}
    update = [a - w for a, w in zip(_weights(model), before)]
    curves, times, window_sums = {}, [], {}
    for step in range(1, steps):
        t0 = time.perf_counter()
        metrics = {k: float(v) for k, v in model.train_step(make(step), step).items()}
        times.append(time.perf_counter() - t0)
        for k, v in metrics.items():
            window_sums.setdefault(k, []).append(v)
        if (step + 1) % window == 0:
            for k, values in window_sums.items():
                curves.setdefault(k, []).append(float(np.mean(values)))
            window_sums = {}

    model.generator.eval()
    model.critic.eval()
    held = SyntheticFaces(image_size=size, seed=2, num_identities=1000)
    au_err, cycle_err, attention = [], [], []
    trng = np.random.default_rng(4)
    for start in range(0, 256, 32):
        images, aus = batch(range(start, start + 32), held)
        target = aus[trng.permutation(len(aus))]
        x = tf.constant(images)
        au_err.append(float(tf.reduce_mean(tf.abs(model.critic(x)[1] - aus))))
        fake, att = model.edit(x, tf.constant(target))[:2]
        back = model.edit(fake, tf.constant(aus))[0]
        cycle_err.append(float(tf.reduce_mean(tf.abs(back - x))))
        attention.append(float(tf.reduce_mean(att)))
    result = {"mode": mode, "first_step": metrics0, "curves": curves, "window": window,
              "seconds_per_iteration": float(np.median(times[window:] if len(times) > window else times)),
              "held_out": {"critic_au_mae": float(np.mean(au_err)), "cycle_l1": float(np.mean(cycle_err)),
                           "mean_attention": float(np.mean(attention))}}
    np.savez(result_path + ".update.npz", *update)
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f)


def _cosine(a_path, b_path):
    import numpy as np
    with np.load(a_path) as fa, np.load(b_path) as fb:
        a = np.concatenate([fa[k].ravel() for k in sorted(fa.files, key=lambda s: int(s.split("_")[1]))])
        b = np.concatenate([fb[k].ravel() for k in sorted(fb.files, key=lambda s: int(s.split("_")[1]))])
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def main(argv):
    if FLAGS.worker:
        run_worker(FLAGS.worker, FLAGS.init, FLAGS.result)
        return
    from ganimation_tl.editing import cpu_supports_bfloat16
    from ganimation_tl.trainer import write_json_atomic
    if not cpu_supports_bfloat16():
        raise SystemExit("error: this CPU has no native bfloat16 (avx512_bf16 / amx_bf16); nothing to measure")
    modes = ["fp32", "bf16"] + (["fp32-noise"] if FLAGS.noise_run else [])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        init = os.path.join(tmp, "init.npz")
        for mode in modes:
            path = os.path.join(tmp, mode + ".json")
            cmd = [sys.executable, os.path.abspath(__file__), "--worker=" + mode, "--init=" + init,
                   "--result=" + path, "--steps=%d" % FLAGS.steps, "--image_size=%d" % FLAGS.image_size,
                   "--batch_size=%d" % FLAGS.batch_size, "--window=%d" % FLAGS.window]
            t0 = time.time()
            subprocess.run(cmd, check=True)
            with open(path, encoding="utf-8") as f:
                results[mode] = json.load(f)
            results[mode]["wall_seconds"] = time.time() - t0
            print("%-10s  %.3f s/iteration  held-out critic AU MAE %.4f  cycle L1 %.4f  attention %.3f  (%.1f min)"
                  % (mode, results[mode]["seconds_per_iteration"], results[mode]["held_out"]["critic_au_mae"],
                     results[mode]["held_out"]["cycle_l1"], results[mode]["held_out"]["mean_attention"],
                     results[mode]["wall_seconds"] / 60), flush=True)
        cos = _cosine(os.path.join(tmp, "fp32.json.update.npz"), os.path.join(tmp, "bf16.json.update.npz"))
    fp, bf = results["fp32"], results["bf16"]
    rel = {k: bf["held_out"][k] / fp["held_out"][k] - 1 for k in ("critic_au_mae", "cycle_l1")}
    first = {k: (fp["first_step"][k], bf["first_step"][k]) for k in sorted(fp["first_step"])}
    print("first step (fp32 vs bf16, same weights and batch):")
    for k, (a, b) in first.items():
        print("  %-32s %.5g vs %.5g" % (k, a, b))
    print("cosine of the first update (all weights), bf16 vs fp32: %.4f" % cos)
    print("held-out, bf16 relative to fp32: critic AU MAE %+.1f%%, cycle L1 %+.1f%%; speed %.2fx"
          % (100 * rel["critic_au_mae"], 100 * rel["cycle_l1"],
             fp["seconds_per_iteration"] / bf["seconds_per_iteration"]))
    if "fp32-noise" in results:
        nz = results["fp32-noise"]
        print("noise level (second fp32 run, other GP draws): critic AU MAE %+.1f%%, cycle L1 %+.1f%%"
              % tuple(100 * (nz["held_out"][k] / fp["held_out"][k] - 1) for k in ("critic_au_mae", "cycle_l1")))
    ok = all(abs(v) <= 0.10 for v in rel.values())
    print("verdict: %s" % ("bf16 within 10%% of fp32 on held-out quality" if ok else "bf16 changes quality > 10%"))
    write_json_atomic(FLAGS.out, {"steps": FLAGS.steps, "image_size": FLAGS.image_size,
                                  "batch_size": FLAGS.batch_size, "runs": results, "first_update_cosine": cos,
                                  "relative_change": rel, "within_10_percent": ok})
    print("wrote %s" % FLAGS.out)


if __name__ == "__main__":
    app.run(main)
