"""Where GANimation's training memory goes: allocator peaks per training step (issue 5).

    python bench/bench_memory.py [--batch_size=4] [--image_size=128] [--variants=default,old,twocalls,kerasadam]

For each variant, one fresh GANimation (paper-size networks, random weights) in a fresh worker process; each step kind
(critic step, generator step, fused generator iteration) runs once to trace, then once more with the allocator's
peak counter reset. Printed in MB: ``held`` = bytes the allocator holds between steps (weights, Adam slots,
constants), and each step's peak above that. The numbers come from TensorFlow's CPU allocator statistics
(``tf.config.experimental.get_memory_info``; oneDNN's BFC pool, the default), so they count tensors, not the
process's resident memory (see ``bench/bench_speed.py`` for peak RSS against PyTorch); they do not depend on
machine load. The last line is the Adam update's own transient on the critic's weights (gradients given).

Variant tokens (``+``-joined): ``default`` (the current defaults), ``twocalls`` (critic scores real and fake in
two calls), ``kerasadam`` (Keras' Adam instead of the fused kernel), ``old`` (both: the defaults before
2026-12-06, whose fused step also let the critic step start before the generator's gradients were done, which
this script cannot restore), ``unfused`` (official order: generator iteration = critic step then generator step).
"""
from __future__ import annotations

import gc
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from bench._common import run_result_worker  # noqa: E402

flags.DEFINE_integer("batch_size", 4, "Batch size.")
flags.DEFINE_integer("image_size", 128, "Image side.")
flags.DEFINE_list("variants", ["default", "old"], "Variants (see the module docstring).")
flags.DEFINE_string("out", None, "Optional JSON output path (atomic write).")
flags.DEFINE_bool("worker", False, "Internal: measure the single variant of --variants in this process.")
FLAGS = flags.FLAGS
MB = float(1 << 20)
TOKENS = ("default", "twocalls", "kerasadam", "old", "unfused")


def _config(variant, batch, size):
    from ganimation_tl.model import GANimationConfig
    tokens = set(variant.split("+"))
    unknown = tokens - set(TOKENS)
    if unknown:
        raise SystemExit("error: --variants: unknown token(s) %s (known: %s)" % (", ".join(sorted(unknown)),
                                                                               ", ".join(TOKENS)))
    if "old" in tokens:
        tokens |= {"twocalls", "kerasadam"}
    return GANimationConfig(image_size=size, batch_size=batch, critic_joint_forward="twocalls" not in tokens,
                            fused_adam="kerasadam" not in tokens, fuse_generator_forward="unfused" not in tokens)


def _peak_above_held(fn):
    import tensorflow as tf
    fn()
    held = tf.config.experimental.get_memory_info("CPU:0")["current"]
    tf.config.experimental.reset_memory_stats("CPU:0")
    fn()
    return held, tf.config.experimental.get_memory_info("CPU:0")["peak"] - held


def measure(variant, batch, size):
    """Allocator figures (MB) of one variant: held, and the peak above it of each step kind."""
    import numpy as np
    import tensorflow as tf
    from ganimation_tl.model import GANimation

    model = GANimation(_config(variant, batch, size))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32)
    a, t = (tf.constant(rng.uniform(0, 1, (batch, 17)), tf.float32) for _ in range(2))
    row = {"variant": variant}
    for name, fn in (("critic", lambda: model.critic_step(x, a, t)),
                     ("generator", lambda: model.generator_step(x, a, t)),
                     ("generator_iteration", lambda: model.train_step({"images": x, "aus": a, "target_aus": t}, 0))):
        held, peak = _peak_above_held(fn)
        row["held"], row[name] = held / MB, peak / MB
    variables = model.critic.trainable_weights
    grads = [tf.fill(v.shape, 1e-3) for v in variables]
    update = tf.function(lambda: model.d_optimizer.apply_gradients(zip(grads, variables)))
    row["critic_adam_update"] = _peak_above_held(update)[1] / MB
    del model
    gc.collect()
    return row


def _run_worker(variant):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--variants=" + variant,
           "--batch_size=%d" % FLAGS.batch_size, "--image_size=%d" % FLAGS.image_size]
    return run_result_worker(cmd, variant)


def main(argv):
    import tensorflow as tf
    try:
        tf.config.experimental.get_memory_info("CPU:0")
    except (ValueError, tf.errors.OpError) as e:
        raise SystemExit("error: this TensorFlow build keeps no CPU allocator statistics (%s); unset "
                         "TF_ONEDNN_USE_SYSTEM_ALLOCATOR / TF_ENABLE_ONEDNN_OPTS=0" % e)
    print("batch %d, %d px; MB (allocator): held | peak above held: critic step, generator step, generator "
          "iteration | critic Adam update" % (FLAGS.batch_size, FLAGS.image_size))
    if FLAGS.worker:
        print("RESULT " + json.dumps(measure(FLAGS.variants[0], FLAGS.batch_size, FLAGS.image_size)), flush=True)
        return 0
    rows = []
    for variant in FLAGS.variants:
        _config(variant, FLAGS.batch_size, FLAGS.image_size)   # unknown tokens: refused before measuring
    for variant in FLAGS.variants:   # each in a fresh process: a freed model's memory is not all returned
        row = _run_worker(variant)
        rows.append(row)
        print("%-20s held %6.0f | critic %5.0f  generator %5.0f  iteration %5.0f | adam %4.0f" % (
            variant, row["held"], row["critic"], row["generator"], row["generator_iteration"],
            row["critic_adam_update"]), flush=True)
    if FLAGS.out:
        from ganimation_tl.trainer import write_json_atomic
        write_json_atomic(FLAGS.out, {"batch_size": FLAGS.batch_size, "image_size": FLAGS.image_size,
                                      "tensorflow": tf.__version__, "rows": rows})
        print("wrote", FLAGS.out)


if __name__ == "__main__":
    app.run(main)
