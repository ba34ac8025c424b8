"""Tiny-face super-resolution GAN (``train.py --model=tinyface_srgan``).

Source: Y. Bai, Y. Zhang, M. Ding, B. Ghanem, "Finding Tiny Faces in the Wild with Generative
Adversarial Network", CVPR 2018; specification ``../shared/docs/papers/batch2_*.md`` section 4 (no
official code; the PyTorch re-implementation EthanGuan/Finding-Tiny-Faces-with-GAN is the reference
for the loss targets).

Model (paper Table 1, reduced): generator G = G2(G1(I_LR)):
  * G1, super-resolution: conv3x3 (LReLU 0.2) -> N residual blocks (conv3x3-ReLU-conv3x3, + skip)
    -> two 3x3 stride-2 transposed convs (LReLU 0.2) -> conv1x1 to RGB (4x up-sampling);
  * G2, refinement: conv3x3 -> N residual blocks -> conv3x3 -> two conv3x3 at the up-sampling width
    -> conv3x3 to RGB + tanh;
  * D: a VGG-like trunk and two parallel fully connected heads: ``D_gan`` (real HR vs. generated)
    and ``D_clc`` (face vs. non-face), each a logit (sigmoid in the losses).

Losses (paper, spec section 4 (b); y = 1 face, 0 non-face; BCE = binary cross-entropy with logits):
  * ``L_MSE = mean ||G1(I_LR) - I_HR||^2 + mean ||G2(G1(I_LR)) - I_HR||^2`` (faces and non-faces);
  * discriminator: ``L_D = BCE(D_gan(I_HR), 1) + BCE(D_gan(G(I_LR)), 0) + BCE(D_clc(I_HR), y)
    + BCE(D_clc(G(I_LR)), y)`` (targets as the re-implementation's table: HR face/background are
    "real", every generated crop is "fake");
  * generator: ``L_G = L_MSE + alpha * BCE(D_gan(G(I_LR,face)), 1) + beta * BCE(D_clc(G(I_LR)), y)``
    (the non-saturating form of ``log(1 - D_gan)``), alpha = 1e-3, beta = 1e-2 (paper [paper?]).
  * Schedule: ``tinyface_pretrain_steps`` of MSE-only training of G (the paper and the SRGAN practice
    initialise G from an MSE-trained SR network), then one D step and one G step per iteration.

Data: CFP faces (square crops around the fiducials, both views) at HR ``image_size`` (32) with LR =
bicubic 4x down-sampling (8x8); non-faces are random crops of CFP photo backgrounds (less than
30% of the window inside the fiducial box enlarged by 15% per side, which implies IoU < 0.3) and of the scikit-learn / scikit-image sample photos without faces.
Train/test split by CFP identity for faces and CFP backgrounds; the library photos are split
spatially (left 70% for training, right 30% for testing).

Deviations from the paper (and why):
  * 32x32 HR / 8x8 LR instead of 128 / 32, widths 32/64 and 4 residual blocks per sub-network instead
    of 64/256 and 8 (CPU budget; spec (f)).
  * No batch norm in the generator's residual blocks, and each block's residual is scaled by 0.1
    (EDSR-style, He-normal weights): TL's BatchNorm quirks (zero initial moving variance) make its
    inference statistics unreliable in short runs, and the scaling keeps the un-normalised blocks
    stable.
  * ``tinyface_residual`` (on in the CPU configuration, off in the full one): G1 predicts a residual
    over bicubic up-sampling and G2 a residual over G1 (in the tanh pre-activation), with zero-initialised
    last layers, so G starts at bicubic quality. A first evaluation without it (630 steps, the same
    CPU budget) reached only +0.2 dB over bicubic: learning the up-sampling from scratch does not fit
    the budget. The paper's G (no such skips) is what ``configs/tinyface_srgan.cfg`` trains.
  * Background negatives must have < 30% of their area inside the face box, not only IoU < 0.3:
    with IoU alone, eye/mouth close-ups inside the face pass as "non-faces" and label noise swamps
    the small classification head.
  * D is a 4-block VGG-like net (16-32-64-128) trained from scratch: ImageNet VGG19 weights cannot
    be downloaded; the two heads are separate Dense layers (the paper's two FC branches).
  * Losses are means, not the re-implementation's sums (spec pitfall: sums tie alpha/beta to the
    image size). D's loss is unweighted (as the re-implementation's D step); alpha and beta weight
    the generator's terms only.
  * Face data: CFP crops from the fiducial box instead of WIDER FACE detector ROIs (not available
    offline); no MB-FCN detector stage: D_clc is evaluated as the face/non-face re-scorer on given crops.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional

import numpy as np
from absl import flags

from ganimation_tl import registry
from ganimation_tl.errors import InputError
from ganimation_tl.sibling import (config_or_input_error, define_model_flags, images_grid, require_flag,
                                   train_and_evaluate)

__all__ = ["TinyFaceConfig", "build_generator", "build_discriminator", "psnr", "bicubic_down", "bicubic_up",
           "TinyFaceData", "prepare_data", "sample_background_crops", "library_photos", "TinyFaceSRGAN",
           "evaluate", "train_bicubic_classifier", "define_flags", "train"]

MODEL_NAME = "tinyface_srgan"


@dataclasses.dataclass(frozen=True)
class TinyFaceConfig:
    """Hyper-parameters; field names are the flag names (see ``configs/tinyface_srgan.cfg``).

    Attributes:
        image_size: HR side (multiple of 16: D halves it 4 times; LR side = image_size / 4).
        batch_size: crops per step (half faces, half non-faces; even).
        epochs, seed: as usual.
        learning_rate: Adam rate of G and D (1e-4 in the paper / re-implementation).
        beta1: Adam beta1 (0.9, re-implementation).
        tinyface_width: generator width (paper 64).
        tinyface_up_width: width of the up-sampling and last refinement convs (paper 256).
        tinyface_res_blocks: residual blocks in each of G1 and G2 (paper 8).
        tinyface_d_width: D's first block width (doubling over 4 blocks).
        tinyface_alpha: weight of G's adversarial term (paper 1e-3).
        tinyface_beta: weight of G's classification term (paper 1e-2).
        tinyface_pretrain_steps: MSE-only generator steps before the GAN phase.
        tinyface_test_identities: CFP identities held out.
        tinyface_negatives_train / tinyface_negatives_test: non-face crops per split.
        tinyface_margin: crop margin around the fiducial box.
        tinyface_residual: bicubic/residual skips in G (see :func:`build_generator`; not in the paper).
    """

    image_size: int = 32
    batch_size: int = 32
    epochs: int = 12
    seed: int = 0
    learning_rate: float = 1e-4
    beta1: float = 0.9
    tinyface_width: int = 32
    tinyface_up_width: int = 64
    tinyface_res_blocks: int = 4
    tinyface_d_width: int = 16
    tinyface_alpha: float = 1e-3
    tinyface_beta: float = 1e-2
    tinyface_pretrain_steps: int = 600
    tinyface_test_identities: int = 30
    tinyface_negatives_train: int = 2000
    tinyface_negatives_test: int = 500
    tinyface_margin: float = 0.2
    tinyface_residual: bool = False

    def __post_init__(self):
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError("image_size (the HR side) must be a multiple of 16 (LR = image_size / 4, D halves it "
                             "4 times), got %r" % (self.image_size,))
        if self.batch_size < 2 or self.batch_size % 2:
            raise ValueError("batch_size must be even and >= 2 (half faces, half non-faces), got %r"
                             % self.batch_size)
        for name in ("epochs", "tinyface_width", "tinyface_up_width", "tinyface_d_width",
                     "tinyface_test_identities", "tinyface_negatives_train", "tinyface_negatives_test"):
            if getattr(self, name) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if self.tinyface_res_blocks < 0 or self.tinyface_pretrain_steps < 0:
            raise ValueError("tinyface_res_blocks and tinyface_pretrain_steps must be >= 0")
        if not self.learning_rate > 0 or not 0 <= self.beta1 < 1:
            raise ValueError("learning_rate must be > 0 and beta1 in [0, 1)")
        if self.tinyface_alpha < 0 or self.tinyface_beta < 0 or self.tinyface_margin < 0:
            raise ValueError("tinyface_alpha, tinyface_beta and tinyface_margin must be >= 0")

    @property
    def lr_size(self) -> int:
        return self.image_size // 4


# ----------------------------------------------------------------------------------------------- networks
def _he(fan_in: int):
    """He (Kaiming) normal initialiser, stddev sqrt(2 / fan_in), truncated at 2 stddev (TL 2.2.5 has no he_normal)."""
    import tensorlayer as tl
    return tl.initializers.truncated_normal(stddev=float(np.sqrt(2.0 / fan_in)))


def build_generator(lr_size: int = 8, width: int = 32, up_width: int = 64, res_blocks: int = 4,
                    residual: bool = False, name: str = "TF_G"):
    """G = G2(G1(.)): 4x super-resolution then refinement.

    Args:
        lr_size: side of the LR input; the outputs are ``4 * lr_size``.
        width, up_width, res_blocks: see :class:`TinyFaceConfig`.
        residual: ``tinyface_residual``: G1 adds its output to the bicubic up-sampling of the LR input
            (``sr = bicubic(LR) + conv1x1(...)``) and G2 adds its output to G1's in the tanh
            pre-activation (``refined = tanh(artanh(clip(sr, +-0.99)) + conv(...))``); both last
            convolutions start at zero, so an untrained G equals bicubic up-sampling. Deviation
            (VDSR/EDSR practice, not in the paper): used by the CPU configuration.
        name: layer-name prefix.

    Returns:
        Static ``tl.models.Model``: LR float32 ``[B, s, s, 3]`` in [-1, 1] (NHWC) ->
        ``(sr [B, 4s, 4s, 3] unbounded (linear 1x1 conv), refined [B, 4s, 4s, 3] in [-1, 1] (tanh))``.

    Source: Bai et al. CVPR 2018 Table 1 (widths / blocks reduced, no BN: see module docstring).
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import Conv2dTranspose
    from ganimation_tl.networks import unique_model_name

    p = name + "_"
    lrelu = lambda t: tf.nn.leaky_relu(t, 0.2)  # noqa: E731

    def conv(x, n, size, lname, cin, act=None):
        return tl.layers.Conv2d(n, (size, size), (1, 1), padding="SAME", act=act, W_init=_he(size * size * cin),
                                b_init=tl.initializers.zeros(), in_channels=cin, name=p + lname)(x)

    def res_blocks_(x, prefix):
        for i in range(res_blocks):
            h = conv(x, width, 3, "%s_res%d_a" % (prefix, i), width, act=tf.nn.relu)
            h = conv(h, width, 3, "%s_res%d_b" % (prefix, i), width)
            h = tl.layers.Lambda(lambda t: 0.1 * t, name=p + "%s_res%d_scale" % (prefix, i))(h)
            x = tl.layers.Elementwise(tf.add, name=p + "%s_res%d_add" % (prefix, i))([x, h])
        return x

    lr = tl.layers.Input([None, lr_size, lr_size, 3], name=p + "lr")
    x = conv(lr, width, 3, "sr_in", 3, act=lrelu)
    x = res_blocks_(x, "sr")
    cin = width
    for i in range(2):
        x = Conv2dTranspose(up_width, in_channels=cin, filter_size=(3, 3), strides=(2, 2), act=lrelu,
                            W_init=_he(9 * cin), b_init=tl.initializers.zeros(), name=p + "sr_up%d" % i)(x)
        cin = up_width
    if residual:
        zero = tl.initializers.zeros()
        delta = tl.layers.Conv2d(3, (1, 1), (1, 1), padding="SAME", W_init=zero, b_init=zero, in_channels=up_width,
                                 name=p + "sr_out")(x)
        size = 4 * lr_size
        upsampled = tl.layers.Lambda(lambda t: tf.image.resize(t, (size, size), method="bicubic"),
                                     name=p + "sr_bicubic")(lr)
        sr = tl.layers.Elementwise(tf.add, name=p + "sr_add")([upsampled, delta])
    else:
        sr = conv(x, 3, 1, "sr_out", up_width)
    y = conv(sr, width, 3, "ref_in", 3, act=tf.nn.relu)
    y = res_blocks_(y, "ref")
    y = conv(y, width, 3, "ref_c1", width, act=tf.nn.relu)
    y = conv(y, up_width, 3, "ref_c2", width, act=tf.nn.relu)
    y = conv(y, up_width, 3, "ref_c3", up_width, act=tf.nn.relu)
    if residual:
        zero = tl.initializers.zeros()
        delta = tl.layers.Conv2d(3, (3, 3), (1, 1), padding="SAME", W_init=zero, b_init=zero, in_channels=up_width,
                                 name=p + "ref_out")(y)
        base = tl.layers.Lambda(lambda t: tf.atanh(tf.clip_by_value(t, -0.99, 0.99)), name=p + "ref_base")(sr)
        refined = tl.layers.Elementwise(lambda a, b, name=None: tf.tanh(a + b), name=p + "ref_add")([base, delta])
    else:
        refined = conv(y, 3, 3, "ref_out", up_width, act=tf.nn.tanh)
    # An identity node as the SR output: TL 2.2.5's graph builder double-counts edges when a model output
    # is also consumed inside the model, and then runs layers before their inputs exist.
    sr_output = tl.layers.Lambda(tf.identity, name=p + "sr_output")(sr)
    return tl.models.Model(inputs=lr, outputs=[sr_output, refined], name=unique_model_name(name))


