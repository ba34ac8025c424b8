"""LaplaceKL landmark localisation with softargmax (``train.py --model=laplacekl``).

Sources:
  * J. P. Robinson, Y. Li, N. Zhang, Y. Fu, S. Tulyakov, "Laplace Landmark Localization", ICCV 2019
    (LaplaceKL; the semi-supervised adversarial branch).
  * S. Honari, P. Molchanov, S. Tyree, P. Vincent, C. Pal, J. Kautz, "Improving Landmark Localization
    with Semi-Supervised Learning", CVPR 2018 (softargmax on heatmaps).
  * Specification: ``../shared/docs/papers/batch2_*.md`` section 3. No official code exists; every
    detail below that the spec tags ``[paper?]``/``[proposal]`` is an inference and listed as such.

Equations implemented (K landmarks, heatmap pixel grid (x_j, y_i), heatmap pixel units):
  * Softargmax: ``P_k(i, j) = softmax_{(i,j)}(beta * M_k(i, j))``, ``mu_k = sum_{i,j} P_k(i, j) [x_j, y_i]``,
    with the temperature ``beta`` learned (``beta = exp(log_beta)``, initialised at
    ``laplacekl_beta_init``) and the max logit subtracted inside the softmax (spec pitfall (g)).
  * Scale of the predicted distribution, per axis: Laplace ``b_k = sum P_k |x - mu_k|``;
    Gaussian ``sigma_k^2 = sum P_k (x - mu_k)^2``.
  * LaplaceKL (per landmark and axis, target ``L(y_k, b*)``, prediction ``L(mu_k, b_k)``):
    ``KL = log(b_k / b*) + (b* exp(-|y_k - mu_k| / b*) + |y_k - mu_k|) / b_k - 1``;
    the loss is its sum over the 2 axes, averaged over landmarks and images.
  * GaussianKL (the paper's comparison): ``KL = log(s_k / s*) + (s*^2 + (y_k - mu_k)^2) / (2 s_k^2) - 1/2``.
  * L2-softargmax baseline: ``||mu_k - y_k||^2`` (sum over axes, mean over landmarks and images).
  * Semi-supervised adversarial branch: D sees the image concatenated with K heatmaps;
    ``L_D = -E_l[log D(I_l + omega(s_l))] - E_u[log(1 - D(I_u + G(I_u)))]``,
    ``L_G = L_KL(labelled) + lambda_adv * (-E_u[log D(I_u + G(I_u))])`` (non-saturating form),
    where ``omega(s)`` renders a Laplace heatmap of scale b* at the labelled landmarks. Both real and
    fake heatmaps are divided by their per-map maximum before D sees them, so D cannot tell them
    apart by the softmax's absolute level.

Data: CFP frontal photos with their 30 hand-labelled fiducials, cropped around the fiducials
(``ganimation_tl.datasets.cfp.load_faces``), split by identity into labelled-train,
unlabelled-train (labels dropped) and held-out test identities. NME is the mean point-to-point
error divided by the diagonal of the ground-truth landmark bounding box (spec (f)(i); CFP's 30
points have no documented eye indices), in percent of nothing: a plain ratio.

Deviations from the paper (and why):
  * Data: CFP (30 fiducials, ~1,500 frontal photos) instead of 300W/AFLW, which are not available
    offline. The crop is a square around the ground-truth fiducials (+``laplacekl_margin``), as 300W
    evaluates with ground-truth boxes; training adds a random similarity jitter (rotation, scale,
    shift) so the network cannot rely on the crop alone.
  * Network: a small 3-level U-Net (widths ``w, 2w, 4w``, instance norm, ReLU) whose heatmaps are at
    half the input resolution; the paper's exact generator (and its 1/8-channel variant) is not
    verifiable here [paper?]. The discriminator is a 4-convolution net on (image avg-pooled to the
    heatmap size) + K heatmaps [proposal].
  * The KL direction ``KL(target || prediction)``, the target scale b* (1 heatmap pixel) and
    lambda_adv = 1e-2 are the spec's guesses [paper?/proposal]; the adversarial term starts after a
    supervised warm-up of ``laplacekl_adv_start_step`` steps [proposal].
  * Grey-scale input (``laplacekl_grey``) in the CPU configuration (spec (f)); RGB in the full one.
  * Evaluation protocol: the held-out crops are cut around the ground-truth fiducials, so the crop
    itself encodes the landmarks (the mean shape alone reaches ~3% NME). The gated metric therefore
    gives each test crop one fixed random similarity jitter (the training strength), emulating a face
    detector's box; the un-jittered ("aligned") numbers are reported as well (:func:`evaluate`).
  * Adam rate 1e-3 in the CPU configuration (spec proposal 1e-4..2.5e-4) so ~1,000 steps converge;
    x0.1 for the last 20% of the epochs [proposal].
  * Honari et al.'s equivariant-transform loss and sequential multitasking are not implemented
    (optional in the spec).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional

import numpy as np
from absl import flags

from ganimation_tl import registry
from ganimation_tl.errors import InputError
from ganimation_tl.sibling import (config_or_input_error, define_model_flags, images_grid, require_flag,
                                   train_and_evaluate)

__all__ = ["LaplaceKLConfig", "LOSSES", "build_heatmap_net", "build_heatmap_discriminator", "softargmax",
           "laplace_scale", "gaussian_scale", "laplace_kl", "gaussian_kl", "render_laplace_heatmaps",
           "to_heatmap_coords", "to_image_coords", "nme", "LandmarkData", "prepare_data", "LaplaceKLModel",
           "evaluate", "define_flags", "train"]

MODEL_NAME = "laplacekl"
LOSSES = ("laplace_kl", "gaussian_kl", "l2")
_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class LaplaceKLConfig:
    """LaplaceKL hyper-parameters; field names are the flag names (see ``configs/laplacekl.cfg``).

    Attributes:
        image_size: side S of the square input crops (multiple of 4; heatmaps are S/2).
        batch_size: labelled (and unlabelled) images per step.
        epochs: passes over the labelled training set.
        seed: seed for weights, identity split, batches and jitter.
        learning_rate: Adam rate of the heatmap network (G) and of D.
        beta1: Adam beta1 (0.5, spec (c) [proposal]).
        laplacekl_loss: 'laplace_kl' (the paper), 'gaussian_kl' or 'l2' (softargmax + L2 baseline).
        laplacekl_width: w, channels of the first U-Net level (levels use w, 2w, 4w).
        laplacekl_target_scale: b* (Laplace) or s* (Gaussian) of the target, heatmap pixels.
        laplacekl_beta_init: initial softargmax temperature beta (learned).
        laplacekl_lambda_adv: weight of the generator's adversarial term (0 disables the branch).
        laplacekl_adv_start_step: supervised warm-up steps before the adversarial branch starts.
        laplacekl_d_width: channels of D's first convolution (doubling per layer).
        laplacekl_test_identities: CFP identities held out for testing.
        laplacekl_labelled_identities: training identities whose labels are used (the rest of the
            training identities are the unlabelled set; 0 unlabelled disables the adversarial branch).
        laplacekl_margin: crop margin around the fiducial box (fraction of its side).
        laplacekl_jitter: training jitter: max rotation (degrees) = 10 * jitter, scale 1 +- 0.1 * jitter,
            shift +- 0.05 * jitter * S.
        laplacekl_grey: grey-scale input (1 channel) instead of RGB.
    """

    image_size: int = 64
    batch_size: int = 32
    epochs: int = 100
    seed: int = 0
    learning_rate: float = 1e-3
    beta1: float = 0.5
    laplacekl_loss: str = "laplace_kl"
    laplacekl_width: int = 16
    laplacekl_target_scale: float = 1.0
    laplacekl_beta_init: float = 1.0
    laplacekl_lambda_adv: float = 1e-2
    laplacekl_adv_start_step: int = 1000
    laplacekl_d_width: int = 32
    laplacekl_test_identities: int = 30
    laplacekl_labelled_identities: int = 60
    laplacekl_margin: float = 0.25
    laplacekl_jitter: float = 1.0
    laplacekl_grey: bool = True

    def __post_init__(self):
        if self.image_size < 16 or self.image_size % 4:
            raise ValueError("image_size must be a multiple of 4 and >= 16, got %r" % self.image_size)
        for name in ("batch_size", "epochs", "laplacekl_width", "laplacekl_d_width", "laplacekl_test_identities",
                     "laplacekl_labelled_identities"):
            if getattr(self, name) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        for name in ("learning_rate", "laplacekl_target_scale", "laplacekl_beta_init"):
            if not getattr(self, name) > 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if not 0 <= self.beta1 < 1:
            raise ValueError("beta1 must be in [0, 1), got %r" % self.beta1)
        if self.laplacekl_loss not in LOSSES:
            raise ValueError("laplacekl_loss must be one of %s, got %r" % (", ".join(LOSSES), self.laplacekl_loss))
        if self.laplacekl_lambda_adv < 0 or self.laplacekl_adv_start_step < 0:
            raise ValueError("laplacekl_lambda_adv and laplacekl_adv_start_step must be >= 0")
        if self.laplacekl_margin < 0 or self.laplacekl_jitter < 0:
            raise ValueError("laplacekl_margin and laplacekl_jitter must be >= 0")

    @property
    def heatmap_size(self) -> int:
        """Side of the heatmaps, S / 2."""
        return self.image_size // 2

    @property
    def channels(self) -> int:
        return 1 if self.laplacekl_grey else 3


# ----------------------------------------------------------------------------------------------- networks
def _softmax_temperature_layer():
    import tensorflow as tf
    import tensorlayer as tl

    class SpatialSoftmax(tl.layers.Layer):
        """``P_k = softmax over (i, j) of beta * M_k`` with a learned ``beta = exp(log_beta)``.

        Input logits ``[B, H, W, K]``; output probabilities ``[B, H, W, K]`` summing to 1 over H, W.
        Source: Honari et al. CVPR 2018 softargmax; the max is subtracted for stability (spec (g)).
        """

        def __init__(self, beta_init: float = 1.0, name=None):
            super().__init__(name)
            self.beta_init = float(beta_init)
            self.build(None)
            self._built = True

        def __repr__(self):
            return "SpatialSoftmax(beta_init=%g, name=%r)" % (self.beta_init, self.name)

        def build(self, inputs_shape):
            self.log_beta = self._get_weights("log_beta", shape=(1,),
                                              init=tl.initializers.constant(float(np.log(self.beta_init))))

        def forward(self, inputs):
            shape = tf.shape(inputs)
            flat = tf.reshape(tf.transpose(inputs, [0, 3, 1, 2]), [shape[0], shape[3], shape[1] * shape[2]])
            flat = flat * tf.exp(tf.cast(self.log_beta[0], flat.dtype))
            prob = tf.nn.softmax(flat - tf.reduce_max(flat, axis=-1, keepdims=True), axis=-1)
            return tf.transpose(tf.reshape(prob, [shape[0], shape[3], shape[1], shape[2]]), [0, 2, 3, 1])

    return SpatialSoftmax


def build_heatmap_net(image_size: int = 64, channels: int = 1, num_landmarks: int = 30, width: int = 16,
                      beta_init: float = 1.0, name: str = "LKL_G"):
    """The landmark generator G: a 3-level U-Net from a face crop to K heatmap distributions.

    Args:
        image_size: S, side of the input (multiple of 4).
        channels: 1 (grey) or 3 (RGB).
        num_landmarks: K.
        width: w; the levels have w (S), 2w (S/2) and 4w (S/4) channels.
        beta_init: initial softargmax temperature.
        name: layer-name prefix.

    Returns:
        A static ``tl.models.Model`` mapping images float32 ``[B, S, S, C]`` in [-1, 1] (NHWC) to
        probabilities ``P`` float32 ``[B, S/2, S/2, K]``, each map summing to 1.

    Raises:
        ValueError: image_size not a multiple of 4.

    Source: Robinson et al. ICCV 2019 (encoder-decoder with skips; architecture details [paper?]).
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import Conv2dTranspose, InstanceNorm2d, weight_init
    from ganimation_tl.networks import unique_model_name

    if image_size % 4:
        raise ValueError("image_size must be a multiple of 4, got %r" % image_size)
    p = name + "_"

    def conv(x, n, size, stride, lname, cin):
        x = tl.layers.Conv2d(n, (size, size), (stride, stride), padding="SAME", W_init=weight_init(),
                             b_init=None, in_channels=cin, name=p + lname + "_conv")(x)
        x = InstanceNorm2d(n, name=p + lname + "_in")(x)
        return tl.layers.Lambda(tf.nn.relu, name=p + lname + "_relu")(x)

    image = tl.layers.Input([None, image_size, image_size, channels], name=p + "image")
    w = width
    x0 = conv(image, w, 3, 1, "l0a", channels)
    x0 = conv(x0, w, 3, 1, "l0b", w)
    x1 = conv(x0, 2 * w, 4, 2, "l1a", w)
    x1 = conv(x1, 2 * w, 3, 1, "l1b", 2 * w)
    x2 = conv(x1, 4 * w, 4, 2, "l2a", 2 * w)
    x2 = conv(x2, 4 * w, 3, 1, "l2b", 4 * w)
    x2 = conv(x2, 4 * w, 3, 1, "l2c", 4 * w)
    u = Conv2dTranspose(2 * w, in_channels=4 * w, filter_size=(4, 4), strides=(2, 2), name=p + "up_deconv")(x2)
    u = InstanceNorm2d(2 * w, name=p + "up_in")(u)
    u = tl.layers.Lambda(tf.nn.relu, name=p + "up_relu")(u)
    u = tl.layers.Concat(concat_dim=-1, name=p + "skip")([u, x1])
    u = conv(u, 2 * w, 3, 1, "d1a", 4 * w)
    u = conv(u, 2 * w, 3, 1, "d1b", 2 * w)
    logits = tl.layers.Conv2d(num_landmarks, (1, 1), (1, 1), padding="SAME", W_init=weight_init(),
                              b_init=tl.initializers.zeros(), in_channels=2 * w, name=p + "heatmap_logits")(u)
    prob = _softmax_temperature_layer()(beta_init, name=p + "softmax")(logits)
    return tl.models.Model(inputs=image, outputs=prob, name=unique_model_name(name))


