"""Tests of other_models/video_completion.py (stochastic recurrent conditional GAN for video completion)."""
import os
from pathlib import Path

import numpy as np
import pytest
from absl import flags

from ganimation_tl.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def _small_config(**kw):
    from other_models.video_completion import VideoCompletionConfig
    base = dict(batch_size=4, video_completion_length=5, video_completion_anchors="0,4", video_completion_nf=8,
                video_completion_code_dim=16, video_completion_hidden=16, video_completion_noise_dim=4)
    base.update(kw)
    return VideoCompletionConfig(**base)


def test_two_step_smoke_run_through_registry(tmp_path, monkeypatch):
    from ganimation_tl import registry
    import other_models.video_completion  # noqa: F401  (registers the model)
    monkeypatch.chdir(REPO)   # the shapes data needs no shared files
    fv = flags.FlagValues()
    registry.get("video_completion").define_flags(fv)
    fv(["test", "--flagfile=configs/video_completion_debug.cfg", "--workdir=%s" % tmp_path, "--max_steps=2",
        "--batch_size=2", "--video_completion_nf=8", "--video_completion_hidden=16", "--video_completion_code_dim=16",
        "--log_every=1", "--image_every=2"], known_only=True)
    metrics = registry.get("video_completion").train(fv)
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert {"generator/reconstruction", "discriminator/total", "generator/mode_seeking"} <= set(metrics)
    assert any(name.startswith("ckpt-2") for name in os.listdir(tmp_path / "checkpoints"))


def test_linear_interpolation_hand_computed():
    from other_models.video_completion import anchor_mask, linear_interpolation
    frames = np.zeros((1, 5, 1, 1, 1), np.float32)
    frames[0, 0] = 0.0
    frames[0, 4] = 1.0
    frames[0, 1:4] = 7.0   # missing frames are ignored
    out = linear_interpolation(frames, anchor_mask((0, 4), 5))
    np.testing.assert_allclose(out[0, :, 0, 0, 0], [0.0, 0.25, 0.5, 0.75, 1.0])
    out = linear_interpolation(frames, anchor_mask((1,), 5))   # one anchor: copied both ways
    np.testing.assert_allclose(out[0, :, 0, 0, 0], [7.0] * 5)


def test_anchor_context_matches_numpy_interpolation_per_sample():
    import tensorflow as tf
    from other_models.video_completion import anchor_context, anchor_mask, linear_interpolation
    rng = np.random.default_rng(0)
    frames = rng.random((4, 6, 3, 3, 1)).astype(np.float32)
    patterns = [(0, 5), (0, 2, 5), (3,), (1, 4)]          # one anchor pattern per video
    mask = np.stack([anchor_mask(t, 6) for t in patterns])
    ctx = anchor_context(tf.constant(frames * mask[:, :, None, None, None]), tf.constant(mask[..., None])).numpy()
    assert ctx.shape == (4, 6, 3, 3, 3)
    for i, times in enumerate(patterns):
        ref = linear_interpolation(frames[i:i + 1], mask[i])[0]
        np.testing.assert_allclose(ctx[i, ..., 0:1], ref, atol=1e-6)
        for t in range(6):   # nearest anchor before / after (the other side where one is missing)
            before = [a for a in times if a <= t] or [min(times)]
            after = [a for a in times if a >= t] or [max(times)]
            np.testing.assert_allclose(ctx[i, t, ..., 1], frames[i, before[-1], ..., 0], atol=1e-6)
            np.testing.assert_allclose(ctx[i, t, ..., 2], frames[i, after[0], ..., 0], atol=1e-6)
    empty = anchor_context(tf.constant(frames), tf.zeros((4, 6, 1))).numpy()
    assert np.all(empty == 0)


