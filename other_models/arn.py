"""ARN: Adaptation and Re-Identification Network (Li, Yang, Liu, Yeh, Du, Wang; CVPRW 2018, arXiv 1804.09347).

``python train.py --model=arn --flagfile=configs/arn.cfg``

Unsupervised cross-domain re-identification: a labelled source domain and an unlabelled target domain
share a backbone E_I; on its feature X three encoders split the representation into a domain-invariant
code e_c (E_C, shared) and domain-private codes e_s (E_S, source) and e_t (E_T, target); a shared decoder
D_C reconstructs from ``e_c + e_p``; a classifier C_S on e_c predicts source identities. Target images are
matched (re-identified) by the cosine distance of their e_c.

Losses (symbols of the paper / ``../shared/docs/papers/batch2_*.md`` s.8 (b), DSN-style)::

    L_rec  = ||x_s - D_C(e_c^s + e_s)||^2 + ||x_t - D_C(e_c^t + e_t)||^2       (mean over pixels and images)
    L_diff = ||(1/B) E_c^s^T E_s||_F^2 + ||(1/B) E_c^t^T E_t||_F^2              (rows L2-normalised, B = batch)
    L_cls  = CE(C_S(e_c^s), id_s)                                              (mean over the source batch)
    L_ctr  = mean over source pairs (i<j) of  y d^2 + (1 - y) max(0, m - d)^2,  d = ||e_c^i - e_c^j||
             (e_c L2-normalised, y = 1 for the same identity)
    L      = alpha L_cls + beta L_ctr + gamma L_rec + delta L_diff

The baseline of the check, ``--arn_mode=source_only``: the same backbone E_I, E_C and C_S trained on the
source alone with ``alpha L_cls + beta L_ctr`` (no target images, no decoder, no private encoders).

Data (a proxy: no person re-identification data is available offline): CFP (Sengupta et al., WACV 2016).
Source = the 10 frontal photos of identities 1..``arn_source_ids`` (labelled, 100 by default); target = the
4 profile photos of identities ``arn_source_ids``+1 .. ``arn_source_ids + arn_target_ids`` (101-150,
unlabelled in training). Evaluation within the target: every target image is a query in turn and the
other target images are its gallery (leave-one-out); rank-1 = fraction of queries whose nearest gallery
image (cosine on e_c) has the query's identity (chance about 3/199), and mAP over the same queries.

Deviations from the paper, and why:

* Data: CFP frontal -> profile faces instead of Market-1501 / DukeMTMC persons (not available offline);
  the target's unlabelled training images are also its query/gallery images (transductive), as there are
  only 4 profile photos per identity.
* Backbone: no ImageNet weights can be downloaded, so E_I is a small CNN trained from scratch (4 stride-2
  4x4 convolutions with leaky ReLU and a dense layer to X) in place of the pretrained ResNet-50, and the
  images are 32x32 (debug) / 128x128 (full) RGB in [-1, 1] instead of 256x128 persons.
* Reconstruction target: the paper reconstructs the ResNet feature X of a (pretrained) backbone. With a
  backbone trained from scratch that target is degenerate (X can shrink), so D_C reconstructs the *image*
  (a dense layer and transposed convolutions, as DSN, Bousmalis et al. 2016, whose losses ARN adopts).
* E_C, E_S, E_T are one dense layer each (128-d, leaky ReLU) on X; C_S is a dense layer on e_c. The loss
  weights are not published in a form we could verify: alpha = beta = gamma = 1, delta = 0.1 (flags);
  the contrastive loss uses L2-normalised codes with margin m = 1 (flag). Source batches are P identities
  x K photos (P x K sampling) so every batch has positive pairs.
* Optimiser: Adam 1e-3 (beta1 0.5) for everything, constant rate (the paper's schedule is not known); He
  initialisation (from scratch).
* Facts from the official code (``yujheli/ARN``, a draft released after the workshop paper) that the paper's
  text does not list, available as flags and *off* in the configurations because they did not measure better
  on the validation split (source identities 1-70 frontal -> 71-100 profile; docs/results/arn.md):
  ``--arn_mmd`` adds the code's domain-confusion term, a mixed-RBF MMD (sigmas 1, 2, 10; weight 0.1 there)
  between source and target e_c, here on L2-normalised codes; ``--arn_flip`` is its random horizontal flip
  (both modes). The code's other weights (L_rec 0.1, L_diff 0.1, L_ctr 1 or 0.1) are reachable through
  ``--arn_gamma`` etc.; its L_diff is an unnormalised dot product and its L_rec an L1 distance, ours are
  the normalised Frobenius form above and the MSE.
* Two options for probing the proxy's pose problem (ours, not in the paper or code; off in the configurations,
  docs/results/arn.md "Round 4"): ``--arn_profile_orientation=face_right`` mirrors every target profile that
  faces left, judged from its CFP fiducials (an alignment step, like the crops themselves; identities are not
  used), and ``--arn_flip_pool`` scores re-identification on ``e_c(x)/|e_c(x)| + e_c(x')/|e_c(x')|`` with x'
  the mirror image (flip pooling at test time, as common in face verification).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional

import numpy as np
from absl import flags

from ganimation_tl import registry
from ganimation_tl.errors import InputError
from ganimation_tl.sibling import config_or_input_error, define_model_flags, images_grid, require_flag, run_trainer

__all__ = ["ARNConfig", "ARNData", "prepare_data", "faces_left", "mirror_where", "build_backbone",
           "build_code_encoder", "build_decoder", "difference_loss", "contrastive_loss", "reconstruction_loss",
           "mmd_loss", "domain_gap", "unit_rows", "rank1_and_map", "ARN", "define_flags", "train"]

MODES = ("arn", "source_only")
ORIENTATIONS = ("as_is", "face_right")


@dataclasses.dataclass(frozen=True)
class ARNConfig:
    """Hyper-parameters of ARN; field names are the flag names.

    Attributes:
        image_size: side S of the square face crops (a multiple of 16; debug 32, full 128).
        batch_size: source images per step = ``arn_ids_per_batch * arn_images_per_id``; the target batch has
            the same size (the field is derived and must equal that product when set).
        epochs: epochs; one epoch = ``#source images // batch_size`` steps.
        seed: data order and weights.
        arn_mode: 'arn' (all four losses, both domains) or 'source_only' (baseline: L_cls + L_ctr on source).
        arn_source_ids: identities 1..N are the labelled source (frontal photos).
        arn_target_ids: the next M identities are the unlabelled target (profile photos).
        arn_ids_per_batch, arn_images_per_id: P x K source sampling.
        arn_conv_dim: channels of the first backbone conv (doubles at each of the 4 convs).
        arn_feature_dim: size of X. arn_code_dim: size of e_c, e_s, e_t.
        arn_alpha, arn_beta, arn_gamma, arn_delta: weights of L_cls, L_ctr, L_rec, L_diff (>= 0).
        arn_margin: contrastive margin m on L2-normalised codes (in (0, 2]).
        arn_lr: Adam rate. beta1: Adam beta1.
        arn_mmd: weight of the domain-confusion term L_mmd between source and target e_c (>= 0; 0 = off,
            the earlier behaviour). From the official code (``w_loss_mmd``), not in the workshop paper's text.
        arn_flip: random horizontal flips (p = 0.5) of the source and target training images (the official
            code's ``RandomHorizontalFlip``); applies to both modes.
        arn_profile_orientation: 'as_is' (the photos as CFP has them; 74-83% of identities have left- *and*
            right-facing profiles) or 'face_right' (mirror the target profiles that face left, from their
            fiducials, :func:`faces_left`); both modes.
        arn_flip_pool: evaluate on flip-pooled codes (see :meth:`ARN.shared_codes`); training is unchanged.

    Raises:
        ValueError: a field out of range (named in the message).
    """

    image_size: int = 32
    batch_size: int = 32
    epochs: int = 60
    seed: int = 0
    arn_mode: str = "arn"
    arn_source_ids: int = 100
    arn_target_ids: int = 50
    arn_ids_per_batch: int = 8
    arn_images_per_id: int = 4
    arn_conv_dim: int = 16
    arn_feature_dim: int = 256
    arn_code_dim: int = 128
    arn_alpha: float = 1.0
    arn_beta: float = 1.0
    arn_gamma: float = 1.0
    arn_delta: float = 0.1
    arn_margin: float = 1.0
    arn_lr: float = 1e-3
    beta1: float = 0.5
    arn_mmd: float = 0.0
    arn_flip: bool = False
    arn_profile_orientation: str = "as_is"
    arn_flip_pool: bool = False

    def __post_init__(self):
        for name in ("image_size", "batch_size", "epochs", "arn_source_ids", "arn_target_ids", "arn_ids_per_batch",
                     "arn_images_per_id", "arn_conv_dim", "arn_feature_dim", "arn_code_dim"):
            if int(getattr(self, name)) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if self.image_size % 16:
            raise ValueError("image_size must be a multiple of 16 (4 stride-2 convolutions), got %d" % self.image_size)
        if self.arn_images_per_id < 2:
            raise ValueError("arn_images_per_id must be >= 2 (positive pairs), got %d" % self.arn_images_per_id)
        if self.batch_size != self.arn_ids_per_batch * self.arn_images_per_id:
            raise ValueError("batch_size (%d) must equal arn_ids_per_batch * arn_images_per_id (%d x %d)"
                             % (self.batch_size, self.arn_ids_per_batch, self.arn_images_per_id))
        if self.arn_ids_per_batch > self.arn_source_ids:
            raise ValueError("arn_ids_per_batch (%d) exceeds arn_source_ids (%d)"
                             % (self.arn_ids_per_batch, self.arn_source_ids))
        for name in ("arn_alpha", "arn_beta", "arn_gamma", "arn_delta", "arn_mmd"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError("%s must be >= 0, got %r" % (name, getattr(self, name)))
        if not 0 < float(self.arn_margin) <= 2:
            raise ValueError("arn_margin must be in (0, 2] (codes are unit vectors), got %r" % self.arn_margin)
        if not float(self.arn_lr) > 0:
            raise ValueError("arn_lr must be positive, got %r" % self.arn_lr)
        if not 0 <= float(self.beta1) < 1:
            raise ValueError("beta1 must be in [0, 1), got %r" % self.beta1)
        if self.arn_mode not in MODES:
            raise ValueError("arn_mode must be one of %s, got %r" % (MODES, self.arn_mode))
        if self.arn_profile_orientation not in ORIENTATIONS:
            raise ValueError("arn_profile_orientation must be one of %s, got %r"
                             % (ORIENTATIONS, self.arn_profile_orientation))


# ---------------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class ARNData:
    """Source and target faces, float32 NHWC ``[N, S, S, 3]`` RGB in [-1, 1].

    Attributes:
        source_images, source_labels: frontal photos; labels int32 in 0..arn_source_ids-1 (identity - 1).
        target_images, target_identities: profile photos; CFP identity numbers (int32), used only to score
            re-identification, never in training.
    """

    source_images: np.ndarray
    source_labels: np.ndarray
    target_images: np.ndarray
    target_identities: np.ndarray

    def describe(self) -> str:
        return ("CFP: source %d frontal photos of %d identities (labelled); target %d profile photos of %d "
                "identities (unlabelled)" % (len(self.source_images), len(np.unique(self.source_labels)),
                                             len(self.target_images), len(np.unique(self.target_identities))))


def prepare_data(cfp_dir: str, config: ARNConfig, flag_name: str = "cfp_dir") -> ARNData:
    """Load the CFP proxy of a two-domain re-ID set (see the module docstring).

    Args:
        cfp_dir: the CFP folder (holding ``Data/``).
        config: ``image_size``, ``arn_source_ids``, ``arn_target_ids``.
        flag_name: flag named in errors.

    Returns:
        :class:`ARNData`.

    Raises:
        InputError: the folder is missing (names ``--<flag_name>`` and the path) or lacks the identities.
    """
    from ganimation_tl.datasets.cfp import load_faces

    if not os.path.isdir(cfp_dir):
        raise InputError("--%s: CFP folder %r not found (expected the CFP release, e.g. ../shared/data/cfp)"
                         % (flag_name, cfp_dir))
    source_ids = list(range(1, config.arn_source_ids + 1))
    target_ids = list(range(config.arn_source_ids + 1, config.arn_source_ids + config.arn_target_ids + 1))
    try:
        src = load_faces(cfp_dir, config.image_size, identities=source_ids, views=("frontal",))
        tgt = load_faces(cfp_dir, config.image_size, identities=target_ids, views=("profile",))
    except InputError as error:
        raise InputError("--%s: %s" % (flag_name, error))

    def to_float(images):
        return images.astype(np.float32) / 127.5 - 1.0

    target_images = tgt.images
    if config.arn_profile_orientation == "face_right":
        target_images = mirror_where(target_images, faces_left(tgt.landmarks))
    return ARNData(to_float(src.images), (src.identities - 1).astype(np.int32), to_float(target_images),
                   tgt.identities.astype(np.int32))


def faces_left(landmarks: np.ndarray) -> np.ndarray:
    """Which CFP profile photos show a face turned to image-left (our alignment rule for
    ``--arn_profile_orientation=face_right``; not in the ARN paper or code).

    Args:
        landmarks: float ``[N, 30, 2]`` CFP fiducials as (x, y) pixels (x to the right); point 22 is the nose
            tip, which lies on the side the face turns to.

    Returns:
        bool ``[N]``: True where the nose tip is left of the mean x of the 30 points.

    Raises:
        ValueError: ``landmarks`` not of shape ``[N, 30, 2]``.
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (30, 2):
        raise ValueError("CFP fiducials must be [N, 30, 2], got %s" % (lm.shape,))
    return lm[:, 22, 0] < lm[:, :, 0].mean(axis=1)


def mirror_where(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``images`` (``[N, H, W, C]``, NHWC, any dtype and range) with the images where ``mask``
    (bool ``[N]``) is True mirrored left-right; the input is not modified.

    Raises:
        ValueError: ``mask`` is not a bool array of shape ``[N]``.
    """
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (len(images),):
        raise ValueError("mask must be bool [%d], got %s %s" % (len(images), mask.dtype, mask.shape))
    out = np.array(images, copy=True)
    out[mask] = out[mask][:, :, ::-1]
    return out


def batches_for_epoch(data: ARNData, config: ARNConfig, epoch: int, skip: int = 0):
    """Deterministic batches of one epoch (``#source // batch_size`` of them): dicts with ``source_images``
    ``[B, S, S, 3]`` (P identities x K photos, sampled without replacement within an identity when it has
    enough), ``source_labels [B]`` and ``target_images [B, S, S, 3]`` (a random permutation, cycled); with
    ``arn_flip`` each image is mirrored left-right with probability 0.5 (the same batches otherwise)."""
    steps = len(data.source_images) // config.batch_size
    rng = np.random.default_rng([config.seed, epoch])
    by_id = {}
    for i, label in enumerate(data.source_labels):
        by_id.setdefault(int(label), []).append(i)
    ids = np.array(sorted(by_id))
    n_t = len(data.target_images)
    order_t = np.concatenate([rng.permutation(n_t) for _ in range(-(-steps * config.batch_size // n_t))])
    source_batches = []
    for _ in range(steps):
        chosen = rng.choice(ids, size=config.arn_ids_per_batch, replace=False)
        idx = []
        for c in chosen:
            pool = by_id[int(c)]
            idx.extend(rng.choice(pool, size=config.arn_images_per_id,
                                  replace=len(pool) < config.arn_images_per_id).tolist())
        source_batches.append(np.asarray(idx))
    # Flips draw from their own stream so the batch order is the same with and without them.
    flip_rng = np.random.default_rng([config.seed, epoch, 1])
    flips = flip_rng.random((steps, 2, config.batch_size)) < 0.5
    for i in range(skip, steps):
        s = source_batches[i]
        t = order_t[i * config.batch_size:(i + 1) * config.batch_size]
        src, tgt = data.source_images[s], data.target_images[t]
        if config.arn_flip:
            src = np.where(flips[i, 0][:, None, None, None], src[:, :, ::-1], src)
            tgt = np.where(flips[i, 1][:, None, None, None], tgt[:, :, ::-1], tgt)
        yield {"source_images": src, "source_labels": data.source_labels[s], "target_images": tgt}


# ---------------------------------------------------------------------------------------------- networks
def _lrelu(x):
    import tensorflow as tf
    return tf.nn.leaky_relu(x, 0.2)


def _he_init(fan_in: int):
    """He et al. (2015) initialisation, truncated N(0, 2 / fan_in) (TL 2.2.5 has no he_normal). Training from
    scratch with GANimation's N(0, 0.02) left the identity classifier at chance for ~900 steps."""
    import tensorlayer as tl
    return tl.initializers.truncated_normal(stddev=(2.0 / max(int(fan_in), 1)) ** 0.5)


def build_backbone(config: ARNConfig, name: str = "arn_EI"):
    """E_I: images float32 ``[B, S, S, 3]`` in [-1, 1] -> X ``[B, arn_feature_dim]`` (leaky ReLU, >= -0.2|x|).

    Four 4x4 stride-2 convolutions (conv_dim, 2x, 4x, 8x channels; leaky ReLU 0.2) and a dense layer.
    Deviation: stands in for the ImageNet-pretrained ResNet-50 of the paper (no downloads here).
    """
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    p = name + "_"
    x_in = tl.layers.Input([None, config.image_size, config.image_size, 3], name=p + "images")
    x, ch_in = x_in, 3
    for i in range(4):
        ch = config.arn_conv_dim * 2 ** i
        x = tl.layers.Conv2d(ch, (4, 4), (2, 2), act=_lrelu, W_init=_he_init(16 * ch_in), in_channels=ch_in,
                             name=p + "conv%d" % i)(x)
        ch_in = ch
    x = tl.layers.Flatten(name=p + "flatten")(x)
    side = config.image_size // 16
    x = tl.layers.Dense(config.arn_feature_dim, act=_lrelu, in_channels=side * side * ch_in,
                        W_init=_he_init(side * side * ch_in), name=p + "feature")(x)
    return tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))


def build_code_encoder(config: ARNConfig, name: str):
    """E_C / E_S / E_T: X ``[B, arn_feature_dim]`` -> code ``[B, arn_code_dim]`` (one dense layer, leaky ReLU)."""
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    x_in = tl.layers.Input([None, config.arn_feature_dim], name=name + "_features")
    x = tl.layers.Dense(config.arn_code_dim, act=_lrelu, in_channels=config.arn_feature_dim,
                        W_init=_he_init(config.arn_feature_dim), name=name + "_code")(x_in)
    return tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))


