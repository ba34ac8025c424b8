"""Soak benchmark: train GANimation on synthetic faces for a long time and print memory and step time.

    python bench/soak.py [--minutes=60] [--every_minutes=5] [--workdir=/tmp/soak]

Uses the 64-px CPU configuration (``configs/ganimation_cpu.cfg`` values) with faces rendered on the
fly, through the real trainer (checkpoints, summaries, sample grids). Every ``--every_minutes`` it
prints the resident memory (current and peak) and the median step time of that interval. Flat
columns mean no leak and no slow-down (e.g. from tf.function retracing or a growing graph).
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

flags.DEFINE_float("minutes", 60.0, "Total training time.")
flags.DEFINE_float("every_minutes", 5.0, "Reporting interval.")
flags.DEFINE_string("workdir", "/tmp/ganimation_soak", "Run folder (removed first).")
FLAGS = flags.FLAGS


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv):
    import shutil

    import numpy as np

    from ganimation_tl.input_pipeline import make_dataset, steps_per_epoch
    from ganimation_tl.model import GANimation, GANimationConfig
    from ganimation_tl.synthetic import SyntheticFaces
    from ganimation_tl.trainer import Trainer, TrainerOptions

    shutil.rmtree(FLAGS.workdir, ignore_errors=True)
    config = GANimationConfig(image_size=64, g_conv_dim=32, g_repeat_num=4, d_conv_dim=32, d_repeat_num=5,
                              batch_size=16, lambda_tv=6e-5, epochs=1000, decay_epochs=0)
    faces = SyntheticFaces(image_size=64, seed=0)
    count = 4000
    indices = np.arange(count)
    aus = np.stack([faces.aus_of(int(i)) for i in indices])
    model = GANimation(config)
    step_times = []
    state = {"last": time.perf_counter(), "report": time.time(), "start": time.time()}

    def report(step):
        times = sorted(step_times) or [float("nan")]
        print("%8.1f %8d %10.0f %12.0f %14.3f %14.3f" % (
            (time.time() - state["start"]) / 60, step, _rss_mb(),
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, statistics.median(times),
            times[int(0.9 * (len(times) - 1))]), flush=True)
        step_times.clear()
        state["report"] = time.time()

    class Timed:
        """The model, with each training step timed and a report row every interval."""

        def __getattr__(self, name):
            return getattr(model, name)

        def train_step(self, batch, step):
            out = model.train_step(batch, step)
            float(out["critic/total"])
            now = time.perf_counter()
            if step > 0:
                step_times.append(now - state["last"])
            state["last"] = now
            if time.time() - state["report"] >= 60 * FLAGS.every_minutes:
                report(step + 1)
            return out

    def data(epoch, skip):
        return make_dataset(indices, aus, image_size=64, batch_size=16, seed=0, epoch=epoch, skip_batches=skip,
                            loader=lambda i, s: faces.sample(int(i)).image)

    print("%8s %8s %10s %12s %14s %14s" % ("minute", "steps", "RSS MB", "peak RSS MB", "median s/step", "p90 s/step"))
    options = TrainerOptions(workdir=FLAGS.workdir, epochs=config.epochs, steps_per_epoch=steps_per_epoch(count, 16),
                             max_minutes=FLAGS.minutes, log_every=100, image_every=250, checkpoint_every=500)
    trainer = Trainer(Timed(), data, options, print_fn=lambda s: None)
    trainer.run()
    report(int(trainer.step.numpy()))


if __name__ == "__main__":
    app.run(main)
