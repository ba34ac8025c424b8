"""CDRD: Detach and Adapt, Cross-Domain Disentangled Representation (Liu et al., CVPR 2018), ``--model=cdrd``.

Paper: Y.-C. Liu, Y.-Y. Yeh, T.-C. Fu, S.-D. Wang, W.-C. Chiu, Y.-C. F. Wang, "Detach and Adapt:
Learning Cross-Domain Disentangled Deep Representation", CVPR 2018. Official code ``ycliu93/CDRD``
(TF1, ``models/nets.py``, ``models/loss.py``); facts as collected in ``../shared/docs/papers/batch2_*.md``
section 5.

Model (paper section 3.2, Fig. 2): a generator whose high-level (first) layers are shared by the two
domains and whose last layer is domain-specific, G_S(z, l) / G_T(z, l); a discriminator whose low-level
(first) layer is domain-specific and whose high-level layers are shared, ending in two heads: D_v
(real/fake, 2-way softmax) and D_l (the attribute l = digit class, 10-way softmax, AC-GAN style).
Attribute labels exist in the source domain only; the shared layers carry the class semantics to the
target. Losses (paper eqs. 1-4; the code's form, all weights 1, softmax cross-entropy CE)::

    L_adv = 1/2 [CE(D_v(x_S), real) + CE(D_v(G_S(z, l)), fake)] + 1/2 [CE(D_v(x_T), real) + CE(D_v(G_T(z, l)), fake)]
    L_dis = 1/2 [CE(D_l(x_S), y_S) + CE(D_l(G_S(z, l)), l)] + 1/2 CE(D_l(G_T(z, l)), l)       (no target labels)
    L_G   = CE(D_v(G_S(z, l)), real) + CE(D_v(G_T(z, l)), real)
    D <- minimise L_adv + lambda_dis L_dis;   G <- minimise L_G + lambda_dis L_dis

One G step then one D step per iteration, on the same batch and the same (z, l) (code ``main.py``:
the generator update runs first). The target prediction is ``argmax D_l(x_T)`` through
the target's low-level layer.

Architecture (code ``nets.py``; N(0, 0.02) weights, zero bias, no batch norm unless ``--cdrd_g_batchnorm``,
LeakyReLU slope 0.25):

* G shared: concat(z ~ N(0, 1)^100 (code ``ops.sample_Z``), one-hot l) as 1x1x110 -> deconv 2x2/2 (1024) -> deconv 3x3/2
  VALID (512, 5x5) -> deconv 3x3/2 VALID (256, 12x12) -> deconv 3x3/2 VALID (128, 25x25), LReLU each;
  domain-specific: deconv 4x4/1 VALID -> 28x28x1, tanh.
* D domain-specific: conv 5x5 VALID (20) LReLU -> 24x24; shared: maxpool 2 -> conv 5x5 VALID (50, no
  activation) -> maxpool 2 -> conv 4x4 VALID (500) LReLU -> FC 500 linear (embedding; the code's
  ``d_fc1`` has no activation) -> heads FC 2 (D_v) and FC 10 (D_l).

Data (this repo): source = scikit-learn's 8x8 digits upsampled to 28x28 (labelled), target = MNIST
(unlabelled), 28x28 grey in [-1, 1]; the same pair as ``--model=cycada`` (a LeNet trained on the
source reaches ~55% on MNIST, so a +10-point gain is measurable). ``--cdrd_source=mnist
--cdrd_target=sklearn`` (``configs/cdrd_m2d_debug.cfg``) is the papers' other direction, MNIST -> USPS.

Deviations from the paper / code, and why:

* Data: sklearn digits -> MNIST instead of MNIST <-> USPS (no USPS offline); 1,500 labelled source
  images (code protocol: 2,000 MNIST / 1,800 USPS).
* The code's deconvolutions come from ``tf.contrib``; here a small TL layer on
  ``tf.nn.conv2d_transpose`` with explicit VALID output sizes (:class:`TransposedConvValid`), following
  ``ganimation_tl.layers.Conv2dTranspose`` (plain ``tf.Variable`` kernels).
* The E-CDRD encoders (cross-domain translation) of the paper are not implemented (not in the code either).
* Schedule: the code runs 10,000 "epochs" of 2,000 / 32 = 62 batches (620,000 iterations) and draws one
  (z, l) batch per epoch, reused for its 62 iterations; here (z, l) is drawn every iteration and the
  debug config stops at 6,000 iterations (CPU budget), the last 3,000 with the Adam rate falling linearly
  to 0 (``--cdrd_lr_decay_steps``; the code keeps the rate constant): at a constant rate the target
  branch stopped improving at this length.
* Debug config: half-width networks (G 512/256/128/64, D 20/50/250/250), Adam 2e-4 instead of 8e-5,
  fewer iterations (the spec's CPU proposal); lambda_dis = 3 instead of the code's 1 (the paper's
  lambda weighting L_dis). With lambda 1 the class terms are too weak at this scale: G_T renders
  MNIST-style digits of the wrong class, and the target branch of D_l, trained only on those labelled
  G_T samples, inherits their errors. (At 8e-5 the class head barely trains in 3,000 iterations.)
* Options not in the paper or code, all off by default (``docs/results/cdrd.md`` has the measurements):
  ``--cdrd_tied_init`` starts G_T's and D_T's domain-specific layers as copies of the source's (code:
  independent random initialisation): with independent starts G_T renders wrong-class digits and the
  two branches settle on a labelling of the target that is partly permuted; ``--cdrd_target_bottleneck``
  passes the target digits through the source's 8x8 pipeline (preprocessing: the source is 8x8 scans
  upsampled, MNIST is 28x28; applied to the target train and test images alike, and the evaluation scores
  the source-only baseline on both the processed and the raw test images and keeps the higher);
  ``--cdrd_g_batchnorm`` adds BatchNorm to the hidden generator layers (the code's ``up_conv`` has an
  ``if_batch`` switch, off in its CDRD nets): the GAN learns faster within the CPU budget;
  ``--cdrd_g_specific_layers`` detaches more generator layers (code: only the last): with 2, G_T has its
  own 12x12 -> 25x25 deconv and can draw MNIST strokes that differ from the source glyphs.
  The debug config turns on all four (2 specific layers), chosen on MNIST *valid* probes.
  ``--cdrd_ema_decay`` (off by default) keeps an exponential moving average of the generator's weights
  (``--cdrd_ema_discriminator``: the discriminator's too) and samples and evaluates with it
  (:mod:`ganimation_tl.averaging`; Yazici et al., ICLR 2019; generator-only averaging as in Karras et al.'s
  progressive GAN); training is unchanged. The debug config samples from a 0.9995 average of the generator
  (chosen on MNIST *valid* probes, round 8). ``--cdrd_d_class_from_average`` (off) changes training: the
  discriminator's two generated-digit class terms read the averaged generator's samples.
  Two further options (off by default; measured, not adopted: ``docs/results/cdrd.md``, round 5) keep the
  discriminator's shared class head D_l from adopting a generator's wrong labelling (an AC-GAN failure seen
  as a late collapse of G_S's class conditioning on one seed): ``--cdrd_d_fake_source_class`` scales the
  generated-source term CE(D_l(G_S(z, l)), l) of the discriminator's L_dis (0: D_l learns source classes
  from real labelled digits only); ``--cdrd_d_fake_target_class_specific`` lets the generated-target term
  CE(D_l(G_T(z, l)), l) train only D_T's domain-specific layer, not the shared layers and D_l. The
  generator's loss is unchanged by both. ``--cdrd_g_target_source_class`` (off by default; measured in
  round 6, not adopted: it lowered target accuracy on every seed) is the generator-side counterpart for
  the target: G is also trained so that D_l read through the *source* branch, D_l^S(G_T(z, l)), labels
  the generated target digit l, which anchors G_T's classes to a head that (with
  ``--cdrd_d_fake_source_class=0``) learnt them from real labelled digits only.
* The G step skips D's forward passes on the real images (their loss terms are constant for G and D
  does not change during the G step): the same gradients as the code's G_loss + D_loss2 in less time.
"""
from __future__ import annotations

