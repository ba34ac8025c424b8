"""DR-GAN: Disentangled Representation learning GAN, as a TensorLayer 2 sibling model (``--model=drgan``).

Paper: L. Tran, X. Yin, X. Liu, "Disentangled Representation Learning GAN for Pose-Invariant Face
Recognition", CVPR 2017 (single- and multi-image DR-GAN); architecture widths as in the CASIA-Net-like
Table 1 (re-implementation ``kayamin/DR-GAN``, official TF code ``tranluan/DR-GAN``), spec in
``../shared/docs/papers/batch2_*.md`` section 2.

What is implemented (paper symbols):

* Generator G = (G_enc, G_dec). ``f(x) = G_enc(x)`` in R^{N_f} (conv stages of 3x3 conv + BN + ELU,
  stride-2 at each stage start, global average pooling); the multi-image encoder has one more
  output channel whose sigmoid is the confidence omega. ``x_hat = G_dec(f, c, z)`` with the pose
  code c (one-hot over N_p poses) and noise z ~ U(-1, 1)^{N_z}: FC -> reshape -> mirrored 3x3
  (transposed) convs with BN + ELU -> 3x3 conv to RGB + tanh.
* Discriminator D(x) = [D^d(x) in R^{N_d+1}, D^p(x) in R^{N_p}] (logits): same conv stages, average
  pooling, one FC layer. Identity class N_d+1 (index N_d here) means "synthetic".
* Losses (paper eq. 2-3, softmax cross-entropy, every weight 1, each term a mean over the batch):
  ``L_D = CE(D^d(x), y_d) + CE(D^p(x), y_p) + CE(D^d(x_hat), N_d+1)`` and
  ``L_G = CE(D^d(x_hat), y_d) + CE(D^p(x_hat), y_t)`` with y_t the pose of code c.
* Multi-image DR-GAN (paper section 3.3): each batch holds ``k`` identities x ``n`` photos; the
  fused representation ``f_fused = sum_i omega_i f(x_i) / (sum_i omega_i + 1e-6)`` (normalised as
  the official ``G_encode_combine``) is decoded with its own c, z, and the same G and D terms are
  added for the fused images.
* Schedule: one D update then one G update per iteration (official code alternates per step),
  Adam(2e-4, beta1 0.5), weights N(0, 0.02) (spec (c)).

Data (issue): CFP identities split by identity into ``--drgan_train_identities`` for training and the
rest held out (``split_identities(seed=-1)``: 1-100 train, 101-150 held out). N_p = 3 poses: 0 frontal,
1 profile facing image-left, 2 profile facing image-right; a horizontally flipped profile swaps 1 and
2. The facing direction is read from the fiducials (mean x of the nose/mouth points 18-29 minus mean x
of the jaw contour 0-8). Training pool per identity: its 10 frontal photos and profile photos 1-3
plus their flips; profile photo 4 of every training identity is held out for check (i).

Deviations from the paper, and why:

* Sizes reduced for CPU in ``configs/drgan_debug.cfg``: 32x32 RGB crops (paper 96x96), base width 8
  (paper 32), 3 down-samplings (paper 4, i.e. stages 32 -> 16 -> 8 -> 4 instead of 96 -> ... -> 6),
  N_f = 96 (paper 320), N_z = 16 (paper 50), n = 2 images per identity in the multi-image batch
  (paper up to 6). ``configs/drgan.cfg`` keeps the paper's sizes. Since 2026-12-06 the debug config also turns
  on four options of ours that default off here: ``--drgan_lambda_pair=10``, ``--drgan_frontal_crop=symmetric``
  and ``--drgan_pose_balanced_batches`` (with the paper's losses alone pose control failed in 4 of 5 runs;
  ``docs/results/drgan.md``), and ``--drgan_d_bn_real_stats`` (chosen on a validation profile photo for the
  identity check).
* Data: CFP only (the paper trains on Multi-PIE / CASIA-WebFace with 13 or more pose bins); 3 pose
  classes from frontal, profile and flipped profile (spec pitfall: with 2 CFP poses the pose cannot be
  conditioned). Crops are squares around the CFP fiducials (``crop='fiducials'``, margin 0.5); CFP's
  frontal fiducials cover the image-left half of the face, so frontal crops are not centred on the nose and the
  frontal class is brighter on its right half (mean left-minus-right -0.127 on [-1, 1] pixels, about the
  right-facing profiles' -0.084). ``--drgan_frontal_crop=symmetric`` (ours, default off) mirrors the frontal
  points about the face midline before taking the box, which centres frontal faces (imbalance -0.006) and so
  removes a cue that frontal faces share with one profile direction only; ``DRGANData`` then keeps the
  fiducials of the plain crops (only the profiles' are used).
* Single-image and multi-image DR-GAN are trained jointly from the start (both terms every step)
  instead of pre-training the single-image model (paper section 3.3); the fusion is normalised by
  sum(omega) (official code) because kayamin's unnormalised sum diverges (spec pitfall).
* The official PAMI extras (AM-Softmax identity head, separate real/fake branch, continuous yaw,
  label smoothing, dropout, random rotations and flips) are not used: this follows the CVPR formulation; random
  crops are the option below.
* Optional synthetic pose class (``--drgan_pose_fake_class``, ours, off by default): D's pose head gets an
  N_p+1-th class that D assigns to generated images (as its identity head has N_d+1), so G cannot satisfy the
  pose head with images a pose classifier reads as another pose; measured in ``docs/results/drgan.md``.
* Optional same-identity pose-transfer L1 on G (``--drgan_lambda_pair``, ours, 0 = off = the paper): within each
  group of n photos of one identity, ``|G_dec(f(x_i), c = y_p(x_j), z) - x_j|`` (mean over pixels) is added to L_G
  with this weight. Why: with only D's pose head (trained on real photos) G satisfies that head from the first few
  hundred steps with images a separate pose classifier reads as another pose, and which pose code fails changes from
  run to run (``docs/results/drgan.md``). The L1 ties each code to real photos of that pose of the same person; it
  follows ``zhangjunh/DR-GAN-by-pytorch``, which adds an L1 between G's output and its input photo, made pose-aware
  here (the paper has no pixel loss).
* Optional pose-balanced batches (``--drgan_pose_balanced_batches``, ours, off by default): each photo's pose is
  drawn uniformly, then a photo of that pose; by default photos are uniform, so 10 of 16 are frontal and each
  profile direction gets 3/16 of D's pose-head examples and of the pose-transfer targets.
* Optional random-translation augmentation (``--drgan_random_crop=P``, ours at this size, 0 = off = the CVPR
  paper): every training photo of a batch is edge-padded by P pixels and cut back to S x S at a random offset, so
  D, G's encoder and the pose-transfer targets see it shifted by up to +-P pixels. It follows the official PAMI
  code's random 96 x 96 crops of 110 x 110 images (up to +-7 px at 96 px; P = 2 at 32 px). Why: D's identity head
  memorises the 3 training profiles per identity (92-97% on them after 3000 steps) but reads the unseen profile
  photo 4 for only 2-6 of the 100 identities (``docs/results/drgan.md``). The crop cuts S x S out of the padded
  S-pixel crop rather than out of a larger photo crop, so shifted faces show replicated edge pixels, not more of
  the photo.
* Optional real-photo batch-norm statistics in D (``--drgan_d_bn_real_stats``, ours, off by default): D is called
  in train mode on one real batch and three synthetic ones (D step; single and fused images in the G step) per
  step, so its moving statistics, which eval-mode D uses to classify real photos in the identity check, are mostly
  those of synthetic images (eval-mode D of the runs 8-10 checkpoints puts 90-95% of real training photos in the
  synthetic class). With the option the statistics are restored after every step to their value after the real
  batch, so they average real photos only. Training is unchanged: train mode normalises with batch statistics and
  the moving statistics feed nothing back. The paper does not say how D's BN statistics are kept.
* Batch norm is :func:`batch_norm_layer` (TL 2.2.5's ``BatchNorm2d`` fails in train mode inside
  ``tf.function`` on TF 2.21 and starts its moving variance at 0).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
from absl import flags

from ganimation_tl import registry
from ganimation_tl.errors import InputError
from ganimation_tl.sibling import config_or_input_error, define_model_flags, images_grid, run_trainer

__all__ = ["DRGANConfig", "DRGANData", "DRGAN", "build_encoder", "build_decoder", "build_discriminator",
           "fuse_features", "batch_norm_layer", "discriminator_loss", "generator_loss", "partner_indices", "pair_loss", "profile_direction", "load_data",
           "prepare", "define_flags", "train", "NUM_POSES"]

NUM_POSES = 3  # 0 frontal, 1 profile facing image-left, 2 profile facing image-right
FRONTAL_CROPS = ("fiducials", "symmetric")
# CFP frontal fiducials on the face midline (chin, nose bridge and tip, lip centres); the other points lie on the
# image-left half of the face, so the midline is the right edge of the point set (measured on identities 1-30:
# these points sit at 0.94-0.97 of the points' x extent).
FRONTAL_MIDLINE_POINTS = (8, 18, 19, 20, 21, 22, 26, 27, 28, 29)


@dataclasses.dataclass(frozen=True)
class DRGANConfig:
    """DR-GAN hyper-parameters; field names are the flag names (defaults: the debug-size model).

    Attributes:
        image_size: side S of the RGB crops (paper 96); a multiple of ``2**drgan_downsamplings``.
        drgan_conv_dim: base width g; stage widths are (g, 2g | 2g, 2g, 4g | 4g, 3g, 6g | 6g, 4g, 8g |
            8g, 5g, N_f) as in the paper's Table 1 with g = 32.
        drgan_downsamplings: stride-2 stages (paper 4: 96 -> 6); 2..4.
        drgan_feature_dim: N_f (paper 320). drgan_noise_dim: N_z (paper 50).
        drgan_images_per_identity: n photos of one identity fused in the multi-image branch (>= 1;
            1 disables fusion).
        drgan_train_identities: identities (from the first, in order) used for training; the rest
            of ``drgan_num_identities`` are held out.
        drgan_num_identities: CFP identities loaded (1..this).
        drgan_learning_rate, drgan_beta1: Adam (2e-4, 0.5; spec (c)).
        drgan_pose_fake_class: give D's pose head an extra "synthetic" class N_p + 1 that D assigns to generated
            images, as its identity head does (ours; off = the paper: the pose head is trained on real photos
            only, so G can satisfy it on images a pose classifier reads as another pose).
        drgan_lambda_pair: weight of the same-identity pose-transfer L1 on G (ours; 0 = the paper): within each
            group of n photos of one identity, ``G(f(x_i), c = y_p(x_j), z)`` is pulled to photo ``x_j`` (j = the
            next photo of the group; with n = 1, x_i itself), so the pose code is tied to real photos of that pose.
        drgan_frontal_crop: "fiducials" (the square around the 30 CFP fiducials; CFP's frontal fiducials cover
            the image-left half of the face, so the face sits right of centre) or "symmetric" (ours: the frontal
            fiducials mirrored about the face midline before the box is taken, so the crop is centred on the
            nose); profile crops are the same in both.
        drgan_pose_balanced_batches: draw each photo of a batch by first drawing its pose uniformly (among the
            poses its identity has), then a photo of that pose (ours; off = photos uniformly, about 5/8 frontal),
            so D's pose head and the pose-transfer L1 see each pose equally often.
        drgan_random_crop: random-translation augmentation of the training photos, P pixels (ours at this size; 0 =
            off = the CVPR paper): each photo of a batch is padded by P pixels on every side (edge replication) and an
            S x S window is cut at a uniformly random offset, so it moves by up to +-P pixels. The official PAMI code
            cuts random 96 x 96 crops from 110 x 110 images (up to +-7 px at 96 px, about +-2 px at 32 px).
        drgan_d_bn_real_stats: D's batch-norm moving statistics (used in eval mode only) follow D's batches of real
            photos only (ours; off = they average D's real, synthetic and fused-synthetic batches, 3 synthetic calls
            per real one, so eval-mode D normalises real photos with statistics mostly of synthetic images). Training
            itself is unchanged (train mode uses batch statistics).
        batch_size: k * n images per step (must be a multiple of n). epochs, seed.
    """

    image_size: int = 32
    drgan_conv_dim: int = 8
    drgan_downsamplings: int = 3
    drgan_feature_dim: int = 96
    drgan_noise_dim: int = 16
    drgan_images_per_identity: int = 2
    drgan_train_identities: int = 100
    drgan_num_identities: int = 150
    drgan_learning_rate: float = 2e-4
    drgan_beta1: float = 0.5
    drgan_pose_fake_class: bool = False
    drgan_lambda_pair: float = 0.0
    drgan_frontal_crop: str = "fiducials"
    drgan_pose_balanced_batches: bool = False
    drgan_random_crop: int = 0
    drgan_d_bn_real_stats: bool = False
    batch_size: int = 32
    epochs: int = 60
    seed: int = 0

    def __post_init__(self):
        if not 2 <= self.drgan_downsamplings <= 4:
            raise ValueError("drgan_downsamplings must be 2, 3 or 4, got %r" % self.drgan_downsamplings)
        factor = 2 ** self.drgan_downsamplings
        if self.image_size < factor or self.image_size % factor:
            raise ValueError("image_size must be a positive multiple of 2**drgan_downsamplings = %d, got %r"
                             % (factor, self.image_size))
        for name in ("drgan_conv_dim", "drgan_feature_dim", "drgan_images_per_identity", "batch_size",
                     "epochs", "drgan_train_identities"):
            if getattr(self, name) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if self.drgan_noise_dim < 0:
            raise ValueError("drgan_noise_dim must be >= 0, got %r" % self.drgan_noise_dim)
        if self.batch_size % self.drgan_images_per_identity:
            raise ValueError("batch_size (%d) must be a multiple of drgan_images_per_identity (%d)"
                             % (self.batch_size, self.drgan_images_per_identity))
        if not 1 < self.drgan_train_identities < self.drgan_num_identities:
            raise ValueError("need 1 < drgan_train_identities (%d) < drgan_num_identities (%d) so some "
                             "identities are held out" % (self.drgan_train_identities, self.drgan_num_identities))
        if self.drgan_frontal_crop not in FRONTAL_CROPS:
            raise ValueError("drgan_frontal_crop must be one of %s, got %r" % (", ".join(FRONTAL_CROPS),
                                                                               self.drgan_frontal_crop))
        if not 0 <= self.drgan_random_crop < self.image_size // 2:
            raise ValueError("drgan_random_crop must be in [0, image_size / 2) pixels, got %r" % self.drgan_random_crop)
        if not self.drgan_lambda_pair >= 0:
            raise ValueError("drgan_lambda_pair must be >= 0, got %r" % self.drgan_lambda_pair)
        if not self.drgan_learning_rate > 0 or not 0 <= self.drgan_beta1 < 1:
            raise ValueError("need drgan_learning_rate > 0 and 0 <= drgan_beta1 < 1")

    @property
    def groups_per_batch(self) -> int:
        """k, identities per batch."""
        return self.batch_size // self.drgan_images_per_identity


# ---------------------------------------------------------------------------------------------- data
def profile_direction(landmarks: np.ndarray) -> np.ndarray:
    """Facing direction of CFP profile photos from their 30 fiducials.

    Args:
        landmarks: float ``[N, 30, 2]`` CFP profile fiducials (x, y) in pixels (profile point order:
            0-8 jaw contour, 18-29 nose and mouth).

    Returns:
        int32 ``[N]``: pose class 1 (facing image-left: nose left of the jaw) or 2 (facing image-right).
    """
    lm = np.asarray(landmarks, np.float32)
    d = lm[:, 18:30, 0].mean(axis=1) - lm[:, 0:9, 0].mean(axis=1)
    return np.where(d > 0, 2, 1).astype(np.int32)


@dataclasses.dataclass
class DRGANData:
    """CFP faces prepared for DR-GAN; images float32 NHWC in [-1, 1].

    Attributes:
        train_images ``[M, S, S, 3]``, train_labels int32 ``[M]`` (0..N_d-1), train_poses int32 ``[M]``
            (0 frontal, 1 left, 2 right): the training pool (frontal 1-10, profile 1-3 and their flips).
        heldout_profile_images ``[P, S, S, 3]``, heldout_profile_labels ``[P]``: profile photo 4 of each
            training identity (check (i)).
        test_images ``[T, S, S, 3]``, test_identities int32 ``[T]`` (CFP numbers), test_views int32
            ``[T]`` (0 frontal, 1 profile), test_poses ``[T]``: every photo of the held-out identities.
        train_identity_numbers: CFP numbers of training identities (label i <-> number).
        validation_profile_images ``[V, S, S, 3]``, validation_profile_labels ``[V]``, validation_profile_poses
            ``[V]``: with ``load_data(..., validation_profile=k)`` profile photo k of each training identity, taken
            out of the training pool (with its flip) to choose settings without photo 4; else None.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    train_poses: np.ndarray
    heldout_profile_images: np.ndarray
    heldout_profile_labels: np.ndarray
    heldout_profile_poses: np.ndarray
    test_images: np.ndarray
    test_identities: np.ndarray
    test_views: np.ndarray
    test_poses: np.ndarray
    train_identity_numbers: List[int]
    validation_profile_images: Optional[np.ndarray] = None
    validation_profile_labels: Optional[np.ndarray] = None
    validation_profile_poses: Optional[np.ndarray] = None