def build_heatmap_discriminator(heatmap_size: int = 32, channels: int = 1, num_landmarks: int = 30,
                                width: int = 32, name: str = "LKL_D"):
    """D(image ++ heatmaps) -> real/fake logit: 3 stride-2 4x4 convs (LeakyReLU 0.2) and a VALID conv.

    Args:
        heatmap_size: side h of the heatmaps (multiple of 8); the image is avg-pooled to h.
        channels, num_landmarks: C and K; the input has C + K channels.
        width: first conv channels (w, 2w, 4w).

    Returns:
        Static ``tl.models.Model``: ``[B, h, h, C + K]`` -> logits ``[B, 1]`` (unbounded).

    Source: Robinson et al. ICCV 2019 semi-supervised branch (layout [proposal], spec (f)).
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import weight_init
    from ganimation_tl.networks import unique_model_name

    if heatmap_size % 8:
        raise ValueError("heatmap_size must be a multiple of 8, got %r" % heatmap_size)
    p = name + "_"
    lrelu = lambda t: tf.nn.leaky_relu(t, 0.2)  # noqa: E731
    x = inputs = tl.layers.Input([None, heatmap_size, heatmap_size, channels + num_landmarks], name=p + "input")
    cin = channels + num_landmarks
    for i, n in enumerate((width, 2 * width, 4 * width)):
        x = tl.layers.Conv2d(n, (4, 4), (2, 2), padding="SAME", act=lrelu, W_init=weight_init(),
                             b_init=tl.initializers.zeros(), in_channels=cin, name=p + "c%d" % i)(x)
        cin = n
    side = heatmap_size // 8
    x = tl.layers.Conv2d(1, (side, side), (1, 1), padding="VALID", W_init=weight_init(),
                         b_init=tl.initializers.zeros(), in_channels=cin, name=p + "logit")(x)
    x = tl.layers.Reshape([-1, 1], name=p + "flat")(x)
    return tl.models.Model(inputs=inputs, outputs=x, name=unique_model_name(name))


# ----------------------------------------------------------------------------------------------- losses
def _grid(height, width):
    import tensorflow as tf
    xs = tf.cast(tf.range(width), tf.float32)
    ys = tf.cast(tf.range(height), tf.float32)
    return xs, ys


def softargmax(prob):
    """Expected coordinate of each heatmap distribution.

    Args:
        prob: float32 ``[B, H, W, K]``, each map summing to 1 over H, W.

    Returns:
        ``mu`` float32 ``[B, K, 2]`` as (x, y) in heatmap pixels (x = column, y = row, pixel centres
        at integers).

    Source: Honari et al. CVPR 2018; Robinson et al. ICCV 2019 eq. for mu_k.
    """
    import tensorflow as tf
    shape = tf.shape(prob)
    xs, ys = _grid(shape[1], shape[2])
    px = tf.reduce_sum(prob, axis=1)  # [B, W, K] marginal over rows
    py = tf.reduce_sum(prob, axis=2)  # [B, H, K]
    mx = tf.einsum("bwk,w->bk", px, xs)
    my = tf.einsum("bhk,h->bk", py, ys)
    return tf.stack([mx, my], axis=-1)


def laplace_scale(prob, mu):
    """Per-axis Laplace scale ``b = sum P |x - mu|`` of each map: ``[B, K, 2]`` heatmap pixels (>= 0)."""
    import tensorflow as tf
    shape = tf.shape(prob)
    xs, ys = _grid(shape[1], shape[2])
    px = tf.reduce_sum(prob, axis=1)
    py = tf.reduce_sum(prob, axis=2)
    bx = tf.reduce_sum(px * tf.abs(xs[None, :, None] - mu[:, None, :, 0]), axis=1)
    by = tf.reduce_sum(py * tf.abs(ys[None, :, None] - mu[:, None, :, 1]), axis=1)
    return tf.stack([bx, by], axis=-1)


def gaussian_scale(prob, mu):
    """Per-axis Gaussian standard deviation ``sqrt(sum P (x - mu)^2)``: ``[B, K, 2]`` heatmap pixels."""
    import tensorflow as tf
    shape = tf.shape(prob)
    xs, ys = _grid(shape[1], shape[2])
    px = tf.reduce_sum(prob, axis=1)
    py = tf.reduce_sum(prob, axis=2)
    vx = tf.reduce_sum(px * tf.square(xs[None, :, None] - mu[:, None, :, 0]), axis=1)
    vy = tf.reduce_sum(py * tf.square(ys[None, :, None] - mu[:, None, :, 1]), axis=1)
    return tf.sqrt(tf.stack([vx, vy], axis=-1) + _EPS)


def laplace_kl(target, target_scale, mu, scale):
    """Closed-form ``KL(Laplace(target, b*) || Laplace(mu, b))`` per axis, summed over the 2 axes.

    Args:
        target: ``[B, K, 2]`` ground-truth (x, y), heatmap pixels.
        target_scale: b* > 0 (scalar, heatmap pixels).
        mu, scale: ``[B, K, 2]`` predicted location and Laplace scale (clamped to >= 1e-3).

    Returns:
        ``[B, K]`` KL in nats (>= 0, 0 iff mu = target and b = b*).

    Source: Robinson et al. ICCV 2019 (LaplaceKL); closed form as in spec section 3 (b).
    """
    import tensorflow as tf
    b1 = tf.cast(target_scale, tf.float32)
    b2 = tf.maximum(scale, 1e-3)
    d = tf.abs(target - mu)
    kl = tf.math.log(b2 / b1) + (b1 * tf.exp(-tf.minimum(d / b1, 50.0)) + d) / b2 - 1.0
    return tf.reduce_sum(kl, axis=-1)


def gaussian_kl(target, target_scale, mu, scale):
    """Closed-form ``KL(N(target, s*^2) || N(mu, s^2))`` per axis, summed over axes: ``[B, K]`` nats.

    ``scale`` is the standard deviation ``[B, K, 2]`` (clamped to >= 1e-3). Source: the GaussianKL
    comparison of Robinson et al. ICCV 2019.
    """
    import tensorflow as tf
    s1 = tf.cast(target_scale, tf.float32)
    s2 = tf.maximum(scale, 1e-3)
    kl = tf.math.log(s2 / s1) + (s1 * s1 + tf.square(target - mu)) / (2.0 * s2 * s2) - 0.5
    return tf.reduce_sum(kl, axis=-1)


def render_laplace_heatmaps(points, size: int, scale: float):
    """omega(s): normalised 2D Laplace densities ``exp(-|x - x_k| / b - |y - y_k| / b)`` at ``points``.

    Args:
        points: ``[B, K, 2]`` (x, y) heatmap pixels. size: h. scale: b (heatmap pixels).

    Returns:
        ``[B, h, h, K]`` float32, each map summing to 1.
    """
    import tensorflow as tf
    xs, ys = _grid(size, size)
    ex = tf.exp(-tf.abs(xs[None, None, :] - points[..., 0:1]) / scale)  # [B, K, W]
    ey = tf.exp(-tf.abs(ys[None, None, :] - points[..., 1:2]) / scale)  # [B, K, H]
    maps = tf.einsum("bkh,bkw->bhwk", ey, ex)
    return maps / (tf.reduce_sum(maps, axis=[1, 2], keepdims=True) + 1e-12)


def to_heatmap_coords(points, image_size: int, heatmap_size: int):
    """Crop pixels (pixel centres at integers) -> heatmap pixels: ``(p + 0.5) * h / S - 0.5``."""
    return (points + 0.5) * (heatmap_size / float(image_size)) - 0.5


def to_image_coords(points, image_size: int, heatmap_size: int):
    """Inverse of :func:`to_heatmap_coords`."""
    return (points + 0.5) * (image_size / float(heatmap_size)) - 0.5


def nme(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Normalised mean error per image: mean_k ||p_k - t_k|| / diagonal of t's bounding box.

    Args:
        predicted, target: ``[N, K, 2]`` in the same pixel frame.

    Returns:
        float64 ``[N]`` (a ratio; multiply by 100 for percent).

    Source: spec section 3 (f)(i) (box-diagonal normalisation, as AFLW uses box size).
    """
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    if predicted.shape != target.shape or predicted.ndim != 3 or predicted.shape[-1] != 2:
        raise ValueError("nme needs two [N, K, 2] arrays, got %s and %s" % (predicted.shape, target.shape))
    diag = np.linalg.norm(target.max(axis=1) - target.min(axis=1), axis=-1)
    return np.linalg.norm(predicted - target, axis=-1).mean(axis=1) / np.maximum(diag, 1e-9)


