import numpy as np
import tensorflow as tf

from ganimation_tl import losses


def test_wgan_terms():
    real = tf.constant([[1.0, 3.0]])
    fake = tf.constant([[0.0], [-2.0]])
    assert float(losses.wgan_critic_loss(real, fake)) == -1.0 - 2.0
    assert float(losses.wgan_generator_loss(fake)) == 1.0


def test_total_variation_hand_computed():
    assert float(losses.total_variation_loss(tf.fill([2, 5, 5, 1], 0.3))) == 0.0
    mask = tf.constant([[[0.0], [1.0]], [[0.5], [0.5]]])[tf.newaxis]  # [1,2,2,1]
    # vertical |0.5-0| + |0.5-1| = 1.0; horizontal |1-0| + |0.5-0.5| = 1.0
    np.testing.assert_allclose(float(losses.total_variation_loss(mask)), 2.0)
    # A sum over the batch: two copies double it.
    np.testing.assert_allclose(float(losses.total_variation_loss(tf.concat([mask, mask], 0))), 4.0)


def test_gradient_penalty_zero_for_unit_norm_linear_critic_and_one_for_constant():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 4, 4, 3)).astype(np.float32)
    w /= np.linalg.norm(w)
    real = tf.constant(rng.uniform(-1, 1, size=(5, 4, 4, 3)), tf.float32)
    fake = tf.constant(rng.uniform(-1, 1, size=(5, 4, 4, 3)), tf.float32)
    linear = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])[:, None, None, None]
    assert abs(float(losses.gradient_penalty(linear, real, fake))) < 1e-6
    double = lambda x: 2.0 * linear(x)
    np.testing.assert_allclose(float(losses.gradient_penalty(double, real, fake)), 1.0, rtol=1e-5)
    constant = lambda x: tf.zeros([tf.shape(x)[0], 1, 1, 1]) + 0.0 * tf.reduce_sum(x)
    np.testing.assert_allclose(float(losses.gradient_penalty(constant, real, fake)), 1.0, rtol=1e-5)


def test_gradient_penalty_is_per_sample_and_uses_alpha():
    # Critic map with 2x1 pixels: D(x) = s_b * sum(x); per-sample norm = |s_b| * sqrt(n_pixels).
    real = tf.ones([2, 2, 2, 1])
    fake = tf.zeros([2, 2, 2, 1])
    scale = tf.constant([1.0, 3.0])[:, None, None, None]
    critic = lambda x: tf.concat([scale * tf.reduce_sum(x, axis=[1, 2, 3], keepdims=True)] * 2, axis=1) * 0.5
    # grad of the summed map w.r.t. x = scale everywhere -> norm = scale * 2 (4 pixels) -> (2-1)^2, (6-1)^2
    gp = losses.gradient_penalty(critic, real, fake, alpha=tf.fill([2, 1, 1, 1], 0.3))
    np.testing.assert_allclose(float(gp), (1.0 + 25.0) / 2, rtol=1e-5)
    # Gradients stay finite even when the critic's gradient is exactly zero (epsilon inside sqrt).
    v = tf.Variable(0.0)
    with tf.GradientTape() as tape:
        gp0 = losses.gradient_penalty(lambda x: v * tf.reduce_sum(x, axis=[1, 2, 3], keepdims=True), real, fake)
    assert np.isfinite(tape.gradient(gp0, v).numpy())


def test_interpolates_draw_one_uniform_alpha_per_sample():
    real, fake = tf.ones([64, 2, 2, 1]), tf.zeros([64, 2, 2, 1])
    seen = []
    def critic(x):
        seen.append(x)
        return tf.reduce_sum(x, axis=[1, 2, 3], keepdims=True)
    losses.gradient_penalty(critic, real, fake, seed=3)
    x = seen[0].numpy()
    alpha = x[:, 0, 0, 0]
    assert np.all(x == alpha[:, None, None, None])            # one alpha per sample
    assert 0 <= alpha.min() and alpha.max() <= 1 and alpha.std() > 0.15   # spread like U(0,1), not N


def test_au_loss_is_batch_size_independent_and_cycle_is_mean_l1():
    p = tf.constant([[0.0, 1.0], [0.5, 0.5]])
    t = tf.constant([[0.0, 0.0], [0.0, 0.5]])
    one = float(losses.au_regression_loss(p, t))
    np.testing.assert_allclose(one, (1.0 + 0.25) / 4)
    np.testing.assert_allclose(float(losses.au_regression_loss(tf.concat([p] * 5, 0), tf.concat([t] * 5, 0))), one)
    np.testing.assert_allclose(float(losses.cycle_loss(tf.ones([2, 2, 2, 3]), tf.zeros([2, 2, 2, 3]))), 1.0)
    np.testing.assert_allclose(float(losses.attention_mean_loss(tf.constant([0.0, 1.0, 0.5, 0.5]))), 0.5)
