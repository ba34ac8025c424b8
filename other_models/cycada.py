"""CyCADA: Cycle-Consistent Adversarial Domain Adaptation (Hoffman et al., ICML 2018), ``--model=cycada``.

Paper: J. Hoffman, E. Tzeng, T. Park, J.-Y. Zhu, P. Isola, K. Saenko, A. A. Efros, T. Darrell,
"CyCADA: Cycle-Consistent Adversarial Domain Adaptation", ICML 2018. Official code
``jhoffman/cycada_release`` (task nets, ADDA stage) and its CycleGAN fork
``jhoffman/pytorch-CycleGAN-and-pix2pix`` (``cycle_gan_semantic_model.py``); facts as collected in
``../shared/docs/papers/batch2_*.md`` section 1.

Objective (paper section 3, eq. 7), with G_ST: source->target, G_TS: target->source, f_S the source
task net, f_T the adapted task net, D_S / D_T image discriminators, D_feat the feature discriminator::

    L_CyCADA = L_task(f_T, G_ST(X_S), Y_S)                                   (eq. 1)
             + L_GAN(G_ST, D_T, X_T, X_S) + L_GAN(G_TS, D_S, X_S, X_T)       (eq. 2, LSGAN form)
             + L_GAN(f_T, D_feat, f_S(G_ST(X_S)), X_T)                       (eq. 5, feature level)
             + lambda_cyc L_cyc(G_ST, G_TS, X_S, X_T)                        (eq. 3, L1 both ways)
             + L_sem(G_ST, G_TS, X_S, X_T, f_S)                              (eq. 4)
    L_sem = CE(f_S(G_TS(x_t)), argmax f_S(x_t)) + CE(f_S(G_ST(x_s)), argmax f_S(x_s)),  f_S frozen

Trained in stages (as the paper and the release do, issue #32), all inside one step loop so the
trainer checkpoints and resumes any stage; stage lengths are step counts:

1. ``cycada_classifier_steps``: f_S (LeNet) on labelled source, cross-entropy (eq. 1 with f_S).
2. ``cycada_gan_steps``: CycleGAN with the semantic loss through the frozen f_S. Generator loss
   (release): ``2 * LSGAN(D_T(G_ST(x_s)), 1) + LSGAN(D_S(G_TS(x_t)), 1) + lambda_cyc (|G_TS(G_ST(x_s)) - x_s|_1
   + |G_ST(G_TS(x_t)) - x_t|_1) + lambda_sem L_sem``; each discriminator ``0.5 (MSE(D(real), 1) +
   MSE(D(pool fake), 0))`` with an image pool of 50. Learning rate constant, then linear decay to 0
   over the last ``cycada_gan_decay_fraction`` of the stage (CycleGAN niter / niter_decay).
3. ``cycada_pixel_steps``: the pixel-adapted task net f_TS (initialised from f_S) trained with
   cross-entropy on translated source ``G_ST(x_s)`` with the source labels (eq. 1). Its target
   accuracy is the paper's "pixel only" row.
4. ``cycada_adapt_steps``: ADDA feature-level adaptation (eq. 5): f_T initialised from f_TS; D_feat
   (an MLP on the 10 class scores, 10-500-500-2) trained with softmax CE to tell
   f_TS(G_ST(x_s)) (label 1) from f_T(x_t) (label 0); f_T trained with the inverted label
   CE(D_feat(f_T(x_t)), 1), updated only on batches where D_feat's accuracy exceeds 0.6 (release
   ``train_adda_net.py``). Its target accuracy is the "pixel + feat" row.

Data (this repo): source = scikit-learn's 8x8 digits upsampled to 28x28 (1,797 real digits by other
writers, the UCI optdigits scans), target = MNIST, grey 28x28 in [-1, 1]. Chosen because a LeNet trained
on the source reaches ~97% on held-out source digits but only ~55% on MNIST (measured here), a
clearly imperfect source-only baseline like the paper's USPS->MNIST pair (69.6% source-only); MNIST->
Digits-M (~64%) is the alternative (``--cycada_source=mnist --cycada_target=digits_m``).

Deviations from the paper / release, and why:

* Data: sklearn digits -> MNIST instead of SVHN->MNIST / USPS->MNIST (no SVHN/USPS offline).
* Task net: the release's LeNet (conv 20-50, FC 500, dropout 0.5) on 28x28 grey input for every
  stage (the release uses LeNet for USPS<->MNIST); Dropout2d after conv2 is left out (a plain FC
  dropout is kept). Glorot-normal weights, zero bias (release: Xavier normal).
* Generator: the ResNet CycleGAN generator at 28x28 with 'SAME' zero padding instead of reflection
  padding (MirrorPad was the slowest op here), 3x3 stride-2 down-sampling and 3x3 stride-2 transposed
  convs (``ganimation_tl.layers.Conv2dTranspose``);
  instance norm is affine (``ganimation_tl.layers.InstanceNorm2d``, initialised to identity; release
  ``affine=False``); no dropout in the residual blocks (release: dropout 0.5, flag
  ``--no_dropout`` not passed). Debug config: ngf 16, 3 residual blocks (paper: 64, 9).
* PatchGAN: n_layers=3 with 'SAME' 4x4 convs (28 -> 14 -> 7 -> 4 -> 4 -> 4x4 patch map; release at
  32 px: 2x2), instance norm, LeakyReLU 0.2.
* Semantic loss uses a frozen pre-trained f_S as in the paper (the release trains its classifier
  jointly and uses true source labels: ``--cycada_semantic_labels=true`` selects true labels).
* Stage 3 translates source batches on the fly with the final G_ST instead of writing all translated
  images to disk first (same data, no files).
* Sizes and step counts reduced for CPU in ``configs/cycada_debug.cfg``; learning rates raised at that
  scale (ADDA 1e-5 -> 1e-4, as the spec's CPU proposal says).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict

from absl import flags

from ganimation_tl import registry

__all__ = ["CyCADAConfig", "CyCADA", "build_lenet", "build_resnet_generator", "build_patch_discriminator",
           "build_feature_discriminator", "lsgan_loss", "semantic_consistency_loss", "adda_losses",
           "ImagePool", "xavier_normal", "define_flags", "train", "train_model", "evaluate"]

STAGES = ("classifier", "gan", "pixel", "adapt")


@dataclasses.dataclass(frozen=True)
class CyCADAConfig:
    """CyCADA hyper-parameters; field names are the flag names (see ``configs/cycada.cfg`` for sources).

    Raises:
        ValueError: (in ``__post_init__``) a non-positive size/count/rate, an unknown domain or label
            mode, a gate outside [0, 1].
    """

    cycada_source: str = "sklearn"
    cycada_target: str = "mnist"
    cycada_num_source: int = 1500
    cycada_num_target: int = 10000
    cycada_num_target_test: int = 10000
    batch_size: int = 128
    cycada_gan_batch_size: int = 100
    cycada_classifier_steps: int = 1200
    cycada_gan_steps: int = 3000
    cycada_pixel_steps: int = 1200
    cycada_adapt_steps: int = 3000
    cycada_lr_classifier: float = 1e-4
    cycada_lr_gan: float = 2e-4
    cycada_lr_adapt: float = 1e-5
    beta1: float = 0.5
    cycada_gan_decay_fraction: float = 0.5
    cycada_ngf: int = 64
    cycada_ndf: int = 64
    cycada_res_blocks: int = 9
    cycada_lambda_cycle: float = 1.0
    cycada_lambda_semantic: float = 1.0
    cycada_gan_st_weight: float = 2.0
    cycada_semantic_labels: str = "pseudo"
    cycada_pool_size: int = 50
    cycada_disc_acc_gate: float = 0.6
    cycada_feat_disc_units: int = 500
    cycada_dropout_keep: float = 0.5
    seed: int = 0

    def __post_init__(self):
        from ganimation_tl.digit_domains import SOURCES, TARGETS
        if self.cycada_source not in SOURCES:
            raise ValueError("cycada_source must be one of %s, got %r" % (SOURCES, self.cycada_source))
        if self.cycada_target not in TARGETS:
            raise ValueError("cycada_target must be one of %s, got %r" % (TARGETS, self.cycada_target))
        if self.cycada_semantic_labels not in ("pseudo", "true"):
            raise ValueError("cycada_semantic_labels must be 'pseudo' or 'true', got %r" % self.cycada_semantic_labels)
        for name in ("cycada_num_source", "cycada_num_target", "cycada_num_target_test", "batch_size",
                     "cycada_gan_batch_size", "cycada_ngf", "cycada_ndf", "cycada_feat_disc_units",
                     "cycada_classifier_steps"):
            if getattr(self, name) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        for name in ("cycada_gan_steps", "cycada_pixel_steps", "cycada_adapt_steps", "cycada_res_blocks",
                     "cycada_pool_size"):
            if getattr(self, name) < 0:
                raise ValueError("%s must be >= 0, got %r" % (name, getattr(self, name)))
        for name in ("cycada_lr_classifier", "cycada_lr_gan", "cycada_lr_adapt", "cycada_dropout_keep"):
            if not getattr(self, name) > 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        for name in ("cycada_lambda_cycle", "cycada_lambda_semantic", "cycada_gan_st_weight"):
            if getattr(self, name) < 0:
                raise ValueError("%s must be >= 0, got %r" % (name, getattr(self, name)))
        for name in ("beta1", "cycada_gan_decay_fraction", "cycada_disc_acc_gate", "cycada_dropout_keep"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError("%s must be in [0, 1], got %r" % (name, getattr(self, name)))

    @property
    def stage_bounds(self):
        """Cumulative step boundaries ``[(stage, first_step, end_step)]`` in training order."""
        bounds, start = [], 0
        for stage, n in zip(STAGES, (self.cycada_classifier_steps, self.cycada_gan_steps,
                                     self.cycada_pixel_steps, self.cycada_adapt_steps)):
            bounds.append((stage, start, start + n))
            start += n
        return bounds

    @property
    def total_steps(self) -> int:
        return self.stage_bounds[-1][2]

    def stage_of(self, step: int):
        """``(stage name, step within the stage, stage length)`` for global ``step``."""
        for stage, first, end in self.stage_bounds:
            if first <= step < end:
                return stage, step - first, end - first
        return STAGES[-1], step - self.stage_bounds[-1][1], max(1, self.cycada_adapt_steps)


# ----------------------------------------------------------------------------------------- networks
def xavier_normal():
    """Glorot/Xavier-normal initializer, ``N(0, 2 / (fan_in + fan_out))`` (the release's task-net init).

    Returns a callable ``(shape, dtype) -> tensor`` usable as a TensorLayer ``W_init`` for dense
    ``[in, out]`` and conv ``[kh, kw, in, out]`` kernels.
    """
    import numpy as np
    import tensorflow as tf

    def init(shape, dtype=tf.float32):
        shape = [int(d) for d in shape]
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        return tf.random.normal(shape, 0.0, math.sqrt(2.0 / (fan_in + fan_out)), dtype=dtype)
    return init


def build_lenet(name: str, channels: int = 1, image_size: int = 28, keep: float = 0.5):
    """The release's LeNet task net (``cycada/models/task_net.py``).

    Args:
        name: layer-name prefix. channels: C of the input. image_size: 28. keep: dropout keep
            probability on the 500-d feature.

    Returns:
        Static ``tl.models.Model``: float32 ``[B, 28, 28, C]`` in [-1, 1] -> class scores (logits)
        ``[B, 10]``. Call it with ``is_train=True/False`` (dropout).

    Architecture: conv5x5(20, VALID)-maxpool2-ReLU-conv5x5(50, VALID)-maxpool2-ReLU-flatten(800)-
    FC500-ReLU-dropout-FC10.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    init = xavier_normal()
    p = name + "_"
    x_in = tl.layers.Input([None, image_size, image_size, channels], name=p + "image")
    x = tl.layers.Conv2d(20, (5, 5), (1, 1), padding="VALID", W_init=init, in_channels=channels, name=p + "conv1")(x_in)
    x = tl.layers.MaxPool2d((2, 2), (2, 2), name=p + "pool1")(x)
    x = tl.layers.Lambda(tf.nn.relu, name=p + "relu1")(x)
    x = tl.layers.Conv2d(50, (5, 5), (1, 1), padding="VALID", W_init=init, in_channels=20, name=p + "conv2")(x)
    x = tl.layers.MaxPool2d((2, 2), (2, 2), name=p + "pool2")(x)
    x = tl.layers.Lambda(tf.nn.relu, name=p + "relu2")(x)
    x = tl.layers.Flatten(name=p + "flatten")(x)
    side = ((image_size - 4) // 2 - 4) // 2
    x = tl.layers.Dense(500, act=tf.nn.relu, W_init=init, in_channels=50 * side * side, name=p + "fc1")(x)
    x = tl.layers.Dropout(keep=keep, name=p + "dropout")(x)
    x = tl.layers.Dense(10, W_init=init, in_channels=500, name=p + "fc2")(x)
    return tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))


