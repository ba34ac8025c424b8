"""Train a registered model: ``python train.py --model=ganimation [--flagfile=configs/ganimation.cfg] ...``.

Only flag parsing and a call into the library. ``--model`` names an entry of
``ganimation_tl.registry`` (GANimation and the sibling papers in ``other_models/``); an unknown name
lists the valid ones. Bad input exits with status 2 and ``error: <what is wrong>``.
"""
from __future__ import annotations

import sys

from absl import app, flags, logging

from ganimation_tl import registry, runtime
from ganimation_tl.errors import InputError, TrainingError

registry.load_all()
flags.DEFINE_string("model", "ganimation", "Model to train: one of %s." % ", ".join(registry.names()))
flags.DEFINE_bool("low_memory", None, "Return freed memory to the operating system (TensorFlow tensors from "
                  "malloc instead of its never-shrinking pool, glibc mmap threshold 256 KiB): lower peak memory, "
                  "slower steps (GANimation 128 px batch 4: peak 3.2 -> 2.2 GB, about 25%% slower; README "
                  "'Speed'). Any model. Unset (the default): on for models that ask for it (GANimation) when no "
                  "GPU is visible, off otherwise; --nolow_memory turns it off.")
for _entry_name in registry.names():
    registry.get(_entry_name).define_flags(flags.FLAGS)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError("unexpected arguments: %s" % " ".join(argv[1:]))
    try:
        entry = registry.get(FLAGS.model)
    except InputError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    low_memory = FLAGS.low_memory
    if low_memory is None:
        low_memory = entry.low_memory_on_cpu and not runtime.gpu_visible()
    if low_memory:
        try:
            applied = runtime.enable_low_memory()
        except RuntimeError as error:
            print("error: --low_memory: %s" % error, file=sys.stderr)
            return 2
        logging.info("Low-memory mode: TensorFlow tensors from malloc, glibc mmap threshold %s.",
                     "%d bytes" % applied["mmap_threshold"] if applied["mmap_threshold"] else "unchanged (not glibc)")
    try:
        metrics = entry.train(FLAGS)
    except InputError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    except TrainingError as error:
        print("error: training stopped: %s" % error, file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("Interrupted; the last checkpoint is in the workdir.", file=sys.stderr)
        return 0
    if metrics:
        logging.info("Done. Last metrics: %s", ", ".join("%s=%.4g" % kv for kv in sorted(metrics.items())))
    return 0


def run():
    """Console-script entry point (``ganimation-train``)."""
    app.run(main)


if __name__ == "__main__":
    run()
