"""Train a registered model: ``python train.py --model=ganimation [--flagfile=configs/ganimation.cfg] ...``.

Only flag parsing and a call into the library. ``--model`` names an entry of
``ganimation_tl.registry`` (GANimation and the sibling papers in ``other_models/``); an unknown name
lists the valid ones. Bad input exits with status 2 and ``error: <what is wrong>``.
"""
from __future__ import annotations

import sys

from absl import app, flags, logging

from ganimation_tl import registry
from ganimation_tl.errors import InputError, TrainingError

registry.load_all()
flags.DEFINE_string("model", "ganimation", "Model to train: one of %s." % ", ".join(registry.names()))
for _entry_name in registry.names():
    registry.get(_entry_name).define_flags(flags.FLAGS)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError("unexpected arguments: %s" % " ".join(argv[1:]))
    try:
        entry = registry.get(FLAGS.model)
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
