"""DSC-Net: Deep Subspace Clustering Networks (Ji, Zhang, Li, Salzmann, Reid; NIPS 2017), ``--model=dsc_net``.

A convolutional auto-encoder whose latent codes are made *self-expressive*: a fully-connected,
bias-free layer with coefficients ``C`` (N x N, one row and column per image of the whole data set)
rewrites every latent code as a linear combination of the others. ``C`` then serves as an affinity
for spectral clustering.

Equations implemented (paper section 3, symbols as in the paper; ``Z`` holds one latent code per row):

* Self-expressive layer (Eq. 4): ``Z_hat = C Z`` with ``Z in R^{N x d}``, ``C in R^{N x N}``; with
  ``--dsc_zero_diagonal`` the layer uses ``C - diag(C)`` (the ``diag(C) = 0`` constraint of Eq. 3/5).
* Fine-tuning loss (Eq. 5): ``L(Theta, C) = w_rec * ||X - X_hat||_F^2 + lambda1 ||C||_p + (lambda2 / 2) ||Z - C Z||_F^2``,
  p = 2 (DSC-Net-L2, ``||C||_F^2``; ``--dsc_regulariser=l2``) or p = 1 (DSC-Net-L1, ``sum |C_ij|``;
  ``--dsc_regulariser=l1``, use with ``--dsc_zero_diagonal``). The paper writes ``w_rec = 1/2``;
  the official code uses 1/2 for ORL / Extended Yale B and 1 for COIL-20/100 (``--dsc_reconstruction_weight``).
* Pre-training loss: ``1/2 ||X - X_hat||_F^2`` (the auto-encoder without the self-expressive layer).
* Post-processing (paper section 3.3 and the official ``thrC`` / ``post_proC``): keep the largest
  entries of each column of C up to a fraction rho of the column's L1 mass; ``C <- (C + C^T)/2``;
  (COIL only: ``C <- C - diag(C) + I``); rank-``r = d K + 1`` SVD ``C = U S V^T``,
  ``U <- U S^{1/2}`` with L2-normalised rows; affinity ``W = (max(U U^T, 0))^power`` normalised
  by its maximum and symmetrised; spectral clustering of ``W`` into K clusters
  (scikit-learn ``SpectralClustering(affinity='precomputed', assign_labels='discretize')``).
  Accuracy is computed after the best one-to-one map of clusters to labels (Hungarian algorithm).

Networks (official code ``DSC-Net-L2-*.py``): stride-2 SAME convolutions with bias and ReLU; the
decoder mirrors them with stride-2 SAME transposed convolutions, ReLU on every layer including the
output; Xavier-uniform weights, zero biases. ORL: 3x3-3, 3x3-3, 3x3-5 (latent 4x4x5); COIL-20:
3x3-15 (latent 16x16x15). The whole data set is one batch (the self-expressive layer needs every
sample), so one iteration is one epoch. Input pixels keep the stored scale (ORL 0..255, COIL-20
0..1), as the official hyper-parameters assume.

Deviations from the paper / official code (and why):

* Pre-training: the official ORL and COIL-20 pre-trained auto-encoders are not available offline, so
  every run pre-trains its own auto-encoder from a seeded Xavier initialisation (Adam, lr 1e-3,
  full batch) for ``--dsc_pretrain_epochs`` epochs (no visual early stopping; the number is a fixed
  config value). This is the main source of run-to-run variance (official issue #14).
* One process runs pre-training and then fine-tuning as one schedule of
  ``pretrain + finetune`` iterations under the shared trainer (checkpoints and resume across the
  phase boundary); the fine-tuning optimizer is a fresh Adam, as the official code restores only
  the auto-encoder weights.
* Layers are TensorLayer 2 (``tl.layers.Conv2d`` and the project's ``Conv2dTranspose``) rather than
  TF1 ``tf.nn`` ops; the arithmetic (SAME padding, stride 2, kernel layout ``[h, w, out, in]``) is
  the same.
* Pre-training on ORL runs on ``X / 255`` and the biases are then multiplied by 255
  (``--dsc_pretrain_input_scale``), an exact re-parameterisation for a ReLU network: fine-tuning,
  losses and lambdas stay on the official 0..255 scale. Measured on ORL, seed 0, Adam lr 1e-3:
  raw-pixel pre-training reached a per-pixel MSE of 1121 after 3000 steps (the biases move too
  slowly at this rate on a 0..255 scale) and a clustering accuracy of 0.745; normalised
  pre-training reached MSE 375 after 1500 steps and accuracy 0.87.
* The decoder's output bias starts at the mean pixel (official: 0): with 0, a quarter of the output
  pixels (one stride-2 phase) stayed dead under the output ReLU in our runs.
* ``svds`` uses a fixed start vector and the seeded ``SpectralClustering`` so a run is repeatable.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Sequence, Tuple

from absl import flags, logging

from ganimation_tl import registry
from ganimation_tl.errors import InputError
from ganimation_tl.sibling import (config_or_input_error, define_model_flags, images_grid, model_workdir, run_trainer,
                                   write_run_json)

__all__ = ["DSCNetConfig", "SubspaceData", "load_subspace_mat", "build_encoder", "build_decoder",
           "SelfExpressive", "DSCNet", "threshold_coefficients", "affinity_from_coefficients",
           "spectral_cluster", "clustering_accuracy", "raw_pixel_baselines", "define_flags", "train"]

MODEL_NAME = "dsc_net"


def _int_tuple(text: str) -> Tuple[int, ...]:
    return tuple(int(t) for t in str(text).split(",") if t.strip())


@dataclasses.dataclass(frozen=True)
class DSCNetConfig:
    """Hyper-parameters of DSC-Net; field names are the flag names. Defaults: ORL, official code.

    Attributes:
        dsc_kernels: comma-separated square kernel sizes of the encoder layers ("3,3,3" ORL, "3" COIL-20).
        dsc_channels: comma-separated output channels of the encoder layers ("3,3,5" ORL, "15" COIL-20).
        dsc_lambda1: weight of ``||C||_p`` (1 for every data set in the official code).
        dsc_lambda2: weight of ``1/2 ||Z - CZ||_F^2`` (ORL 0.2, COIL-20 150).
        dsc_reconstruction_weight: weight of ``||X - X_hat||_F^2`` when fine-tuning (ORL 0.5, COIL-20 1).
        dsc_regulariser: "l2" (DSC-Net-L2, ``sum C^2``) or "l1" (DSC-Net-L1, ``sum |C|``).
        dsc_zero_diagonal: enforce diag(C) = 0 (needed with "l1").
        dsc_coef_init: initial value of every entry of C (ORL 0, COIL-20 1e-8).
        dsc_pretrain_epochs: auto-encoder pre-training iterations (= epochs, full batch).
        dsc_finetune_epochs: fine-tuning iterations (ORL 700, COIL-20 30).
        dsc_learning_rate: Adam learning rate of both phases (1e-3).
        dsc_rho: thrC's kept fraction of each column's L1 mass (ORL 0.2, COIL-20 0.04; >= 1 skips).
        dsc_subspace_dim: d, assumed subspace dimension; the SVD keeps ``d K + 1`` components.
        dsc_power: exponent of the affinity (ORL 1, COIL-20 8).
        dsc_diag_reset: apply ``C <- C - diag(C) + I`` after symmetrising (COIL scripts only).
        dsc_pretrain_input_scale: pre-train on ``X / scale`` and then multiply every bias by ``scale``
            (ORL: 255). With ReLU everywhere the network is positively homogeneous, so the rescaled
            auto-encoder maps raw X to exactly ``scale`` times its normalised output: fine-tuning
            sees the official raw-pixel scale, pre-training a well-conditioned problem.
        seed: seeds weights, the SVD start vector and spectral clustering.
    """

    dsc_kernels: str = "3,3,3"
    dsc_channels: str = "3,3,5"
    dsc_lambda1: float = 1.0
    dsc_lambda2: float = 0.2
    dsc_reconstruction_weight: float = 0.5
    dsc_regulariser: str = "l2"
    dsc_zero_diagonal: bool = False
    dsc_coef_init: float = 0.0
    dsc_pretrain_epochs: int = 2000
    dsc_finetune_epochs: int = 700
    dsc_learning_rate: float = 1e-3
    dsc_rho: float = 0.2
    dsc_subspace_dim: int = 3
    dsc_power: float = 1.0
    dsc_diag_reset: bool = False
    dsc_pretrain_input_scale: float = 1.0
    seed: int = 0

    def __post_init__(self):
        kernels, channels = _int_tuple(self.dsc_kernels), _int_tuple(self.dsc_channels)
        if not kernels or len(kernels) != len(channels):
            raise ValueError("dsc_kernels (%r) and dsc_channels (%r) must list the same positive number of layers"
                             % (self.dsc_kernels, self.dsc_channels))
        if min(kernels) <= 0 or min(channels) <= 0:
            raise ValueError("dsc_kernels and dsc_channels must be positive")
        if self.dsc_regulariser not in ("l1", "l2"):
            raise ValueError("dsc_regulariser must be 'l1' or 'l2', got %r" % self.dsc_regulariser)
        for name in ("dsc_lambda1", "dsc_lambda2", "dsc_reconstruction_weight"):
            if getattr(self, name) < 0:
                raise ValueError("%s must be >= 0, got %r" % (name, getattr(self, name)))
        if self.dsc_pretrain_epochs < 0 or self.dsc_finetune_epochs < 0:
            raise ValueError("dsc_pretrain_epochs and dsc_finetune_epochs must be >= 0")
        if self.dsc_pretrain_epochs + self.dsc_finetune_epochs <= 0:
            raise ValueError("dsc_pretrain_epochs + dsc_finetune_epochs must be positive")
        if not self.dsc_learning_rate > 0:
            raise ValueError("dsc_learning_rate must be positive, got %r" % self.dsc_learning_rate)
        if not self.dsc_pretrain_input_scale > 0:
            raise ValueError("dsc_pretrain_input_scale must be positive, got %r" % self.dsc_pretrain_input_scale)
        if not self.dsc_rho > 0 or self.dsc_subspace_dim <= 0 or not self.dsc_power > 0:
            raise ValueError("dsc_rho, dsc_subspace_dim and dsc_power must be positive")

    @property
    def kernels(self) -> Tuple[int, ...]:
        return _int_tuple(self.dsc_kernels)

    @property
    def channels(self) -> Tuple[int, ...]:
        return _int_tuple(self.dsc_channels)


# ----------------------------------------------------------------------------------------------- data
@dataclasses.dataclass(frozen=True)
class SubspaceData:
    """A subspace-clustering data set.

    Attributes:
        images: float32 ``[N, 32, 32, 1]`` NHWC, the stored pixel scale (ORL 0..255, COIL-20 0..1).
        labels: int64 ``[N]`` in ``0..K-1``.
        num_clusters: K.
        source: a description for logs.
    """

    images: "object"
    labels: "object"
    num_clusters: int
    source: str


def load_subspace_mat(path: str, flag_name: str = "dsc_mat_path") -> SubspaceData:
    """Load ``ORL_32x32.mat`` / ``COIL20.mat`` (the files of the official DSC-Net repository).

    Both hold ``fea`` ``[N, 1024]`` (ORL uint8 0..255, COIL-20 float 0..1) and ``gnd`` ``[N, 1]``
    labels 1..K. Rows are reshaped row-major to 32 x 32, as the official scripts do (the images come
    out transposed with respect to MATLAB, which does not matter for clustering).

    Raises:
        InputError: missing or unreadable file, missing ``fea``/``gnd``, or inconsistent sizes
            (the message names ``--<flag_name>`` and the path).
    """
    import numpy as np
    import scipy.io

    if not path:
        raise InputError("--%s is required (e.g. ../shared/data/subspace/ORL_32x32.mat)" % flag_name)
    if not os.path.isfile(path):
        raise InputError("--%s=%s: no such file" % (flag_name, path))
    try:
        data = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises ValueError / MatReadError / OSError for bad files
        raise InputError("--%s=%s: cannot read the .mat file (%s)" % (flag_name, path, error))
    for key in ("fea", "gnd"):
        if key not in data:
            raise InputError("--%s=%s: the .mat file has no %r field (has: %s)"
                             % (flag_name, path, key, ", ".join(k for k in data if not k.startswith("__"))))
    features = np.asarray(data["fea"], dtype=np.float32)
    labels = np.asarray(data["gnd"]).reshape(-1).astype(np.int64)
    if features.ndim != 2 or features.shape[1] != 1024 or features.shape[0] != labels.shape[0]:
        raise InputError("--%s=%s: expected fea [N, 1024] and gnd [N, 1], got %s and %s"
                         % (flag_name, path, features.shape, data["gnd"].shape))
    _, labels = np.unique(labels, return_inverse=True)
    return SubspaceData(images=features.reshape(-1, 32, 32, 1), labels=labels.astype(np.int64),
                        num_clusters=int(labels.max()) + 1,
                        source="%s (%d images, %d clusters)" % (os.path.basename(path), features.shape[0],
                                                                 int(labels.max()) + 1))


# ------------------------------------------------------------------------------------------- networks
def _xavier_uniform(fan_in: int, fan_out: int):
    import tensorlayer as tl
    limit = (6.0 / float(fan_in + fan_out)) ** 0.5
    return tl.initializers.random_uniform(minval=-limit, maxval=limit)


def build_encoder(num_samples: int, kernels: Sequence[int], channels: Sequence[int], image_size: int = 32,
                  name: str = "dsc_enc"):
    """The DSC-Net encoder: stride-2 SAME convolutions with bias and ReLU (official code).

    Args:
        num_samples: N, the (fixed) batch, i.e. the whole data set.
        kernels, channels: per layer kernel size and output channels.
        image_size: H = W of the single-channel input, divisible by ``2**len(kernels)``.

    Returns:
        a static ``tl.models.Model``: ``[N, H, W, 1]`` -> latent ``[N, H/2^L, W/2^L, channels[-1]]``.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    x = inputs = tl.layers.Input([num_samples, image_size, image_size, 1], name=name + "_input")
    in_ch = 1
    for i, (k, c) in enumerate(zip(kernels, channels)):
        x = tl.layers.Conv2d(c, (k, k), (2, 2), act=tf.nn.relu, padding="SAME",
                             W_init=_xavier_uniform(k * k * in_ch, k * k * c), b_init=tl.initializers.zeros(),
                             in_channels=in_ch, name="%s_conv%d" % (name, i))(x)
        in_ch = c
    return tl.models.Model(inputs=inputs, outputs=x, name=unique_model_name(name))