import dataclasses
from typing import Dict

from absl import flags

from ganimation_tl import registry

__all__ = ["CDRDConfig", "CDRD", "TransposedConvValid", "build_generator_shared", "build_generator_head",
           "build_discriminator_low", "build_discriminator_shared", "cdrd_losses", "cdrd_generator_losses",
           "generator_feature_shape",
           "define_flags", "train", "train_model", "evaluate", "generate", "selection_criterion",
           "bottleneck_digits", "preprocess_target"]

NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class CDRDConfig:
    """CDRD hyper-parameters; field names are the flag names (see ``configs/cdrd.cfg`` for sources).

    Raises:
        ValueError: (in ``__post_init__``) an unknown domain, a non-positive size/count/rate, a slope or
            beta1 outside [0, 1), a generator width not divisible by 8, a target bottleneck outside
            {0} | 2..20, domain-specific generator layers outside 1..4, a negative learning-rate decay, a
            weight-average decay outside [0, 1), class terms from the average without a decay.
    """

    cdrd_source: str = "sklearn"
    cdrd_target: str = "mnist"
    cdrd_num_source: int = 1500
    cdrd_num_target: int = 1800
    cdrd_num_target_test: int = 10000
    batch_size: int = 32
    cdrd_steps: int = 10000
    cdrd_lr: float = 8e-5
    cdrd_lr_decay_steps: int = 0
    beta1: float = 0.5
    cdrd_z_dim: int = 100
    cdrd_g_width: int = 1024
    cdrd_d_conv1: int = 20
    cdrd_d_conv2: int = 50
    cdrd_d_fc: int = 500
    cdrd_lambda_dis: float = 1.0
    cdrd_d_fake_source_class: float = 1.0
    cdrd_d_fake_target_class_specific: bool = False
    cdrd_g_target_source_class: float = 0.0
    cdrd_leak: float = 0.25
    cdrd_tied_init: bool = False
    cdrd_target_bottleneck: int = 0
    cdrd_g_specific_layers: int = 1
    cdrd_g_batchnorm: bool = False
    cdrd_ema_decay: float = 0.0
    cdrd_ema_discriminator: bool = False
    cdrd_d_class_from_average: bool = False
    seed: int = 0

    def __post_init__(self):
        from ganimation_tl.digit_domains import SOURCES, TARGETS
        if self.cdrd_source not in SOURCES:
            raise ValueError("cdrd_source must be one of %s, got %r" % (SOURCES, self.cdrd_source))
        if self.cdrd_target not in TARGETS:
            raise ValueError("cdrd_target must be one of %s, got %r" % (TARGETS, self.cdrd_target))
        for name in ("cdrd_num_source", "cdrd_num_target", "cdrd_num_target_test", "batch_size", "cdrd_steps",
                     "cdrd_z_dim", "cdrd_g_width", "cdrd_d_conv1", "cdrd_d_conv2", "cdrd_d_fc", "cdrd_lr"):
            if not getattr(self, name) > 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if self.cdrd_g_width % 8:
            raise ValueError("cdrd_g_width must be a multiple of 8, got %r" % self.cdrd_g_width)
        if not 1 <= self.cdrd_g_specific_layers <= 4:
            raise ValueError("cdrd_g_specific_layers must be in 1..4, got %r" % self.cdrd_g_specific_layers)
        if self.cdrd_target_bottleneck != 0 and not 2 <= self.cdrd_target_bottleneck <= 20:
            raise ValueError("cdrd_target_bottleneck must be 0 (off) or in 2..20, got %r"
                             % self.cdrd_target_bottleneck)
        if self.cdrd_lr_decay_steps < 0:
            raise ValueError("cdrd_lr_decay_steps must be >= 0, got %r" % self.cdrd_lr_decay_steps)
        if self.cdrd_lambda_dis < 0:
            raise ValueError("cdrd_lambda_dis must be >= 0, got %r" % self.cdrd_lambda_dis)
        if not 0.0 <= self.cdrd_d_fake_source_class <= 1.0:
            raise ValueError("cdrd_d_fake_source_class must be in [0, 1], got %r" % self.cdrd_d_fake_source_class)
        if self.cdrd_g_target_source_class < 0:
            raise ValueError("cdrd_g_target_source_class must be >= 0, got %r" % self.cdrd_g_target_source_class)
        if not 0.0 <= self.cdrd_ema_decay < 1.0:
            raise ValueError("cdrd_ema_decay must be in [0, 1) (0: off), got %r" % self.cdrd_ema_decay)
        if self.cdrd_d_class_from_average and not self.cdrd_ema_decay > 0:
            raise ValueError("cdrd_d_class_from_average needs cdrd_ema_decay > 0 (the average to read)")
        for name in ("beta1", "cdrd_leak"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError("%s must be in [0, 1), got %r" % (name, getattr(self, name)))


# ----------------------------------------------------------------------------------------- layers / networks
def _tl():
    import tensorlayer as tl
    from ganimation_tl.layers import weight_init
    from ganimation_tl.networks import unique_model_name
    return tl, weight_init, unique_model_name


def _make_transposed_conv_class():
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import weight_init

    class _TransposedConvValid(tl.layers.Layer):
        """Transposed convolution with 'VALID' padding and an explicit output size (TF1 ``deconv2d``).

        Args:
            n_filter: output channels. in_channels: input channels. filter_size: (kh, kw).
            strides: (sh, sw). out_size: (H_out, W_out); must satisfy
                ``(H_out - kh) // sh + 1 == H_in`` (the forward VALID conv maps it back).
            act: optional activation. name: layer name (variables ``<name>/filters [kh, kw, out, in]``,
                ``<name>/biases``).

        Input ``[B, H_in, W_in, in_channels]``; output ``[B, H_out, W_out, n_filter]``.
        Weights N(0, 0.02), bias zero (CDRD code).
        """

        def __init__(self, n_filter, in_channels, filter_size, strides, out_size, act=None, name=None):
            super().__init__(name, act=act)
            self.n_filter, self.in_channels = int(n_filter), int(in_channels)
            self.filter_size = tuple(int(k) for k in filter_size)
            self.strides = tuple(int(s) for s in strides)
            self.out_size = tuple(int(s) for s in out_size)
            self.build(None)
            self._built = True

        def __repr__(self):
            return "TransposedConvValid(%d->%d, %s/%s -> %s, name=%r)" % (
                self.in_channels, self.n_filter, self.filter_size, self.strides, self.out_size, self.name)

        def build(self, inputs_shape):
            self.W = self._get_weights("filters", shape=self.filter_size + (self.n_filter, self.in_channels),
                                       init=weight_init(0.02))
            self.b = self._get_weights("biases", shape=(self.n_filter,), init=tl.initializers.zeros())

        def forward(self, inputs):
            batch = tf.shape(inputs)[0]
            shape = tf.stack([batch, self.out_size[0], self.out_size[1], self.n_filter])
            out = tf.nn.conv2d_transpose(inputs, self.W, shape, strides=(1,) + self.strides + (1,), padding="VALID")
            out.set_shape([inputs.shape[0], self.out_size[0], self.out_size[1], self.n_filter])
            out = tf.nn.bias_add(out, self.b)
            return self.act(out) if self.act is not None else out

    return _TransposedConvValid


_TCV = None


def TransposedConvValid(*args, **kwargs):  # noqa: N802 (a lazily defined TL layer class)
    """Build a :class:`_TransposedConvValid` layer (defined lazily so importing this module stays
    free of TensorFlow); see that class for arguments, shapes and initialisation."""
    global _TCV
    if _TCV is None:
        _TCV = _make_transposed_conv_class()
    return _TCV(*args, **kwargs)


def _lrelu(leak):
    import tensorflow as tf
    return lambda t: tf.nn.leaky_relu(t, alpha=leak)


def _generator_deconvs(z_dim: int, width: int):
    """The code's four hidden generator deconvs as ``(out_ch, in_ch, kernel, stride, out_size)``."""
    return [(width, z_dim + NUM_CLASSES, (2, 2), (2, 2), (2, 2)), (width // 2, width, (3, 3), (2, 2), (5, 5)),
            (width // 4, width // 2, (3, 3), (2, 2), (12, 12)), (width // 8, width // 4, (3, 3), (2, 2), (25, 25))]


def generator_feature_shape(z_dim: int, width: int, specific_layers: int = 1):
    """``(H, W, C)`` of the shared generator's output when the last ``specific_layers`` generator layers
    are domain-specific (1: ``(25, 25, width/8)``, 2: ``(12, 12, width/4)``, ...)."""
    out_ch, _, _, _, size = _generator_deconvs(z_dim, width)[4 - specific_layers]
    return size + (out_ch,)


def _generator_hidden(x, out_ch, in_ch, kernel, stride, size, leak, batch_norm, name):
    """One hidden generator layer: deconv + LReLU, or deconv + BatchNorm + LReLU (``batch_norm``; the
    code's ``up_conv(..., if_batch=True)`` option, off in its CDRD nets)."""
    if not batch_norm:
        return TransposedConvValid(out_ch, in_ch, kernel, stride, size, act=_lrelu(leak), name=name)(x)
    from ganimation_tl.layers import BatchNorm
    x = TransposedConvValid(out_ch, in_ch, kernel, stride, size, name=name)(x)
    return BatchNorm(out_ch, act=_lrelu(leak), name=name + "_bn")(x)


def build_generator_shared(name: str, z_dim: int = 100, width: int = 1024, leak: float = 0.25,
                           specific_layers: int = 1, batch_norm: bool = False):
    """The domain-shared high-level generator layers.

    Args:
        name: layer prefix. z_dim: noise size. width: channels of the first deconv (code: 1024; then
            width/2, /4, /8). leak: LeakyReLU slope (0.25). specific_layers: how many of the five
            generator layers (counted from the output) are domain-specific and so left out here (code: 1;
            1..4). batch_norm: BatchNorm (train-mode batch statistics) between each deconv and its LReLU
            (code: off).

    Returns:
        Static ``tl.models.Model`` (train mode): ``[B, z_dim + 10]`` (z ++ one-hot l) -> features
        ``[B] + generator_feature_shape(...)`` (``[B, 25, 25, width/8]`` for the code's 1).

    Raises:
        ValueError: ``specific_layers`` outside 1..4.
    """
    if not 1 <= specific_layers <= 4:
        raise ValueError("specific_layers must be in 1..4, got %r" % specific_layers)
    tl, _, unique_model_name = _tl()
    p = name + "_"
    act = _lrelu(leak)
    x_in = tl.layers.Input([None, z_dim + NUM_CLASSES], name=p + "code")
    x = tl.layers.Reshape([-1, 1, 1, z_dim + NUM_CLASSES], name=p + "reshape")(x_in)
    for i, (out_ch, in_ch, kernel, stride, size) in enumerate(_generator_deconvs(z_dim, width)[:5 - specific_layers]):
        x = _generator_hidden(x, out_ch, in_ch, kernel, stride, size, leak, batch_norm, p + "dc%d" % (i + 1))
    model = tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))
    model.train()
    return model


def build_generator_head(name: str, in_channels: int, channels: int = 1, *, specific_layers: int = 1,
                         z_dim: int = 100, width: int = 1024, leak: float = 0.25, batch_norm: bool = False):
    """The domain-specific last generator layers: the code's single deconv 4x4/1 VALID + tanh
    (``specific_layers`` 1: ``[B, 25, 25, in_channels]`` -> ``[B, 28, 28, C]`` in [-1, 1]), or, with
    ``specific_layers`` k > 1, the last k - 1 hidden deconvs of :func:`build_generator_shared` (LReLU
    ``leak``, BatchNorm before it if ``batch_norm``; sizes from ``z_dim`` and ``width``; input
    ``[B] + generator_feature_shape(z_dim, width, k)``) before it. Static TL model in train mode.

    Raises:
        ValueError: ``specific_layers`` outside 1..4, or ``in_channels`` not the features' channels.
    """
    import tensorflow as tf
    if not 1 <= specific_layers <= 4:
        raise ValueError("specific_layers must be in 1..4, got %r" % specific_layers)
    tl, _, unique_model_name = _tl()
    hidden = _generator_deconvs(z_dim, width)[5 - specific_layers:] if specific_layers > 1 else []
    in_shape = generator_feature_shape(z_dim, width, specific_layers) if hidden else (25, 25, in_channels)
    if in_shape[-1] != in_channels:
        raise ValueError("in_channels %d does not match the shared features %s" % (in_channels, in_shape))
    x_in = tl.layers.Input([None] + list(in_shape), name=name + "_features")
    x = x_in
    for i, (out_ch, in_ch, kernel, stride, size) in enumerate(hidden):
        x = _generator_hidden(x, out_ch, in_ch, kernel, stride, size, leak, batch_norm,
                              name + "_dc%d" % (5 - len(hidden) + i))
    last_in = hidden[-1][0] if hidden else in_channels
    x = TransposedConvValid(channels, last_in, (4, 4), (1, 1), (28, 28), act=tf.nn.tanh, name=name + "_dc5")(x)
    model = tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))
    model.train()
    return model


