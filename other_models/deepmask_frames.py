"""DeepMask adapted to frame prediction (the seed slides' adaptation of Pinheiro, Collobert and Dollar,
"Learning to Segment Object Candidates", NIPS 2015).

The slides: "adapted from DeepMask. The input is the whole image rather than a local patch. Use multiple
kernels to produce multiple frames. Replace the score value with the prediction value." Reading (spec
``../shared/docs/papers/batch1_dagan_luo_dscnet_drnet_vda_deepmask.md`` section 6(f)):

1. Whole-image input: the last ``P`` frames stacked on channels, ``[B, S, S, P]``, go through DeepMask's
   shared trunk (stride-16 conv encoder), a 1x1 conv to 128 channels + ReLU and the linear "low-rank" FC
   layer to 512 units (DeepMask.lua: ``Linear(128 fSz^2 -> 512)``).
2. Multiple kernels -> multiple frames: the mask head ``Linear(512 -> oSz^2)`` is replicated K times
   (``Linear(512 -> K oSz^2)``); group k is reshaped to ``oSz x oSz`` and bilinearly up-sampled to ``S x S``:
   the frame at horizon +k.
3. Score -> prediction value: each output pixel is a predicted intensity ``sigmoid(f^{ij}_k(x))`` in (0, 1)
   instead of a mask logit, trained with per-pixel binary cross-entropy against the future frame's soft
   values in [0, 1] (DeepMask's logistic loss ``log(1 + exp(-m f))`` with soft targets), mean over pixels,
   frames and batch. The objectness score branch is kept as an auxiliary regression (2x2 max-pool ->
   FC 512 -> ReLU -> FC 1024 -> ReLU -> FC K) of each future frame's motion energy
   ``mean |x_{t+k} - x_{t+k-1}|`` with weight lambda = 1/32 (DeepMask's lambda), MSE.

Loss: ``L = mean_k,ij BCE(sigmoid(f_k^ij(x)), x_{t+k}^ij) + lambda * mean_k (s_k(x) - e_k)^2``.

Deviations and why:

* Trunk: four 3x3 stride-2 convs (nf, 2nf, 4nf, 8nf) with ReLU trained from scratch instead of an
  ImageNet VGG-A / ResNet-50 (no pretrained weights offline; grey 32x32 frames). Sizes for the CPU (spec 6(f)).
* 32x32 frames with oSz = 16 (up-sampling x2; DeepMask: 56 -> 224, x4): at x4 the 8x8 output grid of a 32 px
  frame cannot represent 16 px digits well enough to beat copying the last frame.
* Adam (lr 1e-3) instead of SGD with momentum: the short schedule (spec 6(f) allows either).
* Both heads are trained every step on the summed loss (NIPS 2015 form) rather than the repo's alternating
  heads (``hfreq``).
"""
from __future__ import annotations

import dataclasses
from typing import Dict

import numpy as np
from absl import flags

from ganimation_tl import registry
from ganimation_tl.sibling import (MNIST_ADAM_FLAGS, config_or_input_error, define_config_field_flags,
                                   define_model_flags, images_grid, run_trainer)

NAME = "deepmask_frames"
P = "deepmask_frames_"


@dataclasses.dataclass(frozen=True)
class DeepMaskFramesConfig:
    """Hyper-parameters (field names are flag names; sources in configs/deepmask_frames.cfg).

    Raises:
        ValueError: non-positive sizes, image_size not a multiple of 16, image_size not a multiple of the
            output size, or a negative weight / learning rate.
    """

    image_size: int = 32
    batch_size: int = 32
    epochs: int = 5
    seed: int = 0
    learning_rate: float = 1e-3
    beta1: float = 0.9
    deepmask_frames_epoch_size: int = 300
    deepmask_frames_past: int = 2
    deepmask_frames_future: int = 4
    deepmask_frames_nf: int = 32
    deepmask_frames_bottleneck: int = 512
    deepmask_frames_output_size: int = 16
    deepmask_frames_lambda_score: float = 1.0 / 32
    deepmask_frames_num_digits: int = 2
    deepmask_frames_digit_size: int = 16
    deepmask_frames_max_speed: int = 3

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("deepmask_frames_lambda_score", "seed"):
                continue
            if not value > 0:
                raise ValueError("%s must be positive, got %r" % (f.name, value))
        if self.deepmask_frames_lambda_score < 0:
            raise ValueError("deepmask_frames_lambda_score must be >= 0")
        if self.image_size % 16:
            raise ValueError("image_size must be a multiple of 16 (stride-16 trunk), got %r" % self.image_size)
        if self.image_size % self.deepmask_frames_output_size:
            raise ValueError("image_size %d must be a multiple of deepmask_frames_output_size %d"
                             % (self.image_size, self.deepmask_frames_output_size))
        if self.deepmask_frames_digit_size > self.image_size:
            raise ValueError("deepmask_frames_digit_size exceeds image_size")
        if not self.beta1 < 1:
            raise ValueError("beta1 must be < 1")

    @property
    def sequence_length(self) -> int:
        return self.deepmask_frames_past + self.deepmask_frames_future


