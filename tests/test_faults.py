"""Faults: NaN losses, corrupted or unwritable checkpoints, full disks, SIGTERM/SIGINT and SIGKILL."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ganimation_tl.errors import TrainingError
from ganimation_tl.trainer import Trainer, TrainerOptions

REPO = Path(__file__).resolve().parents[1]


class ToyModel:
    """A minimal model for the trainer interface: one weight vector, a loss that can be made NaN."""

    def __init__(self, nan_at=None, size=1000):
        self.w = tf.Variable(tf.zeros([size]), name="w")
        self.optimizer = tf.keras.optimizers.Adam(0.1)
        self.optimizer.build([self.w])
        self.nan_at = nan_at

    def trackables(self):
        return {"weights": [self.w], "optimizer": self.optimizer}

    def set_learning_rate_epoch(self, epoch):
        return {"lr": 0.1}

    def train_step(self, batch, step):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(self.w - batch))
        self.optimizer.apply_gradients([(tape.gradient(loss, self.w), self.w)])
        if self.nan_at is not None and step >= self.nan_at:
            self.w.assign(self.w * np.nan)
            loss = loss * np.nan
        return {"toy/loss": loss}

    def sample_grid(self, batch):
        return np.zeros((4, 4, 3), np.uint8)


def toy_trainer(workdir, model, max_steps, checkpoint_every=2):
    options = TrainerOptions(workdir=str(workdir), epochs=100, steps_per_epoch=5, max_steps=max_steps,
                             log_every=1, image_every=0, checkpoint_every=checkpoint_every)
    data = lambda epoch, skip: [tf.ones(model.w.shape) * (epoch + 1)] * (5 - skip)
    return Trainer(model, data, options, print_fn=lambda s: None)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = toy_trainer(tmp_path, ToyModel(nan_at=5), max_steps=20)
    with pytest.raises(TrainingError, match="non-finite at step 5.*ckpt-4"):
        trainer.run()
    assert trainer.manager.latest_checkpoint.endswith("ckpt-4")
    fresh = toy_trainer(tmp_path, ToyModel(), max_steps=20)
    assert fresh.restore() == 4
    assert np.isfinite(fresh.model.w.numpy()).all()


def test_corrupted_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    messages = []
    trainer = toy_trainer(tmp_path, ToyModel(), max_steps=6)
    trainer.run()
    newest = Path(trainer.manager.latest_checkpoint)
    data = next(newest.parent.glob(newest.name + ".data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])     # truncate
    again = toy_trainer(tmp_path, ToyModel(), max_steps=8)
    again.print = messages.append
    assert again.restore() == 4
    assert any("Fell back to" in m and "ckpt-6" in m for m in messages)
    again.run()
    assert again.manager.latest_checkpoint.endswith("ckpt-8")


def test_failed_checkpoint_write_is_a_clear_error_and_keeps_the_previous(tmp_path, monkeypatch):
    trainer = toy_trainer(tmp_path, ToyModel(), max_steps=2)
    trainer.run()
    def fail(*args, **kwargs):
        (tmp_path / "checkpoints" / "ckpt-4.index").write_bytes(b"partial")
        raise OSError(28, "No space left on device")
    again = toy_trainer(tmp_path, ToyModel(), max_steps=6)
    monkeypatch.setattr(again.manager, "save", fail)
    with pytest.raises(TrainingError, match="disk full.*ckpt-2 is intact"):
        again.run()
    assert not (tmp_path / "checkpoints" / "ckpt-4.index").exists()
    assert toy_trainer(tmp_path, ToyModel(), max_steps=6).restore() == 2


def test_really_full_disk(tmp_path):
    """A 2 MB tmpfs: the second checkpoint does not fit."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        trainer = toy_trainer(mount, ToyModel(size=50_000), max_steps=2)    # ~600 kB per checkpoint
        trainer.run()
        filler = mount / "filler"
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        filler.write_bytes(b"\0" * max(free - 100_000, 0))
        again = toy_trainer(mount, ToyModel(size=50_000), max_steps=4)
        with pytest.raises(TrainingError, match="could not write the checkpoint of step 4"):
            again.run()
        filler.unlink()
        assert toy_trainer(mount, ToyModel(size=50_000), max_steps=4).restore() == 2
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_stale_temp_files_of_a_killed_run_are_removed(tmp_path):
    (tmp_path / "samples").mkdir(parents=True)
    (tmp_path / "samples" / ".latest.png.abc123.tmp").write_bytes(b"half")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt-9_temp").mkdir()
    toy_trainer(tmp_path, ToyModel(), max_steps=1).run()
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*_temp*"))