def build_discriminator_low(name: str, channels: int = 1, n_filter: int = 20, leak: float = 0.25):
    """A domain-specific first discriminator layer: ``[B, 28, 28, C]`` in [-1, 1] ->
    ``[B, 24, 24, n_filter]`` (conv 5x5 VALID + LeakyReLU). Static TL model in train mode."""
    tl, weight_init, unique_model_name = _tl()
    x_in = tl.layers.Input([None, 28, 28, channels], name=name + "_image")
    x = tl.layers.Conv2d(n_filter, (5, 5), (1, 1), act=_lrelu(leak), padding="VALID", W_init=weight_init(0.02),
                         b_init=tl.initializers.zeros(), in_channels=channels, name=name + "_conv1")(x_in)
    model = tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))
    model.train()
    return model


def build_discriminator_shared(name: str, in_channels: int = 20, conv2: int = 50, fc: int = 500,
                               leak: float = 0.25):
    """The domain-shared high-level discriminator layers with the two heads.

    Returns:
        Static ``tl.models.Model`` (train mode): ``[B, 24, 24, in_channels]`` ->
        ``(real_fake_logits [B, 2], class_logits [B, 10], embedding [B, fc])``; index 1 of the
        real/fake logits is "real".

    Architecture: maxpool 2 -> conv 5x5 VALID (conv2, linear) -> maxpool 2 -> conv 4x4 VALID (fc)
    LReLU -> FC fc (linear, as the code's ``d_fc1``) -> FC 2 | FC 10.
    """
    tl, weight_init, unique_model_name = _tl()
    p = name + "_"
    act = _lrelu(leak)
    x_in = tl.layers.Input([None, 24, 24, in_channels], name=p + "features")
    x = tl.layers.MaxPool2d((2, 2), (2, 2), padding="VALID", name=p + "pool1")(x_in)
    x = tl.layers.Conv2d(conv2, (5, 5), (1, 1), padding="VALID", W_init=weight_init(0.02),
                         b_init=tl.initializers.zeros(), in_channels=in_channels, name=p + "conv2")(x)
    x = tl.layers.MaxPool2d((2, 2), (2, 2), padding="VALID", name=p + "pool2")(x)
    x = tl.layers.Conv2d(fc, (4, 4), (1, 1), act=act, padding="VALID", W_init=weight_init(0.02),
                         b_init=tl.initializers.zeros(), in_channels=conv2, name=p + "conv3")(x)
    x = tl.layers.Flatten(name=p + "flatten")(x)
    # Code (nets.py ``d_fc1``): the embedding FC is linear (no activation).
    emb = tl.layers.Dense(fc, W_init=weight_init(0.02), in_channels=fc, name=p + "embedding")(x)
    real_fake = tl.layers.Dense(2, W_init=weight_init(0.02), in_channels=fc, name=p + "real_fake")(emb)
    classes = tl.layers.Dense(NUM_CLASSES, W_init=weight_init(0.02), in_channels=fc, name=p + "classes")(emb)
    model = tl.models.Model(inputs=x_in, outputs=[real_fake, classes, emb], name=unique_model_name(name))
    model.train()
    return model