def build_resnet_generator(name: str, channels: int = 1, image_size: int = 28, ngf: int = 64, res_blocks: int = 9):
    """CycleGAN's ResNet generator (release ``ResnetGenerator``), shrunk to digit size.

    Args:
        name: layer-name prefix. channels: C in and out. image_size: H = W, a multiple of 4.
        ngf: channels of the first conv (release 64). res_blocks: residual blocks (release 9).

    Returns:
        Static ``tl.models.Model`` (already in train mode; no mode-dependent layers):
        ``[B, H, W, C]`` in [-1, 1] -> ``[B, H, W, C]`` in [-1, 1] (tanh).

    Raises:
        ValueError: image_size not a positive multiple of 4.

    Architecture: conv7(ngf)-IN-ReLU; conv3/2(2 ngf)-IN-ReLU; conv3/2(4 ngf)-IN-ReLU;
    ``res_blocks`` x [conv3, IN, ReLU, conv3, IN, + skip]; convT3/2(2 ngf)-IN-ReLU; convT3/2(ngf)-IN-ReLU;
    conv7(C), tanh. All 'SAME' zero padding (release: reflection padding; ``tf.pad(REFLECT)`` measured
    2x slower than the conv it feeds on this CPU). No conv bias before IN.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import Conv2dTranspose, InstanceNorm2d, weight_init
    from ganimation_tl.networks import unique_model_name

    if image_size <= 0 or image_size % 4:
        raise ValueError("generator image_size must be a positive multiple of 4, got %r" % image_size)
    p = name + "_"

    def conv(x, n, k, s, nm, cin, pad="SAME", bias=False, act=None):
        return tl.layers.Conv2d(n, (k, k), (s, s), padding=pad, W_init=weight_init(), act=act,
                                b_init=tl.initializers.zeros() if bias else None, in_channels=cin, name=nm)(x)

    def in_relu(x, n, nm, relu=True):
        x = InstanceNorm2d(n, name=nm + "_in")(x)
        return tl.layers.Lambda(tf.nn.relu, name=nm + "_relu")(x) if relu else x

    x_in = tl.layers.Input([None, image_size, image_size, channels], name=p + "image")
    x = in_relu(conv(x_in, ngf, 7, 1, p + "c0", channels), ngf, p + "c0")
    x = in_relu(conv(x, ngf * 2, 3, 2, p + "down1", ngf), ngf * 2, p + "down1")
    x = in_relu(conv(x, ngf * 4, 3, 2, p + "down2", ngf * 2), ngf * 4, p + "down2")
    ch = ngf * 4
    for i in range(res_blocks):
        r = p + "res%d" % i
        h = in_relu(conv(x, ch, 3, 1, r + "_a", ch), ch, r + "_a")
        h = in_relu(conv(h, ch, 3, 1, r + "_b", ch), ch, r + "_b", relu=False)
        x = tl.layers.Elementwise(tf.add, name=r + "_add")([x, h])
    for i, out_ch in enumerate((ngf * 2, ngf)):
        u = p + "up%d" % (i + 1)
        x = Conv2dTranspose(out_ch, in_channels=ch, filter_size=(3, 3), strides=(2, 2), name=u + "_deconv")(x)
        x = in_relu(x, out_ch, u)
        ch = out_ch
    x = conv(x, channels, 7, 1, p + "out", ch, bias=True, act=tf.nn.tanh)
    model = tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))
    model.train()
    return model


def build_patch_discriminator(name: str, channels: int = 1, image_size: int = 28, ndf: int = 64, n_layers: int = 3):
    """PatchGAN discriminator (release ``NLayerDiscriminator``, n_layers=3).

    Returns:
        Static ``tl.models.Model`` (train mode): ``[B, H, W, C]`` in [-1, 1] -> patch scores
        ``[B, h, w, 1]`` (unbounded; LSGAN targets 1 real / 0 fake). At 28 px: ``[B, 4, 4, 1]``.

    Architecture: conv4/2(ndf)-LReLU0.2; conv4/2(2 ndf)-IN-LReLU; conv4/2(4 ndf)-IN-LReLU;
    conv4/1(8 ndf)-IN-LReLU; conv4/1(1). 'SAME' padding (release: pad 1).
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import InstanceNorm2d, weight_init
    from ganimation_tl.networks import unique_model_name

    p = name + "_"
    lrelu = lambda t: tf.nn.leaky_relu(t, alpha=0.2)  # noqa: E731
    x_in = tl.layers.Input([None, image_size, image_size, channels], name=p + "image")
    x = tl.layers.Conv2d(ndf, (4, 4), (2, 2), act=lrelu, W_init=weight_init(), b_init=tl.initializers.zeros(),
                         in_channels=channels, name=p + "c0")(x_in)
    cin = ndf
    for i in range(1, n_layers + 1):
        cout = ndf * min(2 ** i, 8)
        stride = 2 if i < n_layers else 1
        x = tl.layers.Conv2d(cout, (4, 4), (stride, stride), W_init=weight_init(), b_init=None, in_channels=cin,
                             name=p + "c%d" % i)(x)
        x = InstanceNorm2d(cout, name=p + "c%d_in" % i)(x)
        x = tl.layers.Lambda(lrelu, name=p + "c%d_lrelu" % i)(x)
        cin = cout
    x = tl.layers.Conv2d(1, (4, 4), (1, 1), W_init=weight_init(), b_init=tl.initializers.zeros(), in_channels=cin,
                         name=p + "patch")(x)
    model = tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))
    model.train()
    return model