def symmetric_frontal_box(points: np.ndarray, margin: float = 0.5) -> Tuple[float, float, float]:
    """Square crop box of a CFP frontal photo centred on the face midline.

    The 30 frontal fiducials are mirrored about the midline (mean x of :data:`FRONTAL_MIDLINE_POINTS`); the box is
    the square around the points and their mirror images, enlarged by ``margin`` of its side (as
    ``ganimation_tl.datasets.cfp.load_faces`` does for the plain points).

    Args:
        points: float ``[30, 2]`` frontal fiducials (x, y) in pixels.
        margin: extra side fraction.

    Returns:
        ``(centre x, centre y, side)`` in pixels.
    """
    pts = np.asarray(points, np.float64)
    mid = pts[list(FRONTAL_MIDLINE_POINTS), 0].mean()
    both = np.concatenate([pts, np.stack([2 * mid - pts[:, 0], pts[:, 1]], 1)])
    lo, hi = both.min(0), both.max(0)
    return float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2), max(float(max(hi - lo)) * (1 + margin), 8.0)


def _symmetric_frontal_crops(cfp_dir: str, image_size: int, identities) -> Tuple[np.ndarray, List[str]]:
    """uint8 ``[F, S, S, 3]`` frontal crops (``symmetric_frontal_box``, margin 0.5) of ``identities`` in the order
    of ``cfp.load_faces``, and their photo paths. Cut from a 4x larger, 4x wider fiducial crop of the shared
    loader (edges replicated where the box leaves the photo, as there)."""
    import cv2
    from ganimation_tl.datasets import cfp
    big = cfp.load_faces(cfp_dir, 4 * image_size, identities=identities, views=("frontal",), margin=3.0)
    out = []
    for photo, points in zip(big.images, big.landmarks):
        cx, cy, side = symmetric_frontal_box(points)
        scale = image_size / side
        matrix = np.array([[scale, 0, image_size / 2.0 - cx * scale], [0, scale, image_size / 2.0 - cy * scale]])
        out.append(cv2.warpAffine(photo, matrix, (image_size, image_size),
                                  flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE))
    return np.stack(out), list(big.paths)


