"""Visual de-animation (other_models/vda.py): smoke run, physics/renderer against the NumPy simulator,
gradients through the engines, bad input."""
from pathlib import Path

import numpy as np
import pytest

from ganimation_tl.errors import InputError

from sibling_helpers import model_flags

REPO = Path(__file__).resolve().parents[1]


def _flag_values(*args):
    return model_flags("vda", *args, model=None)


def test_two_step_smoke_run(tmp_path):
    from other_models import vda
    fv = _flag_values("--flagfile=%s" % (REPO / "configs" / "vda_debug.cfg"), "--max_steps=2",
                      "--batch_size=4", "--vda_test_clips=8", "--workdir=%s" % tmp_path, "--log_every=1",
                      "--image_every=2")
    metrics = vda.train(fv)
    assert all(np.isfinite(v) for v in metrics.values())
    assert metrics["eval/center_guess_position_rmse"] > 0 and "vda/reconstruction" in metrics
    assert (tmp_path / "checkpoints" / "checkpoint").is_file()
    assert (tmp_path / "evaluation.json").is_file()
    assert (tmp_path / "samples" / "latest.png").is_file()


def test_tf_physics_matches_simulator_with_walls_and_collisions():
    import tensorflow as tf
    from other_models.vda import BilliardsSimulator, physics_step
    sim = BilliardsSimulator(size=32, num_balls=2, radius=3.0, collisions=True)
    # ball 0 about to hit the left wall; balls 2/3 of clip 1 head-on, 5 px apart
    state = np.array([[[3.5, 10.0, -1.0, 0.5], [20.0, 20.0, 0.0, 1.0]],
                      [[10.0, 16.0, 1.0, 0.0], [15.0, 16.0, -1.0, 0.0]]])
    expected = state.copy()
    p, v = tf.constant(state[..., :2], tf.float32), tf.constant(state[..., 2:], tf.float32)
    for _ in range(3):
        expected = sim.step(expected)
        p, v = physics_step(p, v, 32, 3.0, True)
    np.testing.assert_allclose(p.numpy(), expected[..., :2], atol=1e-5)
    np.testing.assert_allclose(v.numpy(), expected[..., 2:], atol=1e-5)
    # hand-computed: the wall reflects ball 0 at x = 3 (2.5 -> 3.5) and flips vx
    first = sim.step(state)
    assert first[0, 0, 0] == pytest.approx(3.5) and first[0, 0, 2] == pytest.approx(1.0)
    # head-on equal masses exchange velocities
    assert first[1, 0, 2] == pytest.approx(-1.0) and first[1, 1, 2] == pytest.approx(1.0)


def test_renderer_matches_numpy_and_formula():
    import tensorflow as tf
    from other_models.vda import render, render_numpy
    pos = np.array([[[5.0, 7.0], [20.5, 11.25]]])
    out = render(tf.constant(pos, tf.float32), 32, 3.0, 0.5).numpy()
    assert out.shape == (1, 32, 32, 2)
    np.testing.assert_allclose(out, render_numpy(pos, 32, 3.0, 0.5), atol=1e-5)
    # pixel (row 7, col 5) is the centre of ball 0: sigmoid(3 / 0.5)
    assert out[0, 7, 5, 0] == pytest.approx(1 / (1 + np.exp(-6.0)), rel=1e-5)
    assert out[0, 7, 8, 0] == pytest.approx(0.5, abs=1e-4)   # on the rim


def test_gradient_flows_through_physics_and_renderer():
    """d(reconstruction)/d(initial velocity) points towards the true velocity."""
    import tensorflow as tf
    from other_models.vda import render, rollout
    true = rollout(tf.constant([[[10.0, 16.0]]]), tf.constant([[[1.0, 0.0]]]), 6, 32, 3.0, False)
    target = render(true, 32, 3.0, 0.5)
    v = tf.Variable([[[0.6, 0.0]]])
    with tf.GradientTape() as tape:
        pred = render(rollout(tf.constant([[[10.0, 16.0]]]), v, 6, 32, 3.0, False), 32, 3.0, 1.0)
        loss = tf.reduce_mean(tf.square(pred - target))
    grad = tape.gradient(loss, v).numpy()
    assert grad[0, 0, 0] < 0   # descending increases vx towards 1.0


def test_blur_preserves_mass_and_sigma_zero_is_identity():
    import tensorflow as tf
    from other_models.vda import gaussian_blur
    img = np.zeros((1, 32, 32, 1), np.float32)
    img[0, 16, 16, 0] = 1.0
    np.testing.assert_allclose(gaussian_blur(tf.constant(img), 0.0).numpy(), img, atol=1e-6)
    blurred = gaussian_blur(tf.constant(img), 2.0).numpy()
    assert blurred.sum() == pytest.approx(1.0, rel=1e-4) and blurred.max() < 0.1


def test_simulator_keeps_balls_inside_and_speed_constant():
    from other_models.vda import BilliardsSimulator
    sim = BilliardsSimulator(size=32, num_balls=2, radius=3.0, collisions=False)
    frames, states = sim.clips(np.random.default_rng(0), 16, 40)
    assert frames.shape == (16, 40, 32, 32, 2) and states.shape == (16, 40, 2, 4)
    assert states[..., :2].min() >= 3.0 - 1e-5 and states[..., :2].max() <= 28.0 + 1e-5
    speed = np.linalg.norm(states[..., 2:], axis=-1)
    np.testing.assert_allclose(speed, np.broadcast_to(speed[:, :1], speed.shape), rtol=1e-5)


def test_supervised_steps_reduce_state_loss():
    from other_models.vda import VDAConfig, VisualDeanimation, training_batches
    config = VDAConfig(vda_stage="supervised", batch_size=16, vda_steps_per_epoch=1, epochs=1, vda_frames=4)
    model = VisualDeanimation(config)
    batch = next(training_batches(config, 0, 0))
    first = float(model.train_step(batch, 0)["vda/total"])
    for step in range(1, 25):
        last = float(model.train_step(batch, step)["vda/total"])
    assert last < 0.5 * first


def test_bad_stage_is_input_error(tmp_path):
    from other_models import vda
    fv = _flag_values("--vda_stage=reinforce", "--workdir=%s" % tmp_path)
    with pytest.raises(InputError, match="vda_stage"):
        vda.train(fv)
    fv = _flag_values("--vda_num_balls=7", "--workdir=%s" % tmp_path)
    with pytest.raises(InputError, match="vda_num_balls"):
        vda.train(fv)