def test_anchor_skip_generator_keeps_anchors_and_learns():
    from other_models.video_completion import VideoCompletion, anchor_mask, training_masks
    from ganimation_tl.datasets.moving_mnist import moving_shapes
    c = _small_config(batch_size=8, video_completion_anchor_skip=True, video_completion_lambda_adv=0.0,
                      video_completion_lambda_ms=0.0, learning_rate=2e-3)
    model = VideoCompletion(c)
    assert any("skip_conv" in w.name for w in model.generator.trainable_weights)
    frames = moving_shapes(8, length=5, image_size=32, shape_size=12, seed=0).frames
    out = model.complete(frames, anchor_mask((0, 4), 5), seed=0)
    assert out.shape == (8, 5, 32, 32, 1)
    np.testing.assert_allclose(out[:, [0, 4]], frames[:, [0, 4]], atol=1e-6)
    batch = {"frames": frames, "mask": training_masks(c, 8, np.random.default_rng(0))}
    first = float(model.train_step(batch, 0)["generator/reconstruction"])
    for s in range(1, 30):
        last = model.train_step(batch, s)
    assert float(last["generator/reconstruction"]) < 0.6 * first


def test_masked_l1_and_mode_seeking_hand_computed():
    import tensorflow as tf
    from other_models.video_completion import masked_l1, mode_seeking_loss
    pred = np.zeros((1, 3, 2, 2, 1), np.float32)
    target = np.zeros_like(pred)
    target[0, 1] = 0.5      # missing frame differs by 0.5 everywhere
    target[0, 0] = 9.0      # anchor frame: ignored
    mask = np.array([[[1.0], [0.0], [1.0]]], np.float32)
    assert abs(float(masked_l1(tf.constant(pred), tf.constant(target), tf.constant(mask))) - 0.5) < 1e-6
    z1, z2 = np.zeros((1, 3, 2), np.float32), np.ones((1, 3, 2), np.float32)
    ms = float(mode_seeking_loss(tf.constant(pred), tf.constant(target), tf.constant(z1), tf.constant(z2),
                                 tf.constant(mask)))
    np.testing.assert_allclose(ms, 1.0 / (0.5 / 1.0 + 1e-2), rtol=1e-5)
    # capped form: reward only up to the target ratio (here r = 0.5)
    capped = lambda p, target: mode_seeking_loss(p, tf.constant(target_frames), tf.constant(z1), tf.constant(z2),  # noqa
                                                 tf.constant(mask), target=target)
    target_frames = target
    np.testing.assert_allclose(float(capped(tf.constant(pred), 1.0)), 1.0 / 0.51 - 1.0 / 1.01, rtol=1e-5)
    assert float(capped(tf.constant(pred), 0.1)) == 0.0
    for tgt, moving in ((1.0, True), (0.1, False)):   # below the target it pushes samples apart, above it stops
        p = tf.Variable(pred)
        with tf.GradientTape() as tape:
            loss = capped(p, tgt)
        grad = tape.gradient(loss, p)
        assert (grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0) == moving


def test_completion_keeps_anchors_and_noise_changes_samples():
    from other_models.video_completion import VideoCompletion, anchor_mask
    from ganimation_tl.datasets.moving_mnist import moving_shapes
    c = _small_config()
    model = VideoCompletion(c)
    frames = moving_shapes(3, length=5, image_size=32, seed=0).frames
    mask = anchor_mask((0, 4), 5)
    a, b = model.complete(frames, mask, seed=0), model.complete(frames, mask, seed=1)
    assert a.shape == (3, 5, 32, 32, 1)
    np.testing.assert_allclose(a[:, [0, 4]], frames[:, [0, 4]], atol=1e-6)   # anchors kept exactly
    assert np.abs(a[:, 1:4] - b[:, 1:4]).mean() > 0                        # noise reaches the missing frames
    np.testing.assert_allclose(model.complete(frames, mask, seed=0), a, atol=1e-6)   # same seed, same sample
    model.discriminator.eval()
    logits = model.discriminator([frames, np.ascontiguousarray(np.broadcast_to(mask, (3, 5))[..., None])])
    assert tuple(logits.shape) == (3, 1)


