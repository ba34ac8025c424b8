"""TensorLayer 2 layers that GANimation needs and TensorLayer 2.2.5 gets wrong on TF 2.21.

* :class:`InstanceNorm2d` replaces ``tl.layers.InstanceNorm2d``, which fails for batch > 1
  (``Incompatible shapes ... [Op:Mul]``) and initialises its scale randomly.
* :class:`Conv2dTranspose` replaces ``tl.layers.DeConv2d``, which wraps a Keras 3 layer whose
  variables are all named ``kernel``, are not mirrored under ``tf.distribute`` and are not restored
  by the TF1 SavedModel loader (``saved_model_cli run``, TF Serving).
* :class:`BatchNorm` replaces ``tl.layers.BatchNorm``/``BatchNorm2d``, whose train-mode forward
  overwrites its moving-statistics variables inside ``tf.function`` on TF 2.21 (``TypeError: Can
  not convert a NoneType``) and whose moving variance starts at 0 (sibling models use it).
* :class:`TileAndConcat` broadcasts a conditioning vector (the target AUs) over the image plane
  and concatenates it to the image channels, the generator's input in GANimation (section 4.1).

All layers are NHWC and create plain ``tf.Variable`` objects named ``<layer name>/<weight>``, so
they checkpoint with ``tf.train.Checkpoint`` over ``model.all_weights``.

Source of the workarounds: ``../shared/docs/toolchain.md`` section 1.1 (measured on TF 2.21 +
TL 2.2.5).
"""
from __future__ import annotations

import tensorflow as tf
import tensorlayer as tl

__all__ = ["InstanceNorm2d", "BatchNorm", "Conv2dTranspose", "TileAndConcat", "weight_init"]


def weight_init(stddev: float = 0.02):
    """The N(0, stddev) initializer GANimation uses for every convolution (official code, ``init_weights``)."""
    return tl.initializers.random_normal(mean=0.0, stddev=stddev)


class InstanceNorm2d(tl.layers.Layer):
    """Instance normalisation with a learned per-channel scale and offset.

    ``y[b, h, w, c] = gamma[c] * (x[b, h, w, c] - mean[b, c]) / sqrt(var[b, c] + epsilon) + beta[c]``
    where mean and (biased) variance are taken over H and W of each instance and channel. The
    statistics are per instance in training and inference alike (no running averages), as
    ``torch.nn.InstanceNorm2d(C, affine=True)`` used by GANimation's generator.

    Args:
        num_features: C, the number of channels of the NHWC input.
        epsilon: added to the variance inside the square root (1e-5, as PyTorch).
        name: layer name (give one: it names the variables ``<name>/gamma``, ``<name>/beta``).

    Input: float tensor ``[B, H, W, C]``. Output: same shape and dtype.

    Raises:
        ValueError: the input's channel count differs from ``num_features``.

    Source: Ulyanov et al. 2016, "Instance Normalization"; GANimation generator (paper section 4.1).
    Deviation: replaces ``tl.layers.InstanceNorm2d`` (wrong for batch > 1 in TL 2.2.5); gamma starts
    at 1 and beta at 0 (TL draws gamma from N(1, 0.002)).
    """

    def __init__(self, num_features: int, epsilon: float = 1e-5, name: str | None = None):
        super().__init__(name)
        self.num_features = int(num_features)
        self.epsilon = float(epsilon)
        self.build((None, None, None, self.num_features))
        self._built = True

    def __repr__(self):
        return "InstanceNorm2d(num_features=%d, epsilon=%g, name=%r)" % (self.num_features, self.epsilon, self.name)

    def build(self, inputs_shape):
        self.gamma = self._get_weights("gamma", shape=(self.num_features,), init=tl.initializers.ones())
        self.beta = self._get_weights("beta", shape=(self.num_features,), init=tl.initializers.zeros())

    def forward(self, inputs):
        if inputs.shape[-1] is not None and inputs.shape[-1] != self.num_features:
            raise ValueError("%s expects %d channels, got input of shape %s"
                             % (self.name, self.num_features, inputs.shape))
        mean, variance = tf.nn.moments(inputs, axes=[1, 2], keepdims=True)
        scale = tf.math.rsqrt(variance + self.epsilon) * tf.cast(self.gamma, inputs.dtype)
        return (inputs - mean) * scale + tf.cast(self.beta, inputs.dtype)


