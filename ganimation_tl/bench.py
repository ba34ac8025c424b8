"""Speed benchmark: ms per image for generator inference, critic step and generator step.

``python -m ganimation_tl.bench [--batch_sizes=4,25] [--image_size=128] [--repeats=3]``

Each figure is the median over ``--repeats`` timed calls after one warm-up call (which includes
tracing), divided by the batch size. Also printed: steps per second and the achieved GFLOP/s of
each step from analytic convolution FLOP counts (:func:`flops_per_image`), and peak resident memory
of the process. The full comparison with the PyTorch reference (fresh process per figure, 5:1
iterations, the real trainer, matmul peak) is ``bench/bench_speed.py``. Random weights and
inputs: the speed of a step does not depend on the values.
"""
from __future__ import annotations

import os
import resource

import numpy as np
from absl import app, flags

from ganimation_tl.timing import median_seconds

FLAGS = flags.FLAGS
N_CRITIC = 5


def _define_flags() -> None:
    flags.DEFINE_list("batch_sizes", ["4", "25"], "Batch sizes to time.")
    flags.DEFINE_integer("image_size", 128, "Image side.")
    flags.DEFINE_integer("repeats", 3, "Timed calls per measurement (after one warm-up call).")


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


def conv_macs(image_size: int = 128):
    """Per-image multiply-accumulates of the paper-size networks (convolutions only).

    Returns:
        ``(M_G, c0_G, M_D, c0_D)``: generator forward, its first 7x7 conv, critic forward (both
        heads), its first conv.
    """
    s = image_size
    m_g = generator_forward_macs(s)
    c0_g = s * s * 7 * 7 * 20 * 64
    c0_d = (s // 2) ** 2 * 4 * 4 * 3 * 64
    m_d, c, side = c0_d, 64, s // 2
    for _ in range(5):
        side //= 2
        m_d += side * side * 4 * 4 * c * c * 2
        c *= 2
    m_d += side * side * 3 * 3 * c + side * side * c * 17
    return m_g, c0_g, m_d, c0_d


def flops_per_image(measure: str, image_size: int = 128, fused: bool = True) -> float:
    """Analytic convolution FLOPs (2 per multiply-add) per image of ``measure``.

    Rule: per convolution, the forward, the input gradient and the weight gradient each cost its
    forward MACs. ``infer`` = M_G; ``critic`` (step) = M_G (fake) + 2 (3 M_D - c0_D) (real and fake:
    forward, weight and input gradients except the input layer's) + 4 M_D (gradient penalty:
    forward, input gradient, and that gradient's backward to weights and inputs); ``generator``
    (step) = 6 M_G - c0_G + 2 M_D (two generator passes forward and backward, the critic forward and
    input gradient); ``iteration`` = one 5:1 cycle per image of the 5 batches it consumes, minus one
    M_G when ``fused`` (see ``GANimationConfig.fuse_generator_forward``).
    At 128 px: G forward 21.3 GFLOP, critic step 35 GFLOP, generator step 128 GFLOP (the counts of
    ``../shared/docs/toolchain.md`` 2.2 are 21.26 / 37.62 (PyTorch's extra work included) / 128.22).
    """
    m_g, c0_g, m_d, c0_d = conv_macs(image_size)
    critic = m_g + 2 * (3 * m_d - c0_d) + 4 * m_d
    generator = 6 * m_g - c0_g + 2 * m_d
    macs = {"infer": m_g, "critic": critic, "generator": generator,
            "iteration": (N_CRITIC * critic + generator - (m_g if fused else 0)) / N_CRITIC}
    if measure not in macs:
        raise ValueError("unknown measure %r; valid: %s" % (measure, ", ".join(macs)))
    return 2.0 * macs[measure]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv):
    import tensorflow as tf
    from ganimation_tl.model import GANimation, GANimationConfig

    size = FLAGS.image_size
    model = GANimation(GANimationConfig(image_size=size))
    g_flops = flops_per_image("infer", size)
    print("GANimation speed, %d px, TF %s, %d CPU cores" % (size, tf.__version__, os.cpu_count()))
    print("%-22s %6s %10s %10s %12s %12s" % ("measure", "batch", "ms/image", "steps/s", "GFLOP/s", "peak RSS MB"))
    for batch in [int(b) for b in FLAGS.batch_sizes]:
        rng = np.random.default_rng(0)
        images = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32)
        aus = tf.constant(rng.uniform(0, 1, (batch, 17)), tf.float32)
        target = tf.constant(rng.uniform(0, 1, (batch, 17)), tf.float32)
        rows = [
            ("generator inference", lambda: model.edit(images, target)[0].numpy(), g_flops),
            ("critic step", lambda: float(model.critic_step(images, aus, target)["critic/total"]),
             flops_per_image("critic", size)),
            ("generator step", lambda: float(model.generator_step(images, aus, target)["generator/total"]),
             flops_per_image("generator", size)),
        ]
        for name, fn, flops in rows:
            seconds = median_seconds(fn, FLAGS.repeats)
            rate = "%12.1f" % (flops * batch / seconds / 1e9) if flops else "%12s" % "-"
            print("%-22s %6d %10.1f %10.3f %s %12.0f" % (name, batch, 1000 * seconds / batch, 1 / seconds, rate,
                                                           _peak_rss_mb()))


if __name__ == "__main__":
    _define_flags()
    app.run(main)
