"""Tests of other_models/drnet.py (DrNet, Denton and Birodkar 2017)."""
import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from absl import flags

from ganimation_tl.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
MNIST = SHARED / "data" / "digits" / "mnist.pkl.gz"
needs_mnist = pytest.mark.skipif(not MNIST.is_file(), reason="../shared/data/digits/mnist.pkl.gz not beside the checkout")


def _flags(tmp_path, *extra):
    from other_models import drnet
    fv = flags.FlagValues()
    drnet.define_flags(fv)
    fv(["test", "--flagfile=%s" % (REPO / "configs" / "drnet_debug.cfg"), "--workdir=%s" % tmp_path,
        "--mnist_path=%s" % MNIST] + list(extra), known_only=True)
    return fv


def _small_config(**kw):
    from other_models.drnet import DrNetConfig
    base = dict(batch_size=4, drnet_nf=8, drnet_content_dim=6, drnet_pose_dim=3, drnet_sd_nf=8, drnet_lstm_hidden=8,
                drnet_n_past=3, drnet_n_future=2, drnet_max_step=3)
    base.update(kw)
    return DrNetConfig(**base)


@needs_mnist
def test_two_step_smoke_run_through_registry(tmp_path, monkeypatch):
    from ganimation_tl import registry
    import other_models.drnet  # noqa: F401  (registers the model)
    monkeypatch.chdir(REPO)
    fv = _flags(tmp_path, "--max_steps=2", "--batch_size=4", "--drnet_nf=8", "--drnet_epoch_size=1", "--epochs=1",
                "--drnet_lstm_epochs=1", "--log_every=1", "--image_every=0")
    metrics = registry.get("drnet").train(fv)
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert "drnet/reconstruction" in metrics and "lstm/pose_mse" in metrics   # both phases ran
    assert any(name.startswith("ckpt-2") for name in os.listdir(tmp_path / "checkpoints"))