def build_decoder(num_samples: int, kernels: Sequence[int], channels: Sequence[int], image_size: int = 32,
                  output_bias: float = 0.0, name: str = "dsc_dec"):
    """The mirrored decoder: stride-2 SAME transposed convolutions, bias and ReLU on every layer
    (including the output, so reconstructions are non-negative), as the official code.

    Args:
        output_bias: initial bias of the output layer (official: 0). Deviation: DSCNet passes the
            mean pixel value; with 0, stride-2 output phases whose pre-activation starts negative stay
            dead under the output ReLU (measured on ORL: 1/4 of the pixels stuck at 0, MSE plateau).

    Returns:
        a static ``tl.models.Model``: latent ``[N, H/2^L, W/2^L, channels[-1]]`` -> ``[N, H, W, 1]``.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import Conv2dTranspose
    from ganimation_tl.networks import unique_model_name

    side = image_size // (2 ** len(kernels))
    x = inputs = tl.layers.Input([num_samples, side, side, channels[-1]], name=name + "_input")
    outs = list(channels[:-1])[::-1] + [1]
    in_ch = channels[-1]
    for i, (k, c) in enumerate(zip(list(kernels)[::-1], outs)):
        last = i == len(kernels) - 1
        b_init = tl.initializers.constant(float(output_bias)) if last else tl.initializers.zeros()
        x = Conv2dTranspose(c, in_ch, filter_size=(k, k), strides=(2, 2), act=tf.nn.relu,
                            W_init=_xavier_uniform(k * k * in_ch, k * k * c), b_init=b_init,
                            name="%s_deconv%d" % (name, i))(x)
        in_ch = c
    return tl.models.Model(inputs=inputs, outputs=x, name=unique_model_name(name))


def _self_expressive_layer_class():
    import tensorflow as tf
    import tensorlayer as tl

    class SelfExpressiveLayer(tl.layers.Layer):
        """See :func:`SelfExpressive`."""

        def __init__(self, num_samples: int, coef_init: float = 0.0, zero_diagonal: bool = False,
                     name: str = "dsc_self_expressive"):
            super().__init__(name)
            self.num_samples = int(num_samples)
            self.coef_init = float(coef_init)
            self.zero_diagonal = bool(zero_diagonal)
            self.build(None)
            self._built = True

        def __repr__(self):
            return "SelfExpressive(num_samples=%d, zero_diagonal=%s)" % (self.num_samples, self.zero_diagonal)

        def build(self, inputs_shape):
            self.coef = self._get_weights("Coef", shape=(self.num_samples, self.num_samples),
                                          init=tl.initializers.constant(self.coef_init))

        def coefficients(self):
            """The effective C ``[N, N]`` (diagonal zeroed if ``zero_diagonal``)."""
            c = self.coef
            if self.zero_diagonal:
                c = c - tf.linalg.diag(tf.linalg.diag_part(c))
            return c

        def forward(self, inputs):
            flat = tf.reshape(inputs, [self.num_samples, -1])
            return tf.reshape(tf.matmul(self.coefficients(), flat), tf.shape(inputs))

    return SelfExpressiveLayer


def SelfExpressive(num_samples: int, coef_init: float = 0.0, zero_diagonal: bool = False,
                   name: str = "dsc_self_expressive"):
    """The self-expressive layer (paper Eq. 4): a TensorLayer layer holding ``C`` (variable ``<name>/Coef``).

    Input: latent ``[N, ...]`` (any trailing shape, flattened to ``Z in R^{N x d}`` row-major).
    Output: ``C Z`` reshaped to the input's shape. No bias, no activation. With ``zero_diagonal``
    the layer uses ``C - diag(C)`` (constraint diag(C) = 0, paper Eq. 3). ``.coefficients()``
    returns the effective ``C``.
    """
    return _self_expressive_layer_class()(num_samples, coef_init, zero_diagonal, name)


def _wrap_layer(layer, input_shape, name: str = "dsc_self_expressive_model"):
    """A static TL model ``Input(input_shape) -> layer`` (a bare TL layer cannot be called on tensors)."""
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name
    inputs = tl.layers.Input(list(input_shape), name=name + "_input")
    return tl.models.Model(inputs=inputs, outputs=layer(inputs), name=unique_model_name(name))


# ---------------------------------------------------------------------------------------- clustering
def threshold_coefficients(coef, rho: float):
    """Official ``thrC``: in every column keep the largest-magnitude entries until their cumulative
    absolute sum exceeds ``rho`` times the column's L1 norm; zero the rest. ``rho >= 1`` returns C.

    Args: coef: ``[N, N]`` array. Returns: ``[N, N]`` float64.
    """
    import numpy as np
    coef = np.asarray(coef, dtype=np.float64)
    if rho >= 1:
        return coef.copy()
    out = np.zeros_like(coef)
    mags = np.abs(coef)
    order = np.argsort(-mags, axis=0)
    for j in range(coef.shape[1]):
        sorted_mags = mags[order[:, j], j]
        total = sorted_mags.sum()
        if total <= 0:
            continue
        # number of entries kept: up to and including the first one whose cumulative sum exceeds rho*total
        keep = int(np.searchsorted(np.cumsum(sorted_mags), rho * total, side="right")) + 1
        rows = order[:keep, j]
        out[rows, j] = coef[rows, j]
    return out


def affinity_from_coefficients(coef, num_clusters: int, subspace_dim: int, power: float, diag_reset: bool = False):
    """Official ``post_proC`` up to the spectral clustering: the affinity matrix from C.

    Steps: ``C <- (C + C^T)/2``; optionally ``C <- C - diag(C) + I``; ``r = min(d K + 1, N - 1)``;
    ``U, S = svds(C, r)`` (start vector of ones); ``U <- U diag(sqrt(S))``, rows L2-normalised;
    ``W = max(U U^T, 0) ** power``; ``W /= max(W)``; ``W <- (W + W^T)/2``.

    Args: coef: ``[N, N]`` (already thresholded). Returns: ``[N, N]`` float64, symmetric, in [0, 1].
    """
    import numpy as np
    from scipy.sparse.linalg import svds

    c = np.asarray(coef, dtype=np.float64)
    c = 0.5 * (c + c.T)
    if diag_reset:
        c = c - np.diag(np.diag(c)) + np.eye(c.shape[0])
    n = c.shape[0]
    r = int(min(subspace_dim * num_clusters + 1, n - 1))
    u, s, _ = svds(c, r, v0=np.ones(n))
    u, s = u[:, ::-1], s[::-1]
    u = u * np.sqrt(np.maximum(s, 0.0))[None, :]
    u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    z = u @ u.T
    z = np.maximum(z, 0.0)
    w = np.abs(z) ** power
    w = w / max(w.max(), 1e-12)
    return 0.5 * (w + w.T)


def spectral_cluster(affinity, num_clusters: int, seed: int = 0):
    """scikit-learn ``SpectralClustering(K, eigen_solver='arpack', affinity='precomputed',
    assign_labels='discretize')`` on ``affinity [N, N]``; returns int labels ``[N]``."""
    from sklearn.cluster import SpectralClustering
    model = SpectralClustering(n_clusters=num_clusters, eigen_solver="arpack", affinity="precomputed",
                               assign_labels="discretize", random_state=seed)
    return model.fit_predict(affinity)


def clustering_accuracy(labels, predicted) -> float:
    """Accuracy after the best one-to-one map of clusters to classes (Hungarian algorithm; the
    official ``err_rate`` = 1 - this). Args: int arrays ``[N]``. Returns: float in [0, 1]."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    classes, clusters = np.unique(labels), np.unique(predicted)
    table = np.zeros((clusters.size, classes.size))
    for i, k in enumerate(clusters):
        for j, c in enumerate(classes):
            table[i, j] = np.sum((predicted == k) & (labels == c))
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / labels.size)