def _to_float(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 127.5 - 1.0


def load_data(cfp_dir: Optional[str], config: DRGANConfig, validation_profile: Optional[int] = None) -> DRGANData:
    """Load and split CFP for DR-GAN (see the module docstring for the split).

    Args:
        cfp_dir: the CFP folder. config: :class:`DRGANConfig`.
        validation_profile: None (the training pool of the module docstring) or a profile photo number 1-3: that
            photo of every training identity (and its flip) leaves the training pool and is returned as
            ``validation_profile_*`` (used by ``bench/eval_drgan_idprobe.py`` to choose settings without photo 4).

    Raises:
        InputError: ``--cfp_dir`` unset or missing, or fewer identities than requested.
        ValueError: ``validation_profile`` not in 1-3.
    """
    if validation_profile is not None and validation_profile not in (1, 2, 3):
        raise ValueError("validation_profile must be a profile photo number 1-3 (4 is the test photo), got %r"
                         % (validation_profile,))
    from ganimation_tl.datasets import cfp

    if not cfp_dir:
        raise InputError("--cfp_dir is required (the CFP folder holding Data/, e.g. ../shared/data/cfp)")
    if not os.path.isdir(cfp_dir):
        raise InputError("--cfp_dir=%s: folder not found" % cfp_dir)
    ids = list(range(1, config.drgan_num_identities + 1))
    faces = cfp.load_faces(cfp_dir, config.image_size, identities=ids)
    if config.drgan_frontal_crop == "symmetric":
        frontal = faces.views == 0
        crops, paths = _symmetric_frontal_crops(cfp_dir, config.image_size, ids)
        if paths != [p for p, f in zip(faces.paths, frontal) if f]:
            raise InputError("--drgan_frontal_crop=symmetric: the frontal photos of %s did not load in the same "
                             "order twice" % cfp_dir)
        faces.images[frontal] = crops
    train_ids, test_ids = cfp.split_identities(ids, config.drgan_num_identities - config.drgan_train_identities,
                                               seed=-1)
    label_of = {n: i for i, n in enumerate(train_ids)}
    poses = np.zeros(len(faces), np.int32)
    prof = faces.views == 1
    poses[prof] = profile_direction(faces.landmarks[prof])
    images = _to_float(faces.images)
    is_train = np.isin(faces.identities, train_ids)
    held = is_train & prof & (faces.indices == 4)
    val = (is_train & prof & (faces.indices == validation_profile) if validation_profile is not None
           else np.zeros(len(faces), bool))
    pool = is_train & ~held & ~val
    pool_profiles = pool & prof
    train_images = np.concatenate([images[pool], images[pool_profiles][:, :, ::-1]])
    train_labels = np.array([label_of[n] for n in faces.identities[pool]] +
                            [label_of[n] for n in faces.identities[pool_profiles]], np.int32)
    train_poses = np.concatenate([poses[pool], 3 - poses[pool_profiles]]).astype(np.int32)
    test = ~is_train
    validation = (None, None, None)
    if validation_profile is not None:
        validation = (images[val], np.array([label_of[n] for n in faces.identities[val]], np.int32), poses[val])
    return DRGANData(train_images, train_labels, train_poses, images[held],
                     np.array([label_of[n] for n in faces.identities[held]], np.int32), poses[held],
                     images[test], faces.identities[test], faces.views[test], poses[test], list(train_ids),
                     *validation)


def make_batches(data: DRGANData, config: DRGANConfig, epoch: int, skip: int):
    """Yield the batches of one epoch (deterministic per epoch for resume).

    Each batch holds k = batch_size / n identities with n photos each (consecutive rows), random
    target pose codes and noise: dict with ``images`` float32 ``[B, S, S, 3]`` in [-1, 1], ``labels``
    int32 ``[B]``, ``poses`` int32 ``[B]``, ``codes`` int32 ``[B]`` (target poses of the single-image
    outputs), ``noise`` float32 ``[B, N_z]`` in [-1, 1], ``group_codes`` int32 ``[k]``,
    ``group_noise`` float32 ``[k, N_z]`` (for the fused outputs).
    """
    n, k = config.drgan_images_per_identity, config.groups_per_batch
    rng = np.random.default_rng([config.seed, epoch])
    by_label = [np.flatnonzero(data.train_labels == i) for i in range(len(data.train_identity_numbers))]
    steps = len(data.train_images) // config.batch_size
    if config.drgan_pose_balanced_batches:
        by_pose = [[rows[data.train_poses[rows] == p] for p in range(NUM_POSES)] for rows in by_label]
        by_pose = [[r for r in poses if len(r)] for poses in by_pose]
        # a separate stream, so the codes and noise below match the unbalanced batches of the same seed
        pick_rng = np.random.default_rng([config.seed, epoch, 1])
    pad = config.drgan_random_crop
    if pad:
        crop_rng = np.random.default_rng([config.seed, epoch, 2])  # separate stream, as pick_rng
        size = config.image_size
    for b in range(steps):
        labels = rng.choice(len(by_label), size=k, replace=len(by_label) < k)
        rows = np.concatenate([rng.choice(by_label[i], size=n, replace=len(by_label[i]) < n) for i in labels])
        if config.drgan_pose_balanced_batches:
            rows = np.array([pick_rng.choice(by_pose[i][pick_rng.integers(len(by_pose[i]))])
                             for i in labels for _ in range(n)])
        codes = rng.integers(0, NUM_POSES, size=config.batch_size).astype(np.int32)
        noise = rng.uniform(-1, 1, size=(config.batch_size, config.drgan_noise_dim)).astype(np.float32)
        gcodes = rng.integers(0, NUM_POSES, size=k).astype(np.int32)
        gnoise = rng.uniform(-1, 1, size=(k, config.drgan_noise_dim)).astype(np.float32)
        if pad:
            offsets = crop_rng.integers(0, 2 * pad + 1, size=(len(rows), 2))
        if b < skip:
            continue
        images = data.train_images[rows]
        if pad:
            padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
            images = np.stack([im[dy:dy + size, dx:dx + size] for im, (dy, dx) in zip(padded, offsets)])
        yield {"images": images, "labels": data.train_labels[rows],
               "poses": data.train_poses[rows], "codes": codes, "noise": noise,
               "group_codes": gcodes, "group_noise": gnoise}


# ---------------------------------------------------------------------------------------------- networks
def batch_norm_layer(num_features: int, act=None, decay: float = 0.9, epsilon: float = 1e-5, name: str = None):
    """:class:`ganimation_tl.layers.BatchNorm` (TL 2.2.5's ``BatchNorm2d`` fails in train mode inside
    ``tf.function`` on TF 2.21); input ``[B, ..., C]``, output the same shape."""
    from ganimation_tl.layers import BatchNorm
    return BatchNorm(num_features, act=act, decay=decay, epsilon=epsilon, name=name)


def _stages(g: int, out_dim: int, downsamplings: int) -> List[List[Tuple[int, int]]]:
    """Encoder stages as lists of (stride, width): Table 1 pattern, first stage and the last
    ``downsamplings`` stride-2 stages (the last ends with ``out_dim``)."""
    table = [[(1, g), (1, 2 * g)], [(2, 2 * g), (1, 2 * g), (1, 4 * g)], [(2, 4 * g), (1, 3 * g), (1, 6 * g)],
             [(2, 6 * g), (1, 4 * g), (1, 8 * g)], [(2, 8 * g), (1, 5 * g), (1, out_dim)]]
    return table[:downsamplings] + [table[4]]


def _conv_bn_elu(x, n_filter, stride, in_channels, name, transpose=False):
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import Conv2dTranspose, weight_init
    if transpose:
        x = Conv2dTranspose(n_filter, in_channels=in_channels, filter_size=(3, 3), strides=(stride, stride),
                            name=name + "_deconv")(x)
    else:
        x = tl.layers.Conv2d(n_filter, (3, 3), (stride, stride), padding="SAME", W_init=weight_init(),
                             b_init=None, in_channels=in_channels, name=name + "_conv")(x)
    return batch_norm_layer(n_filter, act=tf.nn.elu, name=name + "_bn")(x)


def _encoder_trunk(x, config: DRGANConfig, out_dim: int, prefix: str):
    import tensorlayer as tl
    ch = 3
    for s, stage in enumerate(_stages(config.drgan_conv_dim, out_dim, config.drgan_downsamplings)):
        for j, (stride, width) in enumerate(stage):
            x = _conv_bn_elu(x, width, stride, ch, "%sconv%d%d" % (prefix, s + 1, j + 1))
            ch = width
    side = config.image_size // 2 ** config.drgan_downsamplings
    x = tl.layers.MeanPool2d((side, side), (side, side), padding="VALID", name=prefix + "avgpool")(x)
    return tl.layers.Flatten(name=prefix + "flatten")(x)


def build_encoder(config: DRGANConfig, name: str = "drgan_Genc"):
    """G_enc: images float32 ``[B, S, S, 3]`` in [-1, 1] -> ``[B, N_f + 1]``: the identity
    representation f(x) (first N_f, after BN + ELU) and the confidence logit (last; omega = sigmoid).
    Source: paper Table 1 (conv11..conv53 + AvgPool), section 3.3 (omega)."""
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name
    p = name + "_"
    image = tl.layers.Input([None, config.image_size, config.image_size, 3], name=p + "image")
    out = _encoder_trunk(image, config, config.drgan_feature_dim + 1, p)
    return tl.models.Model(inputs=image, outputs=out, name=unique_model_name(name))


def build_decoder(config: DRGANConfig, name: str = "drgan_Gdec"):
    """G_dec: ``[B, N_f + N_p + N_z]`` (f, one-hot pose code c, noise z) -> images ``[B, S, S, 3]``
    in [-1, 1] (tanh). FC -> reshape to the encoder's last map -> mirrored 3x3 stages (transposed
    stride-2 convs) with BN + ELU -> 3x3 conv to RGB + tanh. Source: paper Table 1 (G_dec)."""
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import weight_init
    from ganimation_tl.networks import unique_model_name
    g, p = config.drgan_conv_dim, name + "_"
    side = config.image_size // 2 ** config.drgan_downsamplings
    code = tl.layers.Input([None, config.drgan_feature_dim + NUM_POSES + config.drgan_noise_dim], name=p + "code")
    ch = config.drgan_feature_dim
    x = tl.layers.Dense(side * side * ch, W_init=weight_init(), b_init=None,
                        in_channels=code.shape[-1], name=p + "fc")(code)
    x = tl.layers.Reshape([-1, side, side, ch], name=p + "reshape")(x)
    x = batch_norm_layer(ch, act=tf.nn.elu, name=p + "fc_bn")(x)
    table = [[5 * g, 8 * g, 8 * g], [4 * g, 6 * g, 6 * g], [3 * g, 4 * g, 4 * g], [2 * g, 2 * g, 2 * g]]
    stages = [table[0]] + table[5 - config.drgan_downsamplings:]
    for s, widths in enumerate(stages):
        for j, width in enumerate(widths):
            up = j == len(widths) - 1
            x = _conv_bn_elu(x, width, 2 if up else 1, ch, "%sdconv%d%d" % (p, s + 1, j + 1), transpose=True)
            ch = width
    x = _conv_bn_elu(x, g, 1, ch, p + "dconv_last", transpose=True)
    x = tl.layers.Conv2d(3, (3, 3), (1, 1), padding="SAME", act=tf.nn.tanh, W_init=weight_init(),
                         b_init=tl.initializers.zeros(), in_channels=g, name=p + "to_rgb")(x)
    return tl.models.Model(inputs=code, outputs=x, name=unique_model_name(name))


def build_discriminator(config: DRGANConfig, num_identities: int, name: str = "drgan_D"):
    """D: images ``[B, S, S, 3]`` in [-1, 1] -> logits ``[B, N_d + 1 + N_p]``: identity logits
    (N_d real identities then the "synthetic" class) and pose logits (N_p + 1 of them, the last for synthetic
    images, with ``drgan_pose_fake_class``). Source: paper section 3.1,
    Table 1 (D = conv11..conv53, AvgPool, FC N_d+N_p+1)."""
    import tensorlayer as tl
    from ganimation_tl.layers import weight_init
    from ganimation_tl.networks import unique_model_name
    p = name + "_"
    image = tl.layers.Input([None, config.image_size, config.image_size, 3], name=p + "image")
    x = _encoder_trunk(image, config, config.drgan_feature_dim, p)
    out = tl.layers.Dense(num_identities + 1 + NUM_POSES + int(config.drgan_pose_fake_class), W_init=weight_init(),
                          b_init=tl.initializers.zeros(),
                          in_channels=config.drgan_feature_dim, name=p + "fc")(x)
    return tl.models.Model(inputs=image, outputs=out, name=unique_model_name(name))


# ---------------------------------------------------------------------------------------------- losses
def fuse_features(features, confidence_logits, group_size: int):
    """Multi-image fusion (paper section 3.3, eq. 6; official ``G_encode_combine``).

    Args:
        features: ``[k * n, N_f]`` f(x_i), rows grouped n by n (one identity per group).
        confidence_logits: ``[k * n]``; omega_i = sigmoid(logit).
        group_size: n.

    Returns:
        ``[k, N_f]``: ``sum_i omega_i f_i / (sum_i omega_i + 1e-6)`` per group.
    """
    import tensorflow as tf
    nf = tf.shape(features)[-1]
    f = tf.reshape(features, [-1, group_size, nf])
    w = tf.reshape(tf.sigmoid(confidence_logits), [-1, group_size, 1])
    return tf.reduce_sum(w * f, axis=1) / (tf.reduce_sum(w, axis=1) + 1e-6)


def _ce(logits, labels):
    import tensorflow as tf
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32),
                                                                         logits=logits))


