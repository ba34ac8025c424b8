"""CDRD (other_models/cdrd.py): smoke run through the registry, paper-specific pieces, bad input."""
import math

import numpy as np
import pytest

from sibling_helpers import MNIST, REPO, model_flags


def _flags(*extra):
    return model_flags("cdrd", *extra, flagfile="cdrd_debug.cfg")


@pytest.mark.skipif(not MNIST.is_file(), reason="needs ../shared/data/digits/mnist.pkl.gz beside the checkout")
def test_smoke_two_steps(tmp_path, monkeypatch):
    from ganimation_tl import registry
    monkeypatch.chdir(REPO)
    fv = _flags("--workdir=%s" % tmp_path, "--mnist_path=%s" % MNIST, "--cdrd_steps=2", "--batch_size=4",
                "--cdrd_num_source=32", "--cdrd_num_target=32", "--cdrd_num_target_test=40", "--cdrd_g_width=16",
                "--cdrd_d_conv1=4", "--cdrd_d_conv2=4", "--cdrd_d_fc=8", "--cdrd_z_dim=4", "--image_every=2",
                "--log_every=1")
    metrics = registry.get("cdrd").train(fv)
    for key in ("discriminator/total", "generator/total", "discriminator/disentangle", "eval/target_accuracy",
                "eval/generated_self_consistency_target"):
        assert key in metrics and math.isfinite(metrics[key]), key
    assert (tmp_path / "checkpoints" / "checkpoint").is_file()
    assert list((tmp_path / "checkpoints").glob("ckpt-2.index"))
    assert (tmp_path / "samples" / "latest.png").is_file()


def test_missing_mnist_names_the_flag(tmp_path):
    from ganimation_tl import registry
    from ganimation_tl.errors import InputError
    fv = _flags("--workdir=%s" % tmp_path, "--mnist_path=%s" % (tmp_path / "missing.pkl.gz"))
    with pytest.raises(InputError, match="--mnist_path"):
        registry.get("cdrd").train(fv)


def test_config_validation():
    from other_models.cdrd import CDRDConfig
    with pytest.raises(ValueError, match="cdrd_g_width"):
        CDRDConfig(cdrd_g_width=12)
    with pytest.raises(ValueError, match="cdrd_source"):
        CDRDConfig(cdrd_source="usps")
    with pytest.raises(ValueError, match="cdrd_leak"):
        CDRDConfig(cdrd_leak=1.0)


def test_losses_match_numpy():
    import tensorflow as tf
    from other_models.cdrd import cdrd_losses

    def ce(logits, labels):
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return -np.mean(logp[np.arange(len(labels)), labels])

    rng = np.random.default_rng(0)
    heads = [(rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=(3, 10)).astype(np.float32))
             for _ in range(4)]
    y_s, l = np.array([1, 2, 3]), np.array([4, 5, 6])
    got = cdrd_losses(*[tuple(tf.constant(t) for t in h) for h in heads], tf.constant(y_s), tf.constant(l))
    (sr, sf, tr, tf_) = heads
    ones, zeros = np.ones(3, int), np.zeros(3, int)
    d_adv = 0.5 * (ce(sr[0], ones) + ce(sf[0], zeros)) + 0.5 * (ce(tr[0], ones) + ce(tf_[0], zeros))
    dis = 0.5 * (ce(sr[1], y_s) + ce(sf[1], l)) + 0.5 * ce(tf_[1], l)   # no target labels
    g_adv = ce(sf[0], ones) + ce(tf_[0], ones)
    assert float(got["d_adv"]) == pytest.approx(d_adv, rel=1e-5)
    assert float(got["dis"]) == pytest.approx(dis, rel=1e-5)
    assert float(got["g_adv"]) == pytest.approx(g_adv, rel=1e-5)
    assert float(got["g_total"]) == pytest.approx(g_adv + dis, rel=1e-5)


def test_transposed_conv_valid_is_the_adjoint_of_valid_conv():
    """<deconv(x), y> == <x, conv_VALID(y)> with the same kernel: the TF1 ``deconv2d`` the code uses."""
    import tensorflow as tf
    from other_models.cdrd import TransposedConvValid
    layer = TransposedConvValid(3, 2, (3, 3), (2, 2), (12, 12), name="test_cdrd_tcv")
    layer.b.assign(tf.zeros_like(layer.b))
    x = tf.random.normal([2, 5, 5, 2], seed=1)
    y = tf.random.normal([2, 12, 12, 3], seed=2)
    lhs = tf.reduce_sum(layer.forward(x) * y)
    rhs = tf.reduce_sum(x * tf.nn.conv2d(y, layer.W, strides=2, padding="VALID"))
    assert float(lhs) == pytest.approx(float(rhs), rel=1e-4)


def test_shared_and_domain_specific_shapes():
    import tensorflow as tf
    from other_models.cdrd import CDRD, CDRDConfig
    model = CDRD(CDRDConfig(cdrd_g_width=16, cdrd_d_conv1=4, cdrd_d_conv2=4, cdrd_d_fc=8, cdrd_z_dim=4))
    z = tf.random.uniform([3, 4], -1, 1, seed=3)
    labels = tf.constant([0, 5, 9])
    assert model.g_shared(tf.concat([z, tf.one_hot(labels, 10)], -1)).shape == (3, 25, 25, 2)
    for domain in ("source", "target"):
        images = model.generate(z, labels, domain).numpy()
        assert images.shape == (3, 28, 28, 1) and np.abs(images).max() <= 1.0
        real_fake, classes = model.discriminate(images, domain)
        assert real_fake.shape == (3, 2) and classes.shape == (3, 10)
    # "detach": the generator heads and the discriminator's first layers are separate weights per
    # domain; everything else is shared.
    assert not set(map(id, model.g_head_s.trainable_weights)) & set(map(id, model.g_head_t.trainable_weights))
    assert not set(map(id, model.d_low_s.trainable_weights)) & set(map(id, model.d_low_t.trainable_weights))
    same_z = model.generate(z, labels, "source").numpy() - model.generate(z, labels, "target").numpy()
    assert np.abs(same_z).max() > 0  # different heads give different images for the same (z, l)