def build_feature_discriminator(name: str, units: int = 500, num_classes: int = 10):
    """ADDA discriminator on class scores (release ``adda_net.py``, ``--discrim_score``).

    Returns:
        Static ``tl.models.Model`` (train mode): logits ``[B, 10]`` -> domain logits ``[B, 2]``
        (index 1 = source, 0 = target). Architecture: FC units-ReLU-FC units-ReLU-FC 2.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    p = name + "_"
    x_in = tl.layers.Input([None, num_classes], name=p + "scores")
    x = tl.layers.Dense(units, act=tf.nn.relu, in_channels=num_classes, name=p + "fc1")(x_in)
    x = tl.layers.Dense(units, act=tf.nn.relu, in_channels=units, name=p + "fc2")(x)
    x = tl.layers.Dense(2, in_channels=units, name=p + "fc3")(x)
    model = tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))
    model.train()
    return model


# ----------------------------------------------------------------------------------------- losses
def lsgan_loss(scores, target: float):
    """LSGAN term ``mean((D(x) - target)^2)`` over every element (Mao et al. 2017; CycleGAN's default).

    Args:
        scores: discriminator patch scores ``[B, h, w, 1]`` (any shape). target: 1.0 real / 0.0 fake.

    Returns:
        Scalar float32.
    """
    import tensorflow as tf
    return tf.reduce_mean(tf.square(scores - target))


def semantic_consistency_loss(classifier_logits_translated, classifier_logits_original=None, labels=None):
    """One direction of the semantic consistency loss L_sem (paper eq. 4).

    ``CE(f_S(G(x)), p)`` with ``p = argmax f_S(x)`` (paper, pseudo-labels) or the given ``labels``
    (release variant for the source direction). Mean over the batch.

    Args:
        classifier_logits_translated: f_S logits of the translated images ``[B, K]``.
        classifier_logits_original: f_S logits of the original images ``[B, K]`` (used when
            ``labels`` is None).
        labels: optional int ``[B]`` true labels.

    Returns:
        Scalar float32 cross-entropy (nats).
    """
    import tensorflow as tf
    if labels is None:
        if classifier_logits_original is None:
            raise ValueError("semantic_consistency_loss needs classifier_logits_original or labels")
        labels = tf.argmax(classifier_logits_original, axis=-1)
    labels = tf.cast(labels, tf.int32)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, classifier_logits_translated))


def adda_losses(source_domain_logits, target_domain_logits):
    """ADDA discriminator and mapping losses on D_feat outputs (paper eq. 5; release ``train_adda_net.py``).

    Args:
        source_domain_logits: D_feat(f_S(x_s)) ``[B, 2]``; label 1 (source).
        target_domain_logits: D_feat(f_T(x_t)) ``[B, 2]``; label 0 (target).

    Returns:
        ``(d_loss, g_loss, d_accuracy)``: d_loss = mean softmax CE over the 2B concatenated samples
        with labels [1...; 0...]; g_loss = mean CE(D_feat(f_T(x_t)), 1) (inverted label);
        d_accuracy in [0, 1] of D_feat on the 2B samples.
    """
    import tensorflow as tf
    logits = tf.concat([source_domain_logits, target_domain_logits], axis=0)
    b_s, b_t = tf.shape(source_domain_logits)[0], tf.shape(target_domain_logits)[0]
    labels = tf.concat([tf.ones([b_s], tf.int32), tf.zeros([b_t], tf.int32)], axis=0)
    d_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    g_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.ones([b_t], tf.int32),
                                                                          target_domain_logits))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32))
    return d_loss, g_loss, accuracy


class ImagePool:
    """CycleGAN's history buffer of generated images (Shrivastava et al. 2017; release ``ImagePool``).

    Until ``size`` images are stored, each query image is stored and returned; afterwards each image
    is, with probability 0.5, swapped with a random stored one (the stored one is returned) or
    returned as is. The buffer lives in a ``tf.Variable`` so it is checkpointed.

    Args:
        size: buffer size (0 disables the pool). shape: ``(H, W, C)``. seed: draw seed.
    """

    def __init__(self, size: int, shape, seed: int = 0, name: str = "pool"):
        import numpy as np
        import tensorflow as tf
        self.size = int(size)
        self.images = tf.Variable(np.zeros((max(1, self.size),) + tuple(shape), np.float32), trainable=False,
                                  name=name + "_images")
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name=name + "_count")
        self._rng = np.random.default_rng(seed)

    def query(self, images):
        """Return ``[B, H, W, C]`` float32 images (numpy) to show the discriminator."""
        import numpy as np
        images = np.asarray(images, np.float32)
        if self.size == 0:
            return images
        stored, count = self.images.numpy(), int(self.count.numpy())
        out = np.empty_like(images)
        for i, image in enumerate(images):
            if count < self.size:
                stored[count] = image
                count += 1
                out[i] = image
            elif self._rng.random() > 0.5:
                j = self._rng.integers(0, self.size)
                out[i] = stored[j]
                stored[j] = image
            else:
                out[i] = image
        self.images.assign(stored)
        self.count.assign(count)
        return out


# ----------------------------------------------------------------------------------------- model
class CyCADA:
    """The four-stage CyCADA model with the trainer interface (``ganimation_tl.trainer``).

    Args:
        config: :class:`CyCADAConfig`. channels: C of the images (1 grey, 3 RGB). image_size: 28.

    Batches (from :meth:`make_dataset`): ``(source_images [B, 28, 28, C] in [-1, 1], source_labels int32
    [B], target_images [B, 28, 28, C] in [-1, 1])``; B is ``cycada_gan_batch_size`` in the GAN stage,
    else ``batch_size``.
    """

    sample_grid_tag = "samples/source_translated_reconstructed__target_translated"

    def __init__(self, config: CyCADAConfig, channels: int = 1, image_size: int = 28):
        import tensorflow as tf
        self.config, self.channels, self.image_size = config, channels, image_size
        tf.random.set_seed(config.seed)
        c = config
        self.f_s = build_lenet("cycada_fS", channels, image_size, c.cycada_dropout_keep)
        self.f_ts = build_lenet("cycada_fTS", channels, image_size, c.cycada_dropout_keep)
        self.f_t = build_lenet("cycada_fT", channels, image_size, c.cycada_dropout_keep)
        self.g_st = build_resnet_generator("cycada_GST", channels, image_size, c.cycada_ngf, c.cycada_res_blocks)
        self.g_ts = build_resnet_generator("cycada_GTS", channels, image_size, c.cycada_ngf, c.cycada_res_blocks)
        self.d_s = build_patch_discriminator("cycada_DS", channels, image_size, c.cycada_ndf)
        self.d_t = build_patch_discriminator("cycada_DT", channels, image_size, c.cycada_ndf)
        self.d_feat = build_feature_discriminator("cycada_Dfeat", c.cycada_feat_disc_units)
        self.pool_s = ImagePool(c.cycada_pool_size, (image_size, image_size, channels), c.seed, "cycada_pool_s")
        self.pool_t = ImagePool(c.cycada_pool_size, (image_size, image_size, channels), c.seed + 1, "cycada_pool_t")
        self.g_vars = self.g_st.trainable_weights + self.g_ts.trainable_weights
        self.d_vars = self.d_s.trainable_weights + self.d_t.trainable_weights

        def adam(lr, beta1, variables):
            opt = tf.keras.optimizers.Adam(learning_rate=float(lr),
                                           beta_1=beta1, beta_2=0.999)
            opt.build(variables)
            return opt

        self.opt_cls = adam(c.cycada_lr_classifier, 0.9, self.f_s.trainable_weights)
        self.opt_g = adam(c.cycada_lr_gan, c.beta1, self.g_vars)
        self.opt_d = adam(c.cycada_lr_gan, c.beta1, self.d_vars)
        self.opt_pix = adam(c.cycada_lr_classifier, 0.9, self.f_ts.trainable_weights)
        self.opt_ft = adam(c.cycada_lr_adapt, 0.5, self.f_t.trainable_weights)
        self.opt_dfeat = adam(c.cycada_lr_adapt, 0.5, self.d_feat.trainable_weights)
        self._build_steps()

    # trainer interface -----------------------------------------------------------------------
    def trackables(self) -> Dict[str, object]:
        """Variables (``all_weights`` of every network), optimizers and the image pools."""
        out = {}
        for key in ("f_s", "f_ts", "f_t", "g_st", "g_ts", "d_s", "d_t", "d_feat"):
            out[key] = list(getattr(self, key).all_weights)
        for key in ("opt_cls", "opt_g", "opt_d", "opt_pix", "opt_ft", "opt_dfeat"):
            out[key] = getattr(self, key)
        out["pool_s"] = [self.pool_s.images, self.pool_s.count]
        out["pool_t"] = [self.pool_t.images, self.pool_t.count]
        return out

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """Learning-rate schedule; ``epoch`` is the fraction of the whole run (one "epoch" = all stages).

        The GAN stage is constant, then decays linearly to 0 over its last
        ``cycada_gan_decay_fraction`` (CycleGAN niter / niter_decay); the other stages are constant.
        """
        c = self.config
        step = int(round(epoch * c.total_steps))
        stage, k, n = c.stage_of(step)
        lr = c.cycada_lr_gan
        if stage == "gan" and c.cycada_gan_decay_fraction > 0:
            decay_start = n * (1.0 - c.cycada_gan_decay_fraction)
            if k >= decay_start:
                lr = c.cycada_lr_gan * max(0.0, 1.0 - (k - decay_start) / max(1.0, n - decay_start))
        self.opt_g.learning_rate.assign(lr)
        self.opt_d.learning_rate.assign(lr)
        return {"lr/gan": float(lr), "stage": float(STAGES.index(stage))}

    def train_step(self, batch, step: int) -> Dict[str, object]:
        """Run the step of the stage ``step`` falls in (copying weights at stage starts).

        Returns:
            Scalars named ``<stage>/<quantity>``.
        """
        import tensorflow as tf
        c = self.config
        stage, k, _ = c.stage_of(step)
        x_s, y_s, x_t = (tf.convert_to_tensor(b) for b in batch)
        if stage == "classifier":
            return self._classifier_step(x_s, y_s)
        if stage == "gan":
            out = self._generator_step(x_s, y_s, x_t)
            fake_t = self.pool_t.query(out.pop("fake_t").numpy())
            fake_s = self.pool_s.query(out.pop("fake_s").numpy())
            out.update(self._discriminator_step(x_s, x_t, tf.constant(fake_s), tf.constant(fake_t)))
            return out
        if stage == "pixel":
            if k == 0:
                _copy(self.f_s, self.f_ts)
            return self._pixel_step(x_s, y_s)
        if k == 0:
            if c.cycada_pixel_steps == 0:  # no pixel stage: adapt the source classifier itself
                _copy(self.f_s, self.f_ts)
            _copy(self.f_ts, self.f_t)
        return self._adapt_step(x_s, x_t, tf.constant(c.cycada_disc_acc_gate, tf.float32))

    def sample_grid(self, batch):
        """uint8 panel: rows x_s, G_ST(x_s), G_TS(G_ST(x_s)), x_t, G_TS(x_t) (8 images each)."""
        import numpy as np
        from ganimation_tl.sibling import images_grid
        x_s, _, x_t = batch
        x_s, x_t = np.asarray(x_s[:8]), np.asarray(x_t[:8])
        fake_t = self.g_st(x_s).numpy()
        rec_s = self.g_ts(fake_t).numpy()
        fake_s = self.g_ts(x_t).numpy()
        return images_grid([list(x_s), list(fake_t), list(rec_s), list(x_t), list(fake_s)])

    # steps -----------------------------------------------------------------------------------
    def _build_steps(self):
        import tensorflow as tf
        c = self.config
        ce = lambda y, logits: tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(  # noqa: E731
            tf.cast(y, tf.int32), logits))

        def acc(y, logits):
            return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                                                   tf.cast(y, tf.int32)), tf.float32))

        @tf.function
        def classifier_step(x_s, y_s):
            with tf.GradientTape() as tape:
                logits = self.f_s(x_s, is_train=True)
                loss = ce(y_s, logits)
            variables = self.f_s.trainable_weights
            self.opt_cls.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return {"classifier/loss": loss, "classifier/accuracy": acc(y_s, logits)}

        @tf.function
        def generator_step(x_s, y_s, x_t):
            with tf.GradientTape() as tape:
                fake_t = self.g_st(x_s)
                fake_s = self.g_ts(x_t)
                rec_s = self.g_ts(fake_t)
                rec_t = self.g_st(fake_s)
                adv_st = lsgan_loss(self.d_t(fake_t), 1.0)
                adv_ts = lsgan_loss(self.d_s(fake_s), 1.0)
                cyc = tf.reduce_mean(tf.abs(rec_s - x_s)) + tf.reduce_mean(tf.abs(rec_t - x_t))
                logits_fake_t = self.f_s(fake_t, is_train=False)
                logits_fake_s = self.f_s(fake_s, is_train=False)
                logits_x_t = tf.stop_gradient(self.f_s(x_t, is_train=False))
                if c.cycada_semantic_labels == "true":
                    sem_st = semantic_consistency_loss(logits_fake_t, labels=y_s)
                else:
                    sem_st = semantic_consistency_loss(logits_fake_t, tf.stop_gradient(self.f_s(x_s, is_train=False)))
                sem_ts = semantic_consistency_loss(logits_fake_s, logits_x_t)
                total = (c.cycada_gan_st_weight * adv_st + adv_ts + c.cycada_lambda_cycle * cyc
                         + c.cycada_lambda_semantic * (sem_st + sem_ts))
            grads = tape.gradient(total, self.g_vars)
            self.opt_g.apply_gradients(zip(grads, self.g_vars))
            return {"gan/g_adv_st": adv_st, "gan/g_adv_ts": adv_ts, "gan/cycle_l1": cyc / 2.0,
                    "gan/semantic_st": sem_st, "gan/semantic_ts": sem_ts, "gan/total": total,
                    "gan/semantic_accuracy_st": acc(y_s, logits_fake_t), "fake_t": fake_t, "fake_s": fake_s}

        @tf.function
        def discriminator_step(x_s, x_t, fake_s, fake_t):
            with tf.GradientTape() as tape:
                d_t = 0.5 * (lsgan_loss(self.d_t(x_t), 1.0) + lsgan_loss(self.d_t(fake_t), 0.0))
                d_s = 0.5 * (lsgan_loss(self.d_s(x_s), 1.0) + lsgan_loss(self.d_s(fake_s), 0.0))
                total = d_t + d_s
            self.opt_d.apply_gradients(zip(tape.gradient(total, self.d_vars), self.d_vars))
            return {"gan/d_t": d_t, "gan/d_s": d_s}

        @tf.function
        def pixel_step(x_s, y_s):
            translated = tf.stop_gradient(self.g_st(x_s))
            with tf.GradientTape() as tape:
                logits = self.f_ts(translated, is_train=True)
                loss = ce(y_s, logits)
            variables = self.f_ts.trainable_weights
            self.opt_pix.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return {"pixel/loss": loss, "pixel/accuracy": acc(y_s, logits)}

        @tf.function
        def adapt_step(x_s, x_t, gate):
            translated = tf.stop_gradient(self.g_st(x_s))
            source_scores = tf.stop_gradient(self.f_ts(translated, is_train=False))
            with tf.GradientTape() as d_tape:
                target_scores = self.f_t(x_t, is_train=True)
                d_loss, _, d_acc = adda_losses(self.d_feat(source_scores), self.d_feat(tf.stop_gradient(target_scores)))
            variables = self.d_feat.trainable_weights
            self.opt_dfeat.apply_gradients(zip(d_tape.gradient(d_loss, variables), variables))
            updated = tf.cast(d_acc > gate, tf.float32)
            with tf.GradientTape() as g_tape:
                target_scores = self.f_t(x_t, is_train=True)
                _, g_loss, _ = adda_losses(self.d_feat(source_scores), self.d_feat(target_scores))
            variables = self.f_t.trainable_weights
            grads = g_tape.gradient(g_loss, variables)
            # The release updates f_T only when D_feat is good enough (accuracy > gate, 0.6); skipping
            # the whole Adam step (not zeroing the gradient) so momentum does not move f_T either.
            if d_acc > gate:
                self.opt_ft.apply_gradients(zip(grads, variables))
            return {"adapt/d_loss": d_loss, "adapt/g_loss": g_loss, "adapt/d_accuracy": d_acc,
                    "adapt/target_updated": updated}

        self._classifier_step = classifier_step
        self._generator_step = generator_step
        self._discriminator_step = discriminator_step
        self._pixel_step = pixel_step
        self._adapt_step = adapt_step

    # data --------------------------------------------------------------------------------------
    def make_dataset_fn(self, data):
        """``(epoch, skip) -> iterator`` of batches: step ``s`` draws its indices from seed ``(seed, s)``
        (deterministic, so a resumed run sees the same batches)."""
        import numpy as np
        c = self.config
        total = c.total_steps

        def make(epoch: int, skip: int):
            for step in range(epoch * total + skip, (epoch + 1) * total):
                stage, _, _ = c.stage_of(step)
                b = c.cycada_gan_batch_size if stage == "gan" else c.batch_size
                rng = np.random.default_rng([c.seed, step])
                i_s = rng.integers(0, len(data.source_train), b)
                i_t = rng.integers(0, len(data.target_train), b)
                yield data.source_train[i_s], data.source_train_labels[i_s], data.target_train[i_t]
        return make


def _copy(src, dst):
    for a, b in zip(src.all_weights, dst.all_weights):
        b.assign(a)


def _accuracy(model, images, labels, batch: int = 500) -> float:
    import numpy as np
    preds = [np.argmax(model(images[i:i + batch], is_train=False).numpy(), -1) for i in range(0, len(images), batch)]
    return float(np.mean(np.concatenate(preds) == labels)) if len(images) else float("nan")


def evaluate(model: CyCADA, data) -> Dict[str, float]:
    """The checks of the issue on the target/source test sets.

    Returns:
        ``source_only_target_accuracy`` (f_S on target test), ``pixel_target_accuracy`` (f_TS),
        ``adapted_target_accuracy`` (f_T, pixel + feature), ``source_accuracy`` (f_S on held-out
        source), ``semantic_consistency_accuracy`` (f_S on G_ST(held-out source) vs true labels),
        ``cycle_l1`` (mean |G_TS(G_ST(x_s)) - x_s| on held-out source, [-1, 1] scale); all in [0, 1]
        except cycle_l1 in [0, 2].
    """
    import numpy as np
    translated = np.concatenate([model.g_st(data.source_test[i:i + 500]).numpy()
                                 for i in range(0, len(data.source_test), 500)])
    reconstructed = np.concatenate([model.g_ts(translated[i:i + 500]).numpy() for i in range(0, len(translated), 500)])
    return {
        "source_only_target_accuracy": _accuracy(model.f_s, data.target_test, data.target_test_labels),
        "pixel_target_accuracy": _accuracy(model.f_ts, data.target_test, data.target_test_labels),
        "adapted_target_accuracy": _accuracy(model.f_t, data.target_test, data.target_test_labels),
        "source_accuracy": _accuracy(model.f_s, data.source_test, data.source_test_labels),
        "semantic_consistency_accuracy": _accuracy(model.f_s, translated, data.source_test_labels),
        "cycle_l1": float(np.mean(np.abs(reconstructed - data.source_test))),
    }


# ----------------------------------------------------------------------------------------- CLI
_FLAG_HELP = {
    "cycada_source": ("string", "Source domain: sklearn (8x8 UCI digits upsampled) or mnist."),
    "cycada_target": ("string", "Target domain: mnist, digits_m (MNIST blended on photo crops) or sklearn (with "
                      "--cycada_source=mnist)."),
    "cycada_num_source": ("integer", "Labelled source training images."),
    "cycada_num_target": ("integer", "Unlabelled target training images (MNIST valid split)."),
    "cycada_num_target_test": ("integer", "Target test images (MNIST test split)."),
    "cycada_gan_batch_size": ("integer", "Batch size of the CycleGAN stage (release: 100)."),
    "cycada_classifier_steps": ("integer", "Stage 1 steps: source classifier f_S."),
    "cycada_gan_steps": ("integer", "Stage 2 steps: CycleGAN with semantic loss."),
    "cycada_pixel_steps": ("integer", "Stage 3 steps: task net on translated source."),
    "cycada_adapt_steps": ("integer", "Stage 4 steps: ADDA feature-level adaptation."),
    "cycada_lr_classifier": ("float", "Adam learning rate of the task nets on labels (release 1e-4)."),
    "cycada_lr_gan": ("float", "Adam learning rate of the CycleGAN (release 2e-4)."),
    "cycada_lr_adapt": ("float", "Adam learning rate of ADDA (release 1e-5)."),
    "beta1": ("float", "Adam beta1 of the GAN optimizers (CycleGAN: 0.5)."),
    "cycada_gan_decay_fraction": ("float", "Final fraction of the GAN stage with linear LR decay to 0."),
    "cycada_ngf": ("integer", "Generator base channels (release 64)."),
    "cycada_ndf": ("integer", "PatchGAN base channels (release 64)."),
    "cycada_res_blocks": ("integer", "Generator residual blocks (release 9)."),
    "cycada_lambda_cycle": ("float", "Cycle L1 weight (train_cycada.sh: 1)."),
    "cycada_lambda_semantic": ("float", "Semantic consistency weight (release: 1)."),
    "cycada_gan_st_weight": ("float", "Weight of the source->target adversarial term (release: 2)."),
    "cycada_semantic_labels": ("string", "Labels of the source semantic term: pseudo (paper) or true (release)."),
    "cycada_pool_size": ("integer", "Image pool size (50; 0 disables)."),
    "cycada_disc_acc_gate": ("float", "ADDA: update f_T only when D_feat accuracy exceeds this (0.6)."),
    "cycada_feat_disc_units": ("integer", "ADDA discriminator hidden units (500)."),
    "cycada_dropout_keep": ("float", "LeNet dropout keep probability (0.5)."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define CyCADA's flags (config fields, ``--mnist_path`` and the common trainer flags); idempotent."""
    from ganimation_tl.sibling import define_model_flags
    define_model_flags(_FLAG_HELP, flag_values, extra=[
        ("string", "mnist_path", "Path of the classic mnist.pkl.gz (configs: ../shared/data/digits/mnist.pkl.gz).")])


def build(flag_values=flags.FLAGS):
    """Flags -> ``(config, DigitDomains data, CyCADA model)``.

    Raises:
        InputError: invalid settings, or ``--mnist_path`` missing/unreadable (the message names the flag).
    """
    from ganimation_tl.sibling import config_or_input_error, load_digit_domains
    config = config_or_input_error(CyCADAConfig, flag_values)
    data = load_digit_domains("cycada", config, flag_values)
    return config, data, CyCADA(config, channels=1)


def train_model(flag_values=flags.FLAGS):
    """Train from parsed flags; returns ``(model, data, metrics)`` where metrics are the trainer's last
    metrics plus ``eval/<name>`` from :func:`evaluate`."""
    from ganimation_tl.sibling import run_trainer
    config, data, model = build(flag_values)
    metrics = run_trainer("cycada", model, model.make_dataset_fn(data), steps_per_epoch=config.total_steps, epochs=1,
                          flag_values=flag_values, config=config, data_description=data.description)
    metrics = dict(metrics)
    metrics.update({"eval/" + k: v for k, v in evaluate(model, data).items()})
    return model, data, metrics


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """``train.py --model=cycada`` entry: train and return the last metrics (with ``eval/...``)."""
    return train_model(flag_values)[2]


registry.register(registry.ModelEntry(
    name="cycada",
    summary="CyCADA (Hoffman et al., ICML 2018): pixel- and feature-level adversarial domain adaptation, digits",
    define_flags=define_flags,
    train=train,
))
