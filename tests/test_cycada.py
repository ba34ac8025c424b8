"""CyCADA (other_models/cycada.py): smoke run through the registry, paper-specific pieces, bad input."""
import math

import numpy as np
import pytest

from sibling_helpers import MNIST, REPO, model_flags


def _flags(*extra):
    return model_flags("cycada", *extra, flagfile="cycada_debug.cfg")


TINY = ["--cycada_num_source=64", "--cycada_num_target=64", "--cycada_num_target_test=40", "--batch_size=8",
        "--cycada_gan_batch_size=4", "--cycada_ngf=4", "--cycada_ndf=4", "--cycada_res_blocks=1",
        "--cycada_feat_disc_units=8", "--cycada_pool_size=3", "--image_every=0", "--log_every=1"]


@pytest.mark.skipif(not MNIST.is_file(), reason="needs ../shared/data/digits/mnist.pkl.gz beside the checkout")
def test_smoke_two_steps(tmp_path, monkeypatch):
    """Two steps through the registry entry (stage 1: source classifier, stage 2: CycleGAN + L_sem)."""
    from ganimation_tl import registry
    monkeypatch.chdir(REPO)
    fv = _flags("--workdir=%s" % tmp_path, "--mnist_path=%s" % MNIST, "--cycada_classifier_steps=1",
                "--cycada_gan_steps=1", "--cycada_pixel_steps=0", "--cycada_adapt_steps=0", *TINY)
    metrics = registry.get("cycada").train(fv)
    for key in ("classifier/loss", "gan/total", "gan/d_t", "gan/semantic_st", "gan/cycle_l1",
                "eval/adapted_target_accuracy", "eval/semantic_consistency_accuracy", "eval/cycle_l1"):
        assert key in metrics and math.isfinite(metrics[key]), key
    assert 0.0 <= metrics["eval/adapted_target_accuracy"] <= 1.0
    assert (tmp_path / "checkpoints" / "checkpoint").is_file()
    assert list((tmp_path / "checkpoints").glob("ckpt-2.index"))
    assert (tmp_path / "config.json").is_file()


def test_missing_mnist_names_the_flag(tmp_path):
    from ganimation_tl import registry
    from ganimation_tl.errors import InputError
    fv = _flags("--workdir=%s" % tmp_path, "--mnist_path=%s" % (tmp_path / "nope" / "mnist.pkl.gz"))
    with pytest.raises(InputError, match="--mnist_path"):
        registry.get("cycada").train(fv)


def test_config_validation():
    from other_models.cycada import CyCADAConfig
    with pytest.raises(ValueError, match="cycada_target"):
        CyCADAConfig(cycada_target="svhn")
    with pytest.raises(ValueError, match="cycada_disc_acc_gate"):
        CyCADAConfig(cycada_disc_acc_gate=1.5)
    c = CyCADAConfig(cycada_classifier_steps=2, cycada_gan_steps=3, cycada_pixel_steps=0, cycada_adapt_steps=2)
    assert [c.stage_of(s)[0] for s in range(7)] == ["classifier"] * 2 + ["gan"] * 3 + ["adapt"] * 2
    assert c.total_steps == 7 and c.stage_of(3) == ("gan", 1, 3)


def test_lsgan_semantic_and_adda_losses_match_numpy():
    import tensorflow as tf
    from other_models.cycada import adda_losses, lsgan_loss, semantic_consistency_loss
    scores = np.array([[0.5, 1.5], [-1.0, 0.0]], np.float32)
    assert float(lsgan_loss(tf.constant(scores), 1.0)) == pytest.approx(np.mean((scores - 1) ** 2))
    assert float(lsgan_loss(tf.constant(scores), 0.0)) == pytest.approx(np.mean(scores ** 2))

    def ce(logits, labels):
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return -np.mean(logp[np.arange(len(labels)), labels])

    translated = np.array([[2.0, 0.0, -1.0], [0.0, 0.5, 0.1]], np.float32)
    original = np.array([[0.0, 3.0, 0.0], [0.0, 0.0, 1.0]], np.float32)  # pseudo-labels 1, 2
    got = float(semantic_consistency_loss(tf.constant(translated), tf.constant(original)))
    assert got == pytest.approx(ce(translated, np.array([1, 2])), rel=1e-5)
    got_true = float(semantic_consistency_loss(tf.constant(translated), labels=tf.constant([0, 1])))
    assert got_true == pytest.approx(ce(translated, np.array([0, 1])), rel=1e-5)

    src = np.array([[0.0, 2.0], [1.0, 0.0]], np.float32)   # D says source for the 1st only
    tgt = np.array([[3.0, 0.0]], np.float32)               # D says target
    d_loss, g_loss, acc = adda_losses(tf.constant(src), tf.constant(tgt))
    all_logits = np.concatenate([src, tgt])
    assert float(d_loss) == pytest.approx(ce(all_logits, np.array([1, 1, 0])), rel=1e-5)
    assert float(g_loss) == pytest.approx(ce(tgt, np.array([1])), rel=1e-5)
    assert float(acc) == pytest.approx(2.0 / 3.0)