# ---------------------------------------------------------------------------------------------- processes
def start_training(workdir, *extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    args = [sys.executable, str(REPO / "train.py"), "--flagfile=%s" % (REPO / "configs" / "ganimation_debug.cfg"),
            "--workdir=%s" % workdir, "--synthetic_faces=8", "--epochs=100000", "--decay_epochs=1",
            "--checkpoint_every=1", "--image_every=3", "--log_every=1", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(REPO))


def wait_for(process, text, timeout=120):
    lines, deadline = [], time.time() + timeout
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError("did not see %r; output:\n%s" % (text, "".join(lines[-30:])))


def read_state(workdir):
    """(step, critic Adam iterations, generator Adam iterations) of the newest checkpoint."""
    path = tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    if path is None:
        return None
    reader = tf.train.load_checkpoint(path)
    get = lambda key: int(reader.get_tensor(key))
    return (get("step/.ATTRIBUTES/VARIABLE_VALUE"), get("critic_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"),
            get("generator_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_sigterm_and_sigint_stop_cleanly_with_a_checkpoint(sig, tmp_path):
    process = start_training(tmp_path, "--checkpoint_every=1000")
    wait_for(process, "step 3/")
    process.send_signal(sig)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out[-2000:]
    assert "received %s" % sig.name in out
    step, critic_iters, generator_iters = read_state(tmp_path)
    assert step >= 3 and critic_iters == step and generator_iters == (step + 4) // 5


@pytest.mark.parametrize("kills", [5, pytest.param(20, marks=pytest.mark.slow)])
def test_sigkill_repeatedly_always_resumes_from_the_last_checkpoint(tmp_path, kills):
    """Kill -9 at random moments (start-up, mid-step, mid-checkpoint, mid-image); every restart resumes at
    the newest checkpoint's step with matching optimizer state, and no final-named file is half-written.
    The 20-kill run (about 3 minutes) is marked ``slow``: ``python -m pytest -m slow``."""
    rng = random.Random(0)
    expected = None
    resumed_steps = []
    for attempt in range(kills):
        process = start_training(tmp_path)
        lines = wait_for(process, "starting from step 0" if expected is None else "Resumed from")
        if expected is not None:
            line = [l for l in lines if "Resumed from" in l][-1]
            resumed_steps.append(int(line.split(" at step ")[1].split()[0]))
            assert resumed_steps[-1] == expected, line
        if rng.random() < 0.8:                 # else: kill during start-up / restore
            wait_for(process, "step ")         # the first step of this run finished
            time.sleep(rng.uniform(0.0, 1.5))  # then mid-step, mid-checkpoint or mid-image
        process.kill()
        process.wait(timeout=60)
        process.stdout.close()
        state = read_state(tmp_path)
        if state is not None:
            step, critic_iters, generator_iters = state
            assert critic_iters == step and generator_iters == (step + 4) // 5
            expected = step
        else:
            expected = None
        for png in (tmp_path / "samples").glob("*.png") if (tmp_path / "samples").exists() else []:
            from PIL import Image
            Image.open(png).load()        # every final-named image is complete
    assert len(resumed_steps) >= kills * 3 // 4 and resumed_steps[-1] > 0, resumed_steps
    assert resumed_steps == sorted(resumed_steps)