def raw_pixel_baselines(data: SubspaceData, seed: int = 0) -> Dict[str, float]:
    """The shallow floors on raw pixels (flattened images, stored scale), via scikit-learn:
    k-means (10 restarts) and spectral clustering with a dense Gaussian (RBF) affinity whose
    ``gamma = 1 / median squared pairwise distance`` (the median heuristic; a k-nearest-neighbour
    graph on these data is disconnected and makes ARPACK crawl). Returns accuracies."""
    import numpy as np
    from scipy.spatial.distance import pdist
    from sklearn.cluster import KMeans, SpectralClustering
    x = data.images.reshape(data.images.shape[0], -1).astype(np.float64)
    k = data.num_clusters
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    gamma = 1.0 / float(np.median(pdist(x, "sqeuclidean")))
    spectral = SpectralClustering(n_clusters=k, affinity="rbf", gamma=gamma, assign_labels="discretize",
                                  random_state=seed).fit_predict(x)
    return {"kmeans_raw_pixels": clustering_accuracy(data.labels, kmeans),
            "spectral_raw_pixels": clustering_accuracy(data.labels, spectral)}


# ------------------------------------------------------------------------------------------- model
class DSCNet:
    """DSC-Net with the trainer interface: pre-training iterations, then fine-tuning iterations.

    ``train_step(batch, step)``: ``batch`` is the whole data set ``[N, 32, 32, 1]`` float32; steps
    ``0 .. pretrain-1`` minimise ``1/2 ||X - X_hat||^2`` (auto-encoder only, optimizer ``ae_optimizer``),
    later steps minimise Eq. 5 over auto-encoder and C (fresh optimizer ``dsc_optimizer``).
    ``pixel_mean`` initialises the decoder's output bias (see :func:`build_decoder`).

    Metrics: ``ae/total`` (pre-training loss), ``ae/mse_per_pixel``; ``dsc/total``,
    ``dsc/reconstruction``, ``dsc/coef_regulariser``, ``dsc/self_expression``,
    ``dsc/self_expression_ratio`` = ``||Z - CZ||^2 / ||Z||^2``.
    """

    sample_grid_tag = "samples/input_reconstruction"

    def __init__(self, config: DSCNetConfig, num_samples: int, image_size: int = 32, pixel_mean: float = 0.0):
        import tensorflow as tf
        if image_size % (2 ** len(config.kernels)):
            raise InputError("image size %d is not divisible by 2^%d (the encoder's strides)"
                             % (image_size, len(config.kernels)))
        tf.random.set_seed(config.seed)
        self.config = config
        self.num_samples = int(num_samples)
        self.encoder = build_encoder(num_samples, config.kernels, config.channels, image_size)
        self.decoder = build_decoder(num_samples, config.kernels, config.channels, image_size,
                                     pixel_mean / config.dsc_pretrain_input_scale)
        self.self_expressive = SelfExpressive(num_samples, config.dsc_coef_init, config.dsc_zero_diagonal)
        side = image_size // (2 ** len(config.kernels))
        self.self_expressive_model = _wrap_layer(self.self_expressive,
                                                 [num_samples, side, side, config.channels[-1]])
        for net in (self.encoder, self.decoder, self.self_expressive_model):
            net.train()
        self.ae_weights = list(self.encoder.trainable_weights) + list(self.decoder.trainable_weights)
        self.all_trainable = self.ae_weights + [self.self_expressive.coef]
        self.ae_optimizer = tf.keras.optimizers.Adam(config.dsc_learning_rate)
        self.dsc_optimizer = tf.keras.optimizers.Adam(config.dsc_learning_rate)
        self.ae_optimizer.build(self.ae_weights)
        self.dsc_optimizer.build(self.all_trainable)
        self._pretrain_step = tf.function(self._pretrain_step_fn)
        self._finetune_step = tf.function(self._finetune_step_fn)

    def trackables(self):
        """Encoder, decoder and C variables, and both optimizers."""
        return {"encoder_weights": list(self.encoder.all_weights),
                "decoder_weights": list(self.decoder.all_weights),
                "coefficients": [self.self_expressive.coef],
                "ae_optimizer": self.ae_optimizer, "dsc_optimizer": self.dsc_optimizer}

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """Constant rate (official code)."""
        return {"learning_rate": float(self.config.dsc_learning_rate)}

    def losses(self, images):
        """Eq. 5 terms on ``images [N, H, W, 1]``: dict of scalar tensors (sums over all entries)."""
        import tensorflow as tf
        c = self.config
        z = self.encoder(images)
        z_c = self.self_expressive_model(z)
        recon = self.decoder(z_c)
        coef = self.self_expressive.coefficients()
        rec = tf.reduce_sum(tf.square(recon - images))
        reg = tf.reduce_sum(tf.square(coef)) if c.dsc_regulariser == "l2" else tf.reduce_sum(tf.abs(coef))
        self_exp = 0.5 * tf.reduce_sum(tf.square(z_c - z))
        total = c.dsc_reconstruction_weight * rec + c.dsc_lambda1 * reg + c.dsc_lambda2 * self_exp
        ratio = tf.reduce_sum(tf.square(z_c - z)) / tf.maximum(tf.reduce_sum(tf.square(z)), 1e-12)
        return {"dsc/total": total, "dsc/reconstruction": rec, "dsc/coef_regulariser": reg,
                "dsc/self_expression": self_exp, "dsc/self_expression_ratio": ratio}

    def _pretrain_step_fn(self, images):
        import tensorflow as tf
        images = images / self.config.dsc_pretrain_input_scale
        with tf.GradientTape() as tape:
            recon = self.decoder(self.encoder(images))
            loss = 0.5 * tf.reduce_sum(tf.square(recon - images))
        grads = tape.gradient(loss, self.ae_weights)
        self.ae_optimizer.apply_gradients(zip(grads, self.ae_weights))
        scale = self.config.dsc_pretrain_input_scale
        return {"ae/total": loss * scale ** 2,
                "ae/mse_per_pixel": 2.0 * loss * scale ** 2 / tf.cast(tf.size(images), tf.float32)}

    def rescale_biases(self, scale: float) -> None:
        """Multiply every encoder and decoder bias by ``scale`` (end of normalised pre-training)."""
        for layer_weights in (self.encoder.all_weights, self.decoder.all_weights):
            for w in layer_weights:
                if "biases" in w.name:
                    w.assign(w * scale)

    def _finetune_step_fn(self, images):
        import tensorflow as tf
        with tf.GradientTape() as tape:
            terms = self.losses(images)
        grads = tape.gradient(terms["dsc/total"], self.all_trainable)
        self.dsc_optimizer.apply_gradients(zip(grads, self.all_trainable))
        return terms

    def train_step(self, batch, step: int) -> Dict[str, object]:
        """One full-batch iteration (pre-training while ``step < dsc_pretrain_epochs``)."""
        if step < self.config.dsc_pretrain_epochs:
            return self._pretrain_step(batch)
        if step == self.config.dsc_pretrain_epochs and self.config.dsc_pretrain_input_scale != 1.0:
            # First fine-tuning step (also after a resume: checkpoints hold the state before it).
            self.rescale_biases(self.config.dsc_pretrain_input_scale)
        return self._finetune_step(batch)

    def coefficients(self):
        """The learned C as a NumPy ``[N, N]`` array (diagonal zeroed if configured)."""
        return self.self_expressive.coefficients().numpy()

    def cluster(self, num_clusters: int):
        """Post-process C and cluster (official ``thrC`` + ``post_proC``); int labels ``[N]``."""
        c = self.config
        coef = threshold_coefficients(self.coefficients(), c.dsc_rho)
        affinity = affinity_from_coefficients(coef, num_clusters, c.dsc_subspace_dim, c.dsc_power, c.dsc_diag_reset)
        return spectral_cluster(affinity, num_clusters, c.seed)

    def sample_grid(self, batch):
        """Eight inputs (top) and their reconstructions through C Z (bottom), uint8."""
        import numpy as np
        images = np.asarray(batch)
        recon = self.decoder(self.self_expressive_model(self.encoder(batch))).numpy()
        scale = max(float(images.max()), 1e-6)
        pick = np.linspace(0, images.shape[0] - 1, 8).astype(int)
        return images_grid([[np.clip(images[i] / scale, 0, 1) for i in pick],
                            [np.clip(recon[i] / scale, 0, 1) for i in pick]])


