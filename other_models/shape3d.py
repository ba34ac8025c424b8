"""Single-image 3D shape reconstruction (32^3 occupancy), ``train.py --model=shape3d``.

An image encoder and a voxel decoder predict the occupancy grid of an object from one rendered view,
trained either (a) with voxel supervision or (b) with silhouette supervision only, through a
differentiable projection of the predicted occupancy into the cameras of several views. This
follows the line of single-image 3D work from Y.-C. F. Wang's group (2018-2019, 2D-3D
self-consistency) and the projection-based supervision it builds on: Perspective Transformer Nets
(Yan et al., NIPS 2016) and Differentiable Ray Consistency (Tulsiani et al., CVPR 2017). There is
no spec file and no public code for the exact model; everything below is inferred and documented.

Equations (our notation):

* grid: occupancy ``V[x, y, z]`` in [0, 1] on G^3 voxel centres of the cube [-1, 1]^3 (y up);
* camera: orthographic, rotation ``R = R_x(elevation) R_y(azimuth)``; a camera-frame point
  ``p_c = (u, v, d)`` (u right, v up, d depth, all in [-1, 1]) sees the object point ``p_o = R^T p_c``;
* differentiable projection (trilinear sampling of V along each pixel's ray, D = G samples)::

      o_{ij,k} = trilinear(V, R^T (u_j, v_i, d_k))
      S_ij = 1 - prod_k (1 - o_{ij,k})                                  (silhouette, DRC eq. "escape")
      Z_ij = sum_k d_k o_{ij,k} prod_{k' < k} (1 - o_{ij,k'})            (expected first-hit depth)

* losses: voxel supervision ``L_vox = mean BCE(V_hat, V)``; mask supervision
  ``L_mask = mean_v mean BCE(S(V_hat, R_v), S(V, R_v))`` over ``--shape3d_views`` views per shape
  (the input view first);
* metric: voxel IoU ``|V_hat > t  AND  V| / |V_hat > t  OR  V|`` on held-out shapes, after filling the
  enclosed cavities of ``V_hat > t`` (solid reconstructions, see below; raw IoU reported too).

Data (generated here, :class:`PrimitiveShapes`): boxes, cylinders, spheres, unions of 2-3 of them,
chair-like (seat, four legs, back) and table-like (top, four legs) assemblies with random sizes,
voxelised on the G^3 grid; each shape is rendered from random viewpoints (azimuth uniform, elevation
in [-30, 30] degrees) by the projection above: the network input is the shaded first-hit depth image
``S * (1 - 0.5 (Z + 1) / 2)`` (nearer is brighter), ``[S, S, 1]`` in [0, 1].

Deviations / inferred details:

* No ShapeNet (no downloads): primitive assemblies instead; orthographic cameras; input images are
  depth-shaded silhouettes rendered by the same projection (no textures or lighting model).
* Mask supervision assumes known camera poses for the supervising views (as PTN / DRC); the predicted
  grid lives in the object frame.
* The decoder's output bias starts at -4 (prior occupancy ~2%): with occupancy 0.5 everywhere every
  ray is opaque and the silhouette loss has no gradient (inferred; PTN/DRC-style training needs it).
* Networks are small (CPU): encoder 3 stride-2 convs + dense, decoder dense to 4^3 x C then three 3D
  transposed convs (4 -> 8 -> 16 -> 32).
* Thresholds t for IoU are chosen on training shapes, separately for each model and for the mean-shape
  baseline (mask-supervised occupancies are less calibrated than voxel-supervised ones).
* Reconstructions are solid (ours): enclosed cavities of the thresholded grid are filled
  (:func:`fill_cavities`, for every model and the mean-shape baseline). Silhouettes constrain only the
  visual hull: behind a ray's first occupied voxel the mask loss has no gradient, and a silhouette-
  supervised grid can stay a hollow shell (seed 1: 74% of the voxels 2 or more inside the surface found,
  against 99% with voxel supervision). Raw IoUs are reported alongside.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, Iterator, Tuple

import numpy as np
from absl import flags

from ganimation_tl import registry, sibling
from ganimation_tl.errors import InputError

MODEL_NAME = "shape3d"
SHAPE_KINDS = ("box", "cylinder", "sphere", "union", "chair", "table")


@dataclasses.dataclass(frozen=True)
class Shape3DConfig:
    """Hyper-parameters; field names are the flag names (see ``configs/shape3d.cfg``).

    Attributes:
        image_size: side S of the rendered input images and silhouettes (multiple of 8).
        shape3d_grid: G, voxel resolution (32; must be 32 for the decoder's 4 -> 32 up-sampling).
        shape3d_supervision: ``voxel`` (3D supervision) or ``mask`` (silhouettes only).
        shape3d_views: views per shape and step for the mask loss (the input view first).
        shape3d_view_pool: silhouettes rendered per training shape (0: just the ``shape3d_views`` fixed
            views). When larger, each step supervises the input view plus ``shape3d_views - 1`` views drawn
            at random from the pool, so over the epochs every shape is seen from many cameras at the
            per-step cost of ``shape3d_views`` projections (PTN renders 24 views per shape).
        shape3d_latent: latent code size. shape3d_channels: base channel count.
        shape3d_train_shapes, shape3d_test_shapes: generated shapes (test shapes use another seed).
        learning_rate, batch_size, epochs, seed: as usual (Adam).
    """

    image_size: int = 32
    shape3d_grid: int = 32
    shape3d_supervision: str = "voxel"
    shape3d_views: int = 4
    shape3d_view_pool: int = 0
    shape3d_latent: int = 128
    shape3d_channels: int = 16
    shape3d_train_shapes: int = 2000
    shape3d_test_shapes: int = 300
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 10
    seed: int = 0

    def __post_init__(self):
        for name in ("image_size", "shape3d_views", "shape3d_latent", "shape3d_channels", "shape3d_train_shapes",
                     "shape3d_test_shapes", "batch_size", "epochs"):
            if getattr(self, name) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if self.image_size % 8:
            raise ValueError("image_size must be a multiple of 8, got %d" % self.image_size)
        if self.shape3d_view_pool and self.shape3d_view_pool < self.shape3d_views:
            raise ValueError("shape3d_view_pool must be 0 or at least shape3d_views (%d), got %d"
                             % (self.shape3d_views, self.shape3d_view_pool))
        if self.shape3d_grid != 32:
            raise ValueError("shape3d_grid must be 32 (the decoder up-samples 4 -> 32), got %d" % self.shape3d_grid)
        if self.shape3d_supervision not in ("voxel", "mask"):
            raise ValueError("shape3d_supervision must be voxel or mask, got %r" % self.shape3d_supervision)
        if not self.learning_rate > 0:
            raise ValueError("learning_rate must be positive")


# ---------------------------------------------------------------------------------------------- shapes
def voxel_centres(grid: int) -> np.ndarray:
    """Coordinates of the voxel centres along one axis: ``-1 + (2 i + 1) / G``, ``[G]``."""
    return -1.0 + (2.0 * np.arange(grid) + 1.0) / grid


def _box(X, Y, Z, c, h):
    return (np.abs(X - c[0]) <= h[0]) & (np.abs(Y - c[1]) <= h[1]) & (np.abs(Z - c[2]) <= h[2])


def _cylinder(X, Y, Z, c, r, h):
    return ((X - c[0]) ** 2 + (Z - c[2]) ** 2 <= r * r) & (np.abs(Y - c[1]) <= h)


def _sphere(X, Y, Z, c, r):
    return (X - c[0]) ** 2 + (Y - c[1]) ** 2 + (Z - c[2]) ** 2 <= r * r


def make_shape(kind: str, rng: np.random.Generator, grid: int = 32) -> np.ndarray:
    """Voxelise one random shape of ``kind`` (one of :data:`SHAPE_KINDS`).

    Returns:
        bool ``[G, G, G]`` occupancy indexed ``[x, y, z]`` (y up) of the cube [-1, 1]^3; every shape
        lies inside the ball of radius 0.95 so any rotation keeps it in the cube.

    Raises:
        InputError: unknown kind.
    """
    t = voxel_centres(grid)
    X, Y, Z = np.meshgrid(t, t, t, indexing="ij")
    u = lambda a, b: float(rng.uniform(a, b))  # noqa: E731
    if kind == "box":
        return _box(X, Y, Z, (0, 0, 0), (u(0.2, 0.5), u(0.2, 0.5), u(0.2, 0.5)))
    if kind == "cylinder":
        return _cylinder(X, Y, Z, (0, 0, 0), u(0.2, 0.5), u(0.2, 0.5))
    if kind == "sphere":
        return _sphere(X, Y, Z, (0, 0, 0), u(0.3, 0.6))
    if kind == "union":
        occ = np.zeros_like(X, bool)
        for _ in range(int(rng.integers(2, 4))):
            c = (u(-0.25, 0.25), u(-0.25, 0.25), u(-0.25, 0.25))
            which = int(rng.integers(3))
            if which == 0:
                occ |= _box(X, Y, Z, c, (u(0.1, 0.3), u(0.1, 0.3), u(0.1, 0.3)))
            elif which == 1:
                occ |= _cylinder(X, Y, Z, c, u(0.1, 0.3), u(0.1, 0.3))
            else:
                occ |= _sphere(X, Y, Z, c, u(0.15, 0.3))
        return occ
    if kind in ("chair", "table"):
        w, d = u(0.3, 0.5), u(0.3, 0.5)                       # half width / depth of the seat or top
        top = u(-0.1, 0.15) if kind == "chair" else u(0.1, 0.35)
        thick = u(0.04, 0.08)
        leg = u(0.04, 0.08)
        occ = _box(X, Y, Z, (0, top, 0), (w, thick, d))
        bottom = -0.55
        half = (top - thick - bottom) / 2
        for sx in (-1, 1):
            for sz in (-1, 1):
                occ |= _box(X, Y, Z, (sx * (w - leg), bottom + half, sz * (d - leg)), (leg, half, leg))
        if kind == "chair":
            height = u(0.2, 0.35)
            occ |= _box(X, Y, Z, (0, top + thick + height, -d + thick), (w, height, thick))
        return occ
    raise InputError("unknown shape kind %r; valid: %s" % (kind, ", ".join(SHAPE_KINDS)))


def rotation(azimuth: float, elevation: float) -> np.ndarray:
    """Camera rotation ``R = R_x(elevation) R_y(azimuth)`` (radians), float32 ``[3, 3]``; ``p_c = R p_o``."""
    ca, sa, ce, se = math.cos(azimuth), math.sin(azimuth), math.cos(elevation), math.sin(elevation)
    ry = np.array([[ca, 0, sa], [0, 1, 0], [-sa, 0, ca]])
    rx = np.array([[1, 0, 0], [0, ce, -se], [0, se, ce]])
    return (rx @ ry).astype(np.float32)


def project(voxels, rotations, image_size: int):
    """Differentiable orthographic projection of occupancy grids (trilinear ray sampling).

    Args:
        voxels: float ``[B, G, G, G]`` occupancy in [0, 1], indexed ``[x, y, z]`` over [-1, 1]^3.
        rotations: float ``[B, 3, 3]`` camera rotations (``p_c = R p_o``).
        image_size: S, pixels per side; each ray takes G depth samples.

    Returns:
        ``(silhouette [B, S, S], depth [B, S, S])``: ``1 - prod_k (1 - o_k)`` in [0, 1] and the
        expected first-hit depth ``sum_k d_k o_k prod_{k'<k} (1 - o_k')`` (d in [-1, 1], near = -1;
        pixels that miss contribute 0). Row 0 is the top of the image (v = +1).
    """
    import tensorflow as tf

    voxels = tf.convert_to_tensor(voxels, tf.float32)
    rotations = tf.convert_to_tensor(rotations, tf.float32)
    grid = voxels.shape[1]
    batch = tf.shape(voxels)[0]
    pix = tf.constant(voxel_centres(image_size), tf.float32)
    depth = tf.constant(voxel_centres(grid), tf.float32)
    v, u, d = tf.meshgrid(-pix, pix, depth, indexing="ij")          # [S, S, D]: rows top to bottom
    points = tf.reshape(tf.stack([u, v, d], -1), [-1, 3])             # camera frame, [P, 3]
    obj = tf.einsum("pc,bcj->bpj", points, rotations)                # p_o = R^T p_c, rows of R^T = columns of R
    f = (obj + 1.0) * (grid / 2.0) - 0.5                             # continuous voxel index
    f0 = tf.floor(f)
    w1 = f - f0
    f0 = tf.cast(f0, tf.int32)
    flat = tf.reshape(voxels, [batch, -1])
    sampled = 0.0
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                idx = f0 + tf.constant([dx, dy, dz], tf.int32)
                inside = tf.reduce_all((idx >= 0) & (idx < grid), axis=-1)
                idx = tf.clip_by_value(idx, 0, grid - 1)
                lin = idx[..., 0] * grid * grid + idx[..., 1] * grid + idx[..., 2]
                weight = ((w1[..., 0] if dx else 1 - w1[..., 0]) * (w1[..., 1] if dy else 1 - w1[..., 1])
                          * (w1[..., 2] if dz else 1 - w1[..., 2]))
                sampled += tf.gather(flat, lin, batch_dims=1) * weight * tf.cast(inside, tf.float32)
    occ = tf.reshape(tf.clip_by_value(sampled, 0.0, 1.0), [batch, image_size, image_size, grid])
    free = tf.math.cumprod(1.0 - occ, axis=-1, exclusive=True)       # prod_{k'<k} (1 - o_k')
    silhouette = 1.0 - tf.reduce_prod(1.0 - occ, axis=-1)
    expected_depth = tf.reduce_sum(depth * occ * free, axis=-1)
    return silhouette, expected_depth


def shade(silhouette, depth):
    """Input image from a projection: ``S * (1 - 0.5 (Z/S + 1) / 2)`` (nearer is brighter), same shape, in [0, 1]."""
    import tensorflow as tf
    normalised = tf.math.divide_no_nan(depth, silhouette)
    return silhouette * (1.0 - 0.25 * (normalised + 1.0))


@dataclasses.dataclass(frozen=True)
class ShapeSet:
    """Generated shapes with their renders.

    Attributes:
        voxels: uint8 ``[N, G, G, G]`` in {0, 1}. kinds: int32 ``[N]`` index into :data:`SHAPE_KINDS`.
        rotations: float32 ``[N, V, 3, 3]`` (view 0 is the input view).
        images: float32 ``[N, S, S, 1]`` in [0, 1], the shaded input view.
        masks: float32 ``[N, V, S, S]`` in [0, 1], silhouettes of the V views.
    """

    voxels: np.ndarray
    kinds: np.ndarray
    rotations: np.ndarray
    images: np.ndarray
    masks: np.ndarray


def _random_rotations(rng: np.random.Generator, count: int, views: int) -> np.ndarray:
    """``[count, views, 3, 3]`` float32 camera rotations, azimuth U[0, 2 pi), elevation U[-30, 30] degrees."""
    return np.asarray([[rotation(rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(-30, 30)))
                        for _ in range(views)] for _ in range(count)], np.float32).reshape(count, views, 3, 3)


def generate_shapes(count: int, views: int, image_size: int, seed: int, grid: int = 32, chunk: int = 64,
                    extra_views: int = 0) -> ShapeSet:
    """Generate ``count`` random shapes (kinds uniform over :data:`SHAPE_KINDS`) and render ``views``
    random views of each (azimuth U[0, 2 pi), elevation U[-30, 30] degrees).

    ``extra_views`` more views per shape (a view pool for the mask loss) come from a separate random
    stream, so the shapes and the first ``views`` views (the input view among them) are the same with
    or without them.

    Raises:
        InputError: non-positive count or views, negative extra_views.
    """
    if count <= 0 or views <= 0 or extra_views < 0:
        raise InputError("need a positive number of shapes and views and extra_views >= 0, got %d, %d and %d"
                         % (count, views, extra_views))
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, len(SHAPE_KINDS), count).astype(np.int32)
    voxels = np.stack([make_shape(SHAPE_KINDS[k], rng, grid) for k in kinds]).astype(np.uint8)
    rotations = _random_rotations(rng, count, views)
    if extra_views:
        rotations = np.concatenate(
            [rotations, _random_rotations(np.random.default_rng([seed, 1]), count, extra_views)], axis=1)
        views += extra_views
    import tensorflow as tf

    images = np.empty((count, image_size, image_size, 1), np.float32)
    masks = np.empty((count, views, image_size, image_size), np.float32)
    render = tf.function(lambda vox, rot: project(vox, rot, image_size), reduce_retracing=True)
    for start in range(0, count, chunk):
        vox = tf.constant(voxels[start:start + chunk].astype(np.float32))
        for v in range(views):
            sil, depth = render(vox, tf.constant(rotations[start:start + chunk, v]))
            masks[start:start + chunk, v] = sil.numpy()
            if v == 0:
                images[start:start + chunk, ..., 0] = shade(sil, depth).numpy()
    return ShapeSet(voxels, kinds, rotations, images, masks)


# ---------------------------------------------------------------------------------------------- networks
def _conv3d_transpose_class():
    import tensorflow as tf
    import tensorlayer as tl

    class Conv3dTranspose(tl.layers.Layer):
        """3D transposed convolution ('SAME', plain ``tf.Variable`` kernel ``[k, k, k, out, in]``).

        Input ``[B, D, H, W, in]`` -> output ``[B, s D, s H, s W, out]``. Written on
        ``tf.nn.conv3d_transpose`` (TL's ``DeConv3d`` wraps Keras 3 variables, see toolchain notes).
        """

        def __init__(self, n_filter, in_channels, size=4, stride=2, act=None, bias_init=0.0, name=None):
            super().__init__(name, act=act)
            self.bias_init = float(bias_init)
            self.n_filter, self.in_channels, self.size, self.stride = int(n_filter), int(in_channels), size, stride
            self.build(None)
            self._built = True

        def build(self, inputs_shape):
            fan_in = self.size ** 3 * self.in_channels / self.stride ** 3
            self.W = self._get_weights("filters", (self.size,) * 3 + (self.n_filter, self.in_channels),
                                       init=tl.initializers.truncated_normal(stddev=float(np.sqrt(2.0 / fan_in))))
            self.b = self._get_weights("biases", (self.n_filter,), init=tl.initializers.constant(self.bias_init))

        def forward(self, inputs):
            shape = tf.shape(inputs)
            s = self.stride
            out_shape = tf.stack([shape[0], shape[1] * s, shape[2] * s, shape[3] * s, self.n_filter])
            out = tf.nn.conv3d_transpose(inputs, self.W, out_shape, strides=(1, s, s, s, 1), padding="SAME")
            static = inputs.shape
            out.set_shape([static[0]] + [None if n is None else n * s for n in static[1:4]] + [self.n_filter])
            out = tf.nn.bias_add(out, self.b)
            return self.act(out) if self.act is not None else out

    return Conv3dTranspose


def build_network(image_size: int, latent: int, channels: int, name: str = "s3d"):
    """Image encoder + voxel decoder as one static TL model.

    Input ``[B, S, S, 1]`` in [0, 1] (NHWC). Output occupancy logits ``[B, 32, 32, 32]`` (indexed
    ``[x, y, z]``; apply a sigmoid for probabilities).
    Encoder: 3 x (4x4/2 conv, ReLU) with C, 2C, 4C channels, dense to ``latent`` (ReLU).
    Decoder: dense to 4^3 x 4C (ReLU), 3D transposed convs 4C -> 2C -> C -> 1 (4 -> 8 -> 16 -> 32).
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    init = lambda fan_in: tl.initializers.truncated_normal(stddev=float(np.sqrt(2.0 / fan_in)))  # noqa: E731
    Conv3dTranspose = _conv3d_transpose_class()
    x = inputs = tl.layers.Input([None, image_size, image_size, 1], name=name + "_in")
    previous = 1
    for i, mult in enumerate((1, 2, 4)):
        x = tl.layers.Conv2d(channels * mult, (4, 4), (2, 2), act=tf.nn.relu, padding="SAME", W_init=init(16 * previous),
                             in_channels=previous, name="%s_enc%d" % (name, i))(x)
        previous = channels * mult
    flat_size = (image_size // 8) ** 2 * previous
    x = tl.layers.Flatten(name=name + "_flat")(x)
    x = tl.layers.Dense(latent, act=tf.nn.relu, in_channels=flat_size, W_init=init(flat_size), name=name + "_code")(x)
    x = tl.layers.Dense(64 * 4 * channels, act=tf.nn.relu, in_channels=latent, W_init=init(latent),
                        name=name + "_dec_fc")(x)
    x = tl.layers.Reshape([-1, 4, 4, 4, 4 * channels], name=name + "_dec_reshape")(x)
    x = Conv3dTranspose(2 * channels, 4 * channels, act=tf.nn.relu, name=name + "_dec0")(x)
    x = Conv3dTranspose(channels, 2 * channels, act=tf.nn.relu, name=name + "_dec1")(x)
    # Output bias -4: prior occupancy sigmoid(-4) ~ 2% (the shapes fill ~3% of the grid). With 0.5
    # everywhere every ray would be opaque (1 - 0.5^32) and the silhouette gradient would vanish.
    x = Conv3dTranspose(1, channels, bias_init=-4.0, name=name + "_dec2")(x)
    x = tl.layers.Reshape([-1, 32, 32, 32], name=name + "_out")(x)
    return tl.models.Model(inputs=inputs, outputs=x, name=unique_model_name(name))


def fill_cavities(occupied: np.ndarray) -> np.ndarray:
    """Solid version of binary grids: empty voxels not connected (6-connectivity) to the grid's border are
    filled. bool ``[N, G, G, G]`` -> bool ``[N, G, G, G]`` (``scipy.ndimage.binary_fill_holes`` per shape).

    Silhouettes say nothing about an object's inside: once a ray is opaque the silhouette loss has no
    gradient for the voxels behind its first occupied one, so a silhouette-supervised grid can come out as
    a closed shell around an empty core. Every shape of the data is solid, so the reconstruction fills
    enclosed cavities (ours; applied alike to every model and to the mean-shape baseline).
    """
    from scipy import ndimage
    occupied = np.asarray(occupied, bool)
    return np.stack([ndimage.binary_fill_holes(v) for v in occupied]) if len(occupied) else occupied


def interior_recall(predicted: np.ndarray, truth: np.ndarray, threshold: float = 0.5, depth: int = 2) -> float:
    """Fraction in [0, 1] of the true voxels at least ``depth`` voxels inside the surface (binary erosion of
    ``truth > 0.5``) that ``predicted > threshold`` marks occupied; ``predicted`` occupancy probabilities in
    [0, 1] and ``truth`` in {0, 1}, both ``[N, G, G, G]``; 1.0 when no true voxel is that deep. Diagnoses
    hollow reconstructions (ours, not from the paper line)."""
    from scipy import ndimage
    inner = np.stack([ndimage.binary_erosion(v > 0.5, iterations=depth) for v in np.asarray(truth)])
    return float((np.asarray(predicted) > threshold)[inner].mean()) if inner.any() else 1.0


def voxel_iou(predicted: np.ndarray, truth: np.ndarray, threshold: float = 0.5, solid: bool = False) -> np.ndarray:
    """Per-shape IoU of ``predicted > threshold`` (with ``solid``, after :func:`fill_cavities`) against
    ``truth > 0.5``; arrays ``[N, G, G, G]`` (occupancy probabilities in [0, 1]) -> ``[N]`` IoUs in [0, 1] (1.0 when
    both are empty)."""
    p = np.asarray(predicted) > threshold
    if solid:
        p = fill_cavities(p)
    t = np.asarray(truth) > 0.5
    inter = np.sum(p & t, axis=(1, 2, 3))
    union = np.sum(p | t, axis=(1, 2, 3))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


class Shape3D:
    """The reconstruction model with the trainer interface; ``config.shape3d_supervision`` selects the loss."""

    sample_grid_tag = "samples/input_truth_prediction_silhouettes"

    def __init__(self, config: Shape3DConfig):
        import tensorflow as tf

        tf.random.set_seed(config.seed)
        self.config = config
        self.net = build_network(config.image_size, config.shape3d_latent, config.shape3d_channels)
        self.net.train()
        self.variables = self.net.trainable_weights
        self.optimizer = tf.keras.optimizers.Adam(config.learning_rate)
        self.optimizer.build(self.variables)
        self._step = tf.function(self._train_step)
        self._predict = tf.function(lambda images: tf.sigmoid(self.net(images)))

    def trackables(self):
        return {"net": self.net.all_weights, "optimizer": self.optimizer}

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        return {"shape3d/learning_rate": self.config.learning_rate}

    def _train_step(self, images, voxels, masks, rotations):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            logits = self.net(images)
            probs = tf.sigmoid(logits)
            voxel_bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=voxels, logits=logits))
            if self.config.shape3d_supervision == "voxel":
                loss = voxel_bce
                mask_bce = tf.constant(0.0)
            else:
                terms = []
                for v in range(self.config.shape3d_views):
                    sil, _ = project(probs, rotations[:, v], self.config.image_size)
                    target = masks[:, v]
                    # eps inside the logs (not a clip, which would zero the gradient of saturated rays)
                    terms.append(-tf.reduce_mean(target * tf.math.log(sil + 1e-6)
                                                 + (1 - target) * tf.math.log(1 - sil + 1e-6)))
                mask_bce = tf.add_n(terms) / len(terms)
                loss = mask_bce
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        hard = tf.cast(probs > 0.5, tf.float32)
        inter = tf.reduce_sum(hard * voxels, axis=[1, 2, 3])
        union = tf.reduce_sum(tf.maximum(hard, voxels), axis=[1, 2, 3])
        iou = tf.reduce_mean(tf.math.divide_no_nan(inter, union))
        return {"shape3d/total": loss, "shape3d/voxel_bce": voxel_bce, "shape3d/mask_bce": mask_bce,
                "shape3d/train_iou": iou}

    def train_step(self, batch, step):
        import tensorflow as tf
        images, voxels, masks, rotations = batch
        return self._step(tf.constant(images), tf.constant(voxels, tf.float32), tf.constant(masks),
                          tf.constant(rotations))

    def reconstruct(self, images: np.ndarray, threshold: float = 0.5, solid: bool = True) -> np.ndarray:
        """Binary occupancy ``[N, 32, 32, 32]`` (bool, indexed [x, y, z], y up) for images ``[N, S, S, 1]`` in
        [0, 1]: :meth:`predict` above ``threshold`` (a probability in (0, 1); ``bench/eval_shape3d.py`` picks it on
        training shapes), with enclosed cavities filled when ``solid`` (:func:`fill_cavities`; our deviation,
        see the module docstring)."""
        occupied = self.predict(images) > threshold
        return fill_cavities(occupied) if solid else occupied

    def predict(self, images: np.ndarray, batch: int = 64) -> np.ndarray:
        """Occupancy probabilities ``[N, 32, 32, 32]`` in [0, 1] for images ``[N, S, S, 1]`` in [0, 1]."""
        import tensorflow as tf
        self.net.eval()
        try:
            return np.concatenate([self._predict(tf.constant(images[i:i + batch])).numpy()
                                   for i in range(0, len(images), batch)])
        finally:
            self.net.train()

    def sample_grid(self, batch):
        """Rows: input view, true silhouette from view 2, predicted silhouette from view 2 (up to 6 shapes)."""
        images, voxels, masks, rotations = batch
        images, rotations = np.asarray(images[:6]), np.asarray(rotations[:6])
        view = min(1, rotations.shape[1] - 1)
        predicted = self.predict(images)
        sil, _ = project(predicted, rotations[:, view], self.config.image_size)
        return sibling.images_grid([list(images), list(np.asarray(masks[:6, view])), list(sil.numpy())])


# ---------------------------------------------------------------------------------------------- CLI
_FLAGS = {
    "shape3d_supervision": ("string", "voxel (3D supervision) or mask (silhouettes of several views only)."),
    "shape3d_views": ("integer", "Views per shape and step for the mask loss (the input view first)."),
    "shape3d_view_pool": ("integer", "Silhouettes rendered per training shape; each step draws shape3d_views - 1 "
                          "of them besides the input view (0: the shape3d_views fixed views)."),
    "shape3d_latent": ("integer", "Latent code size."),
    "shape3d_channels": ("integer", "Base channel count of the encoder / decoder."),
    "shape3d_train_shapes": ("integer", "Generated training shapes."),
    "shape3d_test_shapes": ("integer", "Generated held-out shapes (another seed)."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define the model's flags (config fields and the common trainer flags); idempotent."""
    sibling.define_model_flags(_FLAGS, flag_values, extra=[
        ("integer", "shape3d_grid", "Voxel resolution G (32)."),
        ("float", "learning_rate", "Learning rate. Unset: the model's config default.")])


def pick_views(rng: np.random.Generator, batch: int, views: int, pool: int) -> np.ndarray:
    """View indices ``[batch, views]`` (int) for one step of the mask loss: column 0 is the input view 0,
    the others are distinct views drawn from ``1 .. pool - 1`` (all of them, in order, when pool == views).

    Raises:
        InputError: pool smaller than views.
    """
    if pool < views:
        raise InputError("a pool of %d views cannot supply %d views per shape" % (pool, views))
    if pool == views:
        return np.tile(np.arange(views), (batch, 1))
    others = np.argsort(rng.random((batch, pool - 1)), axis=1)[:, :views - 1] + 1
    return np.concatenate([np.zeros((batch, 1), np.int64), others], axis=1)


def load_data(config: Shape3DConfig) -> Tuple[ShapeSet, ShapeSet]:
    """Training shapes (seed ``seed``; ``max(shape3d_views, shape3d_view_pool)`` views each) and held-out
    shapes (seed ``seed + 1000``; ``shape3d_views`` views each)."""
    extra = max(config.shape3d_view_pool - config.shape3d_views, 0)
    train = generate_shapes(config.shape3d_train_shapes, config.shape3d_views, config.image_size, config.seed,
                            extra_views=extra)
    test = generate_shapes(config.shape3d_test_shapes, config.shape3d_views, config.image_size, config.seed + 1000)
    return train, test


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """Train from parsed flags; returns the last logged metrics.

    Raises:
        InputError: invalid settings.
    """
    config = sibling.config_or_input_error(Shape3DConfig, flag_values)
    data, _ = load_data(config)
    model = Shape3D(config)
    steps = len(data.images) // config.batch_size

    def make_dataset(epoch: int, skip: int) -> Iterator:
        order = np.random.default_rng([config.seed, epoch]).permutation(len(data.images))
        for b in range(skip, steps):
            i = order[b * config.batch_size:(b + 1) * config.batch_size]
            views = pick_views(np.random.default_rng([config.seed, epoch, b]), len(i), config.shape3d_views,
                               data.masks.shape[1])
            rows = i[:, None]
            yield data.images[i], data.voxels[i], data.masks[rows, views], data.rotations[rows, views]

    return sibling.run_trainer(MODEL_NAME, model, make_dataset, steps_per_epoch=steps, epochs=config.epochs,
                               flag_values=flag_values, config=config,
                               data_description="%d generated primitive shapes, %d of %d views per step, %s "
                               "supervision" % (len(data.images), config.shape3d_views, data.masks.shape[1],
                                                config.shape3d_supervision))


def restore(workdir: str, model: Shape3D) -> str:
    """Restore the newest checkpoint of ``workdir`` into ``model``; returns its path.

    Raises:
        InputError: no checkpoint.
    """
    from ganimation_tl.sibling import restore_latest
    return restore_latest(model, workdir)


registry.register(registry.ModelEntry(
    name=MODEL_NAME,
    summary="Single-image 3D shape (32^3 voxels) with voxel or silhouette supervision via differentiable projection",
    define_flags=define_flags,
    train=train,
))