# ----------------------------------------------------------------------------------------- losses
def _ce(labels, logits):
    import tensorflow as tf
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), logits))


def cdrd_losses(src_real, src_fake, tgt_real, tgt_fake, source_labels, fake_labels, fake_source_class=1.0):
    """CDRD's adversarial and disentanglement losses (paper eqs. 1-4, code ``loss.py``).

    Args:
        src_real, src_fake, tgt_real, tgt_fake: ``(real_fake_logits [B, 2], class_logits [B, 10])``
            of the discriminator on x_S, G_S(z, l), x_T, G_T(z, l).
        source_labels: int ``[B]`` y_S. fake_labels: int ``[B]`` l (the generated attribute).
        fake_source_class: weight w of the generated-source class term inside ``dis``,
            ``1/2 [CE(D_l(x_S), y_S) + w CE(D_l(G_S(z, l)), l)] + 1/2 CE(D_l(G_T(z, l)), l)``; 1 is the
            paper's and code's L_dis (the discriminator's ``--cdrd_d_fake_source_class``).

    Returns:
        dict of scalars (mean softmax cross-entropies, nats): ``d_adv`` (L_adv for D), ``dis``
        (L_dis), ``g_adv`` (L_G), ``d_total = d_adv + dis``, ``g_total = g_adv + dis``
        (unweighted; the model applies lambda_dis), and two of ``dis``'s terms as they enter it:
        ``dis_real_source = 1/2 CE(D_l(x_S), y_S)`` and ``dis_fake_target = 1/2 CE(D_l(G_T(z, l)), l)``.
    """
    import tensorflow as tf
    b = lambda logits, value: tf.fill([tf.shape(logits)[0]], value)  # noqa: E731
    d_adv = 0.5 * (_ce(b(src_real[0], 1), src_real[0]) + _ce(b(src_fake[0], 0), src_fake[0])) \
        + 0.5 * (_ce(b(tgt_real[0], 1), tgt_real[0]) + _ce(b(tgt_fake[0], 0), tgt_fake[0]))
    real_source, fake_target = 0.5 * _ce(source_labels, src_real[1]), 0.5 * _ce(fake_labels, tgt_fake[1])
    dis = real_source + 0.5 * fake_source_class * _ce(fake_labels, src_fake[1]) + fake_target
    g_adv = _ce(b(src_fake[0], 1), src_fake[0]) + _ce(b(tgt_fake[0], 1), tgt_fake[0])
    return {"d_adv": d_adv, "dis": dis, "g_adv": g_adv, "d_total": d_adv + dis, "g_total": g_adv + dis,
            "dis_real_source": real_source, "dis_fake_target": fake_target}


