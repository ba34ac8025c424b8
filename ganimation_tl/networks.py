"""GANimation's generator and critic as static TensorLayer 2 models.

Source: Pumarola et al., "GANimation", ECCV 2018, section 4.1 and the supplementary architecture;
facts as listed in ``../shared/docs/ganimation.md`` (architectures, N(0, 0.02) weights, no bias
before instance norm). At the paper's sizes the generator has 8,471,296 parameters and the critic
44,860,352, the same as the official PyTorch networks.

Every layer has an explicit name with a per-model prefix (``G_`` / ``D_`` by default) so the
variables keep stable names across processes and checkpoints.
"""
from __future__ import annotations


import tensorflow as tf
import tensorlayer as tl

from ganimation_tl.layers import Conv2dTranspose, InstanceNorm2d, TileAndConcat, weight_init

tl.logging.set_verbosity(tl.logging.WARN)  # TL logs every layer it builds at INFO

__all__ = ["build_generator", "build_critic", "compose", "critic_output_size", "unique_model_name"]


def unique_model_name(prefix: str) -> str:
    """TL keeps a process-wide set of model names and refuses duplicates; layer names (and so
    variable names) keep the plain prefix, only the Model object's own name gets a suffix."""
    from tensorlayer.models import core
    taken = core._global_model_name_set
    if prefix not in taken:
        return prefix
    i = 1
    while "%s_%d" % (prefix, i) in taken:
        i += 1
    return "%s_%d" % (prefix, i)


def _leaky_relu(x):
    return tf.nn.leaky_relu(x, alpha=0.01)


def _conv(x, n_filter, size, stride, name, in_channels, bias=False, act=None, padding="SAME"):
    return tl.layers.Conv2d(n_filter, (size, size), (stride, stride), act=act, padding=padding,
                            W_init=weight_init(), b_init=tl.initializers.zeros() if bias else None,
                            in_channels=in_channels, name=name)(x)


def _conv_in_relu(x, n_filter, size, stride, name, in_channels):
    x = _conv(x, n_filter, size, stride, name + "_conv", in_channels)
    x = InstanceNorm2d(n_filter, name=name + "_in")(x)
    return tl.layers.Lambda(tf.nn.relu, name=name + "_relu")(x)


def build_generator(image_size: int = 128, num_aus: int = 17, conv_dim: int = 64, repeat_num: int = 6,
                    name: str = "G") -> tl.models.Model:
    """Build GANimation's generator G(I, y) -> (C, A).

    Args:
        image_size: H = W of the square input; a multiple of 4.
        num_aus: K, length of the conditioning AU vector (17 OpenFace AUs).
        conv_dim: channels of the first convolution (64 in the paper); later layers use 2x and 4x.
        repeat_num: number of residual blocks (6 in the paper).
        name: layer-name prefix (variables are ``<name>_<layer>/<weight>``); the Model itself is
            named ``name``, or ``name_N`` if that name is taken in this process.

    Returns:
        A static ``tl.models.Model`` (call ``.train()`` or ``.eval()`` before use) taking
        ``[image, aus]`` with image float32 ``[B, H, W, 3]`` in [-1, 1] (NHWC, RGB) and aus float32
        ``[B, K]`` in [0, 1], and returning ``(color_mask, attention_mask)``: color_mask
        ``[B, H, W, 3]`` in [-1, 1] (tanh) and attention_mask ``[B, H, W, 1]`` in [0, 1] (sigmoid;
        1 keeps the input pixel). Combine them with :func:`compose`.

    Raises:
        ValueError: image_size is not a positive multiple of 4, or a size argument is not positive.

    Architecture (paper section 4.1): input = image ++ tiled AUs (3 + K channels);
    7x7/1 conv(conv_dim)-IN-ReLU; 4x4/2 conv(2 conv_dim)-IN-ReLU; 4x4/2 conv(4 conv_dim)-IN-ReLU;
    ``repeat_num`` residual blocks (3x3 conv-IN-ReLU-3x3 conv-IN, then x + block(x), no ReLU after
    the add); two 4x4/2 transposed convs (2 conv_dim, conv_dim)-IN-ReLU; heads 7x7/1 conv to 3
    channels + tanh (C) and 7x7/1 conv to 1 channel + sigmoid (A). No biases; weights ~ N(0, 0.02).
    """
    if image_size <= 0 or image_size % 4:
        raise ValueError("generator image_size must be a positive multiple of 4, got %r" % image_size)
    if num_aus <= 0 or conv_dim <= 0 or repeat_num < 0:
        raise ValueError("num_aus and conv_dim must be positive and repeat_num >= 0")
    p = name + "_"
    image = tl.layers.Input([None, image_size, image_size, 3], name=p + "image")
    aus = tl.layers.Input([None, num_aus], name=p + "aus")
    x = TileAndConcat(name=p + "input_concat")([image, aus])

    x = _conv_in_relu(x, conv_dim, 7, 1, p + "c0", 3 + num_aus)
    x = _conv_in_relu(x, conv_dim * 2, 4, 2, p + "down1", conv_dim)
    x = _conv_in_relu(x, conv_dim * 4, 4, 2, p + "down2", conv_dim * 2)
    ch = conv_dim * 4
    for i in range(repeat_num):
        r = p + "res%d" % i
        h = _conv_in_relu(x, ch, 3, 1, r + "_a", ch)
        h = _conv(h, ch, 3, 1, r + "_b_conv", ch)
        h = InstanceNorm2d(ch, name=r + "_b_in")(h)
        x = tl.layers.Elementwise(tf.add, name=r + "_add")([x, h])
    for i, out_ch in enumerate((conv_dim * 2, conv_dim)):
        u = p + "up%d" % (i + 1)
        x = Conv2dTranspose(out_ch, in_channels=ch, filter_size=(4, 4), strides=(2, 2), name=u + "_deconv")(x)
        x = InstanceNorm2d(out_ch, name=u + "_in")(x)
        x = tl.layers.Lambda(tf.nn.relu, name=u + "_relu")(x)
        ch = out_ch
    color = _conv(x, 3, 7, 1, p + "color", ch, act=tf.nn.tanh)
    attention = _conv(x, 1, 7, 1, p + "attention", ch, act=tf.nn.sigmoid)
    return tl.models.Model(inputs=[image, aus], outputs=[color, attention], name=unique_model_name(name))