def discriminator_loss(real_logits, real_labels, real_poses, fake_logits, num_identities: int,
                       pose_fake_class: bool = False):
    """L_D of paper eq. (2) (minimised form): ``CE(D^d(x), y_d) + CE(D^p(x), y_p) + CE(D^d(x_hat), N_d+1)``.

    Args:
        real_logits: ``[B, N_d + 1 + N_p]`` D on real photos; real_labels, real_poses: int ``[B]``.
        fake_logits: ``[B', N_d + 1 + N_p]`` D on synthesised images (any count B').
        num_identities: N_d.
        pose_fake_class: the pose logits have N_p + 1 entries and ``CE(D^p(x_hat), N_p+1)`` is added (ours,
            ``--drgan_pose_fake_class``; the returned parts then hold ``pose_fake`` too).

    Returns:
        ``(total, parts)``: scalar and a dict of the three means (each a batch mean of softmax CE).
    """
    import tensorflow as tf
    nd = num_identities
    id_real = _ce(real_logits[:, :nd + 1], real_labels)
    pose_real = _ce(real_logits[:, nd + 1:], real_poses)
    id_fake = _ce(fake_logits[:, :nd + 1], tf.fill(tf.shape(fake_logits)[:1], nd))
    parts = {"id_real": id_real, "pose_real": pose_real, "id_fake": id_fake}
    total = id_real + pose_real + id_fake
    if pose_fake_class:
        parts["pose_fake"] = _ce(fake_logits[:, nd + 1:], tf.fill(tf.shape(fake_logits)[:1], NUM_POSES))
        total = total + parts["pose_fake"]
    return total, parts


