"""DA-GAN: Dual-Agent GAN for photorealistic, identity-preserving profile faces (``--model=dagan``).

Paper: J. Zhao, L. Xiong, K. Jayashree, J. Li, F. Zhao, Z. Wang, S. Pranata, S. Shen, S. Yan, J. Feng,
"Dual-Agent GANs for Photorealistic and Identity Preserving Profile Face Synthesis", NIPS 2017. No
public code exists; the spec is ``../shared/docs/papers/batch1_*.md`` section 1 (BEGAN mechanics from
Berthelot et al. 2017 / ``carpedm20/BEGAN-tensorflow``; refiner and pixel loss SimGAN-style).

What is implemented (paper / BEGAN symbols):

* Simulator (:func:`simulate_profile`): a frontal CFP photo -> a profile face x. A generic 3D face
  (an ellipsoidal head of depth 0.8 w plus a nose ridge of height 0.45 w, w the half face width) is
  fitted to the 30 CFP fiducials of the frontal photo (face midline, half width, eye-to-chin height,
  nose bridge and tip), rotated by a yaw in [``dagan_yaw_min``, ``dagan_yaw_max``] about the
  vertical axis, orthographically projected, and the texture is warped with the inverse of that dense
  per-pixel map (``np.interp`` per row + ``cv2.remap``: piecewise linear between pixel centres, i.e.
  a piecewise-affine warp on the pixel mesh; points hidden by the rotation are squashed onto the
  occluding contour). The result is cropped around the rotated fiducials like a
  real CFP profile (``crop='fiducials'``, margin 0.5), given a rendered look (Gaussian blur
  ``dagan_sim_blur`` px, contrast x0.85) and mirrored for half of the photos (CFP profiles face both
  ways). Deterministic per (photo, seed).
* Refiner G_theta (fully convolutional): 7x7 conv(n) + ReLU -> R residual blocks
  (3x3 conv-BN-ReLU-3x3 conv-BN, identity skip) -> 1x1 conv to RGB -> tanh, giving x_tilde.
  With ``dagan_global_residual`` the output is ``tanh(atanh(x) + conv_out)`` (the "skip-net" reading).
* Discriminator D_phi: a BEGAN auto-encoder (3x3 convs + ELU, stride-2 down-sampling, FC bottleneck h,
  mirrored decoder with nearest-neighbour up-sampling) with two agents: the adversarial agent
  ``L(v) = mean |v - D_phi(v)|`` (per image, mean over pixels) and the identity agent, a softmax
  classifier (dropout 0.5 + FC) on h.
* Losses: ``L_D = L(y) - k_t L(x_tilde) + lambda_1 [CE(D_id(y), Y_y) + CE(D_id(x_tilde), Y_x)]``;
  ``L_G = L(x_tilde) + lambda_1 CE(D_id(x_tilde), Y_x) + lambda_2 mean |x_tilde - x|`` (pixel-wise
  loss of the slides); ``k_{t+1} = clip_[0,1](k_t + lambda_k (gamma L(y) - L(x_tilde)))``; the
  convergence measure ``M = L(y) + |gamma L(y) - L(x_tilde)|`` (all batch means).
* Adam(1e-4, beta1 0.5) for both nets, one D then one G update per iteration (BEGAN defaults).
* Options (flags; defaults keep the behaviour above): ``dagan_identity_agent_refined=false`` trains the
  identity agent on real faces only (then ``L_ip^D = CE(D_id(y), Y_y)`` and G is pushed to make refined
  faces recognisable by a classifier of real faces; the paper's form lets D learn the identities of
  refined faces too, which G and D can satisfy together by writing identity codes into the refined
  images); ``dagan_lambda_local > 0`` adds a local (patch) real-vs-refined agent
  (:func:`build_local_discriminator`, SimGAN's local adversarial loss, own Adam rate
  ``dagan_local_learning_rate``): ``+ lambda_l [BCE(D_l(y), 1) + BCE(D_l(x_tilde), 0)]`` for D and
  ``+ lambda_l BCE(D_l(x_tilde), 1)`` for G, means over patches; ``dagan_residual_scale = alpha > 0``
  bounds the refiner's global residual per pixel (``clip(x + alpha tanh(conv), -1, 1)``);
  ``dagan_pixel_loss_sigma = sigma > 0`` applies the pixel-wise loss to Gaussian low-passed images,
  ``mean |g_sigma * x_tilde - g_sigma * x|``, so the refiner must keep the simulated face's content but
  may add detail finer than sigma pixels (sharpening, texture) without paying for it;
  ``dagan_first_identity`` selects other people (51-100: the validation split used to choose settings);
  ``dagan_ema_decay = beta > 0`` keeps an exponential moving average of the refiner's weights (batch-norm
  statistics included; :mod:`ganimation_tl.averaging`, Yazici et al., ICLR 2019) and refines with it at
  evaluation and in the sample grids; training is unchanged; ``dagan_pixel_loss_support`` weights the
  pixel-wise loss by the simulated face's texture support (:func:`texture_support`: 1 where the warp keeps
  the photo's texture, 0 where it smears one source pixel over 2 or more output pixels or where the
  context crop left the photo and was edge-replicated), ``sum w |x_tilde - x| / (3 sum w)``, so the
  refiner may repaint what the simulator invented (the side of the head a frontal photo does not show)
  and is held to the rest.

Data: CFP identities ``dagan_first_identity``.. (N = ``dagan_num_identities``; default 1..N). Simulated profiles come from frontal photos 1-8
(training) and 9-10 (held out, for the evaluation); the real distribution y is the CFP profile photos
(1-4) of the same identities. Identity labels Y are the identity indices.

Deviations from the paper, and why:

* The simulator is a generic rigid 3D face (no 3D Morphable Model fit, no rendering of unseen
  texture): no 3DMM is available offline. The paper renders 224x224 faces at arbitrary yaw.
* Sizes reduced for CPU (``configs/dagan_debug.cfg``): 32x32 crops (paper 224), refiner width 32 with
  4 residual blocks (slides: 64 and 10), BEGAN n = 32, h = 64, 50 identities, ~1500 iterations.
  ``configs/dagan.cfg`` keeps the slide/paper sizes (at the largest CFP size available, 150 ids).
* Pixel-wise loss ``L_pp = mean |x_tilde - x|`` (spec proposal; the abstract's "pose perception loss"
  could be on pose features); lambda_1 = lambda_2 = 1 are proposals (not recoverable from the paper).
* The debug config turns on the global residual (identity at initialisation) so the refiner starts
  from the simulated image in a ~10-minute budget; the full config keeps the slide layer list (off).
* The identity agent is softmax cross-entropy over identities (the paper writes a per-class
  binary-CE form; spec: softmax CE is the practical choice).
* Batch norm in the refiner is ``other_models.drgan.batch_norm_layer`` (TL 2.2.5's BatchNorm2d
  fails in train mode inside ``tf.function`` on TF 2.21).
* The local realism agent, the bounded residual, the real-only identity agent, the low-pass pixel
  loss and the support-weighted pixel loss are not in the paper (all off by default). They were added after the paper-form model failed both realism and
  identity checks at 32 px / 1500 iterations (``docs/results/dagan.md`` has the runs and the
  reasons): there the BEGAN agent's refiner gradient pulls towards its blurry auto-encoder
  reconstructions (k_t stays 0 with gamma 0.5; with gamma 1 the refiner chases D with colour
  patterns), and the identity agent's gradient writes colour codes into the images.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Tuple

import numpy as np
from absl import flags

from ganimation_tl import registry
from ganimation_tl.errors import InputError
from ganimation_tl.sibling import config_or_input_error, define_model_flags, images_grid, run_trainer

__all__ = ["DAGANConfig", "DAGANData", "DAGAN", "GenericFace", "fit_generic_face", "simulate_profile",
           "SIM_CONTRAST",
           "build_refiner", "build_discriminator", "build_local_discriminator", "local_realism_loss",
           "gaussian_low_pass", "pixel_loss",
           "autoencoder_error", "update_k", "convergence_measure",
           "load_data", "prepare", "define_flags", "train"]


@dataclasses.dataclass(frozen=True)
class DAGANConfig:
    """DA-GAN hyper-parameters; field names are the flag names (defaults: the debug-size model).

    Attributes:
        image_size: side S of the crops (paper 224); a multiple of ``2**(dagan_d_scales - 1)``.
        dagan_g_channels / dagan_g_blocks: refiner width and residual blocks (slides: 64, 10).
        dagan_global_residual: refiner output ``tanh(atanh(x) + conv)`` (identity at start).
        dagan_residual_scale: alpha > 0 bounds the global residual per pixel instead:
        ``clip(x + alpha tanh(conv), -1, 1)``, so no pixel moves by more than alpha (0: off).
        dagan_d_channels (BEGAN n), dagan_d_hidden (BEGAN h), dagan_d_scales (stride-2 steps + 1).
        dagan_gamma (BEGAN gamma, 0.5), dagan_lambda_k (0.001), dagan_lambda_identity (lambda_1),
        dagan_lambda_pixel (lambda_2), dagan_learning_rate (1e-4), dagan_beta1 (0.5).
        dagan_num_identities: CFP identities used, N of them starting at ``dagan_first_identity`` (1: the
        evaluation's identities 1..N; 51 with N = 50: a disjoint validation set of people for choosing
        settings). dagan_identity_agent_refined: the identity agent of D is also trained on refined
        faces (labelled with their source identity; True, the paper's L_ip) or on real faces only
        (False: then G is pushed to make refined faces recognisable by a classifier of real faces).
        dagan_lambda_local: weight of the optional local (patch) realism agent (0: off, the paper's two
        agents only); dagan_local_channels: its width n_l; dagan_local_learning_rate: its Adam learning
        rate (beta1 = dagan_beta1).
        dagan_pixel_loss_sigma: sigma > 0 (pixels) compares Gaussian low-passed images in the pixel-wise loss,
        ``mean |g_sigma * x_tilde - g_sigma * x|``, so the refiner keeps the simulated face's content but may
        add detail finer than sigma for free (0: the plain loss ``mean |x_tilde - x|``).
        dagan_pixel_loss_support: weight the pixel-wise loss by the simulated face's texture support
        (``simulate_profile``), so the refiner may repaint what the simulator invented (smeared side of the
        head, replicated borders) and is held to the rest (False: every pixel, the slides' loss).
        dagan_yaw_min / dagan_yaw_max: simulator yaw
        range in degrees. dagan_sim_blur: simulator Gaussian blur sigma in output pixels.
        batch_size, epochs, seed.
    """

    image_size: int = 32
    dagan_g_channels: int = 32
    dagan_g_blocks: int = 4
    dagan_global_residual: bool = True
    dagan_residual_scale: float = 0.0
    dagan_d_channels: int = 32
    dagan_d_hidden: int = 64
    dagan_d_scales: int = 3
    dagan_gamma: float = 0.5
    dagan_lambda_k: float = 0.001
    dagan_lambda_identity: float = 1.0
    dagan_lambda_pixel: float = 1.0
    dagan_learning_rate: float = 1e-4
    dagan_beta1: float = 0.5
    dagan_num_identities: int = 50
    dagan_first_identity: int = 1
    dagan_identity_agent_refined: bool = True
    dagan_lambda_local: float = 0.0
    dagan_local_channels: int = 32
    dagan_local_learning_rate: float = 1e-4
    dagan_pixel_loss_sigma: float = 0.0
    dagan_pixel_loss_support: bool = False
    dagan_yaw_min: float = 60.0
    dagan_yaw_max: float = 80.0
    dagan_sim_blur: float = 0.7
    dagan_ema_decay: float = 0.0
    batch_size: int = 16
    epochs: int = 60
    seed: int = 0

    def __post_init__(self):
        factor = 2 ** (self.dagan_d_scales - 1)
        if self.dagan_d_scales < 1 or self.image_size < 8 or self.image_size % factor:
            raise ValueError("image_size must be >= 8 and a multiple of 2**(dagan_d_scales-1) = %d, got %r"
                             % (factor, self.image_size))
        for name in ("dagan_g_channels", "dagan_d_channels", "dagan_d_hidden", "batch_size", "epochs"):
            if getattr(self, name) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if self.dagan_g_blocks < 0:
            raise ValueError("dagan_g_blocks must be >= 0, got %r" % self.dagan_g_blocks)
        if not 0 < self.dagan_gamma <= 1:
            raise ValueError("dagan_gamma must be in (0, 1], got %r" % self.dagan_gamma)
        if not self.dagan_local_learning_rate > 0:
            raise ValueError("dagan_local_learning_rate must be > 0, got %r" % self.dagan_local_learning_rate)
        if not 0 <= self.dagan_residual_scale <= 2:
            raise ValueError("dagan_residual_scale must be in [0, 2], got %r" % self.dagan_residual_scale)
        if self.dagan_local_channels <= 0:
            raise ValueError("dagan_local_channels must be positive, got %r" % self.dagan_local_channels)
        if min(self.dagan_lambda_k, self.dagan_lambda_identity, self.dagan_lambda_pixel, self.dagan_lambda_local) < 0:
            raise ValueError("the lambdas must be >= 0")
        if not self.dagan_learning_rate > 0 or not 0 <= self.dagan_beta1 < 1:
            raise ValueError("need dagan_learning_rate > 0 and 0 <= dagan_beta1 < 1")
        if self.dagan_num_identities < 2:
            raise ValueError("dagan_num_identities must be >= 2, got %r" % self.dagan_num_identities)
        if self.dagan_first_identity < 1:
            raise ValueError("dagan_first_identity must be >= 1, got %r" % self.dagan_first_identity)
        if not 0 <= self.dagan_yaw_min <= self.dagan_yaw_max < 90:
            raise ValueError("need 0 <= dagan_yaw_min <= dagan_yaw_max < 90 degrees")
        if self.dagan_sim_blur < 0:
            raise ValueError("dagan_sim_blur must be >= 0")
        if not 0 <= self.dagan_ema_decay < 1:
            raise ValueError("dagan_ema_decay must be in [0, 1) (0: off), got %r" % self.dagan_ema_decay)
        if not 0 <= self.dagan_pixel_loss_sigma <= 8 or np.ceil(3 * self.dagan_pixel_loss_sigma) >= self.image_size:
            raise ValueError("dagan_pixel_loss_sigma must be in [0, 8] pixels with 3 sigma < image_size, got %r"
                             % self.dagan_pixel_loss_sigma)


# ---------------------------------------------------------------------------------------------- simulator
SIM_CONTRAST = 0.85   # the simulator's contrast factor towards the mean colour (a "rendered" look)

@dataclasses.dataclass(frozen=True)
class GenericFace:
    """The generic 3D face fitted to one frontal photo (pixels of that photo; x right, y down, z to camera).

    Attributes: midline ``x_mid``; half face width ``w``; head ellipse centre ``y_mid`` and half height
    ``h``; nose bridge ``bridge`` and tip ``tip`` as (x, y).
    """

    x_mid: float
    w: float
    y_mid: float
    h: float
    bridge: Tuple[float, float]
    tip: Tuple[float, float]

    def depth(self, x, y):
        """Depth z (pixels, >= 0) of the generic face at image points ``x, y`` (arrays, same shape):
        ellipsoid ``0.8 w sqrt(1 - (dx/w)^2 - (dy/h)^2)`` plus a nose ridge of height up to 0.45 w
        rising linearly from the bridge to the tip (Gaussian across, sigma 0.12 w)."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        r2 = ((x - self.x_mid) / self.w) ** 2 + ((y - self.y_mid) / self.h) ** 2
        z = 0.8 * self.w * np.sqrt(np.clip(1.0 - r2, 0.0, None))
        by, ty = self.bridge[1], self.tip[1]
        t = np.clip((y - by) / max(ty - by, 1e-3), 0.0, None)
        along = np.where(t <= 1.0, 0.3 + 0.7 * t, np.exp(-((y - ty) / (0.1 * self.w)) ** 2))
        along = np.where(y < by, 0.0, along)
        across = np.exp(-0.5 * ((x - self.x_mid) / (0.12 * self.w)) ** 2)
        return z + 0.45 * self.w * along * across


def fit_generic_face(landmarks: np.ndarray) -> GenericFace:
    """Fit the generic face to CFP frontal fiducials.

    Args:
        landmarks: float ``[30, 2]`` (x, y) CFP frontal fiducials (one half face: 0-8 jaw contour from
            the ear to the chin, 9-11 brow, 12-17 eye, 18-22 nose ridge bridge..tip, 23-24 nostril,
            25-29 mouth; 8, 18-22 and 26-29 lie on the midline).

    Returns:
        :class:`GenericFace`. Raises InputError for a degenerate point set (zero width/height).
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (30, 2):
        raise InputError("CFP fiducials must be [30, 2], got %s" % (lm.shape,))
    x_mid = float(np.mean(lm[[8, 18, 19, 20, 21, 22, 26, 27, 28, 29], 0]))
    w = float(abs(x_mid - lm[0:3, 0].mean()))
    top, chin = float(lm[9:12, 1].min()), float(lm[8, 1])
    if w < 1e-3 or chin - top < 1e-3:
        raise InputError("degenerate CFP fiducials (face width %.3g, height %.3g)" % (w, chin - top))
    h = 0.6 * (chin - top) * 1.15
    y_mid = chin - h / 1.15
    return GenericFace(x_mid, w, y_mid, h, (float(lm[18, 0]), float(lm[18, 1])), (float(lm[22, 0]), float(lm[22, 1])))


def rotate_points(face: GenericFace, x, y, yaw_degrees: float, monotone_rows: bool = False):
    """Image x of points (x, y) after rotating the generic face by ``yaw`` about the vertical axis
    (orthographic): ``x' = x_mid + (x - x_mid) cos(yaw) + z sin(yaw)``, blended to x' = x outside 1.5x
    the head ellipse (the background stays). With ``monotone_rows`` (x, y grids ``[R, C]``), x' is made
    non-decreasing along each row: points hidden behind the nose and far cheek collapse onto the
    occluding contour (self-occlusion). Returns x' (same shape)."""
    yaw = np.deg2rad(yaw_degrees)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    z = face.depth(x, y)
    r = np.sqrt(((x - face.x_mid) / face.w) ** 2 + ((y - face.y_mid) / face.h) ** 2)
    blend = np.clip((1.5 - r) / 0.5, 0.0, 1.0)
    rotated = face.x_mid + (x - face.x_mid) * np.cos(yaw) + z * np.sin(yaw)
    out = x + blend * (rotated - x)
    if monotone_rows:
        out = np.maximum.accumulate(out, axis=1)
        out = out + 1e-3 * np.arange(out.shape[1])[None, :]
    return out


def texture_support(map_x: np.ndarray, full: float = 1.25, none: float = 2.0) -> np.ndarray:
    """How much of each warped pixel is real texture, from the horizontal stretch of the warp.

    Args:
        map_x: float ``[H, W]``: output pixel (row, x) reads the source at (row, ``map_x[row, x]``).
        full / none: stretch factors (output pixels per source pixel, ``1 / (d map_x / dx)``) at and
            below which the support is 1, and at and above which it is 0 (linear between).

    Returns:
        float32 ``[H, W]`` in [0, 1]. Points hidden by the rotation make ``map_x`` jump (stretch < 1:
        support 1); the side of the head that the frontal photo does not show is smeared over many output
        pixels (the horizontal streaks of the simulated profiles: support 0).

    Raises:
        ValueError: not ``0 < full < none``.

    Source: not in DA-GAN (ours, ``docs/results/dagan.md`` round 5); the thresholds were set by eye on
    simulated validation profiles so that the visible streaks fall below 0.5.
    """
    if not 0 < full < none:
        raise ValueError("need 0 < full < none, got %r, %r" % (full, none))
    stretch = 1.0 / np.maximum(np.gradient(np.asarray(map_x, np.float64), axis=1), 1e-6)
    return np.clip((none - stretch) / (none - full), 0.0, 1.0).astype(np.float32)


def simulate_profile(image: np.ndarray, landmarks: np.ndarray, yaw_degrees: float, out_size: int,
                     blur: float = 0.7, contrast: float = SIM_CONTRAST, mirror: bool = False,
                     margin: float = 0.5, in_photo: Optional[np.ndarray] = None, return_support: bool = False):
    """The DA-GAN simulator: a frontal face photo -> a simulated profile face (see module docstring).

    Args:
        image: uint8 ``[H, W, 3]`` frontal face crop with context (e.g. ``load_faces(margin=1.0)``).
        landmarks: float ``[30, 2]`` its CFP fiducials in pixels of ``image``.
        yaw_degrees: rotation in (0, 90); the face turns towards image-right (mirrored if ``mirror``).
        out_size: side S of the output.
        blur: Gaussian sigma in output pixels (0: none). contrast: factor towards the mean colour.
        margin: crop margin around the rotated fiducials (as ``cfp.load_faces``).
        in_photo: optional float ``[H, W]`` in [0, 1], the part of each pixel of ``image`` inside the
            original photo (``CFPFaces.in_photo``; default: all of it).
        return_support: also return the texture support of the output.

    Returns:
        uint8 ``[S, S, 3]``; with ``return_support``, ``(image, support)`` where support is float32
        ``[S, S]`` in [0, 1]: 1 where the output shows the photo's own texture, 0 where it shows texture
        the simulator had to invent (smeared by :func:`texture_support`, replicated past the photo's edge,
        or outside the context crop). Used by ``--dagan_pixel_loss_support``.
    """
    import cv2

    h, w = image.shape[:2]
    face = fit_generic_face(landmarks)
    # Forward map of every source pixel centre (monotone along each row), then its per-row inverse.
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    fx = rotate_points(face, gx, gy, yaw_degrees, monotone_rows=True)
    map_x = np.empty((h, w), np.float32)
    for row in range(h):
        map_x[row] = np.interp(gx[row], fx[row], gx[row])
    warped = cv2.remap(image.astype(np.float32), map_x, gy.astype(np.float32), cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    points = np.stack([rotate_points(face, landmarks[:, 0], landmarks[:, 1], yaw_degrees), landmarks[:, 1]], 1)
    lo, hi = points.min(0), points.max(0)
    cx, cy = (lo + hi) / 2.0
    side = max(float(np.max(hi - lo)) * (1.0 + margin), 8.0)
    scale = out_size / side
    matrix = np.array([[scale, 0, out_size / 2.0 - cx * scale], [0, scale, out_size / 2.0 - cy * scale]])
    crop = cv2.warpAffine(warped, matrix, (out_size, out_size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    if blur > 0:
        crop = cv2.GaussianBlur(crop, (0, 0), blur)
    mean = crop.reshape(-1, 3).mean(0)
    crop = mean + contrast * (crop - mean)
    if mirror:
        crop = crop[:, ::-1]
    out = np.clip(np.round(crop), 0, 255).astype(np.uint8)
    if not return_support:
        return out
    source = np.ones((h, w), np.float32) if in_photo is None else np.asarray(in_photo, np.float32)
    if source.shape != (h, w):
        raise ValueError("in_photo must be [%d, %d] like the image, got %s" % (h, w, source.shape))
    support = cv2.remap(source, map_x, gy.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0.0) * texture_support(map_x)
    support = cv2.warpAffine(support, matrix, (out_size, out_size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    if mirror:
        support = support[:, ::-1]
    return out, np.clip(support, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class DAGANData:
    """Images float32 NHWC in [-1, 1].

    Attributes:
        sim_train ``[N, S, S, 3]`` / sim_train_labels int32 ``[N]``: simulated profiles of frontal
            photos 1-8. real_profiles ``[P, S, S, 3]`` / real_labels ``[P]``: CFP profile photos.
        sim_test / sim_test_labels: simulated profiles of the held-out frontal photos 9-10.
        real_frontal_train / real_frontal_train_labels, real_frontal_test / labels: the frontal photos
            themselves (for the evaluation's reference classifier).
        num_identities: number of identity classes.
        sim_train_support: float32 ``[N, S, S, 1]`` in [0, 1], the texture support of each simulated
            training face (``simulate_profile``; read by ``--dagan_pixel_loss_support``);
            sim_test_support: the same for the held-out simulated faces.
    """

    sim_train: np.ndarray
    sim_train_labels: np.ndarray
    real_profiles: np.ndarray
    real_labels: np.ndarray
    sim_test: np.ndarray
    sim_test_labels: np.ndarray
    real_frontal_train: np.ndarray
    real_frontal_train_labels: np.ndarray
    real_frontal_test: np.ndarray
    real_frontal_test_labels: np.ndarray
    num_identities: int
    sim_train_support: Optional[np.ndarray] = None
    sim_test_support: Optional[np.ndarray] = None


def _to_float(images):
    return images.astype(np.float32) / 127.5 - 1.0


def load_data(cfp_dir: Optional[str], config: DAGANConfig, limit_per_identity: Optional[int] = None) -> DAGANData:
    """Load CFP, simulate profiles of the frontal photos and split (see the module docstring).

    Raises:
        InputError: ``--cfp_dir`` unset or missing, or bad CFP files.
    """
    from ganimation_tl.datasets import cfp

    if not cfp_dir:
        raise InputError("--cfp_dir is required (the CFP folder holding Data/, e.g. ../shared/data/cfp)")
    if not os.path.isdir(cfp_dir):
        raise InputError("--cfp_dir=%s: folder not found" % cfp_dir)
    first = config.dagan_first_identity
    ids = list(range(first, first + config.dagan_num_identities))
    S = config.image_size
    frontal_ctx = cfp.load_faces(cfp_dir, 2 * S, identities=ids, views=("frontal",), margin=1.0,
                                 limit_per_identity=limit_per_identity, with_in_photo=True)
    frontal = cfp.load_faces(cfp_dir, S, identities=ids, views=("frontal",), limit_per_identity=limit_per_identity)
    profile = cfp.load_faces(cfp_dir, S, identities=ids, views=("profile",), limit_per_identity=limit_per_identity)
    rng = np.random.default_rng(config.seed)
    sims, supports = [], []
    for image, lm, in_photo in zip(frontal_ctx.images, frontal_ctx.landmarks, frontal_ctx.in_photo):
        yaw = rng.uniform(config.dagan_yaw_min, config.dagan_yaw_max)
        sim, support = simulate_profile(image, lm, yaw, S, blur=config.dagan_sim_blur, mirror=bool(rng.integers(2)),
                                        in_photo=in_photo, return_support=True)
        sims.append(sim)
        supports.append(support)
    sims, supports = _to_float(np.stack(sims)), np.stack(supports)[..., None]
    labels = (frontal_ctx.identities - first).astype(np.int32)
    test = frontal_ctx.indices >= 9
    if limit_per_identity is not None and not test.any():
        test = frontal_ctx.indices == frontal_ctx.indices.max()   # tiny test data: hold out the last photo
    ftest = np.isin(frontal.indices, np.unique(frontal_ctx.indices[test]))
    return DAGANData(sims[~test], labels[~test], _to_float(profile.images), (profile.identities - first).astype(np.int32),
                     sims[test], labels[test], _to_float(frontal.images[~ftest]),
                     (frontal.identities[~ftest] - first).astype(np.int32), _to_float(frontal.images[ftest]),
                     (frontal.identities[ftest] - first).astype(np.int32), config.dagan_num_identities,
                     supports[~test], supports[test])


def make_batches(data: DAGANData, config: DAGANConfig, epoch: int, skip: int):
    """One epoch of batches (deterministic per epoch): dicts with ``simulated`` ``[B, S, S, 3]``,
    ``simulated_labels`` ``[B]``, ``simulated_support`` ``[B, S, S, 1]`` (their texture support; left out
    when ``data`` has none, and :meth:`DAGAN.train_step` then uses ones), ``real`` ``[B, S, S, 3]`` (random real profiles, flipped at random) and
    ``real_labels`` ``[B]``; an epoch is one pass over the simulated training faces."""
    rng = np.random.default_rng([config.seed, epoch])
    order = rng.permutation(len(data.sim_train))
    B = config.batch_size
    for b in range(len(order) // B):
        rows = order[b * B:(b + 1) * B]
        real_rows = rng.integers(0, len(data.real_profiles), size=B)
        flip = rng.integers(0, 2, size=B).astype(bool)
        if b < skip:
            continue
        real = data.real_profiles[real_rows].copy()
        real[flip] = real[flip][:, :, ::-1]
        batch = {"simulated": data.sim_train[rows], "simulated_labels": data.sim_train_labels[rows],
                 "real": real, "real_labels": data.real_labels[real_rows]}
        if data.sim_train_support is not None:
            batch["simulated_support"] = data.sim_train_support[rows]
        yield batch


# ---------------------------------------------------------------------------------------------- networks
def build_refiner(config: DAGANConfig, name: str = "dagan_G"):
    """Refiner G_theta: simulated faces ``[B, S, S, 3]`` in [-1, 1] -> refined ``[B, S, S, 3]`` in (-1, 1).

    7x7 conv(n)+ReLU, ``dagan_g_blocks`` residual blocks (3x3 conv-BN-ReLU-3x3 conv-BN, x + block(x)),
    1x1 conv to 3 channels, tanh (of ``atanh(x) + conv`` with the global residual). Source: slides
    (paper section 3.2 "fully convolutional skip-net"), spec table (a)."""
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import weight_init
    from ganimation_tl.networks import unique_model_name
    from other_models.drgan import batch_norm_layer
    p, n, S = name + "_", config.dagan_g_channels, config.image_size
    image = tl.layers.Input([None, S, S, 3], name=p + "image")
    x = tl.layers.Conv2d(n, (7, 7), (1, 1), act=tf.nn.relu, padding="SAME", W_init=weight_init(),
                         b_init=tl.initializers.zeros(), in_channels=3, name=p + "conv_in")(image)
    for i in range(config.dagan_g_blocks):
        r = "%sres%d_" % (p, i)
        h = tl.layers.Conv2d(n, (3, 3), (1, 1), padding="SAME", W_init=weight_init(), b_init=None,
                             in_channels=n, name=r + "conv_a")(x)
        h = batch_norm_layer(n, act=tf.nn.relu, name=r + "bn_a")(h)
        h = tl.layers.Conv2d(n, (3, 3), (1, 1), padding="SAME", W_init=weight_init(), b_init=None,
                             in_channels=n, name=r + "conv_b")(h)
        h = batch_norm_layer(n, name=r + "bn_b")(h)
        x = tl.layers.Elementwise(tf.add, name=r + "add")([x, h])
    out = tl.layers.Conv2d(3, (1, 1), (1, 1), padding="SAME", W_init=weight_init(), b_init=tl.initializers.zeros(),
                           in_channels=n, name=p + "conv_out")(x)
    if config.dagan_global_residual and config.dagan_residual_scale > 0:
        alpha = float(config.dagan_residual_scale)

        def skip(inputs):
            img, delta = inputs
            return tf.clip_by_value(img + alpha * tf.tanh(delta), -1.0, 1.0)
        out = tl.layers.ElementwiseLambda(lambda img, delta: skip((img, delta)), name=p + "bounded_residual")([image, out])
    elif config.dagan_global_residual:
        def skip(inputs):
            img, delta = inputs
            return tf.tanh(tf.atanh(tf.clip_by_value(img, -0.999, 0.999)) + delta)
        out = tl.layers.ElementwiseLambda(lambda img, delta: skip((img, delta)), name=p + "global_residual")([image, out])
    else:
        out = tl.layers.Lambda(tf.tanh, name=p + "tanh")(out)
    return tl.models.Model(inputs=image, outputs=out, name=unique_model_name(name))


def build_discriminator(config: DAGANConfig, name: str = "dagan_D"):
    """D_phi: BEGAN auto-encoder with an identity agent.

    Input ``[B, S, S, 3]`` in [-1, 1]; outputs ``(reconstruction [B, S, S, 3], identity_logits [B, N_id])``.
    Encoder: 3x3 conv(n)+ELU; per scale i two 3x3 conv(n(i+1))+ELU and (except the last) a stride-2
    3x3 conv(n(i+2))+ELU; FC to h. Decoder: FC to (S/2^(L-1))^2 n, per scale two 3x3 conv(n)+ELU and
    nearest up-sampling x2 (except the last), 3x3 conv to 3 (linear). Identity agent on h: dropout
    (keep 0.5) + FC. Source: BEGAN (Berthelot et al. 2017, section 3.5); DA-GAN section 3.3 (two agents).
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import weight_init
    from ganimation_tl.networks import unique_model_name
    p, n, S, L = name + "_", config.dagan_d_channels, config.image_size, config.dagan_d_scales

    def conv(x, width, stride, cin, nm, act=tf.nn.elu):
        return tl.layers.Conv2d(width, (3, 3), (stride, stride), act=act, padding="SAME", W_init=weight_init(),
                                b_init=tl.initializers.zeros(), in_channels=cin, name=p + nm)(x)

    image = tl.layers.Input([None, S, S, 3], name=p + "image")
    x, ch = conv(image, n, 1, 3, "enc_in"), n
    for i in range(L):
        x = conv(x, n * (i + 1), 1, ch, "enc%d_a" % i)
        x = conv(x, n * (i + 1), 1, n * (i + 1), "enc%d_b" % i)
        ch = n * (i + 1)
        if i < L - 1:
            x = conv(x, n * (i + 2), 2, ch, "enc%d_down" % i)
            ch = n * (i + 2)
    side = S // 2 ** (L - 1)
    x = tl.layers.Flatten(name=p + "flatten")(x)
    hidden = tl.layers.Dense(config.dagan_d_hidden, W_init=weight_init(), in_channels=side * side * ch,
                             name=p + "bottleneck")(x)
    y = tl.layers.Dense(side * side * n, W_init=weight_init(), in_channels=config.dagan_d_hidden, name=p + "dec_fc")(hidden)
    y = tl.layers.Reshape([-1, side, side, n], name=p + "dec_reshape")(y)
    for i in range(L):
        y = conv(y, n, 1, n, "dec%d_a" % i)
        y = conv(y, n, 1, n, "dec%d_b" % i)
        if i < L - 1:
            y = tl.layers.UpSampling2d((2, 2), method="nearest", name=p + "dec%d_up" % i)(y)
    recon = conv(y, 3, 1, n, "dec_out", act=None)
    ident = tl.layers.Dropout(keep=0.5, name=p + "id_dropout")(hidden)
    ident = tl.layers.Dense(config.dagan_num_identities, W_init=weight_init(), in_channels=config.dagan_d_hidden,
                            name=p + "id_logits")(ident)
    return tl.models.Model(inputs=image, outputs=[recon, ident], name=unique_model_name(name))


def build_local_discriminator(config: DAGANConfig, name: str = "dagan_Dlocal"):
    """Optional local realism agent (``--dagan_lambda_local > 0``; not in DA-GAN, from SimGAN).

    A fully convolutional real-vs-refined classifier of small patches: 3x3 stride-2 conv(n_l) + LReLU(0.2),
    3x3 stride-2 conv(2 n_l) + LReLU, 1x1 conv(2 n_l) + LReLU, 1x1 conv to one logit. Input
    ``[B, S, S, 3]`` in [-1, 1]; output logits ``[B, S/4, S/4, 1]``, one per 7x7-pixel receptive field
    (positive = real). Source: Shrivastava et al., "Learning from Simulated and Unsupervised Images
    through Adversarial Training" (CVPR 2017), section 2.3 "local adversarial loss", scaled to 32 px.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import weight_init
    from ganimation_tl.networks import unique_model_name
    p, n, S = name + "_", config.dagan_local_channels, config.image_size
    lrelu = lambda x: tf.nn.leaky_relu(x, 0.2)  # noqa: E731
    image = tl.layers.Input([None, S, S, 3], name=p + "image")
    x = tl.layers.Conv2d(n, (3, 3), (2, 2), act=lrelu, padding="SAME", W_init=weight_init(),
                         b_init=tl.initializers.zeros(), in_channels=3, name=p + "conv1")(image)
    x = tl.layers.Conv2d(2 * n, (3, 3), (2, 2), act=lrelu, padding="SAME", W_init=weight_init(),
                         b_init=tl.initializers.zeros(), in_channels=n, name=p + "conv2")(x)
    x = tl.layers.Conv2d(2 * n, (1, 1), (1, 1), act=lrelu, padding="SAME", W_init=weight_init(),
                         b_init=tl.initializers.zeros(), in_channels=2 * n, name=p + "conv3")(x)
    x = tl.layers.Conv2d(1, (1, 1), (1, 1), padding="SAME", W_init=weight_init(), b_init=tl.initializers.zeros(),
                         in_channels=2 * n, name=p + "logits")(x)
    return tl.models.Model(inputs=image, outputs=x, name=unique_model_name(name))


def local_realism_loss(logits, real: bool):
    """Mean sigmoid cross-entropy of patch logits ``[B, h, w, 1]`` against all-real (True) or all-refined."""
    import tensorflow as tf
    target = tf.ones_like(logits) if real else tf.zeros_like(logits)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits))


# ---------------------------------------------------------------------------------------------- losses
def autoencoder_error(images, reconstructions):
    """BEGAN adversarial agent ``L(v) = mean |v - D(v)|`` per image: ``[B, S, S, 3]`` x2 -> ``[B]``."""
    import tensorflow as tf
    return tf.reduce_mean(tf.abs(images - reconstructions), axis=[1, 2, 3])


def gaussian_low_pass(images, sigma: float):
    """Depthwise Gaussian blur of ``[B, S, S, C]`` images (any range), same shape.

    The kernel is separable, ``2 ceil(3 sigma) + 1`` taps, normalised to sum 1; borders are padded by
    reflection, so a constant image stays constant. ``sigma`` in pixels, > 0; the reflection needs
    ``ceil(3 sigma) < S`` (``DAGANConfig`` checks it for ``--dagan_pixel_loss_sigma``), else TensorFlow's
    ``tf.pad`` raises InvalidArgumentError.
    """
    import tensorflow as tf
    radius = max(1, int(np.ceil(3.0 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    channels = int(images.shape[-1])
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    row = tf.constant(np.tile(taps.reshape(1, -1, 1, 1), (1, 1, channels, 1)))
    col = tf.constant(np.tile(taps.reshape(-1, 1, 1, 1), (1, 1, channels, 1)))
    out = tf.nn.depthwise_conv2d(padded, row, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(out, col, [1, 1, 1, 1], "VALID")


def pixel_loss(refined, simulated, sigma: float = 0.0, weights=None):
    """The refiner's pixel-wise (self-regularisation) loss, a scalar.

    ``mean |x_tilde - x|`` (slides' L_pp) with ``sigma = 0``; with ``sigma > 0`` both images are first
    low-passed by :func:`gaussian_low_pass`, so only content coarser than sigma pixels is held to the
    simulated image (``--dagan_pixel_loss_sigma``; not in DA-GAN). Inputs ``[B, S, S, 3]`` in [-1, 1].
    ``weights``: optional ``[B, S, S, 1]`` in [0, 1] (the texture support, ``--dagan_pixel_loss_support``;
    not in DA-GAN): the weighted mean ``sum w |x_tilde - x| / (3 sum w)``, so pixels of weight 0 are free
    and a weight-1 pixel costs what it costs in the plain loss.
    """
    import tensorflow as tf
    if sigma > 0:
        refined, simulated = gaussian_low_pass(refined, sigma), gaussian_low_pass(simulated, sigma)
    error = tf.abs(refined - simulated)
    if weights is None:
        return tf.reduce_mean(error)
    weights = tf.cast(weights, error.dtype)
    channels = tf.cast(tf.shape(error)[-1], error.dtype)
    return tf.reduce_sum(weights * error) / tf.maximum(tf.reduce_sum(weights) * channels, 1e-6)


def update_k(k, loss_real, loss_fake, gamma: float, lambda_k: float):
    """Boundary-equilibrium update ``clip_[0,1](k + lambda_k (gamma L(y) - L(x_tilde)))`` (BEGAN eq. 4)."""
    import tensorflow as tf
    return tf.clip_by_value(k + lambda_k * (gamma * loss_real - loss_fake), 0.0, 1.0)


def convergence_measure(loss_real, loss_fake, gamma: float):
    """BEGAN global convergence measure ``M = L(y) + |gamma L(y) - L(x_tilde)|`` (BEGAN section 3.4.1)."""
    import tensorflow as tf
    return loss_real + tf.abs(gamma * loss_real - loss_fake)


def _ce(logits, labels):
    import tensorflow as tf
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits))


def _acc(logits, labels):
    import tensorflow as tf
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(labels, tf.int32)),
                                  tf.float32))


# ---------------------------------------------------------------------------------------------- model
class DAGAN:
    """DA-GAN with the trainer interface. ``k`` (k_t), the EMA of M and M at step 100 are checkpointed."""

    sample_grid_tag = "samples/simulated_refined_real"

    def __init__(self, config: DAGANConfig):
        import tensorflow as tf
        self.config = config
        tf.random.set_seed(config.seed)
        self.refiner = build_refiner(config)
        self.discriminator = build_discriminator(config)
        self.refiner.train()
        self.discriminator.train()
        self.g_weights = list(self.refiner.trainable_weights)
        self.d_weights = list(self.discriminator.trainable_weights)
        self.local_discriminator, self.l_weights, self.l_optimizer = None, [], None
        if config.dagan_lambda_local > 0:
            self.local_discriminator = build_local_discriminator(config)
            self.local_discriminator.train()
            self.l_weights = list(self.local_discriminator.trainable_weights)
            self.l_optimizer = tf.keras.optimizers.Adam(config.dagan_local_learning_rate, beta_1=config.dagan_beta1)
            self.l_optimizer.build(self.l_weights)
        self.g_optimizer = tf.keras.optimizers.Adam(config.dagan_learning_rate, beta_1=config.dagan_beta1)
        self.d_optimizer = tf.keras.optimizers.Adam(config.dagan_learning_rate, beta_1=config.dagan_beta1)
        self.g_optimizer.build(self.g_weights)
        self.d_optimizer.build(self.d_weights)
        self.k = tf.Variable(0.0, trainable=False, name="dagan_k")
        self.m_ema = tf.Variable(-1.0, trainable=False, name="dagan_m_ema")
        self.m_at_100 = tf.Variable(-1.0, trainable=False, name="dagan_m_at_100")
        # Optional moving average of the refiner (weights and batch-norm statistics), read only by refine().
        self.refiner_average = None
        if config.dagan_ema_decay > 0:
            from ganimation_tl.averaging import WeightAverage
            self.refiner_average = WeightAverage(self.refiner.all_weights, config.dagan_ema_decay, name="dagan_ema")
        self._step = tf.function(self._train_step)

    def trackables(self) -> Dict[str, object]:
        """Weights of both networks, both optimizers, k_t, the M records and the refiner's average if on."""
        out = {"refiner_weights": list(self.refiner.all_weights), "discriminator_weights": list(self.discriminator.all_weights),
               "refiner_optimizer": self.g_optimizer, "discriminator_optimizer": self.d_optimizer,
               "k": self.k, "m_ema": self.m_ema, "m_at_100": self.m_at_100}
        if self.local_discriminator is not None:
            out["local_discriminator_weights"] = list(self.local_discriminator.all_weights)
            out["local_discriminator_optimizer"] = self.l_optimizer
        if self.refiner_average is not None:
            out["refiner_average"] = self.refiner_average.trackables()
        return out

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """Constant learning rate (BEGAN halves it only every 100k steps)."""
        return {"learning_rate": float(self.config.dagan_learning_rate)}

    def discriminator_losses(self, refined, sim_labels, real, real_labels) -> Dict[str, object]:
        """D_phi's objective on one batch (no update): ``L_D = L(y) - k_t L(x_tilde) + lambda_1 L_ip^D``.

        Args:
            refined: ``[B, S, S, 3]`` refined faces in [-1, 1] (treated as constants).
            sim_labels: int ``[B]`` identities of the faces they were simulated from.
            real / real_labels: ``[B, S, S, 3]`` real profiles in [-1, 1] and int ``[B]`` identities.

        Returns:
            dict of scalar tensors: ``total``, ``ae_real`` L(y), ``ae_fake`` L(x_tilde), ``id_real`` and
            ``id_fake`` (softmax CE of the identity agent), ``identity`` (the CE D minimises: both with
            ``dagan_identity_agent_refined``, else the real one only) and ``accuracy_real``.
            Source: DA-GAN section 3 (dual agents) with BEGAN eq. 4.
        """
        import tensorflow as tf
        c = self.config
        rec_real, id_real = self.discriminator(real)
        rec_fake, id_fake = self.discriminator(refined)
        l_real = tf.reduce_mean(autoencoder_error(real, rec_real))
        l_fake = tf.reduce_mean(autoencoder_error(refined, rec_fake))
        ce_real, ce_fake = _ce(id_real, real_labels), _ce(id_fake, sim_labels)
        identity = ce_real + ce_fake if c.dagan_identity_agent_refined else ce_real
        out = {"total": l_real - self.k * l_fake + c.dagan_lambda_identity * identity, "ae_real": l_real,
               "ae_fake": l_fake, "id_real": ce_real, "id_fake": ce_fake, "identity": identity,
               "accuracy_real": _acc(id_real, real_labels)}
        if self.local_discriminator is not None:
            local = (local_realism_loss(self.local_discriminator(real), True)
                     + local_realism_loss(self.local_discriminator(refined), False))
            out["local"] = local
            out["total"] = out["total"] + c.dagan_lambda_local * local
        return out

    def generator_losses(self, sim, sim_labels, support=None) -> Dict[str, object]:
        """G_theta's objective on one batch: ``L_G = L(x_tilde) + lambda_1 CE(D_id(x_tilde), Y_x) + lambda_2 L_pp``.

        Args:
            sim: ``[B, S, S, 3]`` simulated profiles in [-1, 1]; sim_labels: int ``[B]`` their identities.
            support: optional ``[B, S, S, 1]`` texture support; weights L_pp when
                ``dagan_pixel_loss_support`` is on (else ignored).

        Returns:
            dict of scalar tensors: ``total``, ``ae`` L(x_tilde), ``identity`` (CE), ``pixel`` (L_pp, :func:`pixel_loss`),
            ``accuracy_refined`` (identity agent on refined faces). Source: DA-GAN section 3.
        """
        import tensorflow as tf
        c = self.config
        refined = self.refiner(sim)
        rec, idl = self.discriminator(refined)
        g_adv = tf.reduce_mean(autoencoder_error(refined, rec))
        g_id = _ce(idl, sim_labels)
        pixel = pixel_loss(refined, sim, c.dagan_pixel_loss_sigma,
                           support if c.dagan_pixel_loss_support else None)
        out = {"total": g_adv + c.dagan_lambda_identity * g_id + c.dagan_lambda_pixel * pixel, "ae": g_adv,
               "identity": g_id, "pixel": pixel, "accuracy_refined": _acc(idl, sim_labels)}
        if self.local_discriminator is not None:
            out["local"] = local_realism_loss(self.local_discriminator(refined), True)
            out["total"] = out["total"] + c.dagan_lambda_local * out["local"]
        return out

    def _train_step(self, sim, sim_labels, support, real, real_labels):
        import tensorflow as tf
        c = self.config
        refined = tf.stop_gradient(self.refiner(sim))
        with tf.GradientTape() as tape:
            d = self.discriminator_losses(refined, sim_labels, real, real_labels)
        grads = tape.gradient(d["total"], self.d_weights + self.l_weights)
        self.d_optimizer.apply_gradients(zip(grads[:len(self.d_weights)], self.d_weights))
        if self.l_weights:
            self.l_optimizer.apply_gradients(zip(grads[len(self.d_weights):], self.l_weights))
        with tf.GradientTape() as tape:
            g = self.generator_losses(sim, sim_labels, support)
        grads = tape.gradient(g["total"], self.g_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.g_weights))
        if self.refiner_average is not None:
            self.refiner_average.update()
        self.k.assign(update_k(self.k, d["ae_real"], d["ae_fake"], c.dagan_gamma, c.dagan_lambda_k))
        m = convergence_measure(d["ae_real"], d["ae_fake"], c.dagan_gamma)
        self.m_ema.assign(tf.where(self.m_ema < 0, m, 0.98 * self.m_ema + 0.02 * m))
        return {"discriminator/total": d["total"], "generator/total": g["total"], "discriminator/ae_real": d["ae_real"],
                "discriminator/ae_fake": d["ae_fake"], "discriminator/id_real": d["id_real"],
                "discriminator/id_fake": d["id_fake"], "generator/ae": g["ae"], "generator/identity": g["identity"],
                "generator/pixel": g["pixel"], "began/k": self.k.read_value(), "began/M": m,
                "began/M_ema": self.m_ema.read_value(), "accuracy/identity_real": d["accuracy_real"],
                "accuracy/identity_refined": g["accuracy_refined"],
                **({"discriminator/local": d["local"], "generator/local": g["local"]} if "local" in d else {})}

    def train_step(self, batch, step: int) -> Dict[str, object]:
        """One D update then one G update; k_t update. ``batch``: a :func:`make_batches` dict (a missing
        ``simulated_support`` counts as all ones). Returns scalar metrics."""
        import tensorflow as tf
        if "simulated_support" not in batch:
            batch = dict(batch, simulated_support=np.ones(np.shape(batch["simulated"])[:3] + (1,), np.float32))
        out = self._step(*(tf.convert_to_tensor(batch[k]) for k in ("simulated", "simulated_labels", "simulated_support",
                                                                       "real", "real_labels")))
        if step + 1 == 100:
            self.m_at_100.assign(self.m_ema)
        return out

    def refine(self, images, batch: int = 256, averaged: bool = True) -> np.ndarray:
        """G_theta in eval mode: ``[N, S, S, 3]`` in [-1, 1] -> same shape. With ``dagan_ema_decay`` > 0 and
        ``averaged`` (the default) the refiner's moving average refines; ``averaged=False``: the trained weights."""
        from ganimation_tl.averaging import averaged_weights
        self.refiner.eval()
        try:
            with averaged_weights(self.refiner_average if averaged else None):
                return np.concatenate([self.refiner(images[i:i + batch]).numpy()
                                       for i in range(0, len(images), batch)])
        finally:
            self.refiner.train()

    def sample_grid(self, batch) -> np.ndarray:
        """Rows: simulated profiles, refined, real profiles (first 8)."""
        sim = np.asarray(batch["simulated"])[:8]
        return images_grid([list(sim), list(self.refine(sim)), list(np.asarray(batch["real"])[:8])])


# ---------------------------------------------------------------------------------------------- CLI glue
_HELP = {
    "dagan_g_channels": ("integer", "DA-GAN refiner width (slides: 64)."),
    "dagan_g_blocks": ("integer", "DA-GAN refiner residual blocks (slides: 10)."),
    "dagan_global_residual": ("bool", "DA-GAN refiner output tanh(atanh(x) + conv) (skip-net reading)."),
    "dagan_residual_scale": ("float", "DA-GAN: with the global residual, bound each pixel's change: "
                             "clip(x + alpha*tanh(conv), -1, 1) (0 = off: tanh(atanh(x) + conv))."),
    "dagan_d_channels": ("integer", "DA-GAN BEGAN discriminator width n."),
    "dagan_d_hidden": ("integer", "DA-GAN BEGAN bottleneck h."),
    "dagan_d_scales": ("integer", "DA-GAN BEGAN scales (stride-2 steps + 1)."),
    "dagan_gamma": ("float", "BEGAN diversity ratio gamma (0.5)."),
    "dagan_lambda_k": ("float", "BEGAN k_t learning rate lambda_k (0.001)."),
    "dagan_lambda_identity": ("float", "DA-GAN identity-agent weight lambda_1 (proposal 1)."),
    "dagan_lambda_pixel": ("float", "DA-GAN pixel-wise loss weight lambda_2 (proposal 1)."),
    "dagan_lambda_local": ("float", "DA-GAN: weight of an optional local (patch) real-vs-refined agent from SimGAN "
                           "(0 = off, the paper's two agents)."),
    "dagan_local_channels": ("integer", "DA-GAN: width of the optional local realism agent."),
    "dagan_local_learning_rate": ("float", "DA-GAN: Adam learning rate of the optional local realism agent."),
    "dagan_learning_rate": ("float", "DA-GAN Adam learning rate (1e-4)."),
    "dagan_beta1": ("float", "DA-GAN Adam beta1 (0.5)."),
    "dagan_num_identities": ("integer", "DA-GAN: number N of CFP identities used."),
    "dagan_first_identity": ("integer", "DA-GAN: first CFP identity used (identities first..first+N-1; 1 = the "
                             "evaluation's people, 51 with N=50 = the disjoint validation people)."),
    "dagan_identity_agent_refined": ("bool", "DA-GAN: train D's identity agent on refined faces too (paper L_ip); "
                                     "false = real faces only, so G must make refined faces recognisable by a "
                                     "classifier of real faces."),
    "dagan_yaw_min": ("float", "DA-GAN simulator minimum yaw, degrees."),
    "dagan_yaw_max": ("float", "DA-GAN simulator maximum yaw, degrees."),
    "dagan_sim_blur": ("float", "DA-GAN simulator blur sigma (output pixels)."),
    "dagan_ema_decay": ("float", "DA-GAN: 0 = refine with the trained weights; beta in (0, 1) = also keep an "
                        "exponential moving average of the refiner (horizon ~1/(1 - beta) iterations) and refine with "
                        "it at evaluation and in sample grids (not in the paper; training is unchanged)."),
    "dagan_pixel_loss_support": ("bool", "DA-GAN: weight the pixel-wise loss by the simulated face's texture support, "
                                 "so regions the simulator smeared or replicated are free to repaint (not in the "
                                 "paper; default false = every pixel)."),
    "dagan_pixel_loss_sigma": ("float", "DA-GAN: Gaussian sigma (pixels) of the low-pass applied to both images in "
                               "the pixel-wise loss, so detail finer than sigma is free (0 = plain L1, the default)."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define DA-GAN's flags (config fields, ``--cfp_dir``, common trainer flags); idempotent."""
    define_model_flags(_HELP, flag_values, extra=[
        ("string", "cfp_dir", "CFP folder (holding Data/Images and Data/Fiducials), e.g. ../shared/data/cfp."),
        ("integer", "dagan_photos_per_identity", "DA-GAN: load at most this many photos per identity and view "
         "(tests; default all).")])


def prepare(flag_values=flags.FLAGS):
    """Flags -> ``(config, data, model)``. Raises InputError on bad flags or data."""
    config = config_or_input_error(DAGANConfig, flag_values)
    limit = flag_values.dagan_photos_per_identity
    if limit is not None and limit < 2:
        raise InputError("--dagan_photos_per_identity must be >= 2, got %d" % limit)
    data = load_data(flag_values.cfp_dir, config, limit_per_identity=limit)
    if len(data.sim_train) < config.batch_size:
        raise InputError("--batch_size=%d exceeds the %d simulated training faces" % (config.batch_size, len(data.sim_train)))
    return config, data, DAGAN(config)


def train(flag_values=flags.FLAGS, prepared=None) -> Dict[str, float]:
    """Train DA-GAN from parsed flags (or a ``prepare``d triple); returns the last metrics."""
    config, data, model = prepared or prepare(flag_values)
    return run_trainer("dagan", model, lambda epoch, skip: make_batches(data, config, epoch, skip),
                       steps_per_epoch=len(data.sim_train) // config.batch_size, epochs=config.epochs,
                       flag_values=flag_values, config=config,
                       data_description="CFP %s: %d simulated profiles, %d real profiles, %d identities"
                       % (flag_values.cfp_dir, len(data.sim_train), len(data.real_profiles), data.num_identities))


registry.register(registry.ModelEntry(
    name="dagan",
    summary="DA-GAN (Zhao et al., NIPS 2017): refine simulated CFP profiles with a dual-agent BEGAN",
    define_flags=define_flags,
    train=train,
))
