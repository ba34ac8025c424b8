"""A model-agnostic training loop: schedule, checkpoints and resume, summaries, progress.

The trainer owns the loop and nothing else. A model plugs in through a small interface:

* ``trackables() -> dict``: what to checkpoint (variable lists, optimizers);
* ``train_step(batch, step) -> dict[str, scalar]``: one iteration (GANimation runs a critic step
  and, every ``n_critic`` iterations, a generator step);
* ``set_learning_rate_epoch(epoch: float) -> dict[str, float]``: the learning-rate schedule;
* ``sample_grid(batch) -> uint8 [H, W, 3]``: an image panel for TensorBoard and the workdir;
* optionally ``check_health(metrics, step) -> str | None``: a warning to log (GANimation warns
  when the attention mask saturates).

Resume rule: if ``<workdir>/checkpoints`` holds a checkpoint, restore the newest one (weights,
optimizer state, step counter) and continue at the same epoch and batch; otherwise start fresh.
Checkpoints are written by ``tf.train.CheckpointManager``; every other file the trainer writes
(sample grids, JSON) goes to a temporary name first and is renamed into place.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from ganimation_tl.au_data import write_image_atomic, write_text_atomic
from ganimation_tl.errors import InputError, TrainingError

__all__ = ["TrainerOptions", "Trainer", "latest_checkpoint", "write_json_atomic"]


@dataclasses.dataclass(frozen=True)
class TrainerOptions:
    """How long to train and how often to log, write images and checkpoint.

    Attributes:
        workdir: folder for checkpoints (``checkpoints/``), TensorBoard events (``tb/``) and sample
            grids (``samples/``).
        epochs: epochs to train. steps_per_epoch: full batches per epoch.
        max_steps: optional cap on the total step count (iterations), counted from step 0 of the
            run, so re-running the same command after it finished does nothing.
        log_every: steps between log lines and scalar summaries.
        image_every: steps between image grids (0 disables).
        checkpoint_every: steps between checkpoints (a checkpoint is also written at the end).
        keep_checkpoints: how many checkpoints CheckpointManager keeps.
    """

    workdir: str
    epochs: int
    steps_per_epoch: int
    max_steps: Optional[int] = None
    log_every: int = 10
    image_every: int = 100
    checkpoint_every: int = 500
    keep_checkpoints: int = 3

    @property
    def total_steps(self) -> int:
        total = self.epochs * self.steps_per_epoch
        return total if self.max_steps is None else min(total, int(self.max_steps))


def latest_checkpoint(workdir: str) -> Optional[str]:
    """Path prefix of the newest checkpoint in ``<workdir>/checkpoints``, or None."""
    return tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))


def _opaque_to_input_error(error: tf.errors.OpError) -> Exception:
    """Turn a tf.data failure caused by a bad input file back into an InputError with its message."""
    text = error.message if hasattr(error, "message") else str(error)
    marker = "InputError: "
    if marker in text:
        return InputError(text.split(marker, 1)[1].split("\n")[0].strip())
    return error


class Trainer:
    """Runs ``model.train_step`` over epochs with checkpoints, resume, summaries and a progress log.

    Args:
        model: an object with the interface in the module docstring.
        make_dataset: ``(epoch, skip_batches) -> iterable of batches`` for one epoch.
        options: :class:`TrainerOptions`.
        print_fn: where progress lines go (``absl.logging.info`` by default).
    """

    def __init__(self, model, make_dataset: Callable, options: TrainerOptions,
                 print_fn: Callable[[str], None] = logging.info):
        self.model = model
        self.make_dataset = make_dataset
        self.options = options
        self.print = print_fn
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.checkpoint = tf.train.Checkpoint(step=self.step, **model.trackables())
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(options.workdir, "checkpoints"),
                                                  max_to_keep=options.keep_checkpoints)
        self.writer = None

    # ------------------------------------------------------------------ resume
    def restore(self) -> int:
        """Restore the newest checkpoint if there is one; return the step to continue from."""
        path = self.manager.latest_checkpoint
        if path is None:
            self.print("No checkpoint in %s: starting from step 0." % self.manager.directory)
            return 0
        self.checkpoint.restore(path).assert_existing_objects_matched()
        step = int(self.step.numpy())
        epoch, batch = divmod(step, self.options.steps_per_epoch)
        self.print("Resumed from %s at step %d (epoch %d, batch %d of %d)."
                   % (path, step, epoch, batch, self.options.steps_per_epoch))
        return step

    def save(self, step: int) -> str:
        self.step.assign(step)
        path = self.manager.save(checkpoint_number=step)
        return path

    # ------------------------------------------------------------------ loop
    def run(self) -> Dict[str, float]:
        """Train until ``options.total_steps``; returns the last logged metrics (floats)."""
        opts = self.options
        os.makedirs(opts.workdir, exist_ok=True)
        self.writer = tf.summary.create_file_writer(os.path.join(opts.workdir, "tb"))
        step = self.restore()
        total = opts.total_steps
        if step >= total:
            self.print("Nothing to do: step %d already reached the last step %d." % (step, total))
            return {}
        last: Dict[str, float] = {}
        start_time, start_step = time.time(), step
        window_time, window_steps, input_wait = time.time(), 0, 0.0
        last_saved = step
        try:
            while step < total:
                epoch, skip = divmod(step, opts.steps_per_epoch)
                iterator = iter(self.make_dataset(epoch, skip))
                while step < total:
                    t_wait = time.time()
                    try:
                        batch = next(iterator)
                    except StopIteration:
                        break
                    except tf.errors.OpError as error:
                        raise _opaque_to_input_error(error) from None
                    input_wait += time.time() - t_wait
                    rates = self.model.set_learning_rate_epoch(step / opts.steps_per_epoch)
                    metrics = self.model.train_step(batch, step)
                    values = {k: float(v) for k, v in metrics.items()}
                    bad = [k for k, v in values.items() if not math.isfinite(v)]
                    if bad:
                        raise TrainingError(
                            "loss became non-finite at step %d (%s); stopped without saving, the last good "
                            "checkpoint is %s" % (step, ", ".join("%s=%s" % (k, values[k]) for k in bad),
                                                  self.manager.latest_checkpoint))
                    step += 1
                    window_steps += 1
                    values.update(rates)
                    last.update(values)
                    warning = getattr(self.model, "check_health", lambda m, s: None)(values, step)
                    if warning:
                        logging.warning(warning)
                    if step % opts.log_every == 0 or step == total:
                        elapsed = time.time() - window_time
                        last["perf/steps_per_second"] = window_steps / max(elapsed, 1e-9)
                        last["perf/input_wait_fraction"] = input_wait / max(elapsed, 1e-9)
                        self._log(step, total, last, start_time, start_step)
                        window_time, window_steps, input_wait = time.time(), 0, 0.0
                    if opts.image_every and (step % opts.image_every == 0 or step == total):
                        self._write_images(step, batch)
                    if step % opts.checkpoint_every == 0:
                        self.save(step)
                        last_saved = step
        except KeyboardInterrupt:
            self.print("Interrupted at step %d: writing a checkpoint before exiting." % step)
            if step > last_saved:
                self.save(step)
            self.writer.flush()
            raise
        if step > last_saved or self.manager.latest_checkpoint is None:
            path = self.save(step)
            self.print("Saved %s." % path)
        self.writer.flush()
        return last

    # ------------------------------------------------------------------ outputs
    def _log(self, step, total, metrics, start_time, start_step):
        with self.writer.as_default(step=step):
            for key, value in metrics.items():
                tf.summary.scalar(key, value)
        done = step - start_step
        rate = done / max(time.time() - start_time, 1e-9)
        eta = (total - step) / rate if rate > 0 else float("inf")
        width = 24
        filled = int(width * step / max(total, 1))
        bar = "[" + "=" * filled + ">" * (filled < width) + " " * (width - filled - (filled < width)) + "]"
        main = {k: v for k, v in metrics.items() if k.endswith("/total") or k.endswith("mean_attention")
                or k.endswith("au_mae")}
        self.print("step %d/%d %s %3d%% | %.2f it/s | ETA %s | %s | input wait %.0f%%"
                   % (step, total, bar, 100 * step // max(total, 1), rate, _format_seconds(eta),
                      " ".join("%s=%.4g" % (k, v) for k, v in sorted(main.items())),
                      100 * metrics.get("perf/input_wait_fraction", 0.0)))

    def _write_images(self, step, batch):
        grid = self.model.sample_grid(batch)
        with self.writer.as_default(step=step):
            tf.summary.image("samples/input_edited_attention_colour_reconstruction", grid[np.newaxis], step=step)
        folder = os.path.join(self.options.workdir, "samples")
        os.makedirs(folder, exist_ok=True)
        write_image_atomic(os.path.join(folder, "step_%08d.png" % step), grid)
        write_image_atomic(os.path.join(folder, "latest.png"), grid)


def _format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "%dh%02dm%02ds" % (hours, minutes, secs) if hours else "%dm%02ds" % (minutes, secs)


def write_json_atomic(path: str, payload: dict) -> None:
    """Write ``payload`` as indented JSON to ``path`` through a temporary file and a rename."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