def generator_loss(fake_logits, labels, codes, num_identities: int):
    """L_G of paper eq. (3) (minimised form): ``CE(D^d(x_hat), y_d) + CE(D^p(x_hat), y_t)``.

    Args:
        fake_logits: ``[B, N_d + 1 + N_p]`` (or ``N_p + 1`` pose logits with ``--drgan_pose_fake_class``; G still
            asks for its code); labels: identities y_d ``[B]``; codes: target poses ``[B]`` in [0, N_p).

    Returns:
        ``(total, parts)`` as :func:`discriminator_loss`.
    """
    nd = num_identities
    id_fake = _ce(fake_logits[:, :nd + 1], labels)
    pose_fake = _ce(fake_logits[:, nd + 1:], codes)
    return id_fake + pose_fake, {"id": id_fake, "pose": pose_fake}


def partner_indices(batch_size: int, group_size: int) -> np.ndarray:
    """Row of the partner photo for the pose-transfer L1: the next photo of the same group (cyclic).

    Args:
        batch_size: B = k * n rows, grouped n by n (one identity per group). group_size: n >= 1.

    Returns:
        int32 ``[B]``: ``j(i) = g * n + (i - g * n + 1) % n`` for row i of group g (i itself when n = 1).

    Raises:
        ValueError: B is not a positive multiple of n.
    """
    if group_size < 1 or batch_size < 1 or batch_size % group_size:
        raise ValueError("batch_size (%r) must be a positive multiple of group_size (%r)" % (batch_size, group_size))
    rows = np.arange(batch_size).reshape(-1, group_size)
    return np.roll(rows, -1, axis=1).reshape(-1).astype(np.int32)