def test_maximally_uncertain_loss_matches_numpy():
    import tensorflow as tf
    from other_models.drnet import maximally_uncertain_loss, bce_with_logits
    logits = np.array([[0.0], [2.0], [-1.5]], np.float32)
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    expected = np.mean(0.5 * softplus(-logits) + 0.5 * softplus(logits))
    np.testing.assert_allclose(float(maximally_uncertain_loss(tf.constant(logits))), expected, rtol=1e-5)
    np.testing.assert_allclose(float(maximally_uncertain_loss(tf.zeros([2, 1]))), np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(float(bce_with_logits(tf.constant([[0.0]]), tf.constant([[1.0]]))), np.log(2.0), rtol=1e-6)


def test_networks_shapes_ranges_and_lstm_step_against_numpy():
    import tensorflow as tf
    from other_models.drnet import DrNet
    c = _small_config()
    model = DrNet(c, channels=2)
    x = np.random.default_rng(0).uniform(size=(5, 32, 32, 2)).astype(np.float32)
    h_c, h_p = model.encode(x)
    assert h_c.shape == (5, 6) and h_p.shape == (5, 3) and np.abs(h_c).max() < 1 and np.abs(h_p).max() < 1
    out = model.decode(h_c, h_p)
    assert out.shape == (5, 32, 32, 2) and 0 < out.min() and out.max() < 1
    assert model.scene_probability(h_p, h_p).shape == (5,)
    # one LSTM step against a NumPy LSTM with the same weights
    lstm = model.lstm
    inp = np.random.default_rng(1).normal(size=(2, 9)).astype(np.float32)
    y, _ = lstm.step(tf.constant(inp), lstm.zero_state(2))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    a = inp @ lstm.w_in.numpy() + lstm.b_in.numpy()
    w, b = lstm.cells[0][0].numpy(), lstm.cells[0][1].numpy()
    i, f, o, g = np.split(np.concatenate([a, np.zeros((2, 8))], -1) @ w + b, 4, axis=-1)
    cell = sig(i) * np.tanh(g)
    h = sig(o) * np.tanh(cell)
    np.testing.assert_allclose(y.numpy(), np.tanh(h @ lstm.w_out.numpy() + lstm.b_out.numpy()), atol=1e-5)
    seq = np.random.default_rng(2).uniform(size=(2, 5, 32, 32, 2)).astype(np.float32)
    assert model.predict(seq).shape == (2, 2, 32, 32, 2)


def test_training_reduces_reconstruction_on_fixed_batch():
    from other_models.drnet import DrNet, sample_frame_tuples
    from ganimation_tl.datasets.moving_mnist import moving_shapes
    c = _small_config(batch_size=8)
    model = DrNet(c, channels=2)
    frames = moving_shapes(8, length=5, image_size=32, shape_size=10, num_shapes=2, separate_channels=True, seed=0).frames
    batch = {"frames4": sample_frame_tuples(frames, 3, np.random.default_rng(0))}
    first = float(model.train_step(batch, 0)["drnet/reconstruction"])
    for s in range(1, 25):
        last = model.train_step(batch, s)
    assert float(last["drnet/reconstruction"]) < 0.7 * first
    assert 0 <= float(last["scene/accuracy"]) <= 1


def test_sample_frame_tuples_offsets():
    from other_models.drnet import sample_frame_tuples
    t_len = 10
    frames = np.tile(np.arange(t_len, dtype=np.float32)[None, :, None, None, None], (64, 1, 2, 2, 1))
    out = sample_frame_tuples(frames, 4, np.random.default_rng(0))
    assert out.shape == (4, 64, 2, 2, 1)
    k = out[2, :, 0, 0, 0] - out[0, :, 0, 0, 0]
    assert k.min() >= 1 and k.max() <= 4


def test_config_validation_and_missing_data(tmp_path):
    from other_models.drnet import DrNetConfig
    from other_models import drnet
    with pytest.raises(ValueError, match="image_size"):
        DrNetConfig(image_size=48)
    with pytest.raises(ValueError, match="max_step"):
        DrNetConfig(drnet_max_step=10)
    fv = flags.FlagValues()
    drnet.define_flags(fv)
    fv(["test", "--flagfile=%s" % (REPO / "configs" / "drnet_debug.cfg"), "--workdir=%s" % tmp_path,
        "--mnist_path=%s" % (tmp_path / "missing" / "mnist.pkl.gz")], known_only=True)
    with pytest.raises(InputError, match="--mnist_path"):
        drnet.train(fv)
    fv2 = flags.FlagValues()
    drnet.define_flags(fv2)
    fv2(["test", "--drnet_pose_dim=0"], known_only=True)
    with pytest.raises(InputError, match="drnet_pose_dim"):
        drnet.train(fv2)


def test_skip_connections_shapes_and_use():
    """--drnet_skips: E_c returns the code plus one feature map per block; D uses them (changing a skip map
    changes the frame), encode/decode/predict work on the (code, maps) tuple, and training still lowers the loss."""
    from other_models.drnet import DrNet, content_code, sample_frame_tuples
    from ganimation_tl.datasets.moving_mnist import moving_shapes
    c = _small_config(drnet_skips=True, batch_size=8)
    model = DrNet(c, channels=2)
    x = np.random.default_rng(0).uniform(size=(3, 32, 32, 2)).astype(np.float32)
    h_c, h_p = model.encode(x)
    assert isinstance(h_c, tuple) and [t.shape for t in h_c] == [(3, 6), (3, 16, 16, 8), (3, 8, 8, 16), (3, 4, 4, 32)]
    assert content_code(h_c).shape == (3, 6)
    out = model.decode(h_c, h_p)
    assert out.shape == (3, 32, 32, 2)
    changed = model.decode((h_c[0], h_c[1] * 0.0, h_c[2], h_c[3]), h_p)
    assert np.abs(changed - out).max() > 1e-4
    assert model.predict(np.random.default_rng(2).uniform(size=(2, 5, 32, 32, 2)).astype(np.float32)).shape \
        == (2, 2, 32, 32, 2)
    frames = moving_shapes(8, length=5, image_size=32, shape_size=10, num_shapes=2, separate_channels=True, seed=0).frames
    batch = {"frames4": sample_frame_tuples(frames, 3, np.random.default_rng(0))}
    first = float(model.train_step(batch, 0)["drnet/reconstruction"])
    for s in range(1, 25):
        last = model.train_step(batch, s)
    assert float(last["drnet/reconstruction"]) < 0.7 * first


def _lstm_loss_by_hand(model, seqs, feedback):
    """The LSTM's pose MSE on seqs ([B, T, S, S, C]) computed step by step with the current weights."""
    import tensorflow as tf
    c = model.config
    b, t_len = seqs.shape[:2]
    _, h_p = model.encode(seqs.reshape((-1,) + seqs.shape[2:]))
    h_p = h_p.reshape(b, t_len, -1)
    h_c, _ = model.encode(seqs[:, c.drnet_n_past - 1])
    state = model.lstm.zero_state(b)
    pose, errs = tf.constant(h_p[:, 0]), []
    for t in range(1, t_len):
        y, state = model.lstm.step(tf.concat([tf.constant(h_c), pose], -1), state)
        errs.append(np.mean((y.numpy() - h_p[:, t]) ** 2))
        pose = tf.constant(h_p[:, t]) if (t < c.drnet_n_past or not feedback) else y
    return float(np.mean(errs))


def _drifting_frames_model(**overrides):
    """A small DrNet with a residual LSTM (lr 0.01, batch 6; ``overrides`` on top) after 10 DrNet steps on 6
    sequences ``[6, 5, 32, 32, 2]`` of frames drifting over time, so that the pose codes follow the drift.
    Returns (config, model, sequences, the NumPy generator that drew them)."""
    from other_models.drnet import DrNet, sample_frame_tuples
    c = _small_config(**{"drnet_lstm_residual": True, "drnet_lstm_lr": 0.01, "batch_size": 6, **overrides})
    model = DrNet(c, channels=2)
    rng = np.random.default_rng(0)
    seqs = np.clip(rng.uniform(size=(6, 1, 32, 32, 2)) + 0.1 * np.arange(5)[None, :, None, None, None]
                   * rng.normal(size=(6, 1, 32, 32, 2)), 0, 1).astype(np.float32)
    for s in range(10):
        model.train_step({"frames4": sample_frame_tuples(seqs, 3, np.random.default_rng(s))}, s)
    return c, model, seqs, rng


@pytest.mark.parametrize("feedback", [False, True])
def test_lstm_residual_and_feedback_losses(feedback):
    """--drnet_lstm_residual: the untrained LSTM repeats the last pose exactly (predict() = decoding the last
    observed frame's pose); --drnet_lstm_feedback: the training loss is the free-running one (own predictions fed
    back after n_past), else teacher-forced; both match a step-by-step computation, and training lowers them."""
    c, model, seqs, _ = _drifting_frames_model(drnet_lstm_feedback=feedback)
    # untrained residual LSTM: every predicted frame decodes the pose of frame n_past - 1
    h_c, h_p = model.encode(seqs[:, c.drnet_n_past - 1])
    pred = model.predict(seqs)
    np.testing.assert_allclose(pred, np.repeat(model.decode(h_c, h_p)[:, None], 2, axis=1), atol=1e-5)
    by_hand = _lstm_loss_by_hand(model, seqs, feedback)
    other = _lstm_loss_by_hand(model, seqs, not feedback)
    assert abs(by_hand - other) > 0.1 * by_hand     # the two protocols differ on these sequences
    first = float(model.train_step({"sequences": seqs}, 0)["lstm/pose_mse"])
    np.testing.assert_allclose(first, by_hand, rtol=1e-4)
    for s in range(1, 30):
        last = float(model.train_step({"sequences": seqs}, s)["lstm/pose_mse"])
    assert last < 0.7 * first


def test_anchored_prediction_starts_at_the_last_frame_and_adds_the_decoded_change():
    """--drnet_anchor_prediction: with the untrained residual LSTM (predicted pose = last observed pose) every
    predicted frame is exactly the last observed frame (the baseline "repeat the last frame"); after LSTM training
    (perturbed weights) the prediction is the last frame plus D(h_c, predicted pose) - D(h_c, last pose), clipped
    to [0, 1]."""
    c, model, seqs, rng = _drifting_frames_model(drnet_anchor_prediction=True)
    last = seqs[:, c.drnet_n_past - 1]
    pred = model.predict(seqs)
    assert pred.shape == (6, 2, 32, 32, 2)
    np.testing.assert_allclose(pred, np.repeat(last[:, None], 2, axis=1), atol=1e-5)
    for w in model.lstm.trainable_weights:                          # an LSTM that moves the pose
        w.assign(w + 0.3 * rng.normal(size=w.shape).astype(np.float32))
    anchored = model.predict(seqs)
    model.config = dataclasses.replace(c, drnet_anchor_prediction=False)
    direct = model.predict(seqs)
    h_c, h_p = model.encode(last)
    expected = np.clip(last[:, None] + direct - model.decode(h_c, h_p)[:, None], 0, 1)
    assert np.abs(direct - model.decode(h_c, h_p)[:, None]).max() > 1e-5     # the pose did move
    np.testing.assert_allclose(anchored, expected, atol=1e-6)
    assert np.abs(anchored - direct).max() > 1e-2                  # not the direct decoding


def test_pose_noise_perturbs_the_decoder_input_only_in_training():
    """--drnet_pose_noise: Gaussian noise on h_p before D in the training step (same weights, same batch: a
    different reconstruction loss than without noise); eval-mode encode/decode are unaffected; negative raises."""
    from other_models.drnet import DrNet, sample_frame_tuples
    import tensorflow as tf
    frames = np.random.default_rng(0).uniform(size=(4, 5, 32, 32, 2)).astype(np.float32)
    batch = {"frames4": sample_frame_tuples(frames, 3, np.random.default_rng(0))}
    losses, outs = {}, {}
    for noise in (0.0, 0.0, 2.0):
        model = DrNet(_small_config(drnet_pose_noise=noise), channels=2)
        outs.setdefault(noise, model.decode(*model.encode(frames[:, 0])))
        tf.random.set_seed(1)
        losses.setdefault(noise, []).append(float(model.train_step(batch, 0)["drnet/reconstruction"]))
    assert losses[0.0][0] == pytest.approx(losses[0.0][1], rel=1e-6)         # deterministic without noise
    assert abs(losses[2.0][0] - losses[0.0][0]) > 1e-6       # 2.5e-5 measured; 0 without noise
    np.testing.assert_allclose(outs[2.0], outs[0.0], atol=1e-6)                 # same init, no noise at eval
    with pytest.raises(ValueError, match="drnet_pose_noise"):
        _small_config(drnet_pose_noise=-0.1)


def test_learning_rate_decays_linearly_over_the_last_epochs_of_the_drnet_phase():
    """--drnet_lr_decay_epochs: E_c/E_p/D and C rates constant, then linear to 0 at the end of the DrNet phase; the
    LSTM's rate is untouched; 0 keeps drnet-py's constant rates; more decay epochs than epochs raises."""
    from other_models.drnet import DrNet
    model = DrNet(_small_config(epochs=4, drnet_lr_decay_epochs=2, learning_rate=0.01), channels=2)
    expected = {0.0: 0.01, 2.0: 0.01, 3.0: 0.005, 3.5: 0.0025, 4.0: 0.0, 5.0: 0.0}
    for epoch, rate in expected.items():
        rates = model.set_learning_rate_epoch(epoch)
        assert rates["lr/main"] == pytest.approx(rate)
        assert float(model.opt_main.learning_rate.numpy()) == pytest.approx(rate)
        assert float(model.opt_scene.learning_rate.numpy()) == pytest.approx(rate)
        assert float(model.opt_lstm.learning_rate.numpy()) == pytest.approx(model.config.drnet_lstm_lr)
    constant = DrNet(_small_config(epochs=4, learning_rate=0.01), channels=2)
    assert constant.set_learning_rate_epoch(3.9)["lr/main"] == pytest.approx(0.01)
    assert float(constant.opt_main.learning_rate.numpy()) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="drnet_lr_decay_epochs"):
        _small_config(epochs=4, drnet_lr_decay_epochs=5)