def build_classifier(config: ARNConfig, name: str = "arn_CS"):
    """C_S: e_c ``[B, arn_code_dim]`` -> identity logits ``[B, arn_source_ids]``."""
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    x_in = tl.layers.Input([None, config.arn_code_dim], name=name + "_code")
    x = tl.layers.Dense(config.arn_source_ids, in_channels=config.arn_code_dim,
                        W_init=_he_init(config.arn_code_dim), name=name + "_logits")(x_in)
    return tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))


def build_decoder(config: ARNConfig, name: str = "arn_DC"):
    """D_C: ``e_c + e_p`` ``[B, arn_code_dim]`` -> reconstructed image ``[B, S, S, 3]`` in [-1, 1] (tanh).

    Dense to ``[S/16, S/16, 8 conv_dim]``, then four 4x4 stride-2 transposed convolutions (ReLU; the last
    to 3 channels with tanh). Deviation: reconstructs pixels, not the backbone feature X (module docstring).
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import Conv2dTranspose
    from ganimation_tl.networks import unique_model_name

    p = name + "_"
    side, ch = config.image_size // 16, config.arn_conv_dim * 8
    x_in = tl.layers.Input([None, config.arn_code_dim], name=p + "code")
    x = tl.layers.Dense(side * side * ch, act=tf.nn.relu, in_channels=config.arn_code_dim,
                        W_init=_he_init(config.arn_code_dim), name=p + "fc")(x_in)
    x = tl.layers.Reshape([-1, side, side, ch], name=p + "reshape")(x)
    for i in range(4):
        out = 3 if i == 3 else ch // 2
        x = Conv2dTranspose(out, ch, act=tf.nn.tanh if i == 3 else tf.nn.relu, b_init=tl.initializers.zeros(),
                            W_init=_he_init(4 * ch), name=p + "up%d" % i)(x)
        ch = out
    return tl.models.Model(inputs=x_in, outputs=x, name=unique_model_name(name))


# ---------------------------------------------------------------------------------------------- losses
def difference_loss(shared, private):
    """L_diff for one domain: ``||(1/B) H_c^T H_p||_F^2`` with the rows of H_c, H_p L2-normalised.

    Args:
        shared: e_c ``[B, d]``. private: e_p ``[B, d']``.

    Returns:
        Scalar in [0, 1]; 0 iff every shared code dimension is orthogonal (over the batch) to every
        private one. Source: ARN / DSN difference (orthogonality) loss; spec s.8 (b). Deviation: divided by
        B^2 so the weight does not depend on the batch size (the spec's pitfall note).
    """
    import tensorflow as tf
    hc = tf.math.l2_normalize(shared, axis=1, epsilon=1e-12)
    hp = tf.math.l2_normalize(private, axis=1, epsilon=1e-12)
    b = tf.cast(tf.shape(hc)[0], hc.dtype)
    return tf.reduce_sum(tf.square(tf.matmul(hc, hp, transpose_a=True))) / (b * b)


def contrastive_loss(codes, labels, margin: float = 1.0):
    """L_ctr: mean over pairs i<j of ``y d^2 + (1-y) max(0, m - d)^2``, ``d = ||u_i - u_j||``, u = the
    L2-normalised codes, y = 1 if ``labels[i] == labels[j]``.

    Args:
        codes: ``[B, d]``. labels: int ``[B]``. margin: m.

    Returns:
        Scalar >= 0. Source: ARN contrastive loss on source pairs (spec s.8 (b)); Hadsell et al. 2006.
    """
    import tensorflow as tf
    u = tf.math.l2_normalize(codes, axis=1, epsilon=1e-12)
    sq = tf.maximum(2.0 - 2.0 * tf.matmul(u, u, transpose_b=True), 0.0)
    d = tf.sqrt(sq + 1e-12)
    same = tf.cast(tf.equal(labels[:, None], labels[None, :]), u.dtype)
    pair = same * sq + (1.0 - same) * tf.square(tf.nn.relu(margin - d))
    b = tf.shape(u)[0]
    upper = tf.linalg.band_part(tf.ones([b, b], u.dtype), 0, -1) - tf.eye(b, dtype=u.dtype)
    return tf.reduce_sum(pair * upper) / tf.maximum(tf.reduce_sum(upper), 1.0)


def reconstruction_loss(images, reconstructed):
    """L_rec for one domain: mean squared error over pixels, channels and images (``[B, S, S, 3]``)."""
    import tensorflow as tf
    return tf.reduce_mean(tf.square(images - reconstructed))


MMD_SIGMAS = (1.0, 2.0, 10.0)


def mmd_loss(source_codes, target_codes, sigmas=MMD_SIGMAS):
    """L_mmd: ``sqrt(max(MMD^2, 0))`` between two batches of L2-normalised codes, MMD^2 the biased estimate
    with a sum of Gaussian kernels ``exp(-||a - b||^2 / (2 sigma^2))``.

    Args:
        source_codes: e_c^s ``[B, d]``. target_codes: e_c^t ``[B', d]``. sigmas: kernel widths (the official
            code's 1, 2, 10).

    Returns:
        Scalar >= 0 (0 for identical batches; at most ``sqrt(2 len(sigmas))``). Source: the official ARN code
        (yujheli/ARN, ``loss_mmd_func``: mixed-RBF MMD, relu, sqrt, weight 0.1); the workshop paper's text
        does not list it. Deviation: on L2-normalised codes (re-identification ranks by cosine), where the
        official code uses the raw pooled ResNet features.
    """
    import tensorflow as tf
    a = tf.math.l2_normalize(source_codes, axis=1, epsilon=1e-12)
    b = tf.math.l2_normalize(target_codes, axis=1, epsilon=1e-12)

    def kernel(x, y):
        sq = tf.maximum(tf.reduce_sum(x * x, 1)[:, None] + tf.reduce_sum(y * y, 1)[None, :]
                        - 2.0 * tf.matmul(x, y, transpose_b=True), 0.0)
        return tf.add_n([tf.exp(-sq / (2.0 * s * s)) for s in sigmas])

    mmd2 = tf.reduce_mean(kernel(a, a)) + tf.reduce_mean(kernel(b, b)) - 2.0 * tf.reduce_mean(kernel(a, b))
    return tf.sqrt(tf.nn.relu(mmd2) + 1e-12)


def domain_gap(source_codes: np.ndarray, target_codes: np.ndarray) -> Dict[str, float]:
    """How far apart two domains' codes are (a diagnostic of domain alignment).

    Args:
        source_codes: ``[N, d]``; target_codes: ``[M, d]`` (compared after L2 normalisation).

    Returns:
        ``{"mmd": L_mmd over the full sets (see :func:`mmd_loss`), "cross_cos": mean cosine between a
        source and a target code, "within_cos": mean of the within-source and within-target mean cosines}``.
    """
    a, b = unit_rows(np.asarray(source_codes, np.float64)), unit_rows(np.asarray(target_codes, np.float64))
    return {"mmd": float(mmd_loss(a, b)), "cross_cos": float(np.mean(a @ b.T)),
            "within_cos": float(0.5 * (np.mean(a @ a.T) + np.mean(b @ b.T)))}


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (``[N, d]``) scaled to unit L2 length; all-zero rows stay zero (norm floored at 1e-12)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def rank1_and_map(features: np.ndarray, identities: np.ndarray) -> Dict[str, float]:
    """Leave-one-out re-identification within one set: each image queries all the others.

    Args:
        features: float ``[N, d]`` (compared by cosine similarity). identities: int ``[N]``.

    Returns:
        ``{"rank1": fraction of queries whose most similar other image shares its identity,
        "map": mean average precision over queries with at least one match, "queries": count}``.
        Ties are broken by index order (stable sort).
    """
    f = unit_rows(features)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    hits, aps = [], []
    for q in range(len(f)):
        order = np.argsort(-sim[q], kind="stable")[:-1]   # drop the query itself (its -inf is last)
        match = identities[order] == identities[q]
        if not match.any():
            continue
        hits.append(bool(match[0]))
        ranks = np.flatnonzero(match) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    return {"rank1": float(np.mean(hits)) if hits else 0.0, "map": float(np.mean(aps)) if aps else 0.0,
            "queries": len(hits)}


# ---------------------------------------------------------------------------------------------- model
class ARN:
    """E_I, E_C, E_S, E_T, D_C and C_S, one Adam optimiser and the train step (module docstring).

    Args:
        config: :class:`ARNConfig`. name: layer-name prefix.
    """

    sample_grid_tag = "samples/source_recon_target_recon"

    def __init__(self, config: ARNConfig, name: str = "arn"):
        import tensorflow as tf

        self.config = config
        tf.random.set_seed(config.seed)
        self.backbone = build_backbone(config, name + "_EI")
        self.shared_encoder = build_code_encoder(config, name + "_EC")
        self.classifier = build_classifier(config, name + "_CS")
        self.networks = [self.backbone, self.shared_encoder, self.classifier]
        if config.arn_mode == "arn":
            self.source_encoder = build_code_encoder(config, name + "_ES")
            self.target_encoder = build_code_encoder(config, name + "_ET")
            self.decoder = build_decoder(config, name + "_DC")
            self.networks += [self.source_encoder, self.target_encoder, self.decoder]
        for net in self.networks:
            net.train()
        self.weights = [w for net in self.networks for w in net.trainable_weights]
        self.optimizer = tf.keras.optimizers.Adam(config.arn_lr, beta_1=config.beta1)
        self.optimizer.build(self.weights)
        self._step = tf.function(self._train_step)
        self._codes = tf.function(lambda x: self.shared_encoder(self.backbone(x)))

    def _train_step(self, source_images, source_labels, target_images):
        import tensorflow as tf
        c = self.config
        with tf.GradientTape() as tape:
            x_s = self.backbone(source_images)
            e_cs = self.shared_encoder(x_s)
            logits = self.classifier(e_cs)
            cls = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=source_labels, logits=logits))
            ctr = contrastive_loss(e_cs, source_labels, c.arn_margin)
            total = c.arn_alpha * cls + c.arn_beta * ctr
            metrics = {"loss/classification": cls, "loss/contrastive": ctr}
            if c.arn_mode == "arn":
                e_ss = self.source_encoder(x_s)
                x_t = self.backbone(target_images)
                e_ct = self.shared_encoder(x_t)
                e_tt = self.target_encoder(x_t)
                rec = (reconstruction_loss(source_images, self.decoder(e_cs + e_ss))
                       + reconstruction_loss(target_images, self.decoder(e_ct + e_tt)))
                diff = difference_loss(e_cs, e_ss) + difference_loss(e_ct, e_tt)
                total = total + c.arn_gamma * rec + c.arn_delta * diff
                metrics.update({"loss/reconstruction": rec, "loss/difference": diff})
                if c.arn_mmd > 0:
                    mmd = mmd_loss(e_cs, e_ct)
                    total = total + c.arn_mmd * mmd
                    metrics["loss/mmd"] = mmd
        grads = tape.gradient(total, self.weights)
        self.optimizer.apply_gradients(zip(grads, self.weights))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), source_labels),
                                          tf.float32))
        metrics.update({"loss/total": total, "monitor/source_accuracy": accuracy})
        return metrics

    def train_step(self, batch, step: int):
        """One Adam step on ``alpha L_cls + beta L_ctr (+ gamma L_rec + delta L_diff)``; returns scalar tensors."""
        import tensorflow as tf
        return self._step(tf.convert_to_tensor(batch["source_images"], tf.float32),
                          tf.convert_to_tensor(batch["source_labels"], tf.int32),
                          tf.convert_to_tensor(batch["target_images"], tf.float32))

    def shared_codes(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """e_c = E_C(E_I(x)): float32 ``[N, arn_code_dim]`` for images ``[N, S, S, 3]`` in [-1, 1].

        With ``arn_flip_pool`` the codes are ``e_c(x)/|e_c(x)| + e_c(x')/|e_c(x')|`` (x' = x mirrored
        left-right), the same for an image and its mirror image."""
        import tensorflow as tf

        def codes(batch_images):
            out = [self._codes(tf.convert_to_tensor(batch_images[i:i + batch_size], tf.float32)).numpy()
                   for i in range(0, len(batch_images), batch_size)]
            return np.concatenate(out)

        if not self.config.arn_flip_pool:
            return codes(images)
        return unit_rows(codes(images)) + unit_rows(codes(np.ascontiguousarray(images[:, :, ::-1])))

    def evaluate(self, data: ARNData, gap: bool = False) -> Dict[str, float]:
        """Target re-identification (leave-one-out within the target, cosine on e_c): rank-1 and mAP in [0, 1];
        with ``gap`` also :func:`domain_gap` of all source vs all target e_c (keys ``gap_mmd``, ...)."""
        target = self.shared_codes(data.target_images)
        result = rank1_and_map(target, data.target_identities)
        if gap:
            result.update({"gap_" + k: v for k, v in
                           domain_gap(self.shared_codes(data.source_images), target).items()})
        return result

    # ---------------------------------------------------------------- trainer interface
    def trackables(self) -> Dict[str, object]:
        """All network variables and the optimiser."""
        return {"weights": [w for net in self.networks for w in net.all_weights], "optimizer": self.optimizer}

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """Constant rate."""
        return {"lr": self.config.arn_lr}

    def sample_grid(self, batch) -> Optional[np.ndarray]:
        """Rows: source images, their reconstructions, target images, their reconstructions (up to 8 each);
        None for ``source_only`` (no decoder). uint8 RGB."""
        if self.config.arn_mode != "arn":
            return None
        import tensorflow as tf
        rows = []
        for key, enc in (("source_images", self.source_encoder), ("target_images", self.target_encoder)):
            x = tf.convert_to_tensor(batch[key][:8], tf.float32)
            feats = self.backbone(x)
            recon = self.decoder(self.shared_encoder(feats) + enc(feats)).numpy()
            rows += [list(batch[key][:8]), list(recon)]
        return images_grid(rows)


# ---------------------------------------------------------------------------------------------- CLI
_FLAG_HELP = {
    "arn_mode": ("string", "arn (the full model) or source_only (baseline: L_cls + L_ctr on the source)."),
    "arn_source_ids": ("integer", "CFP identities 1..N, frontal photos, are the labelled source (100)."),
    "arn_target_ids": ("integer", "The next M identities, profile photos, are the unlabelled target (50)."),
    "arn_ids_per_batch": ("integer", "P identities per source batch (8)."),
    "arn_images_per_id": ("integer", "K photos per identity in a source batch (4)."),
    "arn_conv_dim": ("integer", "First backbone conv channels (16)."),
    "arn_feature_dim": ("integer", "Size of the backbone feature X (256)."),
    "arn_code_dim": ("integer", "Size of the codes e_c, e_s, e_t (128)."),
    "arn_alpha": ("float", "Weight of L_cls (1)."),
    "arn_beta": ("float", "Weight of the contrastive loss L_ctr (1)."),
    "arn_gamma": ("float", "Weight of the reconstruction loss L_rec (1)."),
    "arn_delta": ("float", "Weight of the difference loss L_diff (0.1)."),
    "arn_margin": ("float", "Contrastive margin on unit-length codes (1)."),
    "arn_lr": ("float", "Adam learning rate (1e-3)."),
    "beta1": ("float", "Adam beta1."),
    "arn_mmd": ("float", "Weight of the MMD domain-confusion term between source and target e_c (official code's "
                         "w_loss_mmd; 0 = off)."),
    "arn_flip": ("bool", "Random horizontal flips of the training images (official code; both modes)."),
    "arn_profile_orientation": ("string", "as_is (CFP's photos) or face_right (mirror the target profiles that "
                                          "face left, judged from their fiducials; ours, both modes)."),
    "arn_flip_pool": ("bool", "Score re-identification on flip-pooled codes (code of the image plus code of its "
                              "mirror image, each unit length; ours)."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define the common sibling flags, ``--cfp_dir`` and the ``--arn_*`` config flags; idempotent."""
    define_model_flags(_FLAG_HELP, flag_values,
                       extra=[("string", "cfp_dir", "CFP folder (holding Data/), e.g. ../shared/data/cfp.")])


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """Train from parsed flags; returns the last logged metrics plus the final target rank-1 and mAP.

    Raises:
        InputError: missing ``--cfp_dir``, a bad flag value.
    """
    config = config_or_input_error(ARNConfig, flag_values)
    cfp_dir = require_flag(flag_values, "cfp_dir", "the CFP folder holding Data/, e.g. ../shared/data/cfp")
    data = prepare_data(cfp_dir, config)
    steps = len(data.source_images) // config.batch_size
    model = ARN(config)
    metrics = run_trainer("arn", model, lambda epoch, skip: batches_for_epoch(data, config, epoch, skip),
                          steps_per_epoch=steps, epochs=config.epochs, flag_values=flag_values, config=config,
                          data_description=data.describe())
    result = model.evaluate(data)
    metrics = dict(metrics)
    metrics["eval/target_rank1"] = result["rank1"]
    metrics["eval/target_map"] = result["map"]
    return metrics


registry.register(registry.ModelEntry(
    name="arn",
    summary="ARN (Li et al., CVPRW 2018): shared/private encoders for cross-domain re-identification "
            "(proxy: CFP frontal -> profile faces)",
    define_flags=define_flags,
    train=train,
))