def build_discriminator(image_size: int = 32, width: int = 16, name: str = "TF_D"):
    """D with two heads: ``D_gan`` (real HR vs. generated) and ``D_clc`` (face vs. non-face).

    Trunk: 4 blocks of conv3x3 + conv3x3 stride 2 (LReLU 0.2), widths w, 2w, 4w, 8w; flatten;
    two Dense(1) heads.

    Args:
        image_size: input side (multiple of 16). width: w.

    Returns:
        Static ``tl.models.Model``: images float32 ``[B, S, S, 3]`` in [-1, 1] -> ``(gan_logit [B, 1],
        face_logit [B, 1])`` (unbounded logits).

    Raises:
        ValueError: image_size not a multiple of 16.

    Source: Bai et al. CVPR 2018 (VGG19 trunk + fc_GAN / fc_clc); trunk reduced, from scratch.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    if image_size % 16:
        raise ValueError("discriminator image_size must be a multiple of 16, got %r" % image_size)
    p = name + "_"
    lrelu = lambda t: tf.nn.leaky_relu(t, 0.2)  # noqa: E731
    x = image = tl.layers.Input([None, image_size, image_size, 3], name=p + "image")
    cin = 3
    for i in range(4):
        n = width * 2 ** i
        x = tl.layers.Conv2d(n, (3, 3), (1, 1), padding="SAME", act=lrelu, W_init=_he(9 * cin),
                             b_init=tl.initializers.zeros(), in_channels=cin, name=p + "b%d_conv" % i)(x)
        x = tl.layers.Conv2d(n, (3, 3), (2, 2), padding="SAME", act=lrelu, W_init=_he(9 * n),
                             b_init=tl.initializers.zeros(), in_channels=n, name=p + "b%d_down" % i)(x)
        cin = n
    flat = tl.layers.Flatten(name=p + "flatten")(x)
    features = (image_size // 16) ** 2 * cin
    gan = tl.layers.Dense(1, in_channels=features, W_init=tl.initializers.random_normal(stddev=0.01),
                          name=p + "fc_gan")(flat)
    clc = tl.layers.Dense(1, in_channels=features, W_init=tl.initializers.random_normal(stddev=0.01),
                          name=p + "fc_clc")(flat)
    return tl.models.Model(inputs=image, outputs=[gan, clc], name=unique_model_name(name))


# ----------------------------------------------------------------------------------------------- metrics / resizing
def psnr(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB of images vs. reference, both ``[N, H, W, 3]`` in [-1, 1] (peak = 1 on [0, 1]).

    Images are clipped to [-1, 1] first. Returns float64 ``[N]`` (inf for identical images is capped at 100).
    """
    a = (np.clip(np.asarray(images, np.float64), -1, 1) + 1) / 2
    b = (np.clip(np.asarray(reference, np.float64), -1, 1) + 1) / 2
    if a.shape != b.shape:
        raise ValueError("psnr needs equal shapes, got %s and %s" % (a.shape, b.shape))
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)
    return np.minimum(10 * np.log10(1.0 / np.maximum(mse, 1e-10)), 100.0)