def build_deepmask_predictor(config: DeepMaskFramesConfig, name: str = "dmf"):
    """The adapted DeepMask as a static TL model.

    Input: past frames float32 ``[B, S, S, P]`` in [0, 1] (NHWC, frame t-P+1 .. t on channels).
    Outputs: ``(frame_logits [B, S, S, K], motion_scores [B, K])``; ``sigmoid(frame_logits[..., k-1])`` is the
    predicted frame t+k in (0, 1); motion_scores regress each future frame's mean absolute change.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    c = config
    p = name + "_"
    s, k, o = c.image_size, c.deepmask_frames_future, c.deepmask_frames_output_size
    init = tl.initializers.he_normal() if hasattr(tl.initializers, "he_normal") else tl.initializers.truncated_normal(stddev=0.05)
    x = inp = tl.layers.Input([None, s, s, c.deepmask_frames_past], name=p + "frames")
    ch_in = c.deepmask_frames_past
    for i in range(4):
        ch = c.deepmask_frames_nf * 2 ** i
        x = tl.layers.Conv2d(ch, (3, 3), (2, 2), act=tf.nn.relu, padding="SAME", W_init=init,
                             in_channels=ch_in, name=p + "trunk%d" % i)(x)
        ch_in = ch
    trunk = x
    f = s // 16
    x = tl.layers.Conv2d(128, (1, 1), (1, 1), act=tf.nn.relu, W_init=init, in_channels=ch_in, name=p + "reduce")(trunk)
    x = tl.layers.Flatten(name=p + "flatten")(x)
    x = tl.layers.Dense(c.deepmask_frames_bottleneck, W_init=init, in_channels=128 * f * f,
                        name=p + "lowrank")(x)  # linear, as DeepMask's low-rank layer
    m = tl.layers.Dense(k * o * o, W_init=init, in_channels=c.deepmask_frames_bottleneck, name=p + "mask_heads")(x)
    m = tl.layers.Reshape([-1, k, o, o], name=p + "mask_reshape")(m)
    m = tl.layers.Lambda(lambda t: tf.image.resize(tf.transpose(t, [0, 2, 3, 1]), [s, s], method="bilinear"),
                         name=p + "upsample")(m)
    sc = tl.layers.MaxPool2d((2, 2), (2, 2), padding="SAME", name=p + "score_pool")(trunk)
    sc = tl.layers.Flatten(name=p + "score_flatten")(sc)
    fs = max(1, f // 2)
    sc = tl.layers.Dense(512, act=tf.nn.relu, W_init=init, in_channels=ch_in * fs * fs, name=p + "score_fc0")(sc)
    sc = tl.layers.Dense(1024, act=tf.nn.relu, W_init=init, in_channels=512, name=p + "score_fc1")(sc)
    sc = tl.layers.Dense(k, W_init=init, in_channels=1024, name=p + "score")(sc)
    return tl.models.Model(inputs=inp, outputs=[m, sc], name=unique_model_name(name))


def motion_energy(sequences: np.ndarray, past: int) -> np.ndarray:
    """e_k = mean |x_{t+k} - x_{t+k-1}| for each future frame: sequences ``[B, T, S, S, 1]`` -> ``[B, T - past]``."""
    diffs = np.abs(np.diff(np.asarray(sequences, np.float32), axis=1))
    return diffs[:, past - 1:].mean(axis=(2, 3, 4))


def split_sequences(sequences: np.ndarray, past: int):
    """``[B, T, S, S, 1]`` -> (inputs ``[B, S, S, past]``, targets ``[B, S, S, T - past]``) frames on channels."""
    seq = np.asarray(sequences, np.float32)[..., 0]
    return np.transpose(seq[:, :past], (0, 2, 3, 1)), np.transpose(seq[:, past:], (0, 2, 3, 1))


class DeepMaskFrames:
    """Model, Adam optimiser and the tf.function train step (trainer interface)."""

    sample_grid_tag = "samples/past_future_predicted"

    def __init__(self, config: DeepMaskFramesConfig):
        import tensorflow as tf
        self.config = config
        tf.random.set_seed(config.seed)
        self.net = build_deepmask_predictor(config)
        self.optimizer = tf.keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1)
        self.optimizer.build(self.net.trainable_weights)
        self._step = tf.function(self._step_impl)
        self._predict = tf.function(self._predict_impl)

    def trackables(self) -> dict:
        return {"deepmask_frames_net": self.net.all_weights, "deepmask_frames_opt": self.optimizer}

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        return {"lr": float(self.config.learning_rate)}

    def _step_impl(self, inputs, targets, energy):
        import tensorflow as tf
        self.net.train()
        with tf.GradientTape() as tape:
            logits, scores = self.net(inputs)
            frame_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits))
            score_loss = tf.reduce_mean(tf.square(scores - energy))
            total = frame_loss + self.config.deepmask_frames_lambda_score * score_loss
        grads = tape.gradient(total, self.net.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.net.trainable_weights))
        mse = tf.reduce_mean(tf.square(tf.sigmoid(logits) - targets))
        return {"deepmask_frames/bce": frame_loss, "deepmask_frames/score_mse": score_loss,
                "deepmask_frames/total": total, "deepmask_frames/frame_mse": mse}

    def _predict_impl(self, inputs):
        self.net.eval()
        logits, scores = self.net(inputs)
        import tensorflow as tf
        return tf.sigmoid(logits), scores

    def train_step(self, batch: dict, step: int) -> Dict[str, float]:
        """One Adam step on ``batch`` = {inputs [B,S,S,P], targets [B,S,S,K], energy [B,K]}."""
        return self._step(batch["inputs"], batch["targets"], batch["energy"])

    def predict(self, inputs) -> np.ndarray:
        """Future frames ``[B, S, S, K]`` in (0, 1) from past frames ``[B, S, S, P]`` (inference mode)."""
        return self._predict(np.asarray(inputs, np.float32))[0].numpy()

    def sample_grid(self, batch: dict):
        inputs, targets = np.asarray(batch["inputs"])[:4], np.asarray(batch["targets"])[:4]
        pred = self.predict(inputs)
        rows = []
        for i in range(len(inputs)):
            rows.append([inputs[i, ..., j] for j in range(inputs.shape[-1])] + [targets[i, ..., j] for j in range(targets.shape[-1])])
            rows.append([np.zeros_like(inputs[i, ..., 0])] * inputs.shape[-1] + [pred[i, ..., j] for j in range(pred.shape[-1])])
        return images_grid(rows)


def make_sequences(config: DeepMaskFramesConfig, digits, labels, count: int, seed: int):
    """Moving MNIST videos ``[count, P + K, S, S, 1]`` (one channel)."""
    from ganimation_tl.datasets.moving_mnist import moving_mnist
    return moving_mnist(digits, labels, count, length=config.sequence_length, image_size=config.image_size,
                        digit_size=config.deepmask_frames_digit_size, num_digits=config.deepmask_frames_num_digits,
                        max_speed=config.deepmask_frames_max_speed, seed=seed)


def make_batch(config: DeepMaskFramesConfig, sequences: np.ndarray) -> dict:
    inputs, targets = split_sequences(sequences, config.deepmask_frames_past)
    return {"inputs": inputs, "targets": targets,
            "energy": motion_energy(sequences, config.deepmask_frames_past).astype(np.float32)}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define the model's flags (config fields and ``--mnist_path``); idempotent."""
    define_model_flags({}, flag_values, extra=MNIST_ADAM_FLAGS)
    define_config_field_flags(DeepMaskFramesConfig, P, "DeepMask-frames %s. Unset: %r.", flag_values)