def critic_output_size(image_size: int, repeat_num: int = 6) -> int:
    """Side of the critic map, ``image_size / 2**repeat_num`` (2 for 128 px and 6 layers).

    Raises:
        ValueError: image_size is not a positive multiple of ``2**repeat_num``.
    """
    factor = 2 ** repeat_num
    if image_size <= 0 or image_size % factor:
        raise ValueError("critic image_size must be a positive multiple of 2**repeat_num = %d (got %r); "
                         "use fewer critic layers for small images" % (factor, image_size))
    return image_size // factor


def build_critic(image_size: int = 128, num_aus: int = 17, conv_dim: int = 64, repeat_num: int = 6,
                 name: str = "D") -> tl.models.Model:
    """Build GANimation's critic D(I) -> (D_I, D_y).

    Args:
        image_size: H = W of the input; a multiple of ``2**repeat_num``.
        num_aus: K, outputs of the AU regression head.
        conv_dim: channels of the first convolution (64); each later one doubles (up to 2048).
        repeat_num: number of 4x4 stride-2 convolutions (6 in the paper).
        name: model name and layer-name prefix.

    Returns:
        A static ``tl.models.Model`` taking images float32 ``[B, H, W, 3]`` in [-1, 1] and returning
        ``(critic_map, aus)``: the PatchGAN critic map ``[B, H/2**repeat_num, W/2**repeat_num, 1]``
        (unbounded WGAN scores; ``[B, 2, 2, 1]`` at 128 px) and the AU regression ``[B, K]``
        (unbounded; trained towards AUs in [0, 1]).

    Raises:
        ValueError: image_size is not a positive multiple of ``2**repeat_num``.

    Architecture (paper section 4.1): ``repeat_num`` 4x4/2 convolutions with bias and
    LeakyReLU(0.01), no normalisation; critic head 3x3/1 conv to 1 channel; AU head a 'VALID' conv
    whose kernel covers the whole last feature map (H/2**repeat_num) to K outputs. Heads have no
    bias. Deviation: the official code hard-codes the AU kernel for 128 px; here it follows the
    image size.
    """
    side = critic_output_size(image_size, repeat_num)
    p = name + "_"
    image = tl.layers.Input([None, image_size, image_size, 3], name=p + "image")
    x = image
    ch_in, ch = 3, conv_dim
    for i in range(repeat_num):
        x = _conv(x, ch, 4, 2, p + "c%d" % i, ch_in, bias=True, act=_leaky_relu)
        ch_in, ch = ch, ch * 2
    critic_map = _conv(x, 1, 3, 1, p + "critic_map", ch_in)
    au = _conv(x, num_aus, side, 1, p + "au_conv", ch_in, padding="VALID")
    au = tl.layers.Reshape([-1, num_aus], name=p + "au")(au)
    return tl.models.Model(inputs=image, outputs=[critic_map, au], name=unique_model_name(name))


def compose(image, color_mask, attention_mask):
    """Combine the generator's masks with its input: ``output = A * image + (1 - A) * C``.

    Args:
        image: ``[B, H, W, 3]`` in [-1, 1], the generator's input image.
        color_mask: C, ``[B, H, W, 3]`` in [-1, 1].
        attention_mask: A, ``[B, H, W, 1]`` in [0, 1]; A = 1 keeps the input pixel.

    Returns:
        ``[B, H, W, 3]`` in [-1, 1].

    Source: GANimation paper section 4.1, eq. (1) (there written with A weighting C; here A
    weights the input, as the official code and ``../shared/docs/ganimation.md``).
    """
    return attention_mask * image + (1.0 - attention_mask) * color_mask