def bicubic_down(images_uint8: np.ndarray, factor: int = 4) -> np.ndarray:
    """Bicubic down-sampling by ``factor`` (PIL, anti-aliased like MATLAB imresize): uint8 ``[N, h/f, w/f, 3]``."""
    from PIL import Image
    n, h, w = images_uint8.shape[:3]
    size = (w // factor, h // factor)
    return np.stack([np.asarray(Image.fromarray(im).resize(size, Image.BICUBIC)) for im in images_uint8])


def bicubic_up(images: np.ndarray, factor: int = 4) -> np.ndarray:
    """Bicubic up-sampling (OpenCV INTER_CUBIC) of float images ``[N, h, w, 3]``; same dtype and range."""
    import cv2
    h, w = images.shape[1:3]
    return np.stack([cv2.resize(im, (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
                     for im in np.asarray(images)])


def _to_float(images_uint8: np.ndarray) -> np.ndarray:
    return images_uint8.astype(np.float32) / 127.5 - 1.0


# ----------------------------------------------------------------------------------------------- data
def library_photos() -> List[np.ndarray]:
    """Face-free photos bundled with scikit-learn (china, flower) and scikit-image (coffee, rocket,
    textures, microscopy, astronomy, documents...), uint8 RGB ``[H, W, 3]``. Photos showing faces
    (astronaut, camera, chelsea) are left out. Missing ones are skipped."""
    from sklearn.datasets import load_sample_images
    photos = [np.asarray(im, np.uint8) for im in load_sample_images().images]
    try:
        import skimage.data as skdata
    except ImportError:
        return photos
    for name in ("coffee", "rocket", "brick", "grass", "gravel", "hubble_deep_field", "immunohistochemistry",
                 "text", "moon", "page", "coins", "colorwheel", "horse", "clock", "cell"):
        try:
            im = np.asarray(getattr(skdata, name)())
        except Exception:  # noqa: BLE001 - an image that needs a download is simply skipped
            continue
        if im.dtype == bool:
            im = im.astype(np.uint8) * 255
        if im.dtype != np.uint8:
            im = np.clip(im * (255.0 if im.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=-1)
        photos.append(im[..., :3])
    return photos


def _overlap(window, box) -> float:
    """Fraction of ``window``'s area inside ``box`` (both (x0, y0, x1, y1)); an upper bound of their IoU."""
    x0, y0 = max(window[0], box[0]), max(window[1], box[1])
    x1, y1 = min(window[2], box[2]), min(window[3], box[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / max((window[2] - window[0]) * (window[3] - window[1]), 1e-9)


def sample_background_crops(photo: np.ndarray, face_box, count: int, size: int, rng: np.random.Generator,
                            max_overlap: float = 0.3, attempts: int = 50) -> List[np.ndarray]:
    """Random square crops of ``photo`` of which less than ``max_overlap`` of the area lies in
    ``face_box`` (x0, y0, x1, y1; None: no face), side uniform in [size, max(size, min(H, W) / 2)],
    resized to ``size`` (INTER_AREA). The overlap is measured on the window's own area, which
    implies IoU < ``max_overlap`` (the spec's rule) and also rejects small windows inside the face
    (eye or mouth close-ups, which IoU alone lets through).

    Returns up to ``count`` uint8 ``[size, size, 3]`` crops: fewer when no window qualifies (never a
    substitute such as noise; spec pitfall (g)).
    """
    import cv2
    h, w = photo.shape[:2]
    out = []
    largest = max(size, min(h, w) // 2)
    for _ in range(attempts):
        if len(out) >= count:
            break
        side = int(rng.integers(min(size, min(h, w)), min(largest, min(h, w)) + 1))
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        if face_box is not None and _overlap((x0, y0, x0 + side, y0 + side), face_box) >= max_overlap:
            continue
        crop = photo[y0:y0 + side, x0:x0 + side]
        out.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return out


@dataclasses.dataclass
class TinyFaceData:
    """Prepared crops. ``*_hr`` float32 ``[N, S, S, 3]`` in [-1, 1], ``*_lr`` ``[N, S/4, S/4, 3]`` in [-1, 1]
    (bicubic 4x down-sampling of the uint8 HR), ``*_labels`` float32 ``[N]`` (1 face, 0 non-face)."""

    train_hr: np.ndarray
    train_lr: np.ndarray
    train_labels: np.ndarray
    test_hr: np.ndarray
    test_lr: np.ndarray
    test_labels: np.ndarray
    description: str


def _negatives(cfp_dir, identities, photos, count, size, rng, library_part):
    """Half CFP backgrounds of ``identities``, half library-photo crops (``library_part``: 'left'/'right')."""
    from PIL import Image
    from ganimation_tl.datasets import cfp
    crops: List[np.ndarray] = []
    records = cfp.list_records(cfp_dir, identities)
    order = rng.permutation(len(records))
    want_cfp = count // 2
    for i in order:
        if len(crops) >= want_cfp:
            break
        r = records[i]
        if r.fiducial_path is None:
            continue
        with Image.open(r.image_path) as im:
            photo = np.asarray(im.convert("RGB"))
        pts = cfp.read_fiducials(r.fiducial_path)
        lo, hi = pts.min(0), pts.max(0)
        pad = (hi - lo) * 0.15
        box = (lo[0] - pad[0], lo[1] - pad[1], hi[0] + pad[0], hi[1] + pad[1])
        crops += sample_background_crops(photo, box, 2, size, rng)
    crops = crops[:want_cfp]
    while len(crops) < count:
        photo = photos[int(rng.integers(len(photos)))]
        cut = int(photo.shape[1] * 0.7)
        part = photo[:, :cut] if library_part == "left" else photo[:, cut:]
        crops += sample_background_crops(part, None, 1, size, rng)
    return np.stack(crops[:count])


def prepare_data(cfp_dir: str, config: TinyFaceConfig, max_identities: Optional[int] = None) -> TinyFaceData:
    """Faces (CFP, both views) and non-faces, split by identity; HR and bicubic LR.

    Raises:
        InputError: missing ``--cfp_dir`` folder, or too few identities for the split.
    """
    from ganimation_tl.datasets import cfp

    if not cfp_dir or not os.path.isdir(cfp_dir):
        raise InputError("--cfp_dir: CFP data folder %r not found" % (cfp_dir,))
    try:
        records = cfp.list_records(cfp_dir)
    except InputError as error:
        raise InputError("--cfp_dir: %s" % error)
    ids = sorted({r.identity for r in records})
    if max_identities is not None:
        ids = ids[:max_identities]
    if config.tinyface_test_identities >= len(ids):
        raise InputError("--tinyface_test_identities=%d must be below the %d CFP identities in %s"
                         % (config.tinyface_test_identities, len(ids), cfp_dir))
    train_ids, test_ids = cfp.split_identities(ids, config.tinyface_test_identities, seed=config.seed)
    rng = np.random.default_rng(config.seed)
    photos = library_photos()
    size = config.image_size
    parts = []
    for group, count, side in ((train_ids, config.tinyface_negatives_train, "left"),
                               (test_ids, config.tinyface_negatives_test, "right")):
        faces = cfp.load_faces(cfp_dir, size, identities=group, margin=config.tinyface_margin).images
        neg = _negatives(cfp_dir, group, photos, count, size, rng, side)
        hr = np.concatenate([faces, neg])
        labels = np.concatenate([np.ones(len(faces), np.float32), np.zeros(len(neg), np.float32)])
        parts.append((_to_float(hr), _to_float(bicubic_down(hr)), labels))
    (tr_hr, tr_lr, tr_y), (te_hr, te_lr, te_y) = parts
    description = ("CFP faces %dpx (LR %dpx, bicubic): train %d faces (%d ids) + %d non-faces, test %d faces "
                   "(%d ids) + %d non-faces" % (size, size // 4, int(tr_y.sum()), len(train_ids),
                                                int((1 - tr_y).sum()), int(te_y.sum()), len(test_ids),
                                                int((1 - te_y).sum())))
    return TinyFaceData(tr_hr, tr_lr, tr_y, te_hr, te_lr, te_y, description)


# ----------------------------------------------------------------------------------------------- model
def _bce(logits, labels):
    import tensorflow as tf
    labels = tf.reshape(tf.cast(labels, logits.dtype), tf.shape(logits))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


class TinyFaceSRGAN:
    """G (SR + refinement) and the two-headed D with the trainer interface.

    Batches: dicts with ``hr`` ``[B, S, S, 3]``, ``lr`` ``[B, S/4, S/4, 3]`` (both [-1, 1]) and
    ``labels`` ``[B]`` (1 face, 0 non-face).
    """

    sample_grid_tag = "samples/lr_bicubic_sr_refined_hr"

    def __init__(self, config: TinyFaceConfig):
        import tensorflow as tf
        self.config = config
        tf.random.set_seed(config.seed)
        self.generator = build_generator(config.lr_size, config.tinyface_width, config.tinyface_up_width,
                                         config.tinyface_res_blocks, config.tinyface_residual)
        self.discriminator = build_discriminator(config.image_size, config.tinyface_d_width)
        self.generator.train()
        self.discriminator.train()
        self.g_optimizer = tf.keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1, beta_2=0.999)
        self.d_optimizer = tf.keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1, beta_2=0.999)
        self.g_optimizer.build(self.generator.trainable_weights)
        self.d_optimizer.build(self.discriminator.trainable_weights)
        self._pretrain_step = tf.function(self._pretrain_step_impl)
        self._gan_step = tf.function(self._gan_step_impl)
        self._generate = tf.function(lambda lr: self.generator(lr))
        self._classify = tf.function(lambda x: self.discriminator(x))

    def trackables(self) -> Dict[str, object]:
        return {"generator_weights": list(self.generator.all_weights),
                "discriminator_weights": list(self.discriminator.all_weights),
                "generator_optimizer": self.g_optimizer, "discriminator_optimizer": self.d_optimizer}

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """lr, x0.1 for the last third of the epochs (re-implementation: StepLR x0.1 every 3 of 6 epochs)."""
        c = self.config
        lr = c.learning_rate * (0.1 if epoch >= c.epochs * 2.0 / 3.0 else 1.0)
        self.g_optimizer.learning_rate.assign(lr)
        self.d_optimizer.learning_rate.assign(lr)
        return {"generator/learning_rate": lr}

    @staticmethod
    def mse_loss(sr, refined, hr):
        """``L_MSE``: mean squared error of G1 and of G2 outputs, summed (means over all pixels and images)."""
        import tensorflow as tf
        return tf.reduce_mean(tf.square(sr - hr)) + tf.reduce_mean(tf.square(refined - hr))

    def _pretrain_step_impl(self, hr, lr):
        import tensorflow as tf
        with tf.GradientTape() as tape:
            sr, refined = self.generator(lr)
            loss = self.mse_loss(sr, refined, hr)
        grads = tape.gradient(loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"generator/mse": loss, "generator/total": loss}

    def _gan_step_impl(self, hr, lr, labels):
        import tensorflow as tf
        c = self.config
        _, fake = self.generator(lr)
        fake = tf.stop_gradient(fake)
        with tf.GradientTape() as tape:
            real_gan, real_clc = self.discriminator(hr)
            fake_gan, fake_clc = self.discriminator(fake)
            d_adv = _bce(real_gan, tf.ones_like(labels)) + _bce(fake_gan, tf.zeros_like(labels))
            d_clc = _bce(real_clc, labels) + _bce(fake_clc, labels)
            d_loss = d_adv + d_clc
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        with tf.GradientTape() as tape:
            sr, refined = self.generator(lr)
            mse = self.mse_loss(sr, refined, hr)
            gan, clc = self.discriminator(refined)
            face = tf.reshape(labels, [-1, 1])
            per = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(gan), logits=gan)
            g_adv = tf.reduce_sum(per * face) / tf.maximum(tf.reduce_sum(face), 1.0)
            g_clc = _bce(clc, labels)
            g_loss = mse + c.tinyface_alpha * g_adv + c.tinyface_beta * g_clc
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(fake_clc[:, 0] > 0, tf.float32), labels), tf.float32))
        return {"generator/mse": mse, "generator/adversarial": g_adv, "generator/classification": g_clc,
                "generator/total": g_loss, "discriminator/adversarial": d_adv,
                "discriminator/classification": d_clc, "discriminator/total": d_loss,
                "discriminator/face_accuracy_on_generated": accuracy}

    def train_step(self, batch, step: int) -> Dict[str, object]:
        """MSE-only G step during pre-training, then a D step and a G step."""
        if step < self.config.tinyface_pretrain_steps:
            return self._pretrain_step(batch["hr"], batch["lr"])
        return self._gan_step(batch["hr"], batch["lr"], batch["labels"])

    def super_resolve(self, lr: np.ndarray, batch_size: int = 128):
        """``(sr, refined)`` numpy ``[N, S, S, 3]`` for LR ``[N, S/4, S/4, 3]`` in [-1, 1]."""
        outs = [self._generate(np.asarray(lr[i:i + batch_size], np.float32)) for i in range(0, len(lr), batch_size)]
        return (np.concatenate([o[0].numpy() for o in outs]), np.concatenate([o[1].numpy() for o in outs]))

    def face_probability(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """sigmoid(D_clc) ``[N]`` for images ``[N, S, S, 3]`` in [-1, 1]."""
        logits = [self._classify(np.asarray(images[i:i + batch_size], np.float32))[1].numpy()[:, 0]
                  for i in range(0, len(images), batch_size)]
        return 1.0 / (1.0 + np.exp(-np.concatenate(logits)))

    def sample_grid(self, batch):
        """Rows of up to 8 crops: LR (nearest-up), bicubic, SR (G1), refined (G2), HR."""
        import cv2
        lr, hr = np.asarray(batch["lr"])[:8], np.asarray(batch["hr"])[:8]
        sr, refined = self.super_resolve(lr)
        size = hr.shape[1]
        nearest = [cv2.resize(im, (size, size), interpolation=cv2.INTER_NEAREST) for im in lr]
        return images_grid([nearest, list(np.clip(bicubic_up(lr), -1, 1)), list(np.clip(sr, -1, 1)),
                            list(refined), list(hr)])


def evaluate(model: TinyFaceSRGAN, data: TinyFaceData) -> Dict[str, float]:
    """Held-out metrics on the test split.

    Returns:
        ``heldout/psnr_refined``, ``psnr_sr`` and ``psnr_bicubic`` (mean dB over test faces), ``psnr_gain_db``
        (refined - bicubic), ``face_accuracy_generated`` (D_clc at 0.5 on G(LR) of all test crops),
        ``face_accuracy_hr`` (D_clc on HR crops), ``face_accuracy_bicubic_by_d`` (D_clc on
        bicubic-up-sampled crops), ``num_faces``, ``num_nonfaces``.
    """
    faces = data.test_labels > 0.5
    sr, refined = model.super_resolve(data.test_lr)
    bicubic = bicubic_up(data.test_lr)
    result = {
        "heldout/psnr_refined": float(psnr(refined[faces], data.test_hr[faces]).mean()),
        "heldout/psnr_sr": float(psnr(sr[faces], data.test_hr[faces]).mean()),
        "heldout/psnr_bicubic": float(psnr(bicubic[faces], data.test_hr[faces]).mean()),
    }
    result["heldout/psnr_gain_db"] = result["heldout/psnr_refined"] - result["heldout/psnr_bicubic"]
    for key, images in (("generated", refined), ("hr", data.test_hr), ("bicubic_by_d", np.clip(bicubic, -1, 1))):
        prob = model.face_probability(images)
        result["heldout/face_accuracy_" + key] = float(((prob > 0.5) == faces).mean())
    result["heldout/num_faces"] = float(faces.sum())
    result["heldout/num_nonfaces"] = float((~faces).sum())
    return result


def train_bicubic_classifier(data: TinyFaceData, config: TinyFaceConfig, steps: int,
                             max_minutes: Optional[float] = None) -> Dict[str, float]:
    """The comparison classifier: the same D architecture (face head), trained and tested on
    bicubic-up-sampled LR crops (no generator), BCE, Adam with the config's rate, balanced batches.

    Returns:
        ``{"bicubic_classifier/accuracy": test accuracy, "bicubic_classifier/steps": steps run}``.
    """
    import time
    import tensorflow as tf
    tf.random.set_seed(config.seed + 1)
    net = build_discriminator(config.image_size, config.tinyface_d_width, name="TF_Dbic")
    net.train()
    opt = tf.keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1, beta_2=0.999)
    opt.build(net.trainable_weights)
    train_x = np.clip(bicubic_up(data.train_lr), -1, 1).astype(np.float32)
    test_x = np.clip(bicubic_up(data.test_lr), -1, 1).astype(np.float32)

    @tf.function
    def step_fn(x, y):
        with tf.GradientTape() as tape:
            loss = _bce(net(x)[1], y)
        grads = tape.gradient(loss, net.trainable_weights)
        opt.apply_gradients(zip(grads, net.trainable_weights))
        return loss

    rng = np.random.default_rng(config.seed + 1)
    pos, neg = np.flatnonzero(data.train_labels > 0.5), np.flatnonzero(data.train_labels < 0.5)
    half = config.batch_size // 2
    start, done = time.time(), 0
    for _ in range(steps):
        idx = np.concatenate([rng.choice(pos, half), rng.choice(neg, half)])
        step_fn(train_x[idx], data.train_labels[idx])
        done += 1
        if max_minutes is not None and time.time() - start > 60 * max_minutes:
            break
    net.eval()
    logits = np.concatenate([net(test_x[i:i + 256])[1].numpy()[:, 0] for i in range(0, len(test_x), 256)])
    accuracy = float(((logits > 0) == (data.test_labels > 0.5)).mean())
    return {"bicubic_classifier/accuracy": accuracy, "bicubic_classifier/steps": float(done)}


# ----------------------------------------------------------------------------------------------- CLI
_FLAGS = {
    "learning_rate": ("float", "Adam learning rate of G and D."),
    "beta1": ("float", "Adam beta1."),
    "tinyface_width": ("integer", "Generator width (paper 64)."),
    "tinyface_up_width": ("integer", "Generator up-sampling / last refinement width (paper 256)."),
    "tinyface_res_blocks": ("integer", "Residual blocks in each of the SR and refinement networks (paper 8)."),
    "tinyface_d_width": ("integer", "Discriminator first-block width (doubling over 4 blocks)."),
    "tinyface_alpha": ("float", "Weight of the generator's adversarial term (paper 1e-3)."),
    "tinyface_beta": ("float", "Weight of the generator's face-classification term (paper 1e-2)."),
    "tinyface_pretrain_steps": ("integer", "MSE-only generator steps before the GAN phase."),
    "tinyface_test_identities": ("integer", "CFP identities held out for testing."),
    "tinyface_negatives_train": ("integer", "Non-face training crops."),
    "tinyface_negatives_test": ("integer", "Non-face test crops."),
    "tinyface_margin": ("float", "Face crop margin around the fiducial box (fraction of its side)."),
    "tinyface_residual": ("bool", "G1 refines a bicubic up-sampling and G2 refines G1's output (residual skips, "
                                  "zero-initialised last layers; not in the paper)."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define the common flags, this model's config flags, ``--cfp_dir`` and ``--tinyface_max_identities``."""
    define_model_flags(_FLAGS, flag_values, extra=[
        ("string", "cfp_dir", "CFP data folder (holding Data/Images, Data/Fiducials)."),
        ("integer", "tinyface_max_identities", "Use only the first N CFP identities (tests).")])


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """Train from parsed flags, then evaluate on the held-out split (``<workdir>/heldout_metrics.json``).

    Returns the trainer's last metrics plus the ``heldout/...`` metrics of :func:`evaluate`.

    Raises:
        InputError: bad settings (e.g. ``--image_size`` not a multiple of 16) or a missing ``--cfp_dir``.
    """
    config = config_or_input_error(TinyFaceConfig, flag_values)
    cfp_dir = require_flag(flag_values, "cfp_dir", "the CFP folder, e.g. ../shared/data/cfp")
    data = prepare_data(cfp_dir, config, flag_values.tinyface_max_identities)
    half = config.batch_size // 2
    pos, neg = np.flatnonzero(data.train_labels > 0.5), np.flatnonzero(data.train_labels < 0.5)
    steps = min(len(pos), len(neg)) // half
    model = TinyFaceSRGAN(config)

    def make_dataset(epoch: int, skip: int):
        rng = np.random.default_rng([config.seed, epoch])
        p, n = rng.permutation(pos), rng.permutation(neg)
        for b in range(skip, steps):
            idx = np.concatenate([p[b * half:(b + 1) * half], n[b * half:(b + 1) * half]])
            yield {"hr": data.train_hr[idx], "lr": data.train_lr[idx], "labels": data.train_labels[idx]}

    return train_and_evaluate(MODEL_NAME, model, make_dataset, lambda: evaluate(model, data), steps_per_epoch=steps,
                              epochs=config.epochs, flag_values=flag_values, config=config,
                              data_description=data.description)


registry.register(registry.ModelEntry(
    name=MODEL_NAME,
    summary="Tiny-face GAN (Bai et al., CVPR 2018): 4x super-resolution + refinement generator, discriminator "
            "with real/fake and face/non-face heads, on CFP faces and background crops",
    define_flags=define_flags,
    train=train,
))