# ----------------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class LandmarkData:
    """Prepared CFP splits (images float32 ``[N, S, S, C]`` in [-1, 1]; landmarks ``[N, 30, 2]`` crop px).

    ``unlabelled`` has no landmarks (they are dropped: the semi-supervised set).
    """

    train_images: np.ndarray
    train_landmarks: np.ndarray
    unlabelled_images: np.ndarray
    test_images: np.ndarray
    test_landmarks: np.ndarray
    description: str


def _to_float(images: np.ndarray, grey: bool) -> np.ndarray:
    x = images.astype(np.float32) / 127.5 - 1.0
    if grey:
        x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    return x


def prepare_data(cfp_dir: str, config: LaplaceKLConfig, max_identities: Optional[int] = None) -> LandmarkData:
    """Load CFP frontal crops and split them by identity into labelled / unlabelled / test.

    Args:
        cfp_dir: the CFP folder (flag ``--cfp_dir``).
        config: sizes, split counts, seed.
        max_identities: use only the first N identities (tests).

    Raises:
        InputError: missing folder (names ``--cfp_dir``) or too few identities for the split.
    """
    from ganimation_tl.datasets import cfp

    if not cfp_dir or not os.path.isdir(cfp_dir):
        raise InputError("--cfp_dir: CFP data folder %r not found" % (cfp_dir,))
    try:
        records = cfp.list_records(cfp_dir, views=("frontal",))
    except InputError as error:
        raise InputError("--cfp_dir: %s" % error)
    ids = sorted({r.identity for r in records})
    if max_identities is not None:
        ids = ids[:max_identities]
    n_test, n_lab = config.laplacekl_test_identities, config.laplacekl_labelled_identities
    if n_test + n_lab > len(ids):
        raise InputError("--laplacekl_test_identities=%d + --laplacekl_labelled_identities=%d exceed the %d CFP "
                         "identities in %s" % (n_test, n_lab, len(ids), cfp_dir))
    train_ids, test_ids = cfp.split_identities(ids, n_test, seed=config.seed)
    rng = np.random.default_rng(config.seed)
    labelled = sorted(rng.choice(train_ids, size=n_lab, replace=False).tolist())
    unlabelled = sorted(set(train_ids) - set(labelled))
    faces = cfp.load_faces(cfp_dir, config.image_size, identities=ids, views=("frontal",),
                           margin=config.laplacekl_margin)
    pick = lambda group: np.isin(faces.identities, group)  # noqa: E731
    lab, unl, test = faces.subset(pick(labelled)), faces.subset(pick(unlabelled)), faces.subset(pick(test_ids))
    grey = config.laplacekl_grey
    unl_images = (_to_float(unl.images, grey) if len(unl) else
                  np.zeros((0, config.image_size, config.image_size, config.channels), np.float32))
    return LandmarkData(_to_float(lab.images, grey), lab.landmarks, unl_images,
                        _to_float(test.images, grey), test.landmarks,
                        "CFP frontal %dpx: %d labelled (%d ids), %d unlabelled (%d ids), %d test (%d ids)"
                        % (config.image_size, len(lab), len(labelled), len(unl), len(unlabelled), len(test),
                           len(test_ids)))