def pair_loss(transferred, targets):
    """Same-identity pose-transfer L1 (ours, ``--drgan_lambda_pair``): mean absolute difference.

    Args:
        transferred: ``[B, S, S, 3]`` in [-1, 1], ``G_dec(f(x_i), c = y_p(x_j), z)``.
        targets: ``[B, S, S, 3]`` in [-1, 1], the partner photos x_j.

    Returns:
        scalar: mean over batch, pixels and channels of ``|transferred - targets|``.
    """
    import tensorflow as tf
    return tf.reduce_mean(tf.abs(transferred - targets))


def _accuracy(logits, labels):
    import tensorflow as tf
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                                           tf.cast(labels, tf.int32)), tf.float32))


# ---------------------------------------------------------------------------------------------- model
class DRGAN:
    """DR-GAN model with the trainer interface (trackables, train_step, set_learning_rate_epoch, sample_grid).

    Args:
        config: :class:`DRGANConfig`. num_identities: N_d (training identities).
    """

    sample_grid_tag = "samples/input_frontal_left_right_fused"

    def __init__(self, config: DRGANConfig, num_identities: int):
        import tensorflow as tf
        self.config, self.num_identities = config, int(num_identities)
        tf.random.set_seed(config.seed)
        self.encoder = build_encoder(config)
        self.decoder = build_decoder(config)
        self.discriminator = build_discriminator(config, self.num_identities)
        for m in (self.encoder, self.decoder, self.discriminator):
            m.train()
        self.g_weights = list(self.encoder.trainable_weights) + list(self.decoder.trainable_weights)
        self.d_weights = list(self.discriminator.trainable_weights)
        trainable = {id(w) for w in self.d_weights}
        self.d_bn_statistics = [w for w in self.discriminator.all_weights if id(w) not in trainable]
        self.g_optimizer = tf.keras.optimizers.Adam(config.drgan_learning_rate, beta_1=config.drgan_beta1)
        self.d_optimizer = tf.keras.optimizers.Adam(config.drgan_learning_rate, beta_1=config.drgan_beta1)
        self.g_optimizer.build(self.g_weights)
        self.d_optimizer.build(self.d_weights)
        self._step = tf.function(self._train_step, reduce_retracing=True)

    def trackables(self) -> Dict[str, object]:
        """All weights (incl. BN statistics) of the three networks and both optimizers."""
        return {"encoder_weights": list(self.encoder.all_weights), "decoder_weights": list(self.decoder.all_weights),
                "discriminator_weights": list(self.discriminator.all_weights),
                "generator_optimizer": self.g_optimizer, "discriminator_optimizer": self.d_optimizer}

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """Constant learning rate (official code and kayamin use no decay)."""
        return {"learning_rate": float(self.config.drgan_learning_rate)}

    # -- forward pieces
    def encode(self, images):
        """``(f [B, N_f], confidence logits [B])`` from G_enc (mode as set on the model)."""
        out = self.encoder(images)
        return out[:, :-1], out[:, -1]

    def decode(self, features, codes, noise):
        """G_dec(f, one_hot(c), z) -> ``[B, S, S, 3]`` in [-1, 1]."""
        import tensorflow as tf
        code = tf.concat([features, tf.one_hot(codes, NUM_POSES), noise], axis=-1)
        return self.decoder(code)

    def _generate(self, batch, with_features: bool = False):
        f, conf = self.encode(batch["images"])
        fake = self.decode(f, batch["codes"], batch["noise"])
        fused_fake = None
        if self.config.drgan_images_per_identity > 1:
            fused = fuse_features(f, conf, self.config.drgan_images_per_identity)
            fused_fake = self.decode(fused, batch["group_codes"], batch["group_noise"])
        return (fake, fused_fake, f) if with_features else (fake, fused_fake)

    def _train_step(self, batch):
        import tensorflow as tf
        n = self.config.drgan_images_per_identity
        labels = batch["labels"]
        group_labels = labels[::n]
        # D step: real photos vs (single + fused) synthetic images.
        fake, fused_fake = self._generate(batch)
        fakes = fake if fused_fake is None else tf.concat([fake, fused_fake], 0)
        fakes = tf.stop_gradient(fakes)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(batch["images"])
            if self.config.drgan_d_bn_real_stats:  # the moving statistics after the real batch, restored below
                real_statistics = [tf.identity(w.read_value()) for w in self.d_bn_statistics]
            fake_logits = self.discriminator(fakes)
            d_total, d_parts = discriminator_loss(real_logits, labels, batch["poses"], fake_logits,
                                                  self.num_identities, self.config.drgan_pose_fake_class)
        grads = tape.gradient(d_total, self.d_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.d_weights))
        # G step: identity and pose of the synthetic images (single and fused).
        with tf.GradientTape() as tape:
            fake, fused_fake, f = self._generate(batch, with_features=True)
            fake_logits = self.discriminator(fake)
            g_total, g_parts = generator_loss(fake_logits, labels, batch["codes"], self.num_identities)
            metrics = {}
            if self.config.drgan_lambda_pair > 0:
                partner = tf.constant(partner_indices(self.config.batch_size, n))
                targets = tf.gather(batch["images"], partner)
                transferred = self.decode(f, tf.gather(batch["poses"], partner), batch["noise"])
                g_pair = pair_loss(transferred, targets)
                g_total = g_total + self.config.drgan_lambda_pair * g_pair
                metrics["generator/pair_l1"] = g_pair
            if fused_fake is not None:
                fused_logits = self.discriminator(fused_fake)
                g_fused, _ = generator_loss(fused_logits, group_labels, batch["group_codes"], self.num_identities)
                g_total = g_total + g_fused
                metrics["generator/fused"] = g_fused
        grads = tape.gradient(g_total, self.g_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.g_weights))
        if self.config.drgan_d_bn_real_stats:
            for w, value in zip(self.d_bn_statistics, real_statistics):
                w.assign(value)
        nd = self.num_identities
        metrics.update({
            "discriminator/total": d_total, "generator/total": g_total,
            "discriminator/id_real": d_parts["id_real"], "discriminator/pose_real": d_parts["pose_real"],
            "discriminator/id_fake": d_parts["id_fake"], "generator/id": g_parts["id"],
            "generator/pose": g_parts["pose"],
            "accuracy/real_identity": _accuracy(real_logits[:, :nd + 1], labels),
            "accuracy/real_pose": _accuracy(real_logits[:, nd + 1:], batch["poses"]),
            "accuracy/fake_identity": _accuracy(fake_logits[:, :nd + 1], labels),
            "accuracy/fake_pose": _accuracy(fake_logits[:, nd + 1:], batch["codes"]),
        })
        return metrics

    def train_step(self, batch, step: int) -> Dict[str, object]:
        """One D update then one G update on ``batch`` (see :func:`make_batches`); returns scalar metrics."""
        import tensorflow as tf
        return self._step({k: tf.convert_to_tensor(v) for k, v in batch.items()})

    # -- inference helpers (eval mode)
    def _eval_mode(self):
        for m in (self.encoder, self.decoder, self.discriminator):
            m.eval()

    def _train_mode(self):
        for m in (self.encoder, self.decoder, self.discriminator):
            m.train()

    def features(self, images, batch: int = 256) -> np.ndarray:
        """Identity representation f(x) ``[N, N_f]`` (eval mode) of images ``[N, S, S, 3]`` in [-1, 1]."""
        self._eval_mode()
        try:
            return np.concatenate([self.encode(images[i:i + batch])[0].numpy() for i in range(0, len(images), batch)])
        finally:
            self._train_mode()

    def discriminate(self, images, batch: int = 256) -> np.ndarray:
        """D logits ``[N, N_d + 1 + N_p]`` (``N_p + 1`` pose logits with ``drgan_pose_fake_class``; eval mode)."""
        self._eval_mode()
        try:
            return np.concatenate([self.discriminator(images[i:i + batch]).numpy() for i in range(0, len(images), batch)])
        finally:
            self._train_mode()

    def generate(self, images, codes, seed: int = 0, batch: int = 256) -> np.ndarray:
        """Single-image DR-GAN ``G(x, c, z)`` (eval mode) -> ``[N, S, S, 3]`` in [-1, 1]; codes int ``[N]``."""
        rng = np.random.default_rng(seed)
        noise = rng.uniform(-1, 1, size=(len(images), self.config.drgan_noise_dim)).astype(np.float32)
        codes = np.asarray(codes, np.int32)
        self._eval_mode()
        try:
            out = []
            for i in range(0, len(images), batch):
                f, _ = self.encode(images[i:i + batch])
                out.append(self.decode(f, codes[i:i + batch], noise[i:i + batch]).numpy())
            return np.concatenate(out)
        finally:
            self._train_mode()

    def sample_grid(self, batch) -> np.ndarray:
        """Rows: inputs, then G output with pose code frontal / left / right (first 8 of the batch)."""
        images = np.asarray(batch["images"])[:8]
        rows = [list(images)] + [list(self.generate(images, np.full(len(images), c, np.int32))) for c in range(NUM_POSES)]
        return images_grid(rows)


