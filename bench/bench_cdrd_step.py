"""Milliseconds per CDRD training iteration (one G step and one D step), without the trainer around it.

    python bench/bench_cdrd_step.py [--flagfile=configs/cdrd_debug.cfg] [--steps=200] [--warmup=20]
        [--output=cdrd_step.json]

Builds the model and data from the flagfile (``other_models.cdrd.build``), draws ``--warmup + --steps``
batches from the model's own batch stream up front, runs ``--warmup`` iterations (tracing), then times
``--steps`` iterations of ``CDRD.train_step`` and prints the mean milliseconds per iteration and the minutes
that ``--cdrd_steps`` iterations would take at that rate. Measure on an otherwise idle machine. Exits
with status 2 and a message on bad flags or a missing ``--mnist_path``.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from bench._common import write_json_atomic  # noqa: E402


def main(argv):
    """Parse ``argv`` (program name first), time the iterations, print and return the figures (a dict)."""
    from ganimation_tl.errors import InputError
    from other_models import cdrd

    fv = flags.FlagValues()
    cdrd.define_flags(fv)
    flags.DEFINE_integer("steps", 200, "Timed iterations.", flag_values=fv)
    flags.DEFINE_integer("warmup", 20, "Untimed iterations first (tracing).", flag_values=fv)
    flags.DEFINE_string("output", None, "Optional JSON file for the figures (written atomically).", flag_values=fv)
    try:
        fv(argv)
        if fv.steps < 1 or fv.warmup < 1:
            raise InputError("--steps and --warmup must be >= 1, got %d and %d" % (fv.steps, fv.warmup))
        config, data, model = cdrd.build(fv)
    except (flags.Error, InputError) as error:
        print("error: %s" % error, file=sys.stderr)
        raise SystemExit(2)
    stream = model.make_dataset_fn(data)(0, 0)
    batches = [next(stream) for _ in range(fv.warmup + fv.steps)]
    for i, batch in enumerate(batches[:fv.warmup]):
        model.train_step(batch, i)
    start = time.perf_counter()
    for i, batch in enumerate(batches[fv.warmup:]):
        out = model.train_step(batch, fv.warmup + i)
    float(out["discriminator/total"])        # wait for the last step
    ms = (time.perf_counter() - start) / fv.steps * 1000.0
    result = {"ms_per_iteration": ms, "steps_timed": fv.steps, "cdrd_steps": config.cdrd_steps,
              "minutes_for_cdrd_steps": ms * config.cdrd_steps / 60000.0, "batch_size": config.batch_size,
              "g_width": config.cdrd_g_width}
    print("CDRD: %.1f ms per iteration (batch %d, G width %d): %d iterations in %.1f min"
          % (ms, config.batch_size, config.cdrd_g_width, config.cdrd_steps, result["minutes_for_cdrd_steps"]))
    if fv.output:
        write_json_atomic(fv.output, result)
    return result


if __name__ == "__main__":
    main(sys.argv)
