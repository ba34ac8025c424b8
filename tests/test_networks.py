import numpy as np
import pytest
import tensorflow as tf

from ganimation_tl.networks import build_critic, build_generator, compose, critic_output_size


def count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def test_paper_size_parameter_counts_match_official_networks():
    g = build_generator(128, 17)
    d = build_critic(128, 17)
    assert count(g.trainable_weights) == 8_471_296 and len(g.trainable_weights) == 53
    assert count(d.trainable_weights) == 44_860_352 and len(d.trainable_weights) == 14
    names = [w.name for w in g.all_weights + d.all_weights]
    assert len(set(names)) == len(names)
    assert all(n.startswith("G_") for n in names[:53]) and all(n.startswith("D_") for n in names[53:])


def test_generator_outputs_shapes_and_ranges():
    g = build_generator(32, 17, conv_dim=8, repeat_num=2, name="Gt")
    g.eval()
    images = tf.random.uniform([3, 32, 32, 3], -1, 1, seed=0)
    aus = tf.random.uniform([3, 17], seed=1)
    color, attention = g([images, aus])
    assert color.shape == (3, 32, 32, 3) and attention.shape == (3, 32, 32, 1)
    assert -1 <= color.numpy().min() and color.numpy().max() <= 1
    assert 0 <= attention.numpy().min() and attention.numpy().max() <= 1
    # The AUs condition the output.
    color2, _ = g([images, 1.0 - aus])
    assert np.abs(color2.numpy() - color.numpy()).max() > 1e-4


def test_critic_heads_follow_image_size():
    for size, layers, side in ((128, 6, 2), (64, 4, 4), (32, 4, 2)):
        d = build_critic(size, 17, conv_dim=4, repeat_num=layers, name="Dt%d" % size)
        d.eval()
        critic_map, aus = d(tf.zeros([2, size, size, 3]))
        assert critic_map.shape == (2, side, side, 1)
        assert aus.shape == (2, 17)
    with pytest.raises(ValueError, match="multiple of 2\\*\\*repeat_num"):
        critic_output_size(32, 6)


def test_compose_keeps_input_where_attention_is_one():
    image = tf.fill([1, 2, 2, 3], 0.5)
    color = tf.fill([1, 2, 2, 3], -1.0)
    attention = tf.constant([[[[1.0], [0.0]], [[0.25], [1.0]]]])
    out = compose(image, color, attention).numpy()
    np.testing.assert_allclose(out[0, 0, 0], 0.5)
    np.testing.assert_allclose(out[0, 0, 1], -1.0)
    np.testing.assert_allclose(out[0, 1, 0], 0.25 * 0.5 + 0.75 * -1.0)