def cdrd_generator_losses(src_fake, tgt_fake, fake_labels, tgt_fake_source_class_logits=None,
                          target_source_class=0.0):
    """The generator's share of :func:`cdrd_losses` (the terms that depend on G).

    Args:
        src_fake, tgt_fake: ``(real_fake_logits [B, 2], class_logits [B, 10])`` of D on G_S(z, l), G_T(z, l).
        fake_labels: int ``[B]`` l.
        tgt_fake_source_class_logits: optional ``[B, 10]`` class logits of G_T(z, l) read through the
            discriminator's *source* branch (D_S's low-level layer and the shared layers), written
            D_l^S(G_T(z, l)); needed when ``target_source_class`` > 0.
        target_source_class: weight a of the target anchor ``1/2 a CE(D_l^S(G_T(z, l)), l)`` added to the
            class part (``--cdrd_g_target_source_class``; not in the paper or code, whose value is 0).

    Returns:
        ``(g_adv, dis_fake)`` scalars: L_G, and the G-dependent part of L_dis,
        ``1/2 CE(D_l(G_S(z, l)), l) + 1/2 CE(D_l(G_T(z, l)), l)`` (L_dis minus its real-source term),
        plus the anchor when a > 0.

    Raises:
        ValueError: ``target_source_class`` > 0 without ``tgt_fake_source_class_logits``.
    """
    import tensorflow as tf
    ones = lambda logits: tf.ones([tf.shape(logits)[0]], tf.int32)  # noqa: E731
    g_adv = _ce(ones(src_fake[0]), src_fake[0]) + _ce(ones(tgt_fake[0]), tgt_fake[0])
    dis_fake = 0.5 * _ce(fake_labels, src_fake[1]) + 0.5 * _ce(fake_labels, tgt_fake[1])
    if target_source_class > 0:
        if tgt_fake_source_class_logits is None:
            raise ValueError("target_source_class > 0 needs the class logits of G_T(z, l) through the source branch")
        dis_fake += 0.5 * target_source_class * _ce(fake_labels, tgt_fake_source_class_logits)
    return g_adv, dis_fake


