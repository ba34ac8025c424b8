"""The trainer's wall-clock budget (``TrainerOptions.max_minutes`` / ``--max_minutes``)."""
import time

import numpy as np
import pytest
import tensorflow as tf

from ganimation_tl.trainer import Trainer, TrainerOptions


class SlowModel:
    """A stand-in model whose step takes ``seconds`` and increments a variable."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.weight = tf.Variable(0.0)

    def trackables(self):
        return {"weights": [self.weight]}

    def train_step(self, batch, step):
        time.sleep(self.seconds)
        self.weight.assign_add(1.0)
        return {"loss": tf.constant(1.0)}

    def set_learning_rate_epoch(self, epoch):
        return {}

    def sample_grid(self, batch):
        return np.zeros((4, 4, 3), np.uint8)


def _data(epoch, skip):
    return [{"x": 0}] * (10 - skip)


def test_max_minutes_stops_early_and_checkpoints(tmp_path):
    model = SlowModel(0.05)
    options = TrainerOptions(workdir=str(tmp_path), epochs=100, steps_per_epoch=10, max_minutes=0.3 / 60,
                             log_every=1000, image_every=0, checkpoint_every=1000)
    lines = []
    t = time.time()
    Trainer(model, _data, options, print_fn=lines.append).run()
    elapsed = time.time() - t
    steps = int(model.weight.numpy())
    assert 3 <= steps < 20, steps          # ~6 steps of 0.05 s in 0.3 s; far below the 1000 allowed
    assert elapsed < 3.0
    assert any("Time budget" in line for line in lines)
    # The checkpoint holds the stopping step, and a second run resumes from it for another budget.
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-%d" % steps)
    model2 = SlowModel(0.05)
    trainer2 = Trainer(model2, _data, options, print_fn=lambda s: None)
    trainer2.run()
    assert int(trainer2.step.numpy()) > steps


def test_without_budget_runs_all_steps(tmp_path):
    model = SlowModel(0.0)
    options = TrainerOptions(workdir=str(tmp_path), epochs=2, steps_per_epoch=10, log_every=1000, image_every=0)
    Trainer(model, _data, options, print_fn=lambda s: None).run()
    assert int(model.weight.numpy()) == 20



def test_train_rejects_non_positive_max_minutes(tmp_path):
    from absl import flags
    from ganimation_tl import ganimation_task
    from ganimation_tl.errors import InputError
    values = flags.FlagValues()
    ganimation_task.define_flags(values)
    values(["train.py", "--workdir=%s" % tmp_path, "--max_minutes=0"])
    with pytest.raises(InputError, match="--max_minutes must be positive"):
        ganimation_task.train(values)
    assert not (tmp_path / "checkpoints").exists()