def test_training_reduces_missing_frame_l1():
    from other_models.video_completion import VideoCompletion, training_masks
    from ganimation_tl.datasets.moving_mnist import moving_shapes
    c = _small_config(batch_size=8, video_completion_lambda_adv=0.0, video_completion_lambda_ms=0.0,
                      learning_rate=2e-3)
    model = VideoCompletion(c)
    batch = {"frames": moving_shapes(8, length=5, image_size=32, shape_size=12, seed=0).frames,
             "mask": training_masks(c, 8, np.random.default_rng(0))}
    first = float(model.train_step(batch, 0)["generator/reconstruction"])
    for s in range(1, 30):
        last = model.train_step(batch, s)
    assert float(last["generator/reconstruction"]) < 0.6 * first


def test_bad_inputs(tmp_path):
    from other_models import video_completion as vc
    with pytest.raises(ValueError, match="anchors"):
        vc.VideoCompletionConfig(video_completion_anchors="0,9")
    with pytest.raises(ValueError, match="video_completion_ms_target"):
        vc.VideoCompletionConfig(video_completion_ms_target=-0.1)
    with pytest.raises(ValueError, match="video_completion_data"):
        vc.VideoCompletionConfig(video_completion_data="kth")
    fv = flags.FlagValues()
    vc.define_flags(fv)
    fv(["test", "--workdir=%s" % tmp_path, "--video_completion_data=mnist",
        "--mnist_path=%s" % (tmp_path / "missing" / "mnist.pkl.gz")], known_only=True)
    with pytest.raises(InputError, match="--mnist_path"):
        vc.train(fv)
    fv = flags.FlagValues()
    vc.define_flags(fv)
    fv(["test", "--workdir=%s" % tmp_path, "--video_completion_ms_target=-0.5"], known_only=True)
    with pytest.raises(InputError, match="video_completion_ms_target"):
        vc.train(fv)


