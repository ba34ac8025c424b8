"""GANimation's loss terms as pure functions on tensors.

Source: Pumarola et al., ECCV 2018, section 4.2 (eqs. 2-6) and ``../shared/docs/ganimation.md``.
Shapes are NHWC. The weights (lambdas) are applied by the caller (``ganimation_tl.model``), except
where a function's docstring says otherwise.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

__all__ = [
    "wgan_critic_loss", "wgan_generator_loss", "gradient_penalty", "interpolate", "au_regression_loss",
    "cycle_loss", "attention_mean_loss", "total_variation_loss",
]


def wgan_critic_loss(real_scores, fake_scores):
    """WGAN critic term ``mean D_I(I_f) - mean D_I(I_o)`` (to minimise).

    Args:
        real_scores: critic map of real images, any shape ``[B, ...]`` (``[B, h, w, 1]``).
        fake_scores: critic map of generated images, same layout.

    Returns:
        Scalar float32: mean over every element of ``fake_scores`` minus the same of ``real_scores``.

    Source: paper eq. (2) (Wasserstein term), Arjovsky et al. 2017.
    """
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def wgan_generator_loss(fake_scores):
    """WGAN generator term ``-mean D_I(I_f)`` (to minimise). Scalar; mean over all elements.

    Source: paper eq. (2), generator side.
    """
    return -tf.reduce_mean(fake_scores)


def interpolate(real, fake, alpha):
    """``x_hat = alpha * real + (1 - alpha) * fake`` with alpha ``[B, 1, 1, 1]`` broadcast per sample."""
    return alpha * real + (1.0 - alpha) * fake


def gradient_penalty(critic_map_fn: Callable, real, fake, alpha=None, epsilon: float = 1e-12, seed=None):
    """WGAN-GP penalty ``mean_b (||grad_x D_I(x_hat_b)||_2 - 1)^2`` on random interpolates.

    Args:
        critic_map_fn: maps images ``[B, H, W, C]`` to the critic map ``[B, h, w, 1]`` only (not the
            AU head).
        real: real images ``[B, H, W, C]`` in [-1, 1].
        fake: generated images, same shape (treated as constants).
        alpha: optional mixing weights ``[B, 1, 1, 1]``; default one U(0, 1) draw per sample.
        epsilon: added inside the square root so the gradient of the norm is finite at 0.
        seed: optional op seed for the U(0, 1) draw.

    Returns:
        Scalar float32, unweighted (multiply by lambda_gp). The gradient is that of the sum of the
        critic map over its pixels, and its L2 norm is taken per sample over all pixels and
        channels of the image.

    Source: Gulrajani et al. 2017 (WGAN-GP), GANimation paper eq. (2). Deviation from two public
    TF ports: the penalty uses the critic map only and a per-sample norm over H, W and C.
    """
    real = tf.convert_to_tensor(real)
    fake = tf.stop_gradient(tf.convert_to_tensor(fake))
    if alpha is None:
        alpha = tf.random.uniform([tf.shape(real)[0], 1, 1, 1], 0.0, 1.0, dtype=real.dtype, seed=seed)
    x_hat = interpolate(real, fake, alpha)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = critic_map_fn(x_hat)
        total = tf.reduce_sum(scores)
    grads = tape.gradient(total, x_hat)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + epsilon)
    return tf.reduce_mean(tf.square(norms - 1.0))


def au_regression_loss(predicted_aus, target_aus):
    """AU regression: mean squared error over the batch and the AUs.

    Args:
        predicted_aus: ``[B, K]`` from the critic's AU head.
        target_aus: ``[B, K]`` in [0, 1].

    Returns:
        Scalar float32 ``mean_{b,k} (predicted - target)^2``, independent of the batch size.

    Source: paper eq. (3). Deviation: the official code divides this mean once more by the batch
    size, so its lambda 4000 at batch 25 equals lambda 160 here (the config's default).
    """
    return tf.reduce_mean(tf.square(tf.cast(predicted_aus, tf.float32) - tf.cast(target_aus, tf.float32)))


def cycle_loss(reconstructed, real):
    """Cycle (identity) loss ``mean |I_r - I_o|`` over all pixels, channels and the batch (paper eq. 5)."""
    return tf.reduce_mean(tf.abs(reconstructed - real))


def attention_mean_loss(attention_mask):
    """Mean of the attention mask A ``[B, H, W, 1]`` over everything (part of paper eq. 4).

    Pushes A towards 0 so the generator does not copy its input everywhere (A = 1 keeps a pixel).
    """
    return tf.reduce_mean(attention_mask)


def total_variation_loss(attention_mask):
    """Total variation of A ``[B, H, W, C]``: the SUM over the batch of absolute differences between
    vertically and horizontally neighbouring pixels (paper eq. 4; official code's reduction).

    A constant mask gives 0. Note the sum grows with batch size and resolution; lambda_tv = 1e-5
    is calibrated for batch 25 at 128 px.
    """
    dy = tf.abs(attention_mask[:, 1:, :, :] - attention_mask[:, :-1, :, :])
    dx = tf.abs(attention_mask[:, :, 1:, :] - attention_mask[:, :, :-1, :])
    return tf.reduce_sum(dy) + tf.reduce_sum(dx)
