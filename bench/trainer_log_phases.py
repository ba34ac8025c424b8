"""Iterations per second and input wait of a training run, per phase, from its log.

    python train.py --model=ganimation --flagfile=configs/ganimation_cpu.cfg --workdir=runs/demo 2> run.log
    python bench/trainer_log_phases.py run.log --boundaries=0,1250,2000,7500 [--output=phases.json]

Reads the trainer's progress lines (``I1207 00:33:09.569934 ... step 1100/7500 [...] | 9.89 it/s | ... |
input wait 33%``), takes the wall-clock time of each logged step from the absl timestamp, and prints for
each phase ``[a, b)`` of ``--boundaries`` (iteration counts; the first logged step stands in for 0 and
the last for the end): iterations, seconds, iterations per second, and the mean of the logged
input-wait shares (each is the share of its logging window spent waiting for the next batch). The
first phase includes tracing and the first checkpoint; phases are measured between logged steps, so a
boundary that is not a multiple of ``--log_every`` is moved to the next logged step.

Exits with status 2 and a message naming the file when it holds no progress lines, or when the log
spans midnight more than once (the absl timestamp has no date: one day change is handled).
"""
from __future__ import annotations

import os
import re
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_list("boundaries", None, "Iteration counts that split the run into phases (e.g. 0,1250,2000,7500).")
flags.DEFINE_string("output", None, "Optional JSON file for the figures (written atomically).")

LINE = re.compile(r"^I(\d{4}) (\d\d):(\d\d):(\d\d\.\d+) .*? step (\d+)/(\d+) .*?\| input wait (\d+)%")


def parse(path):
    """``[(step, seconds since the first line, input wait share in [0, 1])]`` of the progress lines of the
    log file ``path``, in file order. Raises OSError (unreadable file) or ValueError (no progress lines, or
    more than one midnight crossed)."""
    rows, first, day_offset, last_day = [], None, 0.0, None
    with open(path, errors="replace") as handle:
        for text in handle:
            match = LINE.search(text)
            if not match:
                continue
            day, hours, minutes, seconds, step, _, wait = match.groups()
            clock = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            if last_day is not None and day != last_day:
                if day_offset:
                    raise ValueError("%s spans more than one midnight" % path)
                day_offset = 86400.0
            last_day = day
            t = clock + day_offset
            if first is None:
                first = t
            rows.append((int(step), t - first, int(wait) / 100.0))
    if not rows:
        raise ValueError("%s holds no trainer progress lines ('step N/T ... | input wait P%%')" % path)
    return rows


def phases(rows, boundaries):
    """Split ``rows`` (from :func:`parse`) at the iteration counts ``boundaries`` (ascending).

    Returns one dict per phase that holds at least two logged steps: ``from`` / ``to`` (the logged steps used),
    ``iterations``, ``seconds`` (wall clock), ``it_per_s`` and ``mean_input_wait`` (share in [0, 1] of the
    windows inside the phase)."""
    steps = [r[0] for r in rows]
    result = []
    for a, b in zip(boundaries[:-1], boundaries[1:]):
        start = next((i for i, s in enumerate(steps) if s >= a), None)
        stop = next((i for i, s in enumerate(steps) if s >= b), len(steps) - 1)
        if start is None or stop <= start:
            continue
        waits = [rows[i][2] for i in range(start + 1, stop + 1)]
        its, secs = steps[stop] - steps[start], rows[stop][1] - rows[start][1]
        result.append({"from": steps[start], "to": steps[stop], "iterations": its, "seconds": round(secs, 1),
                       "it_per_s": round(its / secs, 2) if secs > 0 else None,
                       "mean_input_wait": round(sum(waits) / len(waits), 3) if waits else None})
    return result


def main(argv):
    if len(argv) != 2:
        print("usage: trainer_log_phases.py LOG --boundaries=0,N,...", file=sys.stderr)
        return 2
    try:
        rows = parse(argv[1])
    except (OSError, ValueError) as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    bounds = [int(b) for b in FLAGS.boundaries] if FLAGS.boundaries else [rows[0][0], rows[-1][0]]
    table = phases(rows, bounds)
    for p in table:
        print("iterations %5d-%5d: %5d in %7.1f s = %6.2f it/s, mean input wait %.0f%%"
              % (p["from"], p["to"], p["iterations"], p["seconds"], p["it_per_s"] or 0,
                 100 * (p["mean_input_wait"] or 0)))
    total = rows[-1][1]
    print("logged steps %d-%d in %.1f min" % (rows[0][0], rows[-1][0], total / 60.0))
    if FLAGS.output:
        from bench._common import write_json_atomic
        write_json_atomic(FLAGS.output, {"log": os.path.basename(argv[1]), "phases": table,
                                         "first_logged_step": rows[0][0], "last_logged_step": rows[-1][0],
                                         "minutes_between_first_and_last_line": round(total / 60.0, 2)})
    return 0


if __name__ == "__main__":
    app.run(main)