def test_multiscale_l1_matches_numpy_and_rewards_nearer_placement():
    import tensorflow as tf
    from other_models.video_completion import masked_l1, multiscale_masked_l1
    rng = np.random.default_rng(0)
    pred = rng.random((2, 3, 8, 8, 1)).astype(np.float32)
    target = rng.random((2, 3, 8, 8, 1)).astype(np.float32)
    mask = np.array([[[1.0], [0.0], [1.0]], [[1.0], [0.0], [0.0]]], np.float32)
    np.testing.assert_allclose(multiscale_masked_l1(pred, target, mask, 1), masked_l1(pred, target, mask), rtol=1e-6)

    def pool(v, k):
        b, t, s = v.shape[:3]
        return v.reshape(b, t, s // k, k, s // k, k, 1).mean(axis=(3, 5))

    missing = (1.0 - mask)[:, :, :, None, None]
    expected = np.mean([(np.abs(pool(pred, k) - pool(target, k)) * missing).sum()
                        / (missing.sum() * (8 // k) ** 2) for k in (1, 2, 4)])
    np.testing.assert_allclose(float(multiscale_masked_l1(pred, target, mask, 3)), expected, rtol=1e-5)

    def square(x):  # a 4 px square at column x of a 16 px frame, one missing frame
        v = np.zeros((1, 1, 16, 16, 1), np.float32)
        v[0, 0, 6:10, x:x + 4] = 1.0
        return tf.constant(v)
    missing_only = np.zeros((1, 1, 1), np.float32)
    truth, near, far = square(2), square(7), square(12)
    # plain L1 cannot tell a near miss from a far one (no overlap either way); the pyramid can
    assert float(masked_l1(near, truth, missing_only)) == pytest.approx(float(masked_l1(far, truth, missing_only)))
    assert float(multiscale_masked_l1(near, truth, missing_only, 4)) < float(
        multiscale_masked_l1(far, truth, missing_only, 4)) - 1e-3
    with pytest.raises(ValueError, match="levels"):
        multiscale_masked_l1(pred, target, mask, 0)


def test_rec_levels_must_fit_the_image_size():
    from other_models.video_completion import VideoCompletionConfig
    with pytest.raises(ValueError, match="video_completion_rec_levels"):
        VideoCompletionConfig(image_size=32, video_completion_rec_levels=7)
    with pytest.raises(ValueError, match="video_completion_rec_levels"):
        VideoCompletionConfig(video_completion_rec_levels=0)


def test_squared_error_reconstruction_option():
    from other_models.video_completion import VideoCompletionConfig, masked_l1, multiscale_masked_l1
    pred = np.zeros((1, 2, 4, 4, 1), np.float32)
    target = np.zeros((1, 2, 4, 4, 1), np.float32)
    target[0, 1, :2] = 0.5                                   # half the missing frame's pixels off by 0.5
    mask = np.array([[[1.0], [0.0]]], np.float32)
    assert float(masked_l1(pred, target, mask)) == pytest.approx(0.25)
    assert float(masked_l1(pred, target, mask, power=2)) == pytest.approx(0.125)
    # 2x2 pooling: the top cells are 0.5 (squared 0.25), the bottom cells 0 -> level 1 gives 0.125 too
    assert float(multiscale_masked_l1(pred, target, mask, 2, power=2)) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="video_completion_rec_loss"):
        VideoCompletionConfig(video_completion_rec_loss="l3")


def test_linear_output_is_unsquashed_in_training_and_clipped_in_completions():
    import tensorflow as tf
    from other_models.video_completion import VideoCompletion, anchor_mask
    from ganimation_tl.datasets.moving_mnist import moving_shapes
    c = _small_config(video_completion_linear_output=True)
    model = VideoCompletion(c)
    frames = moving_shapes(4, length=5, image_size=32, seed=0).frames
    mask = np.ascontiguousarray(np.broadcast_to(anchor_mask((0, 4), 5), (4, 5))[..., None], np.float32)
    model.generator.eval()
    raw = model.generator([tf.constant(frames), tf.constant(mask), tf.zeros([4, 5, c.video_completion_noise_dim])])
    assert float(tf.reduce_min(raw)) < 0.0          # no sigmoid: the output can go below the background
    done = model.complete(frames, anchor_mask((0, 4), 5))
    assert done.min() >= 0.0 and done.max() <= 1.0
    np.testing.assert_allclose(done[:, [0, 4]], frames[:, [0, 4]], atol=1e-6)


def test_relative_squared_error_scores_blank_frames_one():
    import tensorflow as tf
    from other_models.video_completion import reconstruction_loss
    rng = np.random.default_rng(3)
    target = (rng.random((2, 4, 8, 8, 1)) < 0.2).astype(np.float32) * 0.7
    mask = np.array([[[1.0], [0.0], [0.0], [1.0]]] * 2, np.float32)
    blank = np.zeros_like(target)
    assert float(reconstruction_loss(blank, target, mask, "relative_l2")) == pytest.approx(1.0, rel=1e-5)
    assert float(reconstruction_loss(target, target, mask, "relative_l2")) == pytest.approx(0.0, abs=1e-7)
    half = 0.5 * target                              # squared error a quarter of the target's energy
    assert float(reconstruction_loss(half, target, mask, "relative_l2")) == pytest.approx(0.25, rel=1e-5)
    # scale-free: brighter data with the same relative error scores the same (plain l2 scales by 9)
    assert float(reconstruction_loss(3.0 * half, 3.0 * target, mask, "relative_l2")) == pytest.approx(0.25, rel=1e-5)
    assert float(reconstruction_loss(3.0 * half, 3.0 * target, mask, "l2")) == pytest.approx(
        9.0 * float(reconstruction_loss(half, target, mask, "l2")), rel=1e-5)
    p = tf.Variable(half)
    with tf.GradientTape() as tape:
        loss = reconstruction_loss(p, tf.constant(target), mask, "relative_l2")
    grad = tape.gradient(loss, p).numpy()
    energy = np.mean(target[:, 1:3] ** 2)            # the normaliser is a constant in the gradient
    np.testing.assert_allclose(grad[:, 1:3], 2 * (half - target)[:, 1:3] / (target[:, 1:3].size * energy), rtol=1e-4)
    assert np.all(grad[:, [0, 3]] == 0)
    with pytest.raises(ValueError, match="reconstruction loss"):
        reconstruction_loss(blank, target, mask, "huber")