def test_image_pool_fills_then_mixes_history():
    from other_models.cycada import ImagePool
    pool = ImagePool(2, (1, 1, 1), seed=0, name="test_pool")
    first = np.arange(2, dtype=np.float32).reshape(2, 1, 1, 1)
    np.testing.assert_array_equal(pool.query(first), first)        # filling: returned as is
    assert int(pool.count.numpy()) == 2
    new = np.full((200, 1, 1, 1), 9.0, np.float32)
    out = pool.query(new)
    old = np.sum(out != 9.0)
    assert 0 < old <= 2   # at most the 2 stored images come back, each once
    np.testing.assert_array_equal(ImagePool(0, (1, 1, 1), name="test_pool0").query(first), first)


def test_network_shapes_and_ranges():
    import tensorflow as tf
    from other_models.cycada import (build_feature_discriminator, build_lenet, build_patch_discriminator,
                                     build_resnet_generator, xavier_normal)
    x = tf.random.uniform([3, 28, 28, 1], -1, 1, seed=1)
    g = build_resnet_generator("test_cyc_G", 1, 28, ngf=4, res_blocks=1)
    y = g(x).numpy()
    assert y.shape == (3, 28, 28, 1) and y.min() >= -1 and y.max() <= 1
    assert build_patch_discriminator("test_cyc_D", 1, 28, ndf=4)(x).shape == (3, 4, 4, 1)
    lenet = build_lenet("test_cyc_L", 1)
    assert lenet(x, is_train=False).shape == (3, 10)
    assert sum(int(np.prod(w.shape)) for w in lenet.trainable_weights) == 431080  # release LeNet size
    assert build_feature_discriminator("test_cyc_F", 8)(tf.zeros([5, 10])).shape == (5, 2)
    w = xavier_normal()((200, 300)).numpy()
    assert w.std() == pytest.approx(np.sqrt(2.0 / 500), rel=0.05)


def test_adda_step_gates_and_moves_target_net():
    """Stage 4 on its own: D_feat trains every step; f_T moves only when D_feat accuracy > gate."""
    import tensorflow as tf
    from other_models.cycada import CyCADA, CyCADAConfig
    model = CyCADA(CyCADAConfig(cycada_ngf=2, cycada_ndf=2, cycada_res_blocks=0, cycada_feat_disc_units=64,
                                cycada_pool_size=0, cycada_lr_adapt=1e-3))
    rng = np.random.default_rng(0)
    x_s = tf.constant(rng.uniform(-1, 1, (16, 28, 28, 1)).astype(np.float32))
    x_t = tf.constant(rng.uniform(-1, 0, (16, 28, 28, 1)).astype(np.float32))
    before = [w.numpy().copy() for w in model.f_t.trainable_weights]
    out = model._adapt_step(x_s, x_t, tf.constant(1.01))     # gate never passed
    assert float(out["adapt/target_updated"]) == 0.0
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.f_t.trainable_weights))
    out = model._adapt_step(x_s, x_t, tf.constant(-0.01))    # gate always passed
    assert float(out["adapt/target_updated"]) == 1.0 and math.isfinite(float(out["adapt/g_loss"]))
    assert int(model.opt_ft.iterations.numpy()) == 1       # exactly one Adam step: the gated one
    assert not all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.f_t.trainable_weights))