# ---------------------------------------------------------------------------------------------- CLI glue
def define_flags(flag_values=flags.FLAGS) -> None:
    """Define DR-GAN's flags (config fields, ``--cfp_dir``, common trainer flags); idempotent."""
    helps = {
        "drgan_conv_dim": ("integer", "DR-GAN base conv width g (paper 32)."),
        "drgan_downsamplings": ("integer", "DR-GAN stride-2 stages (paper 4 at 96 px)."),
        "drgan_feature_dim": ("integer", "DR-GAN identity representation size N_f (paper 320)."),
        "drgan_noise_dim": ("integer", "DR-GAN noise size N_z (paper 50)."),
        "drgan_images_per_identity": ("integer", "DR-GAN multi-image n per identity (1: single-image only)."),
        "drgan_train_identities": ("integer", "DR-GAN: first this many CFP identities train, the rest are held out."),
        "drgan_num_identities": ("integer", "DR-GAN: CFP identities loaded (1..N)."),
        "drgan_learning_rate": ("float", "DR-GAN Adam learning rate (2e-4)."),
        "drgan_beta1": ("float", "DR-GAN Adam beta1 (0.5)."),
        "drgan_pose_fake_class": ("bool", "DR-GAN: D's pose head gets a 'synthetic' class for generated images "
                                          "(ours; off = the paper)."),
        "drgan_frontal_crop": ("string", "DR-GAN frontal crops: 'fiducials' (square around CFP's frontal "
                                         "fiducials, which cover one half of the face) or 'symmetric' (ours: "
                                         "centred on the face midline)."),
        "drgan_pose_balanced_batches": ("bool", "DR-GAN: draw each batch photo's pose uniformly, then a photo of "
                                                "that pose (ours; off = photos uniformly, about 5/8 frontal)."),
        "drgan_random_crop": ("integer", "DR-GAN: random-translation augmentation of training photos by up to +-P "
                                         "pixels (edge-padded random crops; ours at this size, the official code "
                                         "crops 96 from 110; 0 = off)."),
        "drgan_d_bn_real_stats": ("bool", "DR-GAN: D's batch-norm moving statistics (eval mode) follow real photos "
                                          "only, not synthetic ones (ours; off = all of D's batches; training "
                                          "is unchanged)."),
        "drgan_lambda_pair": ("float", "DR-GAN: weight of the same-identity pose-transfer L1 on G, "
                                       "|G(f(x_i), pose of x_j, z) - x_j| for two photos of one identity "
                                       "(ours; 0 = the paper)."),
    }
    define_model_flags(helps, flag_values, extra=[
        ("string", "cfp_dir", "CFP folder (holding Data/Images and Data/Fiducials), e.g. ../shared/data/cfp.")])


