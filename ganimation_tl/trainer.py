"""A model-agnostic training loop: schedule, checkpoints and resume, summaries, progress.

The trainer owns the loop and nothing else. A model plugs in through a small interface:

* ``trackables() -> dict``: what to checkpoint (variable lists, optimizers);
* ``train_step(batch, step) -> dict[str, scalar]``: one iteration (GANimation runs a critic step
  and, every ``n_critic`` iterations, a generator step);
* ``set_learning_rate_epoch(epoch: float) -> dict[str, float]``: the learning-rate schedule;
* ``sample_grid(batch) -> uint8 [H, W, 3] | None``: an image panel for TensorBoard and the workdir
  (summary tag ``model.sample_grid_tag`` if set);
* optionally ``check_health(metrics, step) -> str | None``: a warning to log (GANimation warns
  when the attention mask saturates).

Resume rule: if ``<workdir>/checkpoints`` holds a checkpoint, restore the newest one (weights,
optimizer state, step counter) and continue at the same epoch and batch; otherwise start fresh.
Checkpoints are written by ``tf.train.CheckpointManager``; every other file the trainer writes
(sample grids, JSON) goes to a temporary name first and is renamed into place.

Distributed training (``strategy``, see :mod:`ganimation_tl.distribute`): each epoch's dataset (of
global batches) is split over the replicas with ``strategy.experimental_distribute_dataset``; the
model's ``train_step`` receives per-replica batches and returns metrics already reduced over the
replicas. Only the chief writes checkpoints, summaries and sample grids; the other workers take
part in each checkpoint save (it may run collective ops) but write it to a scratch folder deleted at
the end, restore from the chief's ``<workdir>/checkpoints`` (a folder all hosts must see), and agree
with the chief on when to stop (signals, ``max_minutes``) so no worker waits forever in a step.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from ganimation_tl import distribute
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
        max_minutes: optional wall-clock budget of one :meth:`Trainer.run` call, in minutes, counted
            from the start of its loop (after the restore): the loop stops after the first step that
            ends past it and writes a checkpoint. Unlike ``max_steps`` it is not cumulative, so
            re-running the command resumes and trains for another budget.
        log_every: steps between log lines and scalar summaries.
        image_every: steps between image grids (0 disables).
        checkpoint_every: steps between checkpoints (a checkpoint is also written at the end).
        keep_checkpoints: how many checkpoints CheckpointManager keeps.
    """

    workdir: str
    epochs: int
    steps_per_epoch: int
    max_steps: Optional[int] = None
    max_minutes: Optional[float] = None
    log_every: int = 10
    image_every: int = 100
    checkpoint_every: int = 500
    keep_checkpoints: int = 3

    @property
    def total_steps(self) -> int:
        """Last step of the run: ``epochs * steps_per_epoch``, capped by ``max_steps``."""
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
        strategy: the ``tf.distribute.Strategy`` the model was built under (default: none, i.e. the
            default strategy). With more than one replica, ``make_dataset`` must return a
            ``tf.data.Dataset`` of global batches.
    """

    def __init__(self, model, make_dataset: Callable, options: TrainerOptions,
                 print_fn: Callable[[str], None] = logging.info, strategy=None):
        self.model = model
        self.make_dataset = make_dataset
        self.options = options
        self.print = print_fn
        self.strategy = strategy
        self.is_chief = distribute.is_chief(strategy)
        self._multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.checkpoint = tf.train.Checkpoint(step=self.step, **model.trackables())
        self.chief_checkpoint_dir = os.path.join(options.workdir, "checkpoints")
        # Non-chief workers save into a scratch folder (removed at the end) and restore the chief's.
        self.scratch_dir = None if self.is_chief else distribute.worker_scratch_dir(options.workdir, strategy)
        save_dir = self.chief_checkpoint_dir if self.is_chief else os.path.join(self.scratch_dir, "checkpoints")
        self.manager = tf.train.CheckpointManager(self.checkpoint, save_dir, max_to_keep=options.keep_checkpoints)
        self.writer = None
        self.stop_requested: Optional[str] = None

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to stop after the current step (it then checkpoints and returns)."""
        self.stop_requested = reason

    def _install_signal_handlers(self):
        """SIGINT / SIGTERM -> stop cleanly after the current step. Returns the previous handlers."""
        import signal
        import threading
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}

        def handler(signum, frame):
            name = signal.Signals(signum).name
            if self.stop_requested:   # a second signal: stop now, the last checkpoint stays
                raise KeyboardInterrupt
            self.request_stop("received %s" % name)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        return previous

    # ------------------------------------------------------------------ resume
    def restore(self) -> int:
        """Restore the newest readable checkpoint; return the step to continue from.

        A checkpoint that cannot be read (truncated or corrupted files, e.g. after a crash or a full
        disk) is skipped with a warning and the previous one is tried; if none is readable the error
        says so rather than silently starting over.

        Raises:
            TrainingError: checkpoints exist but none of them can be restored.
        """
        self._restored_from = None
        if self.is_chief:
            candidates = list(reversed(self.manager.checkpoints))
        else:
            state = tf.train.get_checkpoint_state(self.chief_checkpoint_dir)
            candidates = list(reversed(state.all_model_checkpoint_paths)) if state else []
        if not candidates:
            self.print("No checkpoint in %s: starting from step 0." % self.chief_checkpoint_dir)
            return 0
        failures = []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except Exception as error:  # corrupted files surface as OpError, IndexError, ValueError, ...
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                failures.append("%s (%s)" % (path, reason[:200]))
                logging.warning("checkpoint %s is unreadable (%s); trying the previous one", path, reason[:200])
                continue
            step = int(self.step.numpy())
            self._restored_from = path
            epoch, batch = divmod(step, self.options.steps_per_epoch)
            if failures:
                self.print("Fell back to %s: newer checkpoint(s) unreadable: %s." % (path, "; ".join(failures)))
            self.print("Resumed from %s at step %d (epoch %d, batch %d of %d)."
                       % (path, step, epoch, batch, self.options.steps_per_epoch))
            return step
        raise TrainingError("no readable checkpoint in %s: %s; move the folder away to start over"
                            % (self.chief_checkpoint_dir, "; ".join(failures)))

    def save(self, step: int) -> str:
        """Write a checkpoint for ``step`` through ``CheckpointManager``.

        Raises:
            TrainingError: the write failed (e.g. disk full); the partial files are removed and the
                previous checkpoints are left as they were.
        """
        previous = self.manager.latest_checkpoint
        self.step.assign(step)
        try:
            return self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as error:
            self._remove_partial_checkpoint(step)
            raise TrainingError("could not write the checkpoint of step %d in %s (%s); disk full or not "
                                "writable? The previous checkpoint %s is intact."
                                % (step, self.manager.directory, str(error).strip().splitlines()[0][:200],
                                   previous)) from None

    def _clean_stale_temp_files(self) -> None:
        """Remove what a killed run can leave behind: ``.<name>.*.tmp`` files of atomic writes and
        TensorFlow's ``ckpt-N_temp`` folders. Final names are only ever complete files. A non-chief
        worker only clears its own scratch folder."""
        import glob
        if not self.is_chief:
            _remove_paths([self.scratch_dir])
            return
        workdir = self.options.workdir
        stale = glob.glob(os.path.join(workdir, ".*.tmp")) + glob.glob(os.path.join(workdir, "*", ".*.tmp"))
        stale += glob.glob(os.path.join(self.manager.directory, "*_temp*"))
        _remove_paths(stale)
        if stale:
            self.print("Removed %d temporary file(s) left by an interrupted run." % len(stale))

    def _remove_partial_checkpoint(self, step: int) -> None:
        import glob
        prefix = os.path.join(self.manager.directory, "ckpt-%d" % step)
        _remove_paths(glob.glob(prefix + ".*") + glob.glob(prefix + "_temp*"))

    # ------------------------------------------------------------------ loop
    def run(self) -> Dict[str, float]:
        """Train until ``options.total_steps``; returns the last logged metrics (floats)."""
        opts = self.options
        os.makedirs(opts.workdir, exist_ok=True)
        self._clean_stale_temp_files()
        self.writer = (tf.summary.create_file_writer(os.path.join(opts.workdir, "tb")) if self.is_chief
                       else tf.summary.create_noop_writer())
        step = self.restore()
        if self._multi_worker:
            self._check_workers_agree(step)
        total = opts.total_steps
        if step >= total:
            self.print("Nothing to do: step %d already reached the last step %d." % (step, total))
            return {}
        last: Dict[str, float] = {}
        start_time, start_step = time.time(), step
        window_time, window_steps, input_wait = time.time(), 0, 0.0
        last_saved, saved_in_loop = step, False
        self.stop_requested = None
        previous_handlers = self._install_signal_handlers()
        deadline = None if opts.max_minutes is None else start_time + 60.0 * float(opts.max_minutes)
        out_of_time = False
        try:
            while step < total and not out_of_time:
                epoch, skip = divmod(step, opts.steps_per_epoch)
                iterator = iter(self._distribute(self.make_dataset(epoch, skip)))
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
                    if opts.image_every and self.is_chief and (step % opts.image_every == 0 or step == total):
                        self._write_images(step, batch)
                    if step % opts.checkpoint_every == 0:
                        self.save(step)
                        last_saved, saved_in_loop = step, True
                    # Decide once from snapshots: a signal or the clock must not change it below.
                    requested = self.stop_requested
                    timed_out = deadline is not None and time.time() >= deadline
                    if self._multi_worker and self._any_worker(bool(requested) or timed_out):
                        # Every worker stops at the same step (else the others wait for it forever).
                        if not (requested or timed_out):
                            requested = "another worker stopped (signal or time budget)"
                    if requested:
                        out_of_time = True
                        self.print("Stopping at step %d of %d: %s. Writing a checkpoint." % (step, total, requested))
                        break
                    if timed_out:
                        out_of_time = True
                        self.print("Time budget of %g minutes used up at step %d of %d."
                                   % (opts.max_minutes, step, total))
                        break
        except KeyboardInterrupt:
            self.print("Interrupted at step %d; the last checkpoint is %s." % (step, self.manager.latest_checkpoint))
            raise
        finally:
            import signal
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            self.writer.close()
        # (Decided from state every worker shares, so all workers take part in the same saves.)
        if step > last_saved or (self._restored_from is None and not saved_in_loop):
            path = self.save(step)
            self.print("Saved %s." % path)
        if not self.is_chief:
            _remove_paths([self.scratch_dir])
        return last

    # ------------------------------------------------------------------ distribution
    def _distribute(self, dataset):
        """Split a dataset of global batches over the strategy's replicas (no-op without one)."""
        strategy = self.strategy
        if strategy is None or not isinstance(dataset, tf.data.Dataset) or not (
                strategy.num_replicas_in_sync > 1 or self._multi_worker
                or isinstance(strategy, tf.distribute.MirroredStrategy)):
            return dataset
        options = tf.data.Options()
        # Elements are generated in memory (no files to shard): each worker keeps its share of every batch.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return strategy.experimental_distribute_dataset(dataset.with_options(options))

    def _sum_over_replicas(self, value: float) -> float:
        """Sum of ``value`` over all replicas of all workers (a collective: every worker must call it)."""
        if not hasattr(self, "_sum_fn"):
            strategy = self.strategy

            @tf.function
            def sum_fn(value):
                per_replica = strategy.run(lambda v: tf.identity(v), args=(value,))
                return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

            self._sum_fn = sum_fn
        return float(self._sum_fn(tf.constant(float(value), tf.float64)).numpy())

    def _any_worker(self, flag: bool) -> bool:
        """True if ``flag`` is True on any worker (every worker must call it)."""
        return self._sum_over_replicas(1.0 if flag else 0.0) > 0

    def _check_workers_agree(self, step: int) -> None:
        """Raise on every worker if the workers restored different steps (then their loops would
        wait on each other forever)."""
        mean = self._sum_over_replicas(step) / self.strategy.num_replicas_in_sync
        if mean != step:
            raise TrainingError("the workers restored different checkpoints (this worker: step %d, mean over "
                                "workers: %g); the workdir %s must be on storage every worker can read"
                                % (step, mean, self.options.workdir))

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
        if grid is None:  # the model has no image panel
            return
        tag = getattr(self.model, "sample_grid_tag", "samples/input_edited_attention_colour_reconstruction")
        with self.writer.as_default(step=step):
            tf.summary.image(tag, grid[np.newaxis], step=step)
        folder = os.path.join(self.options.workdir, "samples")
        try:
            os.makedirs(folder, exist_ok=True)
            write_image_atomic(os.path.join(folder, "step_%08d.png" % step), grid)
            write_image_atomic(os.path.join(folder, "latest.png"), grid)
        except OSError as error:
            raise TrainingError("could not write the sample grid of step %d in %s (%s); disk full or not "
                                "writable? The last checkpoint is %s."
                                % (step, folder, error, self.manager.latest_checkpoint)) from None


def _remove_paths(paths) -> None:
    """Delete files and folders, ignoring ones already gone."""
    import shutil
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            try:
                os.remove(path)
            except OSError:
                pass


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