# ----------------------------------------------------------------------------------------- model
class CDRD:
    """CDRD generators and discriminators with the trainer interface (``ganimation_tl.trainer``).

    Args:
        config: :class:`CDRDConfig`. channels: C of both domains (1: grey digits).

    Batches (from :meth:`make_dataset_fn`): ``(x_s [B, 28, 28, C] in [-1, 1], y_s int32 [B],
    x_t [B, 28, 28, C] in [-1, 1], z float32 [B, z_dim] ~ N(0, 1), l int32 [B])``.
    """

    sample_grid_tag = "samples/source_row_target_row_per_label"

    def __init__(self, config: CDRDConfig, channels: int = 1):
        import tensorflow as tf
        self.config, self.channels = config, channels
        c = config
        tf.random.set_seed(c.seed)
        k = c.cdrd_g_specific_layers
        self.g_shared = build_generator_shared("cdrd_G_shared", c.cdrd_z_dim, c.cdrd_g_width, c.cdrd_leak, k,
                                               c.cdrd_g_batchnorm)
        features = generator_feature_shape(c.cdrd_z_dim, c.cdrd_g_width, k)[-1]
        self.g_head_s, self.g_head_t = (
            build_generator_head(name, features, channels, specific_layers=k, z_dim=c.cdrd_z_dim,
                                 width=c.cdrd_g_width, leak=c.cdrd_leak, batch_norm=c.cdrd_g_batchnorm)
            for name in ("cdrd_G_S", "cdrd_G_T"))
        self.d_low_s = build_discriminator_low("cdrd_D_S", channels, c.cdrd_d_conv1, c.cdrd_leak)
        self.d_low_t = build_discriminator_low("cdrd_D_T", channels, c.cdrd_d_conv1, c.cdrd_leak)
        self.d_shared = build_discriminator_shared("cdrd_D_shared", c.cdrd_d_conv1, c.cdrd_d_conv2, c.cdrd_d_fc,
                                                   c.cdrd_leak)
        if c.cdrd_tied_init:
            # Detach from a common start: the target's domain-specific layers begin as copies of the source's.
            for src, dst in ((self.g_head_s, self.g_head_t), (self.d_low_s, self.d_low_t)):
                for w_s, w_t in zip(src.trainable_weights, dst.trainable_weights):
                    w_t.assign(w_s)
        self.g_vars = self.g_shared.trainable_weights + self.g_head_s.trainable_weights + self.g_head_t.trainable_weights
        self.d_vars = self.d_low_s.trainable_weights + self.d_low_t.trainable_weights + self.d_shared.trainable_weights
        self.opt_g = tf.keras.optimizers.Adam(c.cdrd_lr, beta_1=c.beta1, beta_2=0.999, epsilon=1e-8)
        self.opt_d = tf.keras.optimizers.Adam(c.cdrd_lr, beta_1=c.beta1, beta_2=0.999, epsilon=1e-8)
        self.opt_g.build(self.g_vars)
        self.opt_d.build(self.d_vars)
        # Optional moving average of the generator's weights (and the discriminator's with
        # --cdrd_ema_discriminator), read only by evaluation and sampling (evaluation_weights()).
        self.weight_average = None
        if c.cdrd_ema_decay > 0:
            from ganimation_tl.averaging import WeightAverage
            averaged = self.g_vars + (self.d_vars if c.cdrd_ema_discriminator else [])
            self.weight_average = WeightAverage(averaged, c.cdrd_ema_decay, name="cdrd_ema")
        self._step = tf.function(self._train_step)

    # networks ----------------------------------------------------------------------------
    def generate(self, z, labels, domain: str):
        """``G_domain(z, l)``: z float ``[B, z_dim]``, labels int ``[B]`` -> images ``[B, 28, 28, C]`` in [-1, 1]."""
        import tensorflow as tf
        code = tf.concat([tf.cast(z, tf.float32), tf.one_hot(tf.cast(labels, tf.int32), NUM_CLASSES)], axis=-1)
        features = self.g_shared(code)
        return (self.g_head_s if domain == "source" else self.g_head_t)(features)

    def generate_both(self, z, labels):
        """``(G_S(z, l), G_T(z, l))``, each ``[B, 28, 28, C]`` in [-1, 1], with the shared layers run once: the
        same values as two :meth:`generate` calls (the shared layers see the same batch, so even their batch
        statistics agree), with about 30% fewer generator multiply-adds (counted from the layer sizes of the debug
        configuration; ``bench/bench_cdrd_step.py`` measures the step). z float ``[B, z_dim]``, labels int ``[B]``.
        Source: the shared generator layers of CDRD (Liu et al., CVPR 2018); not a deviation."""
        import tensorflow as tf
        code = tf.concat([tf.cast(z, tf.float32), tf.one_hot(tf.cast(labels, tf.int32), NUM_CLASSES)], axis=-1)
        features = self.g_shared(code)
        return self.g_head_s(features), self.g_head_t(features)

    def discriminate(self, images, domain: str):
        """``(real_fake_logits [B, 2], class_logits [B, 10])`` of images ``[B, 28, 28, C]`` through the
        domain's low-level layer and the shared layers."""
        low = (self.d_low_s if domain == "source" else self.d_low_t)(images)
        real_fake, classes, _ = self.d_shared(low)
        return real_fake, classes

    def classify(self, images, domain: str = "target", batch: int = 500):
        """Predicted attribute ``argmax D_l`` (int ``[N]``) of images ``[N, 28, 28, C]`` (numpy, in
        batches)."""
        import numpy as np
        out = [np.argmax(self.discriminate(images[i:i + batch], domain)[1].numpy(), -1)
               for i in range(0, len(images), batch)]
        return np.concatenate(out) if out else np.zeros([0], np.int64)

    def class_samples(self, z, labels, fake_s, fake_t):
        """The generated digits that the discriminator's class terms read in its step: ``(fake_s, fake_t)``
        themselves (code), or with ``cdrd_d_class_from_average`` the averaged generator's ``G_S(z, l)`` and
        ``G_T(z, l)`` (``[B, 28, 28, C]`` in [-1, 1]; the trained weights are back in place on return). Also
        runs inside the traced train step."""
        if not self.config.cdrd_d_class_from_average:
            return fake_s, fake_t
        with self.weight_average.swapped():
            return self.generate_both(z, labels)

    def evaluation_weights(self):
        """Context manager for evaluation and sampling: with ``cdrd_ema_decay`` > 0 the generator (and with
        ``cdrd_ema_discriminator`` the discriminator, class head D_l included) holds the moving averages of its
        weights inside the block (:meth:`ganimation_tl.averaging.WeightAverage.swapped`),
        otherwise their trained weights (a no-op block). Do not train inside it."""
        from ganimation_tl.averaging import averaged_weights
        return averaged_weights(self.weight_average)

    # trainer interface ----------------------------------------------------------------------
    def trackables(self):
        """Every network's ``all_weights``, both optimizers, and the weight averages when they are on."""
        extra = {"ema": self.weight_average.trackables()} if self.weight_average else {}
        return {**extra, "g_shared": list(self.g_shared.all_weights), "g_head_s": list(self.g_head_s.all_weights),
                "g_head_t": list(self.g_head_t.all_weights), "d_low_s": list(self.d_low_s.all_weights),
                "d_low_t": list(self.d_low_t.all_weights), "d_shared": list(self.d_shared.all_weights),
                "opt_g": self.opt_g, "opt_d": self.opt_d}

    def learning_rate(self, step: int) -> float:
        """Adam rate at iteration ``step`` (0-based): ``cdrd_lr``, constant as in the code (Adam 8e-5
        throughout), or with ``cdrd_lr_decay_steps`` = N > 0 falling linearly to 0 over the last N of the
        ``cdrd_steps`` iterations (the CycleGAN-style schedule; not in the CDRD code). N larger than
        ``cdrd_steps`` (e.g. a short run with the debug flagfile) decays over the whole run. The schedule is
        GANimation's :func:`ganimation_tl.model.learning_rate_at`, counted in iterations."""
        from ganimation_tl.model import learning_rate_at
        c = self.config
        return learning_rate_at(c.cdrd_lr, step, c.cdrd_steps, min(c.cdrd_lr_decay_steps, c.cdrd_steps))

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """Set both Adam rates for the fractional ``epoch`` (one epoch = ``cdrd_steps`` iterations; see
        :meth:`learning_rate`); returns ``{"lr": rate}``."""
        rate = self.learning_rate(int(round(epoch * self.config.cdrd_steps)))
        for opt in (self.opt_g, self.opt_d):
            opt.learning_rate.assign(rate)
        return {"lr": rate}

    def _train_step(self, x_s, y_s, x_t, z, l):
        import tensorflow as tf
        lam = self.config.cdrd_lambda_dis
        # Code order (main.py): the G update first, then the D update, same batch and (z, l). The real
        # images do not depend on G and D does not change during the G step, so the G step skips their
        # forward passes; their terms (constant for G) are taken from the D step below for the logged
        # generator/disentangle value, which is therefore the code's G_loss + D_loss2 term for term (plus the
        # target anchor of --cdrd_g_target_source_class when it is on).
        with tf.GradientTape() as g_tape:
            fake_s_g, fake_t_g = self.generate_both(z, l)
            src_fake_g = self.discriminate(fake_s_g, "source")
            tgt_fake_g = self.discriminate(fake_t_g, "target")
            anchor = self.config.cdrd_g_target_source_class
            # Target anchor (off by default): D_l read through the *source* branch also labels G_T(z, l) as l.
            anchor_logits = self.discriminate(fake_t_g, "source")[1] if anchor > 0 else None
            g_adv, g_dis_fake = cdrd_generator_losses(src_fake_g, tgt_fake_g, l, anchor_logits, anchor)
            g_loss = g_adv + lam * g_dis_fake
        self.opt_g.apply_gradients(zip(g_tape.gradient(g_loss, self.g_vars), self.g_vars))
        fake_s, fake_t = self.generate_both(z, l)
        from_average = self.config.cdrd_d_class_from_average
        avg_s, avg_t = self.class_samples(z, l, fake_s, fake_t)
        specific = self.config.cdrd_d_fake_target_class_specific
        with tf.GradientTape(persistent=specific) as d_tape:
            src_real, tgt_real = self.discriminate(x_s, "source"), self.discriminate(x_t, "target")
            src_fake, tgt_fake = self.discriminate(fake_s, "source"), self.discriminate(fake_t, "target")
            if from_average:
                src_fake = (src_fake[0], self.discriminate(avg_s, "source")[1])
                tgt_fake = (tgt_fake[0], self.discriminate(avg_t, "target")[1])
            losses = cdrd_losses(src_real, src_fake, tgt_real, tgt_fake, y_s, l, self.config.cdrd_d_fake_source_class)
            d_loss = losses["d_adv"] + lam * losses["dis"]
            if specific:   # split inside the tape so that both parts are differentiable
                target_term = lam * losses["dis_fake_target"]
                rest = d_loss - target_term
        if specific:
            # The generated-target class term trains D_T's own layer only; every other term trains all of D.
            d_grads = d_tape.gradient(rest, self.d_vars)
            own = {id(v): g for v, g in zip(self.d_low_t.trainable_weights,
                                            d_tape.gradient(target_term, self.d_low_t.trainable_weights))}
            d_grads = [g + own[id(v)] if id(v) in own else g for v, g in zip(self.d_vars, d_grads)]
            del d_tape
        else:
            d_grads = d_tape.gradient(d_loss, self.d_vars)
        self.opt_d.apply_gradients(zip(d_grads, self.d_vars))
        if self.weight_average is not None:
            self.weight_average.update()
        g_dis = g_dis_fake + losses["dis_real_source"]
        src_acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(src_real[1], -1, output_type=tf.int32),
                                                  tf.cast(y_s, tf.int32)), tf.float32))
        return {"discriminator/adversarial": losses["d_adv"], "discriminator/disentangle": losses["dis"],
                "discriminator/total": d_loss, "generator/adversarial": g_adv,
                "generator/disentangle": g_dis, "generator/total": g_adv + lam * g_dis,
                "discriminator/source_accuracy": src_acc}

    def train_step(self, batch, step: int):
        """One G step then one D step on ``batch`` (see class docstring); returns scalars."""
        import tensorflow as tf
        return self._step(*(tf.convert_to_tensor(b) for b in batch))

    def sample_grid(self, batch):
        """uint8 panel: for 2 fixed noise vectors, rows G_S(z, 0..9) and G_T(z, 0..9) (with the averaged
        weights when ``cdrd_ema_decay`` > 0, see :meth:`evaluation_weights`)."""
        import numpy as np
        from ganimation_tl.sibling import images_grid
        rng = np.random.default_rng(1234)
        rows = []
        with self.evaluation_weights():
            for _ in range(2):
                z = np.repeat(rng.standard_normal((1, self.config.cdrd_z_dim)).astype(np.float32), NUM_CLASSES, 0)
                labels = np.arange(NUM_CLASSES, dtype=np.int32)
                rows.append(list(self.generate(z, labels, "source").numpy()))
                rows.append(list(self.generate(z, labels, "target").numpy()))
        return images_grid(rows)

    def make_dataset_fn(self, data):
        """``(epoch, skip) -> iterator`` of batches; step ``s`` draws from seed ``(seed, s)`` (deterministic
        resume). Source/target indices uniformly at random, z ~ N(0, 1) (code), l uniform over 0..9."""
        import numpy as np
        c = self.config

        def make(epoch: int, skip: int):
            for step in range(epoch * c.cdrd_steps + skip, (epoch + 1) * c.cdrd_steps):
                rng = np.random.default_rng([c.seed, step])
                i_s = rng.integers(0, len(data.source_train), c.batch_size)
                i_t = rng.integers(0, len(data.target_train), c.batch_size)
                z = rng.standard_normal((c.batch_size, c.cdrd_z_dim)).astype(np.float32)
                labels = rng.integers(0, NUM_CLASSES, c.batch_size).astype(np.int32)
                yield data.source_train[i_s], data.source_train_labels[i_s], data.target_train[i_t], z, labels
        return make