def prepare(flag_values=flags.FLAGS):
    """Flags -> ``(config, data, model)``. Raises InputError on bad flags or data."""
    config = config_or_input_error(DRGANConfig, flag_values)
    data = load_data(flag_values.cfp_dir, config)
    if len(data.train_images) < config.batch_size:
        raise InputError("--batch_size=%d exceeds the %d training images" % (config.batch_size, len(data.train_images)))
    return config, data, DRGAN(config, len(data.train_identity_numbers))


def train(flag_values=flags.FLAGS, prepared=None) -> Dict[str, float]:
    """Train DR-GAN from parsed flags (or an already ``prepare``d triple); returns the last metrics."""
    config, data, model = prepared or prepare(flag_values)
    steps = len(data.train_images) // config.batch_size
    return run_trainer("drgan", model, lambda epoch, skip: make_batches(data, config, epoch, skip),
                       steps_per_epoch=steps, epochs=config.epochs, flag_values=flag_values, config=config,
                       data_description="CFP %s: %d training images of %d identities (3 poses)"
                       % (flag_values.cfp_dir, len(data.train_images), len(data.train_identity_numbers)))


registry.register(registry.ModelEntry(
    name="drgan",
    summary="DR-GAN (Tran et al., CVPR 2017): pose-disentangled face representation and rotation on CFP",
    define_flags=define_flags,
    train=train,
))
