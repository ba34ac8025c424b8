"""DrNet: disentangled content and pose representations from video, on Moving MNIST.

Paper: E. Denton and V. Birodkar, "Unsupervised Learning of Disentangled Representations from Video",
NIPS 2017. Official code: edenton/drnet (Lua Torch) and edenton/drnet-py (PyTorch); facts as listed in
``../shared/docs/papers/batch1_dagan_luo_dscnet_drnet_vda_deepmask.md`` section 4.

Model (paper section 3, notation of the paper): a content encoder E_c, a pose encoder E_p, a decoder D
and a scene discriminator C; an LSTM predicts future pose vectors for video prediction.

* Reconstruction: ``L_rec = || D(E_c(x^t), E_p(x^{t+k})) - x^{t+k} ||_2^2`` (mean over pixels).
* Similarity: ``L_sim = || E_c(x^t) - E_c(x^{t+k'}) ||_2^2`` with the second code a fixed target
  (stop-gradient, as drnet-py), mean over code units.
* Scene discriminator (eq. for L_adv(C)): ``-log C(E_p(x_i^t), E_p(x_i^{t+k})) - log(1 - C(E_p(x_i^t),
  E_p(x_j^{t+k})))``, i != j; first half of a batch same-video pairs (target 1), second half pairs with
  the second pose taken from another video (target 0).
* Adversarial pose loss, "maximally uncertain" target 1/2 on same-video pairs:
  ``L_adv(E_p) = -1/2 log C(.) - 1/2 log(1 - C(.))`` (binary cross-entropy with target 0.5), back-propagated
  into the first pose code only.
* Total (eq. 3): ``L = L_rec + alpha L_sim + beta L_adv(E_p)``; C is trained on ``L_adv(C)`` alone
  (drnet-py applies no beta to C's loss; we follow the code).
* LSTM (section 3.2): ``h~_p^{t+1} = LSTM(E_c(x^{n_past}), h_p^t)``, loss ``|| h~_p^{t+1} - E_p(x^{t+1}) ||^2``
  with E_c, E_p frozen, teacher-forced; at test time predictions are fed back for t >= n_past and frames
  are decoded with ``D(h_c, h~_p^t)``.

Architecture (DCGAN-style, drnet-py ``dcgan_64`` scaled to 32x32): encoders are ``log2(S/4)`` 4x4 stride-2
conv-BN-LeakyReLU(0.2) blocks (nf, 2nf, 4nf) then a 4x4 VALID conv to the code, BN, tanh. The decoder
mirrors them (a dense layer to 4x4x4nf, BN, LeakyReLU, 4x4 stride-2 transposed convs with BN-LeakyReLU, the
last one to the frame channels with a sigmoid). C: Linear(2|h_p| -> sd_nf) ReLU, Linear(sd_nf) ReLU, Linear(1).
LSTM: Linear(|h_c|+|h_p| -> H), L LSTM layers of H units, Linear(H -> |h_p|), tanh.

Data (``--drnet_data``):

* ``moving_mnist`` (default): Moving MNIST from the real MNIST digits (:mod:`ganimation_tl.datasets.moving_mnist`),
  two digits, each in its own channel (drnet-py), generated on the fly (a new seeded batch every iteration).
* ``face_video``: one real face video (``--video_path``; ``configs/drnet_face_debug.cfg`` uses
  ``../shared/data/video/WolfgangLanger_Pexels.mp4``), the face tracked with MTCNN and cropped to a fixed-size
  RGB square per frame (:mod:`ganimation_tl.datasets.face_video`): identity is the content, expression and head
  motion the pose (the issue's setting; the paper's nearest is KTH, one person per video, content = person and
  background, pose = the person's movement). Clips are T frames taken every
  ``drnet_video_stride``-th frame inside blocks of ``drnet_video_block`` frames; every
  ``drnet_video_test_every``-th block is held out for evaluation; half the clips are mirrored left-right;
  ``drnet_video_max_frames`` (0: all) reads only the first frames. ``drnet_video_shift`` / ``drnet_video_zoom`` /
  ``drnet_video_colour`` (0: off) add one random crop shift, scale and colour change per training clip, the same
  for all its frames (:func:`augment_clip`; ours, against overfitting one video).
  ``drnet_video_far_similarity`` (0: off; ours) is the probability that the similarity target x^{t+k'} of a clip
  is instead a frame from anywhere in the training video, mirrored and augmented like the clip
  (:func:`use_far_similarity_targets`): with one person the whole video is one scene, so content codes of frames
  seconds apart should match too.
  With a single person the "other video" of the scene discriminator is another clip of the same video
  (another time), and the content code has only one identity to represent.

Deviations from the paper / code, and why:

* Frames 32x32 with 16x16 digits instead of 64x64 with 32x32 digits, nf 32 instead of 64, |h_c| 32 and
  |h_p| 5, scene discriminator 64 units, LSTM 1 x 64 units instead of 2 x 256: CPU budget (spec section (f)).
  ``configs/drnet.cfg`` has the paper-code sizes (64 px, nf 64, 128/10, 2 x 256).
* Face video (``configs/drnet_face_debug.cfg``, ``drnet_face.cfg``): |h_p| 16 instead of drnet-py's 10 (ours).
  The expressions and head poses of held-out seconds need more than 10 numbers: on test seeds 0-2, held-out
  reconstruction 0.43-0.45x the copy-frame error, against 0.47-0.51x with 10 (``docs/results/drnet_face.md``).
* ``--drnet_skips`` (off by default: the paper's architecture) adds drnet-py's ``dcgan_unet`` skip connections,
  the content encoder's feature maps concatenated into the decoder at each resolution (drnet-py's default content
  model, also for MNIST). In our 1500-step CPU probe it did not change the content-swap result (chance).
* ``--drnet_lr_decay_epochs`` (0 by default: drnet-py's constant rates) decays the DrNet-phase rates of E_c, E_p,
  D and C linearly to 0 over the last epochs of that phase (GANimation's schedule; the face-video config uses it).
* The 1x1 -> 4x4 first decoder layer is a dense layer (same map as a 4x4 VALID transposed conv on a 1x1 input).
* Frame offsets k are drawn uniformly in [1, max_step] (Lua style) rather than drnet-py's consecutive frames
  x[0..3], for stronger disentangling pressure (spec pitfall "frame sampling").
* BatchNorm is ``ganimation_tl.layers.BatchNorm`` (TL 2.2.5's BatchNorm fails inside tf.function on TF 2.21); its
  moving variance starts at 1.
* Negatives for C use the second half of the batch rolled by one (always another video) instead of a random
  permutation (which can pair a video with itself).
* The LSTM's learning rate is 2e-3 (Lua's value; drnet-py uses 2e-4) for the short CPU schedule.
* ``--drnet_lstm_residual`` (off by default; ours): the LSTM predicts the change of the pose code,
  ``h~_p^{t+1} = clip(h_p^t + Linear(h_t), -1, 1)`` with a zero-initialised output layer, instead of drnet-py's
  ``tanh(Linear(h_t))``; untrained it repeats the last pose, so its frames start at the decoded last observed
  frame rather than at an average pose (on the face video the plain LSTM predicted worse than repeating the
  last frame at every horizon).
* ``--drnet_anchor_prediction`` (off by default; ours): a predicted frame is the last observed frame plus the
  change the decoder makes between the last observed pose and the predicted one,
  ``x^{t0} + D(h_c, h~_p^t) - D(h_c, h_p^{t0})`` (t0 = n_past - 1, clipped to [0, 1]), instead of ``D(h_c, h~_p^t)``.
  The decoder's error on a whole frame then cancels where the pose does not change; on the face video that
  error (MSE 0.007 on held-out frames) is twice the change between consecutive frames, so no pose predictor
  decoded directly can beat repeating the last frame at short horizons. Only prediction changes; training and
  the reconstruction / swap results are the paper's.
* ``--drnet_lstm_feedback`` (off by default; ours): the LSTM's training loss is computed as at test time, its own
  predictions fed back after the n_past observed poses (drnet-py trains teacher-forced on every step).
* ``--drnet_pose_noise`` (0 by default; ours): Gaussian noise of this standard deviation is added to h_p before the
  decoder in the training step (not in C's input, not at evaluation), a regulariser against the decoder
  memorising the pose codes of the few hundred frames of one video.
* Face video: the paper trains on many videos (KTH: 25 people, 600 videos); here there is one 20-second video of
  one person, so the content code is not asked to separate identities, only to stay the same
  across time, and the scene discriminator's negatives are clips of the same video at other times.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import numpy as np
from absl import flags

from ganimation_tl import registry
from ganimation_tl.sibling import (MNIST_ADAM_FLAGS, config_or_input_error, define_config_field_flags,
                                   define_model_flags, images_grid, run_trainer)

NAME = "drnet"
#: Values of ``--drnet_data``.
DATA_SOURCES = ("moving_mnist", "face_video")


@dataclasses.dataclass(frozen=True)
class DrNetConfig:
    """DrNet hyper-parameters (field names are flag names; see configs/drnet.cfg for sources).

    Raises:
        ValueError: on construction, for a non-positive size, an image size that is not 4 * 2**n, a digit
            larger than the frame, max_step >= sequence length, or a negative loss weight.
    """

    image_size: int = 32
    batch_size: int = 32
    epochs: int = 5
    seed: int = 0
    learning_rate: float = 2e-3
    beta1: float = 0.5
    drnet_epoch_size: int = 300
    drnet_content_dim: int = 32
    drnet_pose_dim: int = 5
    drnet_nf: int = 32
    drnet_sd_nf: int = 64
    drnet_alpha: float = 1.0
    drnet_beta: float = 1e-4
    drnet_max_step: int = 8
    drnet_num_digits: int = 2
    drnet_digit_size: int = 16
    drnet_max_speed: int = 3
    drnet_lstm_epochs: int = 2
    drnet_lstm_hidden: int = 64
    drnet_lstm_layers: int = 1
    drnet_lstm_lr: float = 2e-3
    drnet_n_past: int = 5
    drnet_n_future: int = 5
    drnet_data: str = "moving_mnist"
    drnet_video_stride: int = 2
    drnet_video_block: int = 48
    drnet_video_test_every: int = 5
    drnet_video_max_frames: int = 0
    drnet_skips: bool = False
    drnet_video_shift: float = 0.0
    drnet_video_zoom: float = 0.0
    drnet_video_colour: float = 0.0
    drnet_lstm_residual: bool = False
    drnet_lstm_feedback: bool = False
    drnet_pose_noise: float = 0.0
    drnet_anchor_prediction: bool = False
    drnet_video_far_similarity: float = 0.0
    drnet_lr_decay_epochs: int = 0

    def __post_init__(self):
        positive = ("image_size", "batch_size", "epochs", "drnet_epoch_size", "drnet_content_dim", "drnet_pose_dim",
                    "drnet_nf", "drnet_sd_nf", "drnet_max_step", "drnet_num_digits", "drnet_digit_size",
                    "drnet_max_speed", "drnet_lstm_hidden", "drnet_lstm_layers", "drnet_n_past", "drnet_n_future",
                    "drnet_video_stride", "drnet_video_block")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if self.drnet_lstm_epochs < 0:
            raise ValueError("drnet_lstm_epochs must be >= 0, got %r" % self.drnet_lstm_epochs)
        side = self.image_size
        while side > 4 and side % 2 == 0:
            side //= 2
        if side != 4:
            raise ValueError("image_size must be 4 * 2**n (e.g. 32 or 64), got %r" % self.image_size)
        if self.drnet_digit_size > self.image_size:
            raise ValueError("drnet_digit_size %d exceeds image_size %d" % (self.drnet_digit_size, self.image_size))
        if self.drnet_max_step >= self.sequence_length:
            raise ValueError("drnet_max_step (%d) must be below the sequence length n_past + n_future (%d)"
                             % (self.drnet_max_step, self.sequence_length))
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (the scene discriminator needs two halves)")
        for name in ("drnet_alpha", "drnet_beta", "learning_rate", "drnet_lstm_lr", "drnet_pose_noise"):
            if getattr(self, name) < 0:
                raise ValueError("%s must be >= 0, got %r" % (name, getattr(self, name)))
        if not 0 <= self.beta1 < 1:
            raise ValueError("beta1 must be in [0, 1), got %r" % self.beta1)
        if self.drnet_data not in DATA_SOURCES:
            raise ValueError("drnet_data must be one of %s, got %r" % (", ".join(DATA_SOURCES), self.drnet_data))
        if not 0 <= self.drnet_lr_decay_epochs <= self.epochs:
            raise ValueError("drnet_lr_decay_epochs must be in [0, epochs = %d], got %r"
                             % (self.epochs, self.drnet_lr_decay_epochs))
        if not 0 <= self.drnet_video_far_similarity <= 1:
            raise ValueError("drnet_video_far_similarity must be in [0, 1], got %r" % self.drnet_video_far_similarity)
        if self.drnet_video_far_similarity > 0 and self.drnet_data != "face_video":
            raise ValueError("drnet_video_far_similarity needs drnet_data=face_video (a Moving MNIST sequence has no "
                             "frames outside its clip), got drnet_data=%r" % self.drnet_data)
        if self.drnet_data == "face_video":
            if self.drnet_video_max_frames < 0:
                raise ValueError("drnet_video_max_frames must be >= 0 (0: all), got %r" % self.drnet_video_max_frames)
            if self.drnet_video_test_every < 2:
                raise ValueError("drnet_video_test_every must be >= 2, got %r" % self.drnet_video_test_every)
            for name in ("drnet_video_shift", "drnet_video_zoom", "drnet_video_colour"):
                if not 0 <= getattr(self, name) < 0.5:
                    raise ValueError("%s must be in [0, 0.5), got %r" % (name, getattr(self, name)))
            if self.clip_span > self.drnet_video_block:
                raise ValueError("a clip spans (n_past + n_future - 1) x drnet_video_stride + 1 = %d frames, more "
                                 "than drnet_video_block (%d)" % (self.clip_span, self.drnet_video_block))

    @property
    def channels(self) -> int:
        """Frame channels: one per digit (Moving MNIST, drnet-py) or 3 (RGB face video)."""
        return 3 if self.drnet_data == "face_video" else self.drnet_num_digits

    @property
    def clip_span(self) -> int:
        """Video frames covered by one face-video clip of T frames taken every ``drnet_video_stride`` frames."""
        return (self.sequence_length - 1) * self.drnet_video_stride + 1

    @property
    def sequence_length(self) -> int:
        """T = n_past + n_future frames per generated video."""
        return self.drnet_n_past + self.drnet_n_future

    @property
    def main_steps(self) -> int:
        """Iterations of the DrNet phase (E_c, E_p, D, C); the LSTM phase follows."""
        return self.epochs * self.drnet_epoch_size


# ---------------------------------------------------------------------------------------------- networks
def _bn(x, n, act, name):
    """:class:`ganimation_tl.layers.BatchNorm` (TL 2.2.5's BatchNorm fails inside tf.function) on ``x``."""
    from ganimation_tl.layers import BatchNorm
    return BatchNorm(n, decay=0.9, act=act, name=name)(x)


def build_encoder(image_size: int, channels: int, nf: int, code_dim: int, name: str, skips: bool = False):
    """DCGAN encoder (E_c or E_p; drnet-py ``dcgan_64.encoder``) as a static TL model.

    Input float32 ``[B, S, S, C]`` in [0, 1] (NHWC). Output ``[B, code_dim]`` in (-1, 1) (BN then tanh).
    ``log2(S / 4)`` blocks of 4x4/2 conv (nf * 2**i channels, no bias) + BN + LeakyReLU(0.2), then a 4x4
    VALID conv to ``code_dim``, BN, tanh. With ``skips`` (drnet-py ``dcgan_unet`` content encoder) the outputs
    are ``[code, f_0, ..., f_{n-1}]``: the code and each block's feature map ``[B, S / 2**(i+1), S / 2**(i+1),
    nf * 2**i]`` for the decoder's skip connections.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import weight_init
    from ganimation_tl.networks import unique_model_name

    p = name + "_"
    x = inp = tl.layers.Input([None, image_size, image_size, channels], name=p + "frames")
    side, ch_in, ch, i = image_size, channels, nf, 0
    features = []
    while side > 4:
        x = tl.layers.Conv2d(ch, (4, 4), (2, 2), padding="SAME", W_init=weight_init(), b_init=None,
                             in_channels=ch_in, name=p + "conv%d" % i)(x)
        x = _bn(x, ch, lambda t: tf.nn.leaky_relu(t, 0.2), p + "bn%d" % i)
        features.append(x)
        side, ch_in, ch, i = side // 2, ch, ch * 2, i + 1
    x = tl.layers.Conv2d(code_dim, (4, 4), (1, 1), padding="VALID", W_init=weight_init(), b_init=None,
                         in_channels=ch_in, name=p + "code_conv")(x)
    x = _bn(x, code_dim, tf.nn.tanh, p + "code_bn")
    x = tl.layers.Reshape([-1, code_dim], name=p + "code")(x)
    return tl.models.Model(inputs=inp, outputs=[x] + features if skips else x, name=unique_model_name(name))


def build_decoder(image_size: int, channels: int, nf: int, content_dim: int, pose_dim: int, name: str,
                  skips: bool = False):
    """DCGAN decoder D(h_c, h_p) (drnet-py ``dcgan_64.decoder``; with ``skips`` its ``dcgan_unet`` decoder) as a
    static TL model.

    Inputs ``[h_c [B, content_dim], h_p [B, pose_dim]]``, plus with ``skips`` the content encoder's feature maps
    ``f_0 .. f_{n-1}`` (see :func:`build_encoder`); output frames float32 ``[B, S, S, C]`` in (0, 1) (sigmoid).
    Dense to 4x4x(nf * 2**(n-1)) + BN + LeakyReLU(0.2), then n 4x4/2 transposed convs (BN + LeakyReLU, the last
    to C channels with a sigmoid), n = log2(S / 4); with ``skips`` each transposed conv's input is concatenated
    (channels) with the content feature map of the same resolution, as in a U-Net.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.layers import Conv2dTranspose, weight_init
    from ganimation_tl.networks import unique_model_name

    p = name + "_"
    n_up = int(round(np.log2(image_size // 4)))
    hc = tl.layers.Input([None, content_dim], name=p + "content")
    hp = tl.layers.Input([None, pose_dim], name=p + "pose")
    skip_inputs = [tl.layers.Input([None, image_size // 2 ** (i + 1), image_size // 2 ** (i + 1), nf * 2 ** i],
                                   name=p + "skip%d" % i) for i in range(n_up)] if skips else []
    x = tl.layers.Concat(concat_dim=-1, name=p + "concat")([hc, hp])
    ch = nf * 2 ** (n_up - 1)
    x = tl.layers.Dense(4 * 4 * ch, W_init=weight_init(), b_init=None, in_channels=content_dim + pose_dim,
                        name=p + "fc")(x)
    x = tl.layers.Reshape([-1, 4, 4, ch], name=p + "fc_reshape")(x)
    x = _bn(x, ch, lambda t: tf.nn.leaky_relu(t, 0.2), p + "fc_bn")
    for i in range(n_up):
        last = i == n_up - 1
        out = channels if last else ch // 2
        ch_in = ch
        if skips:
            x = tl.layers.Concat(concat_dim=-1, name=p + "skip_concat%d" % i)([x, skip_inputs[n_up - 1 - i]])
            ch_in = ch + nf * 2 ** (n_up - 1 - i)
        x = Conv2dTranspose(out, in_channels=ch_in, filter_size=(4, 4), strides=(2, 2), W_init=weight_init(),
                            b_init=tl.initializers.zeros() if last else None,
                            act=tf.nn.sigmoid if last else None, name=p + "up%d" % i)(x)
        if not last:
            x = _bn(x, out, lambda t: tf.nn.leaky_relu(t, 0.2), p + "up%d_bn" % i)
        ch = out
    return tl.models.Model(inputs=[hc, hp] + skip_inputs, outputs=x, name=unique_model_name(name))


def build_scene_discriminator(pose_dim: int, hidden: int, name: str):
    """Scene discriminator C(h_p^1, h_p^2) (drnet-py ``classifiers.scene_discriminator``).

    Inputs ``[h_p1 [B, pose_dim], h_p2 [B, pose_dim]]``; output logits ``[B, 1]`` (C = sigmoid(logit) is the
    probability that both pose codes come from the same video).
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    p = name + "_"
    a = tl.layers.Input([None, pose_dim], name=p + "pose1")
    b = tl.layers.Input([None, pose_dim], name=p + "pose2")
    x = tl.layers.Concat(concat_dim=-1, name=p + "concat")([a, b])
    x = tl.layers.Dense(hidden, act=tf.nn.relu, in_channels=2 * pose_dim, name=p + "fc0")(x)
    x = tl.layers.Dense(hidden, act=tf.nn.relu, in_channels=hidden, name=p + "fc1")(x)
    x = tl.layers.Dense(1, in_channels=hidden, name=p + "logit")(x)
    return tl.models.Model(inputs=[a, b], outputs=x, name=unique_model_name(name))


def _lstm_layer_class():
    import tensorflow as tf
    import tensorlayer as tl

    class PoseLSTM(tl.layers.Layer):
        """Linear(in -> H), ``layers`` LSTM layers of H units, Linear(H -> out), tanh (drnet-py ``models/lstm.py``).

        Written on TF primitives because TL 2.2.5's RNN layers fail on Keras 3 (toolchain.md 1.1).
        ``step(x [B, in], state) -> (y [B, out] in (-1, 1), state)``; ``state`` is a tuple of (h, c) pairs
        ``[B, H]``; ``zero_state(B)`` starts it. Gates: i, f, o sigmoid, g tanh, forget-gate bias +1.
        With ``residual`` (ours, ``--drnet_lstm_residual``) the last ``out`` inputs are the current pose p and
        the output is ``clip(p + Linear(h), -1, 1)`` (no tanh), the output layer initialised to zero, so the
        untrained LSTM repeats the last pose and learns the change.
        """

        def __init__(self, in_dim, hidden, layers, out_dim, name=None, residual=False):
            super().__init__(name)
            self.in_dim, self.hidden, self.layers, self.out_dim = int(in_dim), int(hidden), int(layers), int(out_dim)
            self.residual = bool(residual)
            if self.residual and self.out_dim > self.in_dim:
                raise ValueError("a residual pose LSTM needs the pose among its inputs (in %d < out %d)"
                                 % (self.in_dim, self.out_dim))
            self.build(None)
            self._built = True

        def build(self, inputs_shape):
            init = tl.initializers.truncated_normal(stddev=0.05)
            zeros = tl.initializers.zeros()
            h = self.hidden
            self.w_in = self._get_weights("w_in", (self.in_dim, h), init=init)
            self.b_in = self._get_weights("b_in", (h,), init=zeros)
            self.cells = [(self._get_weights("w_lstm%d" % i, (2 * h, 4 * h), init=init),
                           self._get_weights("b_lstm%d" % i, (4 * h,), init=zeros)) for i in range(self.layers)]
            self.w_out = self._get_weights("w_out", (h, self.out_dim), init=zeros if self.residual else init)
            self.b_out = self._get_weights("b_out", (self.out_dim,), init=zeros)

        def zero_state(self, batch):
            z = tf.zeros([batch, self.hidden])
            return tuple((z, z) for _ in range(self.layers))

        def step(self, x, state):
            pose = x[:, self.in_dim - self.out_dim:]
            x = tf.matmul(x, self.w_in) + self.b_in
            new_state = []
            for (w, b), (h, c) in zip(self.cells, state):
                gates = tf.matmul(tf.concat([x, h], -1), w) + b
                i, f, o, g = tf.split(gates, 4, axis=-1)
                c = tf.sigmoid(f + 1.0) * c + tf.sigmoid(i) * tf.tanh(g)
                h = tf.sigmoid(o) * tf.tanh(c)
                new_state.append((h, c))
                x = h
            out = tf.matmul(x, self.w_out) + self.b_out
            if self.residual:
                return tf.clip_by_value(pose + out, -1.0, 1.0), tuple(new_state)
            return tf.tanh(out), tuple(new_state)

        def forward(self, inputs):
            """Teacher-forced unroll: inputs ``[B, T, in]`` -> outputs ``[B, T, out]``."""
            state = self.zero_state(tf.shape(inputs)[0])
            outs = []
            for t in range(inputs.shape[1]):
                y, state = self.step(inputs[:, t], state)
                outs.append(y)
            return tf.stack(outs, axis=1)

    return PoseLSTM


def build_pose_lstm(content_dim: int, pose_dim: int, hidden: int, layers: int, name: str, residual: bool = False):
    """The future-pose LSTM as a TL layer (see ``PoseLSTM``): input ``[h_c, h_p^t]`` (``content_dim +
    pose_dim``), output the next pose code ``[B, pose_dim]`` in [-1, 1]; with ``residual`` it predicts the change
    from h_p^t (``--drnet_lstm_residual``)."""
    return _lstm_layer_class()(content_dim + pose_dim, hidden, layers, pose_dim, name=name, residual=residual)


# ---------------------------------------------------------------------------------------------- losses
def bce_with_logits(logits, targets):
    """Mean binary cross-entropy ``-[y log s(l) + (1-y) log(1-s(l))]`` of logits ``[B, 1]`` vs targets in [0, 1]."""
    import tensorflow as tf
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits))


def maximally_uncertain_loss(logits):
    """L_adv(E_p) of the paper: BCE of C's logits ``[B, 1]`` against the target 1/2 (mean over the batch).
    Its minimum, log 2 ~ 0.693, is reached when C outputs 0.5."""
    import tensorflow as tf
    return bce_with_logits(logits, 0.5 * tf.ones_like(logits))


# ---------------------------------------------------------------------------------------------- model
class DrNet:
    """E_c, E_p, D, C and the pose LSTM with their optimisers and tf.function steps (trainer interface).

    Frames are float32 NHWC ``[B, S, S, C]`` in [0, 1]. Use :meth:`encode_content`, :meth:`encode_pose`,
    :meth:`decode` and :meth:`predict` (all in inference mode) for evaluation.
    """

    sample_grid_tag = "samples/content_pose_reconstruction_swap"

    def __init__(self, config: DrNetConfig, channels: int):
        import tensorflow as tf

        self.config = config
        self.channels = channels
        c = config
        tf.random.set_seed(c.seed)
        self.content_encoder = build_encoder(c.image_size, channels, c.drnet_nf, c.drnet_content_dim, "drnet_Ec",
                                             skips=c.drnet_skips)
        self.pose_encoder = build_encoder(c.image_size, channels, c.drnet_nf, c.drnet_pose_dim, "drnet_Ep")
        self.decoder = build_decoder(c.image_size, channels, c.drnet_nf, c.drnet_content_dim, c.drnet_pose_dim,
                                     "drnet_D", skips=c.drnet_skips)
        self.scene_discriminator = build_scene_discriminator(c.drnet_pose_dim, c.drnet_sd_nf, "drnet_C")
        self.lstm = build_pose_lstm(c.drnet_content_dim, c.drnet_pose_dim, c.drnet_lstm_hidden, c.drnet_lstm_layers,
                                    "drnet_lstm", residual=c.drnet_lstm_residual)
        self.main_vars = (self.content_encoder.trainable_weights + self.pose_encoder.trainable_weights
                          + self.decoder.trainable_weights)
        self.opt_main = tf.keras.optimizers.Adam(c.learning_rate, beta_1=c.beta1)
        self.opt_scene = tf.keras.optimizers.Adam(c.learning_rate, beta_1=c.beta1)
        self.opt_lstm = tf.keras.optimizers.Adam(c.drnet_lstm_lr, beta_1=0.9)
        self.opt_main.build(self.main_vars)
        self.opt_scene.build(self.scene_discriminator.trainable_weights)
        self.opt_lstm.build(self.lstm.trainable_weights)
        self._main_step = tf.function(self._main_step_impl)
        self._scene_step = tf.function(self._scene_step_impl)
        self._lstm_step = tf.function(self._lstm_step_impl)
        self._encode_eval = tf.function(self._encode_eval_impl)
        self._decode_eval = tf.function(self._decode_eval_impl)
        self._scene_eval = tf.function(self._scene_eval_impl)

    # trainer interface -----------------------------------------------------------------------------
    def trackables(self) -> dict:
        """Variables (all_weights: BN moving statistics included) and optimisers to checkpoint."""
        return {"drnet_content_encoder": self.content_encoder.all_weights,
                "drnet_pose_encoder": self.pose_encoder.all_weights,
                "drnet_decoder": self.decoder.all_weights,
                "drnet_scene_discriminator": self.scene_discriminator.all_weights,
                "drnet_lstm": self.lstm.all_weights,
                "drnet_opt_main": self.opt_main, "drnet_opt_scene": self.opt_scene, "drnet_opt_lstm": self.opt_lstm}

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """Learning rates at a fractional epoch: constant (drnet-py uses no schedule) unless
        ``drnet_lr_decay_epochs`` > 0 (ours): then the rate of E_c, E_p, D and of C falls linearly to 0 over the
        last ``drnet_lr_decay_epochs`` epochs of the DrNet phase (GANimation's schedule,
        :func:`ganimation_tl.model.learning_rate_at`). The LSTM's rate stays constant."""
        c = self.config
        rate = float(c.learning_rate)
        if c.drnet_lr_decay_epochs > 0:
            from ganimation_tl.model import learning_rate_at
            rate = learning_rate_at(c.learning_rate, epoch, c.epochs, c.drnet_lr_decay_epochs)
            self.opt_main.learning_rate.assign(rate)
            self.opt_scene.learning_rate.assign(rate)
        return {"lr/main": rate, "lr/lstm": float(c.drnet_lstm_lr)}

    def train_step(self, batch: dict, step: int) -> Dict[str, float]:
        """One iteration: in the DrNet phase (step < config.main_steps) one C step then one (E_c, E_p, D)
        step on ``batch['frames4']`` (float32 [4, B, S, S, C]: x_c1, x_c2, x_p1, x_p2); afterwards one LSTM step
        on ``batch['sequences']`` ([B, T, S, S, C])."""
        import tensorflow as tf
        if "sequences" in batch:
            return {k: v for k, v in self._lstm_step(tf.convert_to_tensor(batch["sequences"])).items()}
        frames = tf.convert_to_tensor(batch["frames4"])
        metrics = dict(self._scene_step(frames[2], frames[3]))
        metrics.update(self._main_step(frames[0], frames[1], frames[2], frames[3]))
        return metrics

    def sample_grid(self, batch: dict):
        """Rows: content frames x_c (video i), pose frames x_p (video i+1), D(E_c(x_c), E_p(x_p)) (pose swap).
        Two-channel frames are shown with digit 1 red and digit 2 green."""
        if "frames4" in batch:
            x = np.asarray(batch["frames4"])[:, :6]
            content, pose = x[0], np.roll(x[2], 1, axis=0)
        else:
            seq = np.asarray(batch["sequences"])[:6]
            content, pose = seq[:, 0], np.roll(seq[:, -1], 1, axis=0)
        hc, _ = self.encode(content)
        _, hp = self.encode(pose)
        swap = self.decode(hc, hp)
        return images_grid([[to_rgb(f) for f in row] for row in (content, pose, swap)])

    # model pieces --------------------------------------------------------------------------------
    def _set_mode(self, training: bool, models=None):
        for m in models or (self.content_encoder, self.pose_encoder, self.decoder, self.scene_discriminator):
            m.train() if training else m.eval()

    def _scene_step_impl(self, x_p1, x_p2):
        import tensorflow as tf
        self._set_mode(True, (self.pose_encoder, self.scene_discriminator))
        h1 = tf.stop_gradient(self.pose_encoder(x_p1))
        h2 = tf.stop_gradient(self.pose_encoder(x_p2))
        half = tf.shape(h1)[0] // 2
        # second half: pair with the pose code of another video (roll by one)
        h2 = tf.concat([h2[:half], tf.roll(h2[half:], 1, axis=0)], 0)
        target = tf.concat([tf.ones([half, 1]), tf.zeros([tf.shape(h1)[0] - half, 1])], 0)
        with tf.GradientTape() as tape:
            logits = self.scene_discriminator([h1, h2])
            loss = bce_with_logits(logits, target)
        variables = self.scene_discriminator.trainable_weights
        self.opt_scene.apply_gradients(zip(tape.gradient(loss, variables), variables))
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.cast(logits > 0, tf.float32), target), tf.float32))
        return {"scene/bce": loss, "scene/accuracy": acc}

    def _main_step_impl(self, x_c1, x_c2, x_p1, x_p2):
        import tensorflow as tf
        c = self.config
        self._set_mode(True)
        with tf.GradientTape() as tape:
            content1 = self._content(x_c1)
            h_c2 = tf.stop_gradient(self._content(x_c2)[0])
            h_p1 = self.pose_encoder(x_p1)
            h_p2 = tf.stop_gradient(self.pose_encoder(x_p2))
            h_p1_dec = h_p1
            if c.drnet_pose_noise > 0:
                h_p1_dec = h_p1 + tf.random.normal(tf.shape(h_p1), stddev=c.drnet_pose_noise)
            rec = self.decoder([content1[0], h_p1_dec] + content1[1:])
            rec_loss = tf.reduce_mean(tf.square(rec - x_p1))
            sim_loss = tf.reduce_mean(tf.square(content1[0] - h_c2))
            adv_loss = maximally_uncertain_loss(self.scene_discriminator([h_p1, h_p2]))
            total = rec_loss + c.drnet_alpha * sim_loss + c.drnet_beta * adv_loss
        grads = tape.gradient(total, self.main_vars)
        self.opt_main.apply_gradients(zip(grads, self.main_vars))
        return {"drnet/reconstruction": rec_loss, "drnet/similarity": sim_loss, "drnet/adversarial": adv_loss,
                "drnet/total": total}

    def _encode_seq(self, sequences):
        import tensorflow as tf
        shape = tf.shape(sequences)
        flat = tf.reshape(sequences, tf.concat([[-1], shape[2:]], 0))
        h_p = self.pose_encoder(flat)
        return tf.reshape(h_p, [shape[0], shape[1], self.config.drnet_pose_dim])

    def _lstm_step_impl(self, sequences):
        import tensorflow as tf
        c = self.config
        self._set_mode(False)
        h_p = tf.stop_gradient(self._encode_seq(sequences))
        h_c = tf.stop_gradient(self._content(sequences[:, c.drnet_n_past - 1])[0])
        t_len = sequences.shape[1]
        inputs = tf.concat([tf.repeat(h_c[:, None], t_len - 1, axis=1), h_p[:, :-1]], -1)
        with tf.GradientTape() as tape:
            if c.drnet_lstm_feedback:
                # as at test time: observed poses up to n_past - 1, then the LSTM's own predictions
                state = self.lstm.zero_state(tf.shape(h_p)[0])
                pose, outs = h_p[:, 0], []
                for t in range(1, t_len):
                    y, state = self.lstm.step(tf.concat([h_c, pose], -1), state)
                    outs.append(y)
                    pose = h_p[:, t] if t < c.drnet_n_past else y
                pred = tf.stack(outs, axis=1)
            else:
                pred = self.lstm.forward(inputs)
            loss = tf.reduce_mean(tf.square(pred - h_p[:, 1:]))
        variables = self.lstm.trainable_weights
        self.opt_lstm.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"lstm/pose_mse": loss, "lstm/total": loss}

    def _content(self, frames):
        """[h_c, f_0, ..., f_{n-1}] with skips, else [h_c] (list of tensors)."""
        out = self.content_encoder(frames)
        return list(out) if self.config.drnet_skips else [out]

    def _encode_eval_impl(self, frames):
        self._set_mode(False)
        return tuple(self._content(frames)), self.pose_encoder(frames)

    def _decode_eval_impl(self, content, h_p):
        self._set_mode(False)
        return self.decoder([content[0], h_p] + list(content[1:]))

    def _scene_eval_impl(self, h1, h2):
        self._set_mode(False)
        return self.scene_discriminator([h1, h2])

    # evaluation API ------------------------------------------------------------------------------
    def encode(self, frames):
        """(h_c, h_p ``[B, pose_dim]``) of frames ``[B, S, S, C]`` in [0, 1] (eval mode). h_c is the content code
        ``[B, content_dim]``, or with ``drnet_skips`` a tuple (code, f_0, ..., f_{n-1}) holding the content
        encoder's feature maps too; pass it to :meth:`decode` as is, take the code with :func:`content_code`."""
        content, h_p = self._encode_eval(np.asarray(frames, np.float32))
        content = tuple(t.numpy() for t in content)
        return (content if self.config.drnet_skips else content[0]), h_p.numpy()

    def decode(self, h_c, h_p) -> np.ndarray:
        """D(h_c, h_p): frames float32 ``[B, S, S, C]`` in (0, 1) (eval mode); h_c as returned by :meth:`encode`."""
        content = tuple(np.asarray(t, np.float32) for t in (h_c if isinstance(h_c, (tuple, list)) else (h_c,)))
        return self._decode_eval(content, np.asarray(h_p, np.float32)).numpy()

    def scene_probability(self, h1, h2) -> np.ndarray:
        """C(h1, h2) in (0, 1), ``[B]``: probability that the two pose codes come from one video."""
        logits = self._scene_eval(np.asarray(h1, np.float32), np.asarray(h2, np.float32)).numpy()
        return 1.0 / (1.0 + np.exp(-logits[:, 0]))

    def predict(self, sequences, n_past: Optional[int] = None) -> np.ndarray:
        """Video prediction (paper section 3.2): observe ``n_past`` frames of ``sequences`` ``[B, T, S, S, C]``,
        predict the remaining ``T - n_past`` frames with the LSTM fed back on its own pose predictions and the
        content code of frame n_past - 1. Returns float32 ``[B, T - n_past, S, S, C]`` in (0, 1) (in [0, 1] with
        ``drnet_anchor_prediction``: x^{n_past-1} + D(h_c, h~_p^t) - D(h_c, h_p^{n_past-1}), clipped; ours)."""
        import tensorflow as tf
        sequences = np.asarray(sequences, np.float32)
        n_past = n_past or self.config.drnet_n_past
        b, t_len = sequences.shape[:2]
        content, _ = self.encode(sequences[:, n_past - 1])
        h_c = content_code(content)
        _, h_p = self.encode(sequences[:, :n_past].reshape((-1,) + sequences.shape[2:]))
        h_p = h_p.reshape(b, n_past, -1)
        state = self.lstm.zero_state(b)
        pose = tf.constant(h_p[:, 0])
        if self.config.drnet_anchor_prediction:
            last = sequences[:, n_past - 1]
            decoded_last = self.decode(content, h_p[:, n_past - 1])
        outputs = []
        for t in range(1, t_len):
            pred, state = self.lstm.step(tf.concat([tf.constant(h_c), pose], -1), state)
            pose = tf.constant(h_p[:, t]) if t < n_past else pred
            if t >= n_past:
                frame = self.decode(content, pred.numpy())
                if self.config.drnet_anchor_prediction:
                    frame = np.clip(last + frame - decoded_last, 0.0, 1.0)
                outputs.append(frame)
        return np.stack(outputs, axis=1)


def content_code(h_c) -> np.ndarray:
    """The content code ``[B, content_dim]`` of :meth:`DrNet.encode`'s h_c (a code, or a tuple code + skips)."""
    return np.asarray(h_c[0] if isinstance(h_c, (tuple, list)) else h_c)


def to_rgb(frame) -> np.ndarray:
    """Frame ``[S, S, C]`` in [0, 1] -> ``[S, S, 3]`` (C = 1: grey; C = 2: red / green; C = 3: as is)."""
    frame = np.asarray(frame, np.float32)
    if frame.shape[-1] == 1:
        return np.repeat(frame, 3, axis=-1)
    out = np.zeros(frame.shape[:-1] + (3,), np.float32)
    out[..., :min(3, frame.shape[-1])] = frame[..., :3]
    return out


# ---------------------------------------------------------------------------------------------- data
def load_digits_for(mnist_path: Optional[str], split: str, flag: str = "--mnist_path"):
    """MNIST digits of ``split`` for the generator; InputError naming ``flag`` if the file is missing."""
    from ganimation_tl.datasets.digits import load_mnist_for_flag
    return load_mnist_for_flag(mnist_path, split, flag)


def make_sequences(config: DrNetConfig, digits, labels, count: int, seed: int):
    """Moving-MNIST videos for DrNet: ``VideoBatch`` with frames ``[count, T, S, S, num_digits]``."""
    from ganimation_tl.datasets.moving_mnist import moving_mnist
    return moving_mnist(digits, labels, count, length=config.sequence_length, image_size=config.image_size,
                        digit_size=config.drnet_digit_size, num_digits=config.drnet_num_digits,
                        max_speed=config.drnet_max_speed, separate_channels=True, seed=seed)


class FaceVideoClips:
    """Clips of T frames (every ``drnet_video_stride``-th frame) from a tracked face video, split by blocks.

    Args:
        track: a :class:`ganimation_tl.datasets.face_video.FaceTrack` (frames ``[N, S, S, 3]`` in [0, 1]).
        config: the DrNet config (T = n_past + n_future, stride, block, test_every).

    Raises:
        InputError: the video is too short for one training clip and one test clip.
    """

    def __init__(self, track, config: DrNetConfig):
        from ganimation_tl.datasets.face_video import block_split, clip_starts
        from ganimation_tl.errors import InputError
        self.track = track
        self.frames = track.frames
        self.config = config
        self.block_id, self.is_test = block_split(len(track.frames), config.drnet_video_block,
                                                  config.drnet_video_test_every)
        self.starts = {"train": clip_starts(self.block_id, ~self.is_test, config.clip_span),
                       "test": clip_starts(self.block_id, self.is_test, config.clip_span)}
        #: frame indices the far frames of each split are drawn from (a validation split may narrow "train")
        self.pools = {"train": np.flatnonzero(~self.is_test), "test": np.flatnonzero(self.is_test)}
        for split, starts in self.starts.items():
            if len(starts) == 0:
                raise InputError("--video_path: %s has %d frames, too few for a %s clip of %d frames with blocks of "
                                 "%d and every %d-th block held out" % (track.path, len(track.frames), split,
                                                                       config.clip_span, config.drnet_video_block,
                                                                       config.drnet_video_test_every))

    def clip(self, start: int) -> np.ndarray:
        """The clip starting at frame ``start``: float32 ``[T, S, S, 3]``."""
        c = self.config
        return self.frames[start:start + c.clip_span:c.drnet_video_stride]

    def sample(self, count: int, rng: np.random.Generator, split: str = "train", flip: bool = True,
               augment: bool = False, far_frames: int = 0) -> np.ndarray:
        """``count`` random clips of ``split``: float32 ``[count, T + far_frames, S, S, 3]`` in [0, 1].

        Half of them are mirrored left-right if ``flip``. With ``augment``, each clip also gets one random
        similarity transform and one colour change, the same for all its T frames (:func:`augment_clip`, amplitudes
        ``drnet_video_shift`` / ``drnet_video_zoom`` / ``drnet_video_colour`` of the config).
        ``far_frames`` (>= 0) single frames drawn uniformly from ``pools[split]`` (all frames of the split, any
        block, any time) are appended after the T clip frames; they share their clip's mirroring and augmentation
        (the targets of ``drnet_video_far_similarity``).
        """
        starts = rng.choice(self.starts[split], size=count)
        clips = np.stack([self.clip(s) for s in starts])
        if far_frames > 0:
            far = self.frames[rng.choice(self.pools[split], size=(count, far_frames))]
            clips = np.concatenate([clips, far], axis=1)
        if flip:
            mirror = rng.random(count) < 0.5
            clips[mirror] = clips[mirror][:, :, :, ::-1]
        if augment:
            c = self.config
            clips = np.stack([augment_clip(clip, rng, c.drnet_video_shift, c.drnet_video_zoom, c.drnet_video_colour)
                              for clip in clips])
        return clips

    def sample_training(self, count: int, rng: np.random.Generator, far: bool = True) -> np.ndarray:
        """``count`` training clips drawn as ``train.py`` draws them: :meth:`sample` of split "train", augmented
        when the config sets any of ``drnet_video_shift`` / ``zoom`` / ``colour``, and with one far frame appended
        when ``far`` and ``drnet_video_far_similarity`` > 0. float32 ``[count, T (+ 1), S, S, 3]`` in [0, 1]."""
        c = self.config
        return self.sample(count, rng, "train",
                           augment=bool(c.drnet_video_shift or c.drnet_video_zoom or c.drnet_video_colour),
                           far_frames=int(far and c.drnet_video_far_similarity > 0))


def augment_clip(clip: np.ndarray, rng: np.random.Generator, shift: float, zoom: float,
                 colour: float) -> np.ndarray:
    """One random augmentation applied identically to every frame of a clip (ours; not in DrNet).

    A face video of one person has a few hundred distinct frames, and DrNet overfits them; moving the crop per
    clip gives the pose encoder new head positions and scales, and the colour change gives the content encoder
    new appearances, while the within-clip relation DrNet learns from (same content, changing pose) is kept.

    Args:
        clip: ``[T, S, S, C]`` float in [0, 1].
        rng: random generator.
        shift: maximum translation as a fraction of S (uniform in [-shift, shift] on each axis).
        zoom: maximum relative scale change (scale uniform in [1 - zoom, 1 + zoom], about the centre).
        colour: maximum per-channel gain change and brightness offset (gain in [1 - colour, 1 + colour] per
            channel, offset in [-colour / 2, colour / 2]); 0 disables it.

    Returns:
        float32 ``[T, S, S, C]`` clipped to [0, 1] (border pixels reflected); the input itself if all are 0.
    """
    import cv2
    clip = np.asarray(clip, np.float32)
    if shift == 0 and zoom == 0 and colour == 0:
        return clip
    side = clip.shape[1]
    scale = rng.uniform(1 - zoom, 1 + zoom)
    dx, dy = rng.uniform(-shift, shift, 2) * side
    centre = (side - 1) / 2.0
    matrix = np.array([[scale, 0, (1 - scale) * centre + dx], [0, scale, (1 - scale) * centre + dy]], np.float32)
    out = np.stack([cv2.warpAffine(f, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                    for f in clip]).reshape(clip.shape)
    if colour > 0:
        gain = rng.uniform(1 - colour, 1 + colour, clip.shape[-1]).astype(np.float32)
        offset = np.float32(rng.uniform(-colour / 2, colour / 2))
        out = out * gain + offset
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def load_face_clips(config: DrNetConfig, video_path: Optional[str]) -> FaceVideoClips:
    """Track the face of ``--video_path`` (MTCNN, :func:`ganimation_tl.datasets.face_video.load_face_video`) at
    ``config.image_size`` and cut it into clips.

    Raises:
        InputError: missing/unreadable video, no face found, or a video too short for the clips.
    """
    from ganimation_tl.datasets.face_video import load_face_video
    return FaceVideoClips(load_face_video(video_path, config.image_size, max_frames=config.drnet_video_max_frames),
                          config)


def sample_frame_tuples(frames: np.ndarray, max_step: int, rng: np.random.Generator) -> np.ndarray:
    """Pick (x_c1, x_c2, x_p1, x_p2) per video: x_c1 = x^t, x_p1 = x^{t+k} (k in [1, max_step]), x_c2 and x_p2 two
    further random frames of the same video. frames ``[B, T, S, S, C]`` -> float32 ``[4, B, S, S, C]``."""
    b, t_len = frames.shape[:2]
    t = rng.integers(0, t_len - max_step, size=b)
    k = rng.integers(1, max_step + 1, size=b)
    idx = np.stack([t, rng.integers(0, t_len, size=b), t + k, rng.integers(0, t_len, size=b)])
    return np.stack([frames[np.arange(b), idx[j]] for j in range(4)]).astype(np.float32)


def use_far_similarity_targets(tuples: np.ndarray, far: np.ndarray, probability: float,
                               rng: np.random.Generator) -> np.ndarray:
    """Replace the similarity target x_c2 (``tuples[1]``) of each video, with ``probability``, by a frame ``far``
    of the same video from any time (ours, ``--drnet_video_far_similarity``; DrNet draws both content frames from
    one short clip).

    In a single-person face video the whole video is "the same scene": the content code of any two frames should
    match, not only within a 0.8 s clip; the clip-only loss leaves the content code free to follow slow changes.

    Args:
        tuples: float ``[4, B, S, S, C]`` from :func:`sample_frame_tuples` (x_c1, x_c2, x_p1, x_p2).
        far: float ``[B, S, S, C]``, one frame per video drawn from the whole training video, augmented like its
            clip (:meth:`FaceVideoClips.sample` with ``far_frames=1``).
        probability: in [0, 1]; 0 returns ``tuples`` unchanged, 1 replaces every x_c2.
        rng: random generator (one uniform draw per video).

    Returns:
        float32 ``[4, B, S, S, C]``, a copy; only ``[1]`` differs from ``tuples``.

    Raises:
        ValueError: ``far`` does not match ``tuples[1]`` in shape.
    """
    if far.shape != tuples.shape[1:]:
        raise ValueError("far frames have shape %s, expected %s" % (far.shape, tuples.shape[1:]))
    out = np.array(tuples, np.float32, copy=True)
    chosen = rng.random(far.shape[0]) < probability
    out[1][chosen] = far[chosen]
    return out


def frame_tuples_batch(config: DrNetConfig, frames: np.ndarray, seed: int) -> np.ndarray:
    """One DrNet-phase batch from sampled videos: :func:`sample_frame_tuples` of the first T frames, then, when
    ``frames`` carries a far frame after them (face video with ``drnet_video_far_similarity`` > 0),
    :func:`use_far_similarity_targets`.

    Args:
        config: the run's config (T = ``sequence_length``, ``drnet_max_step``, ``drnet_video_far_similarity``).
        frames: float ``[B, T, S, S, C]`` or ``[B, T + 1, S, S, C]`` in [0, 1] (:meth:`FaceVideoClips.sample`).
        seed: seed of the frame choice (and of the far-target draw).

    Returns:
        float32 ``[4, B, S, S, C]``: x_c1, x_c2, x_p1, x_p2.
    """
    t_len = config.sequence_length
    rng = np.random.default_rng(seed)
    tuples = sample_frame_tuples(frames[:, :t_len], config.drnet_max_step, rng)
    if frames.shape[1] > t_len:
        tuples = use_far_similarity_targets(tuples, frames[:, t_len], config.drnet_video_far_similarity, rng)
    return tuples


# ---------------------------------------------------------------------------------------------- CLI
def define_flags(flag_values=flags.FLAGS) -> None:
    """Define DrNet's flags (config fields and ``--mnist_path``); idempotent."""
    define_model_flags({}, flag_values, extra=MNIST_ADAM_FLAGS + (
        ("string", "video_path", "Face video for --drnet_data=face_video (e.g. "
                                 "../shared/data/video/WolfgangLanger_Pexels.mp4)."),))
    define_config_field_flags(DrNetConfig, "drnet_", "DrNet %s (see configs/drnet.cfg). Unset: %r.", flag_values)


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """Train DrNet (then its pose LSTM) on on-the-fly Moving MNIST (``--drnet_data=moving_mnist``) or on clips of
    a tracked face video (``--drnet_data=face_video --video_path=...``, held-out blocks excluded); returns the
    last logged metrics.

    Raises:
        InputError: missing ``--mnist_path`` / ``--video_path``, no face in the video, or invalid settings.
    """
    config = config_or_input_error(DrNetConfig, flag_values)
    if config.drnet_data == "face_video":
        clips = load_face_clips(config, flag_values.video_path)

        def make_frames(seed):
            return clips.sample_training(config.batch_size, np.random.default_rng([seed, 1]))
        description = ("face video %s: %d frames tracked (%d with MTCNN detections), %d px RGB crops, clips of %d "
                       "frames every %d-th frame, %d training clip starts" % (
                           flag_values.video_path, len(clips.frames), len(clips.track.detected),
                           config.image_size, config.sequence_length, config.drnet_video_stride,
                           len(clips.starts["train"])))
    else:
        digits, labels = load_digits_for(flag_values.mnist_path, "train")

        def make_frames(seed):
            return make_sequences(config, digits, labels, config.batch_size, seed).frames
        description = ("Moving MNIST (%d digits in separate channels, %d px, %d frames, on the fly)"
                       % (config.drnet_num_digits, config.image_size, config.sequence_length))
    model = DrNet(config, channels=config.channels)

    def make_dataset(epoch: int, skip: int):
        for b in range(skip, config.drnet_epoch_size):
            seed = (config.seed * 1000003 + epoch * 10007 + b) % (2 ** 31)
            frames = make_frames(seed)
            if epoch < config.epochs:
                yield {"frames4": frame_tuples_batch(config, frames, seed)}
            else:
                yield {"sequences": frames[:, :config.sequence_length]}

    return run_trainer(NAME, model, make_dataset, steps_per_epoch=config.drnet_epoch_size,
                       epochs=config.epochs + config.drnet_lstm_epochs, flag_values=flag_values, config=config,
                       data_description=description)


def load_trained(workdir: str, config: DrNetConfig, channels: Optional[int] = None) -> DrNet:
    """Rebuild DrNet (``channels`` default: ``config.channels``) and restore the newest checkpoint of
    ``<workdir>/checkpoints``.

    Raises:
        InputError: no checkpoint in the workdir.
    """
    model = DrNet(config, config.channels if channels is None else channels)
    from ganimation_tl.sibling import restore_latest
    restore_latest(model, workdir)
    return model


registry.register(registry.ModelEntry(
    name=NAME, summary="DrNet (Denton & Birodkar, NIPS 2017): content/pose disentangling with a scene "
    "discriminator and a pose LSTM, on Moving MNIST or a tracked face video", define_flags=define_flags, train=train))