def generate(model: CDRD, num_noise: int = 50, seed: int = 7):
    """Images for ``num_noise`` fixed noise vectors and each label l = 0..9, in both domains.

    Returns:
        ``(source_images [num_noise * 10, 28, 28, C], target_images [same], labels int32 [num_noise * 10])``,
        images in [-1, 1]; row ``i * 10 + l`` uses noise ``i`` and label ``l``.
    """
    import numpy as np
    rng = np.random.default_rng(seed)
    z = np.repeat(rng.standard_normal((num_noise, model.config.cdrd_z_dim)).astype(np.float32), NUM_CLASSES, 0)
    labels = np.tile(np.arange(NUM_CLASSES, dtype=np.int32), num_noise)
    return model.generate(z, labels, "source").numpy(), model.generate(z, labels, "target").numpy(), labels


def evaluate(model: CDRD, data) -> Dict[str, float]:
    """Target accuracy of ``argmax D_l(x_T)``, source accuracy, and the model's own consistency on
    generated pairs.

    Returns:
        ``target_accuracy`` (target test set through the target branch), ``target_accuracy_source_branch``
        (target test through the source low layer), ``source_accuracy`` (held-out source), and
        ``generated_self_consistency_source`` / ``_target``: fraction of G_S(z, l) / G_T(z, l) (50 fixed z,
        l = 0..9) that D_l assigns to l. All in [0, 1].
    """
    import numpy as np
    fake_s, fake_t, labels = generate(model)
    return {
        "target_accuracy": float(np.mean(model.classify(data.target_test, "target") == data.target_test_labels)),
        "target_accuracy_source_branch": float(np.mean(model.classify(data.target_test, "source")
                                                       == data.target_test_labels)),
        "source_accuracy": float(np.mean(model.classify(data.source_test, "source") == data.source_test_labels)),
        "generated_self_consistency_source": float(np.mean(model.classify(fake_s, "source") == labels)),
        "generated_self_consistency_target": float(np.mean(model.classify(fake_t, "target") == labels)),
    }


def bottleneck_digits(images, resolution: int = 8):
    """Pass 28x28 digits through the scikit-learn digits' pipeline: the central 20x20 box (where MNIST
    and the upsampled 8x8 digits sit) area-averaged to ``resolution`` x ``resolution`` and quantised to 17
    grey levels (the UCI digits count 0..16 pixels per 4x4 block), then bicubic back to 20x20 in a black
    28x28 frame (``ganimation_tl.datasets.digits.load_sklearn_digits``).

    Args:
        images: float ``[N, 28, 28, 1]`` in [-1, 1]. resolution: the bottleneck side (8: the source's).

    Returns:
        float32 ``[N, 28, 28, 1]`` in [-1, 1].

    Raises:
        ValueError: images not ``[N, 28, 28, 1]``.
    """
    import cv2
    import numpy as np
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise ValueError("bottleneck_digits expects [N, 28, 28, 1] images, got shape %s" % (images.shape,))
    out = np.zeros_like(images)
    for i, image in enumerate((images[..., 0] + 1.0) / 2.0):
        small = cv2.resize(image[4:24, 4:24], (resolution, resolution), interpolation=cv2.INTER_AREA)
        small = np.round(np.clip(small, 0.0, 1.0) * 16.0) / 16.0
        out[i, 4:24, 4:24, 0] = cv2.resize(small, (20, 20), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0) * 2.0 - 1.0


def preprocess_target(data, config: CDRDConfig):
    """The target images CDRD sees: ``data`` unchanged, or with ``target_train`` and ``target_test`` passed
    through :func:`bottleneck_digits` when ``config.cdrd_target_bottleneck`` > 0 (labels untouched)."""
    import dataclasses as dc
    if not config.cdrd_target_bottleneck:
        return data
    r = config.cdrd_target_bottleneck
    return dc.replace(data, target_train=bottleneck_digits(data.target_train, r),
                      target_test=bottleneck_digits(data.target_test, r),
                      description=data.description + ", target through a %dx%d bottleneck" % (r, r))


def selection_criterion(model: CDRD, data, batch: int = 500) -> float:
    """A model-selection score that reads no target label: how often argmax D_l agrees between the
    target branch and the (source-label-anchored) source branch on the unlabelled target training
    images ``data.target_train`` ``[N, 28, 28, C]``. In [0, 1]; low when the target branch has drifted
    into its own labelling of the target digits."""
    import numpy as np
    x = data.target_train
    return float(np.mean(model.classify(x, "target", batch) == model.classify(x, "source", batch)))


