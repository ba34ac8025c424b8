"""Speed benchmark: ms per image for generator inference, critic step and generator step.

``python -m ganimation_tl.bench [--batch_sizes=4,25] [--image_size=128] [--repeats=3]``

Each figure is the median over ``--repeats`` timed calls after one warm-up call (which includes
tracing), divided by the batch size. Also printed: steps per second and the achieved GFLOP/s of
each step from analytic convolution FLOP counts (multiply-adds x 2; forward only for inference,
the counts of ``../shared/docs/toolchain.md`` section 2.2 for the steps are not re-derived here, so
only the forward rate is given), and peak resident memory of the process. Random weights and
inputs: the speed of a step does not depend on the values.
"""
from __future__ import annotations

import os
import resource

import numpy as np
from absl import app, flags

from ganimation_tl.timing import median_seconds

flags.DEFINE_list("batch_sizes", ["4", "25"], "Batch sizes to time.")
flags.DEFINE_integer("image_size", 128, "Image side.")
flags.DEFINE_integer("repeats", 3, "Timed calls per measurement (after one warm-up call).")
FLAGS = flags.FLAGS


def generator_forward_macs(image_size: int = 128, num_aus: int = 17, conv_dim: int = 64, repeat_num: int = 6) -> int:
    """Multiply-accumulates of one generator forward pass for one image (convolutions only)."""
    s = image_size
    macs = s * s * 7 * 7 * (3 + num_aus) * conv_dim                     # c0
    macs += (s // 2) ** 2 * 4 * 4 * conv_dim * conv_dim * 2               # down1
    macs += (s // 4) ** 2 * 4 * 4 * conv_dim * 2 * conv_dim * 4           # down2
    macs += repeat_num * 2 * (s // 4) ** 2 * 3 * 3 * (conv_dim * 4) ** 2  # residual blocks
    macs += (s // 4) ** 2 * 4 * 4 * conv_dim * 4 * conv_dim * 2           # up1 (per input pixel)
    macs += (s // 2) ** 2 * 4 * 4 * conv_dim * 2 * conv_dim               # up2
    macs += s * s * 7 * 7 * conv_dim * (3 + 1)                            # colour + attention heads
    return macs


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv):
    import tensorflow as tf
    from ganimation_tl.model import GANimation, GANimationConfig

    size = FLAGS.image_size
    model = GANimation(GANimationConfig(image_size=size))
    g_flops = 2 * generator_forward_macs(size)
    print("GANimation speed, %d px, TF %s, %d CPU cores" % (size, tf.__version__, os.cpu_count()))
    print("%-22s %6s %10s %10s %12s %12s" % ("measure", "batch", "ms/image", "steps/s", "GFLOP/s", "peak RSS MB"))
    for batch in [int(b) for b in FLAGS.batch_sizes]:
        rng = np.random.default_rng(0)
        images = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32)
        aus = tf.constant(rng.uniform(0, 1, (batch, 17)), tf.float32)
        target = tf.constant(rng.uniform(0, 1, (batch, 17)), tf.float32)
        rows = [
            ("generator inference", lambda: model.edit(images, target)[0].numpy(), g_flops),
            ("critic step", lambda: float(model.critic_step(images, aus, target)["critic/total"]), None),
            ("generator step", lambda: float(model.generator_step(images, aus, target)["generator/total"]), None),
        ]
        for name, fn, flops in rows:
            seconds = median_seconds(fn, FLAGS.repeats)
            rate = "%12.1f" % (flops * batch / seconds / 1e9) if flops else "%12s" % "-"
            print("%-22s %6d %10.1f %10.3f %s %12.0f" % (name, batch, 1000 * seconds / batch, 1 / seconds, rate,
                                                           _peak_rss_mb()))


if __name__ == "__main__":
    app.run(main)