class BatchNorm(tl.layers.Layer):
    """Batch normalisation over every axis but the last (NHWC images or ``[B, C]`` features).

    Train mode (``model.train()``): ``y = gamma * (x - mean_B) / sqrt(var_B + epsilon) + beta`` with
    the batch's (biased) statistics, and the moving statistics updated in place as
    ``m <- decay * m + (1 - decay) * batch``. Eval mode: the moving statistics instead.

    Args:
        num_features: C, the last-axis size.
        act: optional activation applied after the normalisation.
        decay: moving-average decay (0.9).
        epsilon: added to the variance (1e-5).
        name: layer name; variables ``<name>/gamma`` (ones), ``beta`` (zeros), ``moving_mean``
            (zeros, not trainable), ``moving_var`` (ones, not trainable).

    Input float ``[B, ..., C]``; output the same shape.

    Raises:
        ValueError: the input's last axis differs from ``num_features``.

    Source: Ioffe and Szegedy 2015. Deviation: replaces TL 2.2.5's BatchNorm (see module docstring).
    """

    def __init__(self, num_features: int, act=None, decay: float = 0.9, epsilon: float = 1e-5,
                 name: str | None = None):
        super().__init__(name, act=act)
        self.num_features = int(num_features)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.build(None)
        self._built = True

    def __repr__(self):
        return "BatchNorm(num_features=%d, decay=%g, name=%r)" % (self.num_features, self.decay, self.name)

    def build(self, inputs_shape):
        shape = (self.num_features,)
        self.gamma = self._get_weights("gamma", shape=shape, init=tl.initializers.ones())
        self.beta = self._get_weights("beta", shape=shape, init=tl.initializers.zeros())
        self.moving_mean = self._get_weights("moving_mean", shape=shape, init=tl.initializers.zeros(),
                                             trainable=False)
        self.moving_var = self._get_weights("moving_var", shape=shape, init=tl.initializers.ones(),
                                            trainable=False)

    def forward(self, inputs):
        if inputs.shape[-1] is not None and inputs.shape[-1] != self.num_features:
            raise ValueError("%s expects %d features, got input of shape %s"
                             % (self.name, self.num_features, inputs.shape))
        axes = list(range(len(inputs.shape) - 1))
        if self.is_train:
            mean, var = tf.nn.moments(inputs, axes)
            self.moving_mean.assign(self.decay * self.moving_mean + (1.0 - self.decay) * mean)
            self.moving_var.assign(self.decay * self.moving_var + (1.0 - self.decay) * var)
        else:
            mean, var = self.moving_mean, self.moving_var
        out = tf.nn.batch_normalization(inputs, mean, var, self.beta, self.gamma, self.epsilon)
        return self.act(out) if self.act is not None else out


class Conv2dTranspose(tl.layers.Layer):
    """A 2D transposed convolution ('SAME' padding) on a plain ``tf.Variable`` kernel.

    With stride s and 'SAME' padding the output is ``[B, s*H, s*W, n_filter]``; for GANimation's
    4x4 stride-2 up-sampling this reproduces PyTorch's ``ConvTranspose2d(k=4, s=2, p=1)``
    output size.

    Args:
        n_filter: output channels.
        in_channels: input channels (required, so the layer builds eagerly).
        filter_size: (kh, kw).
        strides: (sh, sw).
        b_init: bias initializer, or None for no bias (GANimation: no bias, instance norm follows).
        W_init: kernel initializer (GANimation: N(0, 0.02)).
        act: optional activation.
        name: layer name; variables are ``<name>/filters`` (shape ``[kh, kw, n_filter, in]``) and
            ``<name>/biases``.

    Input ``[B, H, W, in_channels]`` float; output ``[B, s*H, s*W, n_filter]``.

    Source: GANimation generator up-sampling (paper section 4.1, official code ``ConvTranspose2d``).
    Deviation: replaces ``tl.layers.DeConv2d`` (Keras 3 variables; see module docstring).
    """

    def __init__(self, n_filter: int, in_channels: int, filter_size=(4, 4), strides=(2, 2), act=None,
                 W_init=None, b_init=None, name: str | None = None):
        super().__init__(name, act=act)
        self.n_filter = int(n_filter)
        self.in_channels = int(in_channels)
        self.filter_size = tuple(int(k) for k in filter_size)
        self.strides = tuple(int(s) for s in strides)
        self.W_init = W_init if W_init is not None else weight_init()
        self.b_init = b_init
        self.build((None, None, None, self.in_channels))
        self._built = True

    def __repr__(self):
        return ("Conv2dTranspose(in_channels=%d, n_filter=%d, filter_size=%s, strides=%s, name=%r)"
                % (self.in_channels, self.n_filter, self.filter_size, self.strides, self.name))

    def build(self, inputs_shape):
        shape = self.filter_size + (self.n_filter, self.in_channels)
        self.W = self._get_weights("filters", shape=shape, init=self.W_init)
        self.b = None
        if self.b_init is not None:
            self.b = self._get_weights("biases", shape=(self.n_filter,), init=self.b_init)

    def forward(self, inputs):
        shape = tf.shape(inputs)
        output_shape = tf.stack([shape[0], shape[1] * self.strides[0], shape[2] * self.strides[1], self.n_filter])
        outputs = tf.nn.conv2d_transpose(inputs, tf.cast(self.W, inputs.dtype), output_shape,
                                         strides=(1,) + self.strides + (1,), padding="SAME")
        static = inputs.shape
        outputs.set_shape([static[0],
                           None if static[1] is None else static[1] * self.strides[0],
                           None if static[2] is None else static[2] * self.strides[1],
                           self.n_filter])
        if self.b is not None:
            outputs = tf.nn.bias_add(outputs, tf.cast(self.b, inputs.dtype))
        if self.act is not None:
            outputs = self.act(outputs)
        return outputs


class TileAndConcat(tl.layers.Layer):
    """Concatenate an image with a vector tiled over its height and width.

    Input: ``[image, vector]`` with image ``[B, H, W, C]`` and vector ``[B, K]`` (GANimation: the
    target AUs, K = 17, values in [0, 1]). Output: ``[B, H, W, C + K]``, where channel ``C + k`` is
    the constant ``vector[b, k]``.

    Source: GANimation paper section 4.1 (the generator sees the image and the AU vector y_f
    replicated as H x W feature maps).
    """

    def __init__(self, name: str | None = None):
        super().__init__(name)
        self.build(None)
        self._built = True

    def __repr__(self):
        return "TileAndConcat(name=%r)" % self.name

    def build(self, inputs_shape):
        pass

    def forward(self, inputs):
        image, vector = inputs
        vector = tf.cast(vector, image.dtype)
        shape = tf.shape(image)
        tiled = tf.tile(vector[:, tf.newaxis, tf.newaxis, :], tf.stack([1, shape[1], shape[2], 1]))
        return tf.concat([image, tiled], axis=-1)
