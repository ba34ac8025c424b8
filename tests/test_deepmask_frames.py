"""Tests of other_models/deepmask_frames.py (DeepMask adapted to frame prediction)."""
import os
from pathlib import Path

import numpy as np
import pytest
from absl import flags

from ganimation_tl.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
MNIST = SHARED / "data" / "digits" / "mnist.pkl.gz"


def _small_config(**kw):
    from other_models.deepmask_frames import DeepMaskFramesConfig
    base = dict(batch_size=4, deepmask_frames_nf=8, deepmask_frames_bottleneck=32)
    base.update(kw)
    return DeepMaskFramesConfig(**base)


@pytest.mark.skipif(not MNIST.is_file(), reason="../shared/data/digits/mnist.pkl.gz not beside the checkout")
def test_two_step_smoke_run_through_registry(tmp_path, monkeypatch):
    from ganimation_tl import registry
    import other_models.deepmask_frames  # noqa: F401  (registers the model)
    monkeypatch.chdir(REPO)
    fv = flags.FlagValues()
    registry.get("deepmask_frames").define_flags(fv)
    fv(["test", "--flagfile=configs/deepmask_frames_debug.cfg", "--workdir=%s" % tmp_path,
        "--mnist_path=%s" % MNIST, "--max_steps=2", "--batch_size=4", "--deepmask_frames_nf=8",
        "--log_every=1", "--image_every=2"], known_only=True)
    metrics = registry.get("deepmask_frames").train(fv)
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert any(name.startswith("ckpt-2") for name in os.listdir(tmp_path / "checkpoints"))
    assert (tmp_path / "samples" / "latest.png").is_file()


def test_predictor_shapes_and_replicated_heads():
    from other_models.deepmask_frames import DeepMaskFrames
    c = _small_config()
    model = DeepMaskFrames(c)
    x = np.random.default_rng(0).uniform(size=(3, 32, 32, 2)).astype(np.float32)
    pred = model.predict(x)
    assert pred.shape == (3, 32, 32, 4) and 0 < pred.min() and pred.max() < 1
    # K replicated kernels: the mask-head weight has K * oSz^2 outputs
    head = [w for w in model.net.trainable_weights if "mask_heads" in w.name and len(w.shape) == 2][0]
    assert tuple(head.shape) == (32, 4 * 16 * 16)
    # the K frames differ (distinct kernels, not one copied head)
    assert np.abs(pred[..., 0] - pred[..., 3]).mean() > 0


def test_motion_energy_and_split_hand_computed():
    from other_models.deepmask_frames import motion_energy, split_sequences
    seq = np.zeros((1, 4, 2, 2, 1), np.float32)
    seq[0, 1] = 1.0       # frame 1 all ones
    seq[0, 3, 0, 0] = 1.0  # frame 3 one pixel
    # past = 2: future frames 2, 3; e = mean|x2 - x1| = 1, mean|x3 - x2| = 0.25
    np.testing.assert_allclose(motion_energy(seq, 2), [[1.0, 0.25]])
    inputs, targets = split_sequences(seq, 2)
    assert inputs.shape == (1, 2, 2, 2) and targets.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(inputs[0, ..., 1], np.ones((2, 2)))
    np.testing.assert_array_equal(targets[0, ..., 1], seq[0, 3, ..., 0])


def test_training_reduces_frame_loss():
    from other_models.deepmask_frames import DeepMaskFrames, make_batch
    from ganimation_tl.datasets.moving_mnist import moving_shapes
    c = _small_config(batch_size=8, learning_rate=2e-3)
    model = DeepMaskFrames(c)
    batch = make_batch(c, moving_shapes(8, length=6, image_size=32, shape_size=10, seed=0).frames)
    first = float(model.train_step(batch, 0)["deepmask_frames/frame_mse"])
    for s in range(1, 30):
        last = model.train_step(batch, s)
    assert float(last["deepmask_frames/frame_mse"]) < 0.5 * first


def test_bad_inputs(tmp_path):
    from other_models import deepmask_frames as dmf
    with pytest.raises(ValueError, match="multiple of 16"):
        dmf.DeepMaskFramesConfig(image_size=40)
    fv = flags.FlagValues()
    dmf.define_flags(fv)
    fv(["test", "--workdir=%s" % tmp_path, "--mnist_path=%s" % (tmp_path / "nope.pkl.gz")], known_only=True)
    with pytest.raises(InputError, match="--mnist_path"):
        dmf.train(fv)
