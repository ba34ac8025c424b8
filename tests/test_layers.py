"""Layers are exercised through ``forward`` (outside a static model, TL's ``__call__`` records graph nodes)."""
import numpy as np
import pytest
import tensorflow as tf

from ganimation_tl.layers import Conv2dTranspose, InstanceNorm2d, TileAndConcat


def numpy_instance_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def test_instance_norm_matches_numpy_for_batch_above_one():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3, 5, 7, 4)) * rng.uniform(0.5, 4, size=(3, 1, 1, 4)) + rng.normal(size=(3, 1, 1, 4)) * 3)
    layer = InstanceNorm2d(4, name="test_in_a")
    gamma = rng.normal(size=4).astype(np.float32)
    beta = rng.normal(size=4).astype(np.float32)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    out = layer.forward(tf.constant(x, tf.float32)).numpy()
    np.testing.assert_allclose(out, numpy_instance_norm(x, gamma, beta), atol=2e-5)
    # Each instance and channel is normalised on its own: changing sample 0 leaves sample 1 unchanged.
    x2 = x.copy()
    x2[0] *= 10
    out2 = layer.forward(tf.constant(x2, tf.float32)).numpy()
    np.testing.assert_allclose(out2[1:], out[1:], atol=1e-6)


def test_instance_norm_starts_as_identity_affine_and_gets_gradients():
    layer = InstanceNorm2d(3, name="test_in_b")
    np.testing.assert_array_equal(layer.gamma.numpy(), np.ones(3))
    np.testing.assert_array_equal(layer.beta.numpy(), np.zeros(3))
    x = tf.random.normal([2, 4, 4, 3], seed=1)
    with tf.GradientTape() as tape:
        y = layer.forward(x)
        loss = tf.reduce_sum(y * tf.range(3, dtype=tf.float32))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert len(grads) == 2 and all(g is not None for g in grads)
    assert np.abs(grads[1].numpy()).sum() > 0
    with pytest.raises(ValueError, match="expects 3 channels"):
        layer.forward(tf.zeros([1, 4, 4, 5]))


def test_conv2d_transpose_matches_keras_and_doubles_size():
    layer = Conv2dTranspose(5, in_channels=3, filter_size=(4, 4), strides=(2, 2), name="test_deconv")
    assert layer.W.shape == (4, 4, 5, 3)
    assert layer.W.name.startswith("test_deconv/filters")
    x = tf.random.normal([2, 6, 7, 3], seed=2)
    y = layer.forward(x)
    assert y.shape == (2, 12, 14, 5)
    keras = tf.keras.layers.Conv2DTranspose(5, 4, strides=2, padding="same", use_bias=False)
    keras.build((None, 6, 7, 3))
    keras.kernel.assign(layer.W)
    np.testing.assert_allclose(y.numpy(), keras(x).numpy(), atol=1e-5)


def test_tile_and_concat_appends_constant_planes():
    image = tf.random.normal([2, 3, 4, 3])
    aus = tf.constant([[0.1, 0.9], [0.5, 0.0]])
    out = TileAndConcat(name="test_tile").forward([image, aus]).numpy()
    assert out.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(out[..., :3], image.numpy())
    np.testing.assert_allclose(out[1, :, :, 3], 0.5)
    np.testing.assert_allclose(out[0, :, :, 4], 0.9)


def test_batch_norm_matches_numpy_and_updates_moving_statistics():
    from ganimation_tl.layers import BatchNorm
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (5, 4, 3, 6)).astype(np.float32)
    layer = BatchNorm(6, decay=0.9, name="bn_np_test")
    layer.gamma.assign(rng.uniform(0.5, 2, 6).astype(np.float32))
    layer.beta.assign(rng.normal(0, 1, 6).astype(np.float32))
    layer.is_train = True
    y = tf.function(layer.forward)(tf.constant(x)).numpy()
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    expected = layer.gamma.numpy() * (x - mean) / np.sqrt(var + 1e-5) + layer.beta.numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_var.numpy(), 0.9 + 0.1 * var, rtol=1e-4)
    layer.is_train = False
    y_eval = layer.forward(tf.constant(x)).numpy()
    expected_eval = (layer.gamma.numpy() * (x - layer.moving_mean.numpy()) / np.sqrt(layer.moving_var.numpy() + 1e-5)
                     + layer.beta.numpy())
    np.testing.assert_allclose(y_eval, expected_eval, rtol=1e-4, atol=1e-4)