def jitter_batch(images: np.ndarray, landmarks: Optional[np.ndarray], rng: np.random.Generator,
                 amount: float):
    """Random similarity transform per image (rotation +-10*amount deg, scale 1+-0.1*amount, shift
    +-0.05*amount*S), edge-replicated; landmarks (``[B, K, 2]`` px or None) move with the image."""
    import cv2
    if amount <= 0:
        return images, landmarks
    out_images = np.empty_like(images)
    out_lm = None if landmarks is None else np.empty_like(landmarks)
    size = images.shape[1]
    for i in range(len(images)):
        angle = rng.uniform(-10, 10) * amount
        scale = 1.0 + rng.uniform(-0.1, 0.1) * amount
        shift = rng.uniform(-0.05, 0.05, size=2) * amount * size
        matrix = cv2.getRotationMatrix2D(((size - 1) / 2.0, (size - 1) / 2.0), angle, scale)
        matrix[:, 2] += shift
        warped = cv2.warpAffine(images[i], matrix, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        out_images[i] = warped.reshape(images.shape[1:])
        if out_lm is not None:
            out_lm[i] = landmarks[i] @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2].astype(np.float32)
    return out_images, out_lm


# ----------------------------------------------------------------------------------------------- model
class LaplaceKLModel:
    """Heatmap generator G (+ discriminator D for the semi-supervised branch) with the trainer interface.

    Batches are dicts: ``images`` float32 ``[B, S, S, C]`` in [-1, 1], ``landmarks`` ``[B, 30, 2]``
    crop pixels, ``unlabelled`` ``[B, S, S, C]`` (may be absent when the branch is off).
    """

    sample_grid_tag = "samples/prediction_red_groundtruth_green"

    def __init__(self, config: LaplaceKLConfig, num_landmarks: int = 30):
        import tensorflow as tf
        self.config = config
        self.num_landmarks = num_landmarks
        tf.random.set_seed(config.seed)
        self.generator = build_heatmap_net(config.image_size, config.channels, num_landmarks,
                                           config.laplacekl_width, config.laplacekl_beta_init)
        self.discriminator = build_heatmap_discriminator(config.heatmap_size, config.channels, num_landmarks,
                                                         config.laplacekl_d_width)
        self.generator.train()
        self.discriminator.train()
        self.g_optimizer = tf.keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1, beta_2=0.999)
        self.d_optimizer = tf.keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1, beta_2=0.999)
        self.g_optimizer.build(self.generator.trainable_weights)
        self.d_optimizer.build(self.discriminator.trainable_weights)
        self._log_beta = [w for w in self.generator.all_weights if "log_beta" in w.name][0]
        self._supervised_step = tf.function(self._supervised_step_impl)
        self._adversarial_step = tf.function(self._adversarial_step_impl)
        self._predict = tf.function(self._predict_impl)

    @property
    def adversarial(self) -> bool:
        return self.config.laplacekl_lambda_adv > 0

    def trackables(self) -> Dict[str, object]:
        return {"generator_weights": list(self.generator.all_weights),
                "discriminator_weights": list(self.discriminator.all_weights),
                "generator_optimizer": self.g_optimizer, "discriminator_optimizer": self.d_optimizer}

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """Constant rate, then x0.1 for the last 20% of the epochs [proposal]."""
        c = self.config
        lr = c.learning_rate * (0.1 if epoch >= 0.8 * c.epochs else 1.0)
        self.g_optimizer.learning_rate.assign(lr)
        self.d_optimizer.learning_rate.assign(lr)
        return {"generator/learning_rate": lr}

    # -- losses
    def supervised_loss(self, prob, landmarks_px):
        """Mean over images and landmarks of the configured landmark loss; returns (loss, mu, b)."""
        import tensorflow as tf
        c = self.config
        target = to_heatmap_coords(landmarks_px, c.image_size, c.heatmap_size)
        mu = softargmax(prob)
        b = laplace_scale(prob, mu)
        if c.laplacekl_loss == "laplace_kl":
            loss = laplace_kl(target, c.laplacekl_target_scale, mu, b)
        elif c.laplacekl_loss == "gaussian_kl":
            loss = gaussian_kl(target, c.laplacekl_target_scale, mu, gaussian_scale(prob, mu))
        else:
            loss = tf.reduce_sum(tf.square(mu - target), axis=-1)
        return tf.reduce_mean(loss), mu, b

    def _d_input(self, images, prob):
        import tensorflow as tf
        pooled = tf.nn.avg_pool2d(images, 2, 2, "VALID")
        norm = prob / (tf.reduce_max(prob, axis=[1, 2], keepdims=True) + 1e-12)
        return tf.concat([pooled, norm], axis=-1)

    def _supervised_step_impl(self, images, landmarks):
        import tensorflow as tf
        with tf.GradientTape() as tape:
            prob = self.generator(images)
            loss, mu, b = self.supervised_loss(prob, landmarks)
        grads = tape.gradient(loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"generator/landmark_loss": loss, "generator/total": loss,
                "generator/mean_scale_px": tf.reduce_mean(b), "generator/beta": tf.exp(self._log_beta[0])}

    def _adversarial_step_impl(self, images, landmarks, unlabelled):
        import tensorflow as tf
        c = self.config
        bce = lambda logits, label: tf.reduce_mean(  # noqa: E731
            tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label), logits=logits))
        target = to_heatmap_coords(landmarks, c.image_size, c.heatmap_size)
        real_maps = render_laplace_heatmaps(target, c.heatmap_size, c.laplacekl_target_scale)
        fake_maps = self.generator(unlabelled)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(self._d_input(images, real_maps))
            fake_logits = self.discriminator(self._d_input(unlabelled, tf.stop_gradient(fake_maps)))
            d_loss = bce(real_logits, 1.0) + bce(fake_logits, 0.0)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        with tf.GradientTape() as tape:
            prob = self.generator(images)
            sup, mu, b = self.supervised_loss(prob, landmarks)
            adv = bce(self.discriminator(self._d_input(unlabelled, self.generator(unlabelled))), 1.0)
            total = sup + c.laplacekl_lambda_adv * adv
        grads = tape.gradient(total, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"generator/landmark_loss": sup, "generator/adversarial": adv, "generator/total": total,
                "discriminator/total": d_loss, "generator/mean_scale_px": tf.reduce_mean(b),
                "generator/beta": tf.exp(self._log_beta[0])}

    def train_step(self, batch, step: int) -> Dict[str, object]:
        """One supervised step (warm-up) or one D step + one G step with the adversarial term."""
        if self.adversarial and "unlabelled" in batch and step >= self.config.laplacekl_adv_start_step:
            return self._adversarial_step(batch["images"], batch["landmarks"], batch["unlabelled"])
        return self._supervised_step(batch["images"], batch["landmarks"])

    def _predict_impl(self, images):
        prob = self.generator(images)
        mu = softargmax(prob)
        return mu, laplace_scale(prob, mu), prob

    def predict(self, images: np.ndarray, batch_size: int = 64):
        """Landmarks and scales for float images ``[N, S, S, C]`` in [-1, 1] (G in eval mode).

        Returns:
            ``(points [N, K, 2] crop px, laplace_scale [N, K, 2] crop px)``.
        """
        c = self.config
        self.generator.eval()
        points, scales = [], []
        try:
            for start in range(0, len(images), batch_size):
                mu, b, _ = self._predict(np.asarray(images[start:start + batch_size], np.float32))
                points.append(to_image_coords(mu.numpy(), c.image_size, c.heatmap_size))
                scales.append(b.numpy() * (c.image_size / c.heatmap_size))
        finally:
            self.generator.train()
        return np.concatenate(points), np.concatenate(scales)

    def sample_grid(self, batch):
        """Up to 6 crops with predicted (red) and ground-truth (green) landmarks, and the summed heatmaps."""
        import cv2
        images = np.asarray(batch["images"])[:6]
        truth = np.asarray(batch["landmarks"])[:6]
        points, _ = self.predict(images)
        self.generator.eval()
        prob = self._predict(images.astype(np.float32))[2].numpy()
        self.generator.train()
        row_a, row_b = [], []
        for img, pts, gt, heat in zip(images, points, truth, prob):
            rgb = np.clip((np.repeat(img, 3 // img.shape[-1], axis=-1) + 1) * 127.5, 0, 255).astype(np.uint8).copy()
            for (x, y) in gt:
                cv2.circle(rgb, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1)
            for (x, y) in pts:
                cv2.circle(rgb, (int(round(x)), int(round(y))), 1, (255, 0, 0), -1)
            row_a.append(rgb)
            h = heat.sum(-1)
            h = cv2.resize(h / max(h.max(), 1e-12), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
            row_b.append((h * 255).astype(np.uint8))
        return images_grid([row_a, row_b])


def evaluate(model: LaplaceKLModel, data: LandmarkData, test_jitter_seed: int = 12345) -> Dict[str, float]:
    """Held-out metrics under two crop protocols, with the mean-shape baseline for each.

    * ``jittered`` (the gated protocol): each test crop gets one fixed random similarity jitter
      (:func:`jitter_batch`, seed ``test_jitter_seed``, the training strength), emulating a face
      detector's box. Needed because CFP crops cut around the ground-truth fiducials already encode
      the landmarks: there the mean shape alone is at ~3% NME.
    * ``aligned``: the crops exactly as cut around the ground-truth fiducials.

    Returns:
        ``heldout/{nme, mean_shape_nme, nme_ratio, mean_laplace_scale_px}`` (jittered protocol),
        the same keys with suffix ``_aligned``, and ``heldout/num_images``. NMEs are ratios to the
        landmark box diagonal; scales are the Laplace scale b of the heatmaps, in crop pixels,
        averaged over images, landmarks and both axes.
    """
    rng = np.random.default_rng(test_jitter_seed)
    amount = max(model.config.laplacekl_jitter, 1.0)
    jit_images, jit_landmarks = jitter_batch(data.test_images, data.test_landmarks, rng, amount)
    mean_shape = data.train_landmarks.mean(axis=0, keepdims=True)
    result = {"heldout/num_images": float(len(data.test_images))}
    for suffix, images, truth in (("", jit_images, jit_landmarks), ("_aligned", data.test_images, data.test_landmarks)):
        points, scales = model.predict(images)
        ours = float(nme(points, truth).mean())
        base = float(nme(np.repeat(mean_shape, len(truth), 0), truth).mean())
        result.update({"heldout/nme" + suffix: ours, "heldout/mean_shape_nme" + suffix: base,
                       "heldout/nme_ratio" + suffix: ours / base,
                       "heldout/mean_laplace_scale_px" + suffix: float(scales.mean())})
    return result


# ----------------------------------------------------------------------------------------------- CLI
_FLAGS = {
    "learning_rate": ("float", "Adam learning rate of G and D."),
    "beta1": ("float", "Adam beta1."),
    "laplacekl_loss": ("string", "Landmark loss: laplace_kl (paper), gaussian_kl or l2 (softargmax L2 baseline)."),
    "laplacekl_width": ("integer", "U-Net first-level channels w (levels w, 2w, 4w)."),
    "laplacekl_target_scale": ("float", "Target Laplace/Gaussian scale b*, heatmap pixels."),
    "laplacekl_beta_init": ("float", "Initial softargmax temperature (learned)."),
    "laplacekl_lambda_adv": ("float", "Weight of the semi-supervised adversarial term (0: off)."),
    "laplacekl_adv_start_step": ("integer", "Supervised warm-up steps before the adversarial term."),
    "laplacekl_d_width": ("integer", "Discriminator first-layer channels."),
    "laplacekl_test_identities": ("integer", "CFP identities held out for testing."),
    "laplacekl_labelled_identities": ("integer", "Training identities with labels (the rest are unlabelled)."),
    "laplacekl_margin": ("float", "Crop margin around the fiducial box (fraction of its side)."),
    "laplacekl_jitter": ("float", "Training jitter strength (0: none)."),
    "laplacekl_grey": ("bool", "Grey-scale input."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define the common flags, LaplaceKL's config flags, ``--cfp_dir`` and ``--laplacekl_max_identities``."""
    define_model_flags(_FLAGS, flag_values, extra=[
        ("string", "cfp_dir", "CFP data folder (holding Data/Images, Data/Fiducials)."),
        ("integer", "laplacekl_max_identities", "Use only the first N CFP identities (tests).")])


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """Train LaplaceKL from parsed flags, then evaluate on the held-out identities.

    Returns the trainer's last metrics plus the ``heldout/...`` metrics of :func:`evaluate`, which are
    also written to ``<workdir>/heldout_metrics.json``.

    Raises:
        InputError: bad settings or a missing ``--cfp_dir``.
    """
    config = config_or_input_error(LaplaceKLConfig, flag_values)
    cfp_dir = require_flag(flag_values, "cfp_dir", "the CFP folder, e.g. ../shared/data/cfp")
    data = prepare_data(cfp_dir, config, flag_values.laplacekl_max_identities)
    if len(data.train_images) < config.batch_size:
        raise InputError("--batch_size=%d exceeds the %d labelled training images"
                         % (config.batch_size, len(data.train_images)))
    model = LaplaceKLModel(config, num_landmarks=data.train_landmarks.shape[1])
    steps = len(data.train_images) // config.batch_size
    use_unlabelled = model.adversarial and len(data.unlabelled_images) >= config.batch_size

    def make_dataset(epoch: int, skip: int):
        rng = np.random.default_rng([config.seed, epoch])
        order = rng.permutation(len(data.train_images))
        unl_order = rng.permutation(len(data.unlabelled_images)) if use_unlabelled else None
        for b in range(steps):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            batch_rng = np.random.default_rng([config.seed, epoch, b])
            if b < skip:
                continue
            images, landmarks = jitter_batch(data.train_images[idx], data.train_landmarks[idx], batch_rng,
                                             config.laplacekl_jitter)
            batch = {"images": images, "landmarks": landmarks}
            if use_unlabelled:
                u = np.resize(unl_order, (steps * config.batch_size,))[b * config.batch_size:(b + 1) * config.batch_size]
                batch["unlabelled"] = jitter_batch(data.unlabelled_images[u], None, batch_rng,
                                                   config.laplacekl_jitter)[0]
            yield batch

    return train_and_evaluate(MODEL_NAME, model, make_dataset, lambda: evaluate(model, data), steps_per_epoch=steps,
                              epochs=config.epochs, flag_values=flag_values, config=config,
                              data_description=data.description)


registry.register(registry.ModelEntry(
    name=MODEL_NAME,
    summary="LaplaceKL (Robinson et al., ICCV 2019): softargmax heatmap landmarks with a Laplace KL loss and a "
            "semi-supervised adversarial branch, on CFP fiducials",
    define_flags=define_flags,
    train=train,
))