def load_digits_for(mnist_path, split: str):
    """MNIST digits; InputError naming --mnist_path if the file is missing."""
    from ganimation_tl.datasets.digits import load_mnist_for_flag
    return load_mnist_for_flag(mnist_path, split)


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """Train on on-the-fly Moving MNIST; returns the last logged metrics.

    Raises:
        InputError: missing ``--mnist_path`` or invalid settings.
    """
    config = config_or_input_error(DeepMaskFramesConfig, flag_values)
    digits, labels = load_digits_for(flag_values.mnist_path, "train")
    model = DeepMaskFrames(config)

    def make_dataset(epoch: int, skip: int):
        for b in range(skip, config.deepmask_frames_epoch_size):
            seed = (config.seed * 1000003 + epoch * 10007 + b) % (2 ** 31)
            yield make_batch(config, make_sequences(config, digits, labels, config.batch_size, seed).frames)

    return run_trainer(NAME, model, make_dataset, steps_per_epoch=config.deepmask_frames_epoch_size,
                       epochs=config.epochs, flag_values=flag_values, config=config,
                       data_description="Moving MNIST (%d digits, %d px, %d past -> %d future frames, on the fly)"
                       % (config.deepmask_frames_num_digits, config.image_size, config.deepmask_frames_past,
                          config.deepmask_frames_future))


def load_trained(workdir: str, config: DeepMaskFramesConfig) -> DeepMaskFrames:
    """Rebuild the model and restore the newest checkpoint of ``<workdir>/checkpoints``.

    Raises:
        InputError: no checkpoint there.
    """
    model = DeepMaskFrames(config)
    from ganimation_tl.sibling import restore_latest
    restore_latest(model, workdir)
    return model


registry.register(registry.ModelEntry(
    name=NAME, summary="DeepMask (Pinheiro et al., NIPS 2015) adapted to predict K future frames of Moving MNIST",
    define_flags=define_flags, train=train))