# ------------------------------------------------------------------------------------------- CLI
_CONFIG_FLAGS = {
    "dsc_kernels": ("string", "Encoder kernel sizes, comma-separated (ORL 3,3,3; COIL-20 3)."),
    "dsc_channels": ("string", "Encoder channels, comma-separated (ORL 3,3,5; COIL-20 15)."),
    "dsc_lambda1": ("float", "Weight of ||C||_p (1)."),
    "dsc_lambda2": ("float", "Weight of 1/2||Z-CZ||^2 (ORL 0.2, COIL-20 150)."),
    "dsc_reconstruction_weight": ("float", "Weight of ||X-X_hat||^2 in fine-tuning (ORL 0.5, COIL-20 1)."),
    "dsc_regulariser": ("string", "l2 (DSC-Net-L2) or l1 (DSC-Net-L1)."),
    "dsc_zero_diagonal": ("bool", "Constrain diag(C) = 0."),
    "dsc_coef_init": ("float", "Initial value of every entry of C (ORL 0, COIL-20 1e-8)."),
    "dsc_pretrain_epochs": ("integer", "Auto-encoder pre-training iterations (full batch)."),
    "dsc_finetune_epochs": ("integer", "Fine-tuning iterations (ORL 700, COIL-20 30)."),
    "dsc_learning_rate": ("float", "Adam learning rate (1e-3)."),
    "dsc_rho": ("float", "thrC kept fraction of each column's L1 mass (ORL 0.2, COIL-20 0.04)."),
    "dsc_subspace_dim": ("integer", "Subspace dimension d (ORL 3, COIL-20 12)."),
    "dsc_power": ("float", "Affinity exponent (ORL 1, COIL-20 8)."),
    "dsc_diag_reset": ("bool", "C <- C - diag(C) + I before the SVD (COIL only)."),
    "dsc_pretrain_input_scale": ("float", "Pre-train on X/scale, then scale the biases (ORL 255, COIL-20 1)."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define DSC-Net's flags (config fields, ``--dsc_mat_path``) and the common trainer flags."""
    define_model_flags(_CONFIG_FLAGS, flag_values, extra=[
        ("string", "dsc_mat_path", "DSC-Net data: ORL_32x32.mat or COIL20.mat (fields fea, gnd).")])


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """Pre-train, fine-tune, then cluster; returns the last metrics plus ``cluster/accuracy``.

    Writes ``<workdir>/clustering.json`` (accuracy, predicted labels) atomically when fine-tuning ran.

    Raises:
        InputError: bad flags or data file (named).
    """
    import numpy as np
    import tensorflow as tf
    config = config_or_input_error(DSCNetConfig, flag_values)
    data = load_subspace_mat(flag_values.dsc_mat_path)
    model = DSCNet(config, num_samples=data.images.shape[0], image_size=data.images.shape[1],
                   pixel_mean=float(data.images.mean()))
    images = tf.constant(data.images)

    def make_dataset(epoch, skip):
        return [images] if skip == 0 else []

    epochs = config.dsc_pretrain_epochs + config.dsc_finetune_epochs
    metrics = run_trainer(MODEL_NAME, model, make_dataset, steps_per_epoch=1, epochs=epochs,
                          flag_values=flag_values, config=config, data_description=data.source)
    workdir = model_workdir(MODEL_NAME, flag_values)
    step = int(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).rsplit("-", 1)[-1])
    if step <= config.dsc_pretrain_epochs:
        logging.warning("dsc_net: stopped at step %d, before fine-tuning; no clustering", step)
        return metrics
    predicted = model.cluster(data.num_clusters)
    accuracy = clustering_accuracy(data.labels, predicted)
    logging.info("dsc_net: clustering accuracy %.4f on %s after %d iterations", accuracy, data.source, step)
    write_run_json(MODEL_NAME, flag_values, "clustering.json", {
        "accuracy": accuracy, "step": step, "data": data.source, "seed": config.seed,
        "predicted": [int(p) for p in np.asarray(predicted)]})
    metrics = dict(metrics)
    metrics["cluster/accuracy"] = accuracy
    return metrics


registry.register(registry.ModelEntry(
    name=MODEL_NAME,
    summary="DSC-Net (Ji et al., NIPS 2017): deep subspace clustering with a self-expressive layer (ORL, COIL-20)",
    define_flags=define_flags,
    train=train,
))