def test_frame_tuples_batch_uses_a_trailing_far_frame_as_the_similarity_target():
    from other_models.drnet import DrNetConfig, frame_tuples_batch
    config = DrNetConfig(drnet_data="face_video", drnet_n_past=3, drnet_n_future=2, drnet_max_step=3,
                         drnet_video_far_similarity=1.0)
    frames = np.zeros((6, 6, 2, 2, 1), np.float32)
    frames[:, :, 0, 0, 0] = np.arange(6)[None, :]                    # frame number; the 6th is the far frame
    out = frame_tuples_batch(config, frames, seed=3)
    np.testing.assert_array_equal(out[1, :, 0, 0, 0], 5)                # every x_c2 is the far frame
    offsets = out[2, :, 0, 0, 0] - out[0, :, 0, 0, 0]                   # x_p1 = x^{t+k}, 1 <= k <= max_step
    assert (out[[0, 2, 3], :, 0, 0, 0] < 5).all() and (offsets >= 1).all() and (offsets <= 3).all()
    plain = frame_tuples_batch(config, frames[:, :5], seed=3)           # no far frame: the clip's own x_c2
    assert (plain[1, :, 0, 0, 0] < 5).all()
    np.testing.assert_array_equal(plain[[0, 2, 3]], out[[0, 2, 3]])