# ----------------------------------------------------------------------------------------- CLI
_FLAG_HELP = {
    "cdrd_source": ("string", "Source domain (labelled): sklearn (8x8 UCI digits upsampled) or mnist."),
    "cdrd_target": ("string", "Target domain (unlabelled): mnist, digits_m, or sklearn (with --cdrd_source=mnist: "
                    "the papers' MNIST -> USPS direction)."),
    "cdrd_num_source": ("integer", "Labelled source training images."),
    "cdrd_num_target": ("integer", "Unlabelled target training images (MNIST valid split; sklearn: the first of a "
                        "fixed permutation)."),
    "cdrd_num_target_test": ("integer", "Target test images (MNIST test split; sklearn: the last of the permutation, "
                             "disjoint; num_target + num_target_test <= 1797)."),
    "cdrd_steps": ("integer", "Training iterations (one D and one G step each)."),
    "cdrd_lr": ("float", "Adam learning rate of G and D (code: 8e-5)."),
    "cdrd_lr_decay_steps": ("integer", "0: constant rate (code). N > 0: the rate falls linearly to 0 over the last "
                            "N of the --cdrd_steps iterations (over all of them if N is larger)."),
    "beta1": ("float", "Adam beta1 (code: 0.5)."),
    "cdrd_z_dim": ("integer", "Noise dimension (code: 100)."),
    "cdrd_g_width": ("integer", "Channels of the first generator deconv (code: 1024; then /2, /4, /8)."),
    "cdrd_d_conv1": ("integer", "Discriminator domain-specific conv channels (code: 20)."),
    "cdrd_d_conv2": ("integer", "Discriminator shared conv channels (code: 50)."),
    "cdrd_d_fc": ("integer", "Discriminator conv3 / embedding units (code: 500)."),
    "cdrd_lambda_dis": ("float", "Weight of the disentanglement (class) loss L_dis (code: 1)."),
    "cdrd_d_fake_source_class": ("float", "Weight (in [0, 1]) of CE(D_l(G_S(z, l)), l) in the discriminator's "
                                 "L_dis (paper and code: 1). 0: D_l learns source classes from real labelled "
                                 "source digits only, so it cannot adopt a generator's wrong labelling; the "
                                 "generator's loss is unchanged."),
    "cdrd_d_fake_target_class_specific": ("bool", "The discriminator's generated-target class term "
                                          "CE(D_l(G_T(z, l)), l) trains only D_T's domain-specific layer (code: "
                                          "all discriminator layers, D_l included); the generator's loss is "
                                          "unchanged."),
    "cdrd_g_target_source_class": ("float", "Weight a >= 0 of a target anchor in the generator's loss: "
                                   "lambda_dis * a/2 * CE(D_l^S(G_T(z, l)), l), the generated target digit read "
                                   "through the discriminator's source branch (D_S's layer + shared layers) must "
                                   "show class l (not in the paper or code: 0). Meant with "
                                   "--cdrd_d_fake_source_class=0, whose source branch learns from real labelled "
                                   "digits only."),
    "cdrd_leak": ("float", "LeakyReLU slope (code: 0.25)."),
    "cdrd_ema_decay": ("float", "0: sample with the trained weights (code). beta in (0, 1): also keep an "
                       "exponential moving average of the generator's weights (horizon ~1/(1 - beta) iterations; "
                       "Yazici et al., ICLR 2019) and sample and evaluate with it; training is unchanged."),
    "cdrd_d_class_from_average": ("bool", "With --cdrd_ema_decay: the discriminator's generated-digit class terms "
                                  "CE(D_l(G_S(z, l)), l) and CE(D_l(G_T(z, l)), l) read samples of the averaged "
                                  "generator (the real/fake terms still read the trained one), so D_l learns from a "
                                  "slower, steadier generator (not in the paper or code)."),
    "cdrd_ema_discriminator": ("bool", "With --cdrd_ema_decay: average the discriminator's weights too, so the "
                               "class head D_l that predicts the target labels is the averaged one."),
    "cdrd_target_bottleneck": ("integer", "0: target digits as loaded. N > 0: pass the target images (train and "
                               "test) through the source's NxN pipeline (area-average the central 20x20 to NxN, "
                               "17 grey levels, bicubic back; 8 matches scikit-learn's 8x8 digits)."),
    "cdrd_g_specific_layers": ("integer", "How many generator layers, counted from the output, are domain-specific "
                               "(code: 1, the last deconv; 2 also detaches the 12x12 -> 25x25 deconv; 1..4)."),
    "cdrd_g_batchnorm": ("bool", "BatchNorm (batch statistics) after each hidden generator deconv, before its "
                         "LReLU (the code's up_conv if_batch option; its CDRD nets leave it off)."),
    "cdrd_tied_init": ("bool", "Initialise the target's domain-specific layers (G_T's last deconv, D_T's first conv) "
                       "as copies of the source's, so both branches start identical (code: independent random "
                       "initialisation)."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define CDRD's flags (config fields, ``--mnist_path`` and the common trainer flags); idempotent."""
    from ganimation_tl.sibling import define_model_flags
    define_model_flags(_FLAG_HELP, flag_values, extra=[
        ("string", "mnist_path", "Path of the classic mnist.pkl.gz (configs: ../shared/data/digits/mnist.pkl.gz).")])


def build(flag_values=flags.FLAGS):
    """Flags -> ``(config, DigitDomains data, CDRD model)``.

    Raises:
        InputError: invalid settings, or ``--mnist_path`` missing/unreadable (the message names the flag).
    """
    from ganimation_tl.sibling import config_or_input_error, load_digit_domains
    config = config_or_input_error(CDRDConfig, flag_values)
    data = preprocess_target(load_digit_domains("cdrd", config, flag_values), config)
    return config, data, CDRD(config, channels=1)


def train_model(flag_values=flags.FLAGS):
    """Train from parsed flags; returns ``(model, data, metrics)`` (trainer metrics plus ``eval/...``)."""
    from ganimation_tl.sibling import run_trainer
    config, data, model = build(flag_values)
    metrics = dict(run_trainer("cdrd", model, model.make_dataset_fn(data), steps_per_epoch=config.cdrd_steps,
                               epochs=1, flag_values=flag_values, config=config, data_description=data.description))
    with model.evaluation_weights():
        metrics.update({"eval/" + k: v for k, v in evaluate(model, data).items()})
    return model, data, metrics


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """``train.py --model=cdrd`` entry: train and return the last metrics (with ``eval/...``)."""
    return train_model(flag_values)[2]


registry.register(registry.ModelEntry(
    name="cdrd",
    summary="CDRD (Liu et al., CVPR 2018): cross-domain disentangled GAN for unsupervised domain adaptation, digits",
    define_flags=define_flags,
    train=train,
))
