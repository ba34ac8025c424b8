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


def _ce_numpy(logits, labels):
    """Mean softmax cross-entropy of ``logits [B, C]`` against int ``labels [B]`` (NumPy reference)."""
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.mean(logp[np.arange(len(labels)), labels])


def _close(a, b):
    """Whether two lists of variables hold the same values (rtol 1e-5, atol 1e-6)."""
    return all(np.allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6) for x, y in zip(a, b))


def test_losses_match_numpy():
    import tensorflow as tf
    from other_models.cdrd import cdrd_losses

    rng = np.random.default_rng(0)
    heads = [(rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=(3, 10)).astype(np.float32))
             for _ in range(4)]
    y_s, l = np.array([1, 2, 3]), np.array([4, 5, 6])
    got = cdrd_losses(*[tuple(tf.constant(t) for t in h) for h in heads], tf.constant(y_s), tf.constant(l))
    (sr, sf, tr, tf_) = heads
    ones, zeros = np.ones(3, int), np.zeros(3, int)
    d_adv = (0.5 * (_ce_numpy(sr[0], ones) + _ce_numpy(sf[0], zeros))
             + 0.5 * (_ce_numpy(tr[0], ones) + _ce_numpy(tf_[0], zeros)))
    dis = 0.5 * (_ce_numpy(sr[1], y_s) + _ce_numpy(sf[1], l)) + 0.5 * _ce_numpy(tf_[1], l)   # no target labels
    g_adv = _ce_numpy(sf[0], ones) + _ce_numpy(tf_[0], ones)
    assert float(got["d_adv"]) == pytest.approx(d_adv, rel=1e-5)
    assert float(got["dis"]) == pytest.approx(dis, rel=1e-5)
    assert float(got["g_adv"]) == pytest.approx(g_adv, rel=1e-5)
    assert float(got["g_total"]) == pytest.approx(g_adv + dis, rel=1e-5)
    assert float(got["dis_real_source"]) == pytest.approx(0.5 * _ce_numpy(sr[1], y_s), rel=1e-5)
    assert float(got["dis_fake_target"]) == pytest.approx(0.5 * _ce_numpy(tf_[1], l), rel=1e-5)
    # The generator step's own terms: L_G and L_dis without the real-source term (constant for G).
    from other_models.cdrd import cdrd_generator_losses
    g_only, dis_fake = cdrd_generator_losses(tuple(tf.constant(t) for t in sf), tuple(tf.constant(t) for t in tf_),
                                             tf.constant(l))
    assert float(g_only) == pytest.approx(g_adv, rel=1e-5)
    assert float(dis_fake) == pytest.approx(dis - 0.5 * _ce_numpy(sr[1], y_s), rel=1e-5)
    # --cdrd_d_fake_source_class=w scales the generated-source class term of the discriminator's L_dis.
    for w in (0.0, 0.25):
        weighted = cdrd_losses(*[tuple(tf.constant(t) for t in h) for h in heads], tf.constant(y_s), tf.constant(l),
                               fake_source_class=w)
        assert float(weighted["dis"]) == pytest.approx(
            0.5 * (_ce_numpy(sr[1], y_s) + w * _ce_numpy(sf[1], l)) + 0.5 * _ce_numpy(tf_[1], l), rel=1e-5)
        assert float(weighted["d_adv"]) == pytest.approx(d_adv, rel=1e-5)


def _tiny_config_and_batch(seed, batch_seed):
    """Config fields of a tiny CDRD (tied init, high rate) and one batch ``(x_s, y_s, x_t, z, l)`` of 4."""
    tiny = dict(cdrd_g_width=16, cdrd_d_conv1=4, cdrd_d_conv2=4, cdrd_d_fc=8, cdrd_z_dim=4, cdrd_lr=1e-2,
                cdrd_tied_init=True, seed=seed)
    rng = np.random.default_rng(batch_seed)
    batch = (rng.uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32), np.array([0, 1, 2, 3], np.int32),
             rng.uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32), rng.normal(size=(4, 4)).astype(np.float32),
             np.array([4, 5, 6, 7], np.int32))
    return tiny, batch


def test_discriminator_fake_source_class_weight_leaves_the_generator_step_unchanged():
    from other_models.cdrd import CDRD, CDRDConfig
    tiny, batch = _tiny_config_and_batch(seed=3, batch_seed=0)
    models, logs = [], []
    for w in (1.0, 0.0):
        model = CDRD(CDRDConfig(cdrd_d_fake_source_class=w, **tiny))
        logs.append({k: float(v) for k, v in model.train_step(batch, 0).items()})
        models.append(model)
    full, real_only = models
    # Same start and the generator's loss does not read the weight: identical generator updates ...
    for a, b in zip(full.g_vars, real_only.g_vars):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    # ... while the discriminator's class loss drops the generated-source term (a positive cross-entropy).
    assert logs[1]["discriminator/disentangle"] < logs[0]["discriminator/disentangle"]
    assert any(not np.allclose(a.numpy(), b.numpy()) for a, b in zip(full.d_vars, real_only.d_vars))
    with pytest.raises(ValueError, match="cdrd_d_fake_source_class"):
        CDRDConfig(cdrd_d_fake_source_class=1.5)


def test_generator_target_anchor_loss_matches_numpy():
    import tensorflow as tf
    from other_models.cdrd import cdrd_generator_losses

    rng = np.random.default_rng(1)
    sf, tf_ = [(rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=(3, 10)).astype(np.float32))
               for _ in range(2)]
    anchor_logits = rng.normal(size=(3, 10)).astype(np.float32)
    l = np.array([4, 5, 6])
    heads = [tuple(tf.constant(t) for t in h) for h in (sf, tf_)]
    _, plain = cdrd_generator_losses(*heads, tf.constant(l))
    _, anchored = cdrd_generator_losses(*heads, tf.constant(l), tf.constant(anchor_logits), 0.5)
    assert float(anchored) == pytest.approx(float(plain) + 0.5 * 0.5 * _ce_numpy(anchor_logits, l), rel=1e-5)
    with pytest.raises(ValueError, match="source branch"):
        cdrd_generator_losses(*heads, tf.constant(l), None, 1.0)


def test_generator_target_anchor_changes_only_what_reads_the_target_generator():
    from other_models.cdrd import CDRD, CDRDConfig
    tiny, batch = _tiny_config_and_batch(seed=7, batch_seed=2)
    tiny["cdrd_tied_init"] = False   # D_S's and D_T's layers differ, so the branch that reads G_T matters
    models, logs = [], []
    for anchor in (0.0, 1.0):
        model = CDRD(CDRDConfig(cdrd_g_target_source_class=anchor, cdrd_d_fake_source_class=0.0, **tiny))
        logs.append({k: float(v) for k, v in model.train_step(batch, 0).items()})
        models.append(model)
    plain, anchored = models
    # G_S's own layer gets no gradient from a term on G_T(z, l); G_T's layer and the shared G layers do.
    assert _close(plain.g_head_s.trainable_weights, anchored.g_head_s.trainable_weights)
    assert not _close(plain.g_head_t.trainable_weights, anchored.g_head_t.trainable_weights)
    assert not _close(plain.g_shared.trainable_weights, anchored.g_shared.trainable_weights)
    # The logged generator class loss includes the anchor (a positive cross-entropy), and D's step, which
    # follows G's, sees the changed generated digits.
    assert logs[1]["generator/disentangle"] > logs[0]["generator/disentangle"]
    assert not _close(plain.d_vars, anchored.d_vars)
    # The G update is the gradient of L_G + lambda [L_dis's G terms + a/2 CE(D_l^S(G_T(z, l)), l)], with
    # G_T's digit read through the *source* branch (recomputed here outside the training step).
    import tensorflow as tf
    from other_models.cdrd import cdrd_generator_losses
    manual = CDRD(CDRDConfig(cdrd_g_target_source_class=1.0, cdrd_d_fake_source_class=0.0, **tiny))
    _, _, _, z, l = (tf.convert_to_tensor(b) for b in batch)
    with tf.GradientTape() as tape:
        fake_t = manual.generate(z, l, "target")
        g_adv, dis = cdrd_generator_losses(manual.discriminate(manual.generate(z, l, "source"), "source"),
                                           manual.discriminate(fake_t, "target"), l)
        source_read = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            l, manual.discriminate(fake_t, "source")[1]))
        loss = g_adv + manual.config.cdrd_lambda_dis * (dis + 0.5 * source_read)
    manual.opt_g.apply_gradients(zip(tape.gradient(loss, manual.g_vars), manual.g_vars))
    assert _close(manual.g_vars, anchored.g_vars)
    with pytest.raises(ValueError, match="cdrd_g_target_source_class"):
        CDRDConfig(cdrd_g_target_source_class=-0.5)


def test_generated_target_class_term_can_train_only_the_target_specific_layer():
    from other_models.cdrd import CDRD, CDRDConfig
    tiny, batch = _tiny_config_and_batch(seed=5, batch_seed=1)
    models = []
    for specific, lam in ((False, 3.0), (True, 3.0), (False, 0.0), (True, 0.0)):
        model = CDRD(CDRDConfig(cdrd_d_fake_target_class_specific=specific, cdrd_lambda_dis=lam, **tiny))
        model.train_step(batch, 0)
        models.append(model)
    full, specific, full_nodis, specific_nodis = models
    # Generator updates never read the option.
    assert _close(full.g_vars, specific.g_vars)
    # With the class terms on, the shared layers and D_l move differently (they no longer get the
    # generated-target class gradient) ...
    assert not _close(full.d_shared.trainable_weights, specific.d_shared.trainable_weights)
    # ... while D_T's own layer gets the whole gradient either way, and D_S's never sees that term.
    assert _close(full.d_low_t.trainable_weights, specific.d_low_t.trainable_weights)
    assert _close(full.d_low_s.trainable_weights, specific.d_low_s.trainable_weights)
    # ... and with lambda_dis = 0 (no class terms) the option changes nothing.
    for a, b in ((full_nodis.d_vars, specific_nodis.d_vars), (full_nodis.g_vars, specific_nodis.g_vars)):
        assert _close(a, b)


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


def test_tied_init_starts_both_branches_identical():
    """--cdrd_tied_init: G_T's head and D_T's first layer start as copies of the source's (same images,
    same logits for the same input); without it they are independent random layers."""
    import tensorflow as tf
    from other_models.cdrd import CDRD, CDRDConfig
    small = dict(cdrd_g_width=16, cdrd_d_conv1=4, cdrd_d_conv2=4, cdrd_d_fc=8, cdrd_z_dim=4)
    z, labels = tf.random.normal([3, 4], seed=5), tf.constant([1, 4, 7])
    tied = CDRD(CDRDConfig(cdrd_tied_init=True, **small))
    untied = CDRD(CDRDConfig(**small))
    for model, same in ((tied, True), (untied, False)):
        fake_s, fake_t = model.generate(z, labels, "source").numpy(), model.generate(z, labels, "target").numpy()
        logits_s = model.discriminate(fake_s, "source")[1].numpy()
        logits_t = model.discriminate(fake_s, "target")[1].numpy()
        # (relative tolerance only: the N(0, 0.02) initial logits are ~1e-11)
        assert np.allclose(fake_s, fake_t, rtol=1e-5, atol=0) == same
        assert np.allclose(logits_s, logits_t, rtol=1e-5, atol=0) == same
    # The copies are separate variables: training one branch leaves the other unchanged.
    tied.g_head_t.trainable_weights[0].assign_add(tf.ones_like(tied.g_head_t.trainable_weights[0]))
    assert not np.allclose(tied.generate(z, labels, "source").numpy(), tied.generate(z, labels, "target").numpy())


def test_selection_criterion_is_branch_agreement():
    """The label-free criterion is 1 when both branches are identical (tied start) and reads no target label."""
    import dataclasses as dc
    from other_models.cdrd import CDRD, CDRDConfig, selection_criterion
    model = CDRD(CDRDConfig(cdrd_tied_init=True, cdrd_g_width=16, cdrd_d_conv1=4, cdrd_d_conv2=4, cdrd_d_fc=8,
                            cdrd_z_dim=4))

    @dc.dataclass
    class Data:
        target_train: np.ndarray

    x = np.random.default_rng(0).uniform(-1, 1, (20, 28, 28, 1)).astype(np.float32)
    assert selection_criterion(model, Data(x)) == 1.0
    w = model.d_low_t.trainable_weights[0]
    w.assign(-3.0 * w)
    assert selection_criterion(model, Data(x)) < 1.0


def test_bottleneck_digits_matches_the_source_pipeline():
    """--cdrd_target_bottleneck=8 puts target digits through the 8x8 pipeline of the sklearn source: an
    upsampled sklearn digit comes back almost unchanged, an MNIST-like thin stroke gets blurred and
    widened, the frame outside the central 20x20 is black, and bad shapes / settings raise."""
    from ganimation_tl.datasets.digits import load_sklearn_digits
    from other_models.cdrd import CDRDConfig, bottleneck_digits, preprocess_target
    src = load_sklearn_digits(28)[0][:20] * 2.0 - 1.0
    out = bottleneck_digits(src, 8)
    assert out.shape == src.shape and out.dtype == np.float32 and -1.0 <= out.min() and out.max() <= 1.0
    assert np.abs(out - src).mean() < 0.05
    stroke = -np.ones((1, 28, 28, 1), np.float32)
    stroke[0, 6:22, 13, 0] = 1.0                       # a one-pixel vertical "1"
    blurred = bottleneck_digits(stroke, 8)
    assert (blurred[0, 10:18, :, 0] > -0.9).sum(axis=1).min() >= 3   # wider than one pixel
    assert blurred[0, 10:18, :, 0].max() < 1.0          # and no longer saturated
    assert np.all(blurred[0, :4] == -1.0) and np.all(blurred[0, :, 24:] == -1.0)
    with pytest.raises(ValueError, match="28, 28, 1"):
        bottleneck_digits(np.zeros((2, 32, 32, 1)))
    with pytest.raises(ValueError, match="cdrd_target_bottleneck"):
        CDRDConfig(cdrd_target_bottleneck=1)

    import dataclasses as dc

    @dc.dataclass(frozen=True)
    class Data:
        target_train: np.ndarray
        target_test: np.ndarray
        description: str

    data = Data(stroke, stroke, "d")
    assert preprocess_target(data, CDRDConfig()) is data
    pre = preprocess_target(data, CDRDConfig(cdrd_target_bottleneck=8))
    assert np.allclose(pre.target_train, blurred) and np.allclose(pre.target_test, blurred)
    assert "8x8 bottleneck" in pre.description


def test_two_domain_specific_generator_layers():
    """--cdrd_g_specific_layers=2: the 12x12 -> 25x25 deconv moves from the shared generator into each
    domain's head (separate weights), the images keep their shape, and bad counts raise."""
    import tensorflow as tf
    from other_models.cdrd import (CDRD, CDRDConfig, build_generator_head, build_generator_shared,
                                   generator_feature_shape)
    small = dict(cdrd_g_width=16, cdrd_d_conv1=4, cdrd_d_conv2=4, cdrd_d_fc=8, cdrd_z_dim=4)
    one, two = CDRD(CDRDConfig(**small)), CDRD(CDRDConfig(cdrd_g_specific_layers=2, **small))
    assert generator_feature_shape(4, 16, 1) == (25, 25, 2) and generator_feature_shape(4, 16, 2) == (12, 12, 4)
    assert len(two.g_shared.trainable_weights) == len(one.g_shared.trainable_weights) - 2
    assert len(two.g_head_t.trainable_weights) == len(one.g_head_t.trainable_weights) + 2
    assert not set(map(id, two.g_head_s.trainable_weights)) & set(map(id, two.g_head_t.trainable_weights))
    z, labels = tf.random.normal([2, 4], seed=9), tf.constant([3, 8])
    code = tf.concat([z, tf.one_hot(labels, 10)], -1)
    assert two.g_shared(code).shape == (2, 12, 12, 4)
    for domain in ("source", "target"):
        images = two.generate(z, labels, domain).numpy()
        assert images.shape == (2, 28, 28, 1) and np.abs(images).max() <= 1.0
    with pytest.raises(ValueError, match="specific_layers"):
        build_generator_shared("bad_shared", 4, 16, specific_layers=5)
    with pytest.raises(ValueError, match="in_channels"):
        build_generator_head("bad_head", 3, 1, specific_layers=2, z_dim=4, width=16)
    with pytest.raises(ValueError, match="cdrd_g_specific_layers"):
        CDRDConfig(cdrd_g_specific_layers=0)


def test_generator_batchnorm_option():
    """--cdrd_g_batchnorm: a BatchNorm (gamma/beta trainable, moving statistics not) after each hidden
    generator deconv; the hidden activations of a batch are normalised (mean ~0 before the LReLU);
    one training step runs and changes G."""
    import tensorflow as tf
    from other_models.cdrd import CDRD, CDRDConfig
    small = dict(cdrd_g_width=16, cdrd_d_conv1=4, cdrd_d_conv2=4, cdrd_d_fc=8, cdrd_z_dim=4, batch_size=4)
    plain, bn = CDRD(CDRDConfig(**small)), CDRD(CDRDConfig(cdrd_g_batchnorm=True, **small))
    names = [w.name for w in bn.g_shared.trainable_weights]
    assert sum("_bn/gamma" in n for n in names) == 4 and sum("_bn/beta" in n for n in names) == 4
    assert len(bn.g_shared.all_weights) == len(plain.g_shared.all_weights) + 16   # + gamma, beta, 2 moving stats
    assert len(bn.g_head_t.trainable_weights) == len(plain.g_head_t.trainable_weights)  # head: last deconv only
    rng = np.random.default_rng(0)
    batch = (rng.uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32), np.array([0, 1, 2, 3], np.int32),
             rng.uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32), rng.normal(size=(4, 4)).astype(np.float32),
             np.array([4, 5, 6, 7], np.int32))
    before = bn.generate(batch[3], batch[4], "target").numpy()
    metrics = bn.train_step(batch, 0)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert not np.allclose(before, bn.generate(batch[3], batch[4], "target").numpy())
    code = tf.concat([tf.constant(batch[3]), tf.one_hot(batch[4], 10)], -1)
    features = bn.g_shared(code).numpy()            # after BN + LReLU(0.25): positive and negative parts
    assert features.shape == (4, 25, 25, 2) and (features < 0).any() and (features > 0).any()


def test_learning_rate_decay_schedule_reaches_both_optimisers():
    from other_models.cdrd import CDRD, CDRDConfig
    tiny = dict(cdrd_g_width=16, cdrd_d_conv1=4, cdrd_d_conv2=4, cdrd_d_fc=8, cdrd_z_dim=4, cdrd_lr=1e-3)
    constant = CDRD(CDRDConfig(cdrd_steps=10, **tiny))
    assert [constant.learning_rate(s) for s in (0, 5, 9)] == pytest.approx([1e-3] * 3)
    model = CDRD(CDRDConfig(cdrd_steps=10, cdrd_lr_decay_steps=4, **tiny))
    # Constant for the first 6 iterations, then linear to 0 over the last 4.
    assert [model.learning_rate(s) for s in range(11)] == pytest.approx(
        [1e-3] * 7 + [7.5e-4, 5e-4, 2.5e-4, 0.0])
    assert model.set_learning_rate_epoch(0.8) == {"lr": pytest.approx(5e-4)}
    assert float(model.opt_g.learning_rate) == pytest.approx(5e-4)
    assert float(model.opt_d.learning_rate) == pytest.approx(5e-4)
    # A window longer than the run (the debug flagfile's 3,000 with --cdrd_steps=4) decays over the whole run.
    short = CDRD(CDRDConfig(cdrd_steps=4, cdrd_lr_decay_steps=3000, **tiny))
    assert [short.learning_rate(s) for s in range(4)] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])
    with pytest.raises(ValueError, match="cdrd_lr_decay_steps"):
        CDRDConfig(cdrd_steps=10, cdrd_lr_decay_steps=-1)


def test_scikit_learn_target_is_accepted_with_the_mnist_source():
    from other_models.cdrd import CDRDConfig
    config = CDRDConfig(cdrd_source="mnist", cdrd_target="sklearn", cdrd_num_target=1000, cdrd_num_target_test=797)
    assert config.cdrd_target == "sklearn"
    with pytest.raises(ValueError, match="cdrd_target"):
        CDRDConfig(cdrd_target="usps")


@pytest.mark.skipif(not MNIST.is_file(), reason="needs ../shared/data/digits/mnist.pkl.gz beside the checkout")
def test_mnist_to_sklearn_flagfile_trains_two_steps(tmp_path, monkeypatch):
    # configs/cdrd_m2d_debug.cfg (MNIST -> scikit-learn digits) reads configs/cdrd_debug.cfg and overrides the domains.
    from ganimation_tl import registry
    monkeypatch.chdir(REPO)
    fv = model_flags("cdrd", "--workdir=%s" % tmp_path, "--mnist_path=%s" % MNIST, "--cdrd_steps=2",
                     "--batch_size=4", "--cdrd_num_source=32", "--cdrd_num_target=32", "--cdrd_num_target_test=40",
                     "--cdrd_g_width=16", "--cdrd_d_conv1=4", "--cdrd_d_conv2=4", "--cdrd_d_fc=8", "--cdrd_z_dim=4",
                     "--image_every=2", "--log_every=1", flagfile="cdrd_m2d_debug.cfg")
    assert (fv.cdrd_source, fv.cdrd_target, fv.cdrd_target_bottleneck) == ("mnist", "sklearn", 0)
    assert fv.cdrd_g_specific_layers == 2 and fv.cdrd_lr_decay_steps == 3000    # inherited from cdrd_debug.cfg
    metrics = registry.get("cdrd").train(fv)
    assert 0.0 <= metrics["eval/target_accuracy"] <= 1.0
    assert metrics["lr"] == pytest.approx(2e-4 * 0.5)   # the rate at the second (last) of 2 decaying steps
    assert list((tmp_path / "checkpoints").glob("ckpt-2.index"))


def test_weight_average_option_leaves_training_unchanged_and_is_used_and_checkpointed(tmp_path):
    import tensorflow as tf
    from other_models.cdrd import CDRD, CDRDConfig
    tiny, batch = _tiny_config_and_batch(seed=5, batch_seed=1)
    plain, averaged = CDRD(CDRDConfig(**tiny)), CDRD(CDRDConfig(cdrd_ema_decay=0.99, **tiny))
    both = CDRD(CDRDConfig(cdrd_ema_decay=0.99, cdrd_ema_discriminator=True, **tiny))
    assert plain.weight_average is None
    # By default only the generator is averaged; the class head stays the trained one.
    assert [id(v) for v in averaged.weight_average.variables] == [id(v) for v in averaged.g_vars]
    assert [id(v) for v in both.weight_average.variables] == [id(v) for v in both.g_vars + both.d_vars]
    for step in range(3):
        plain.train_step(batch, step)
        averaged.train_step(batch, step)
    # Training never reads the averages: both models hold the same trained weights.
    for a, b in zip(plain.g_vars + plain.d_vars, averaged.g_vars + averaged.d_vars):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    z, labels = batch[3], batch[4]
    trained = averaged.generate(z, labels, "target").numpy()
    with averaged.evaluation_weights():
        smoothed = averaged.generate(z, labels, "target").numpy()
        np.testing.assert_allclose(averaged.g_vars[0].numpy(), averaged.weight_average.values()[0].numpy())
    assert not np.allclose(trained, smoothed, atol=1e-4)   # evaluation sees other weights ...
    np.testing.assert_allclose(averaged.generate(z, labels, "target").numpy(), trained, rtol=1e-5, atol=1e-6)
    with plain.evaluation_weights():                         # ... and without the option the block is a no-op
        np.testing.assert_allclose(plain.generate(z, labels, "target").numpy(), trained, rtol=1e-5, atol=1e-6)
    # The averages and their update count are checkpointed and restored.
    path = tf.train.Checkpoint(**averaged.trackables()).save(str(tmp_path / "ckpt"))
    restored = CDRD(CDRDConfig(cdrd_ema_decay=0.99, **tiny))
    tf.train.Checkpoint(**restored.trackables()).restore(path).assert_existing_objects_matched()
    assert int(restored.weight_average.num_updates.numpy()) == 3
    for a, b in zip(averaged.weight_average.averages, restored.weight_average.averages):
        np.testing.assert_allclose(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="cdrd_ema_decay"):
        CDRDConfig(cdrd_ema_decay=1.0)


def test_class_terms_can_read_the_averaged_generator():
    """--cdrd_d_class_from_average: the samples of the D step's class terms come from G's average (eager and
    traced), and the trained generator is back in place afterwards; off, they are the trained G's samples."""
    import tensorflow as tf
    from other_models.cdrd import CDRD, CDRDConfig
    tiny, batch = _tiny_config_and_batch(seed=6, batch_seed=2)
    plain = CDRD(CDRDConfig(cdrd_ema_decay=0.5, **tiny))
    teacher = CDRD(CDRDConfig(cdrd_ema_decay=0.5, cdrd_d_class_from_average=True, **tiny))
    for step in range(3):
        for model in (plain, teacher):
            model.train_step(batch, step)
    z, labels = tf.constant(batch[3]), tf.constant(batch[4])
    fake_s, fake_t = teacher.generate(z, labels, "source"), teacher.generate(z, labels, "target")
    trained = [v.numpy().copy() for v in teacher.g_vars]
    with teacher.evaluation_weights():
        want = (teacher.generate(z, labels, "source").numpy(), teacher.generate(z, labels, "target").numpy())
    for got in (teacher.class_samples(z, labels, fake_s, fake_t),
                tf.function(teacher.class_samples)(z, labels, fake_s, fake_t)):
        for g, w, f in zip(got, want, (fake_s, fake_t)):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-5, atol=1e-5)
            assert not np.allclose(g.numpy(), f.numpy(), atol=1e-4)
        for v, t in zip(teacher.g_vars, trained):
            np.testing.assert_array_equal(v.numpy(), t)
    same = plain.class_samples(z, labels, fake_s, fake_t)
    assert same[0] is fake_s and same[1] is fake_t
    with pytest.raises(ValueError, match="cdrd_d_class_from_average"):
        CDRDConfig(cdrd_d_class_from_average=True)


@pytest.mark.parametrize("specific_layers,batch_norm", [(1, False), (2, True)])
def test_generate_both_equals_two_generate_calls_with_the_same_gradients(specific_layers, batch_norm):
    """generate_both runs the shared layers once: the same images as generate(..., 'source') and
    generate(..., 'target') (batch norm included: both calls see the same batch), and the generator loss
    through it has the value and gradients of the two-call form (the train step before 2026-12-07)."""
    import tensorflow as tf
    from other_models.cdrd import CDRD, CDRDConfig, cdrd_generator_losses
    small = dict(cdrd_g_width=16, cdrd_d_conv1=4, cdrd_d_conv2=4, cdrd_d_fc=8, cdrd_z_dim=4, batch_size=4,
                 cdrd_g_specific_layers=specific_layers, cdrd_g_batchnorm=batch_norm, cdrd_tied_init=False)
    model = CDRD(CDRDConfig(**small))
    rng = np.random.default_rng(0)
    z, labels = rng.normal(size=(4, 4)).astype(np.float32), np.array([1, 3, 5, 7], np.int32)
    both = model.generate_both(z, labels)
    np.testing.assert_allclose(both[0].numpy(), model.generate(z, labels, "source").numpy(), atol=1e-6)
    np.testing.assert_allclose(both[1].numpy(), model.generate(z, labels, "target").numpy(), atol=1e-6)
    assert not np.allclose(both[0].numpy(), both[1].numpy())          # untied heads differ
    # The generator loss through generate_both has the gradients of the two-call form.
    twin = CDRD(CDRDConfig(**small))
    for a, b in zip(twin.g_vars + twin.d_vars, model.g_vars + model.d_vars):
        a.assign(b)
    with tf.GradientTape() as tape:
        s, t = model.generate_both(z, labels)
        loss = sum(cdrd_generator_losses(model.discriminate(s, "source"), model.discriminate(t, "target"), labels))
    with tf.GradientTape() as tape2:
        s2, t2 = twin.generate(z, labels, "source"), twin.generate(z, labels, "target")
        loss2 = sum(cdrd_generator_losses(twin.discriminate(s2, "source"), twin.discriminate(t2, "target"), labels))
    assert float(loss) == pytest.approx(float(loss2), rel=1e-6)
    for g1, g2 in zip(tape.gradient(loss, model.g_vars), tape2.gradient(loss2, twin.g_vars)):
        np.testing.assert_allclose(g1.numpy(), g2.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not MNIST.is_file(), reason="needs ../shared/data/digits/mnist.pkl.gz beside the checkout")
def test_step_benchmark_times_the_configured_model(tmp_path, monkeypatch, capsys):
    """bench/bench_cdrd_step.py: ms per iteration > 0 and the minutes for cdrd_steps follow from it; JSON written;
    a bad flag value is exit 2 naming it."""
    import importlib.util
    import json
    monkeypatch.chdir(REPO)
    spec = importlib.util.spec_from_file_location("bench_cdrd_step", REPO / "bench" / "bench_cdrd_step.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "step.json"
    result = bench.main(["bench", "--flagfile=configs/cdrd_debug.cfg", "--mnist_path=%s" % MNIST, "--steps=2",
                         "--warmup=1", "--cdrd_g_width=16", "--cdrd_d_conv1=4", "--cdrd_d_conv2=4", "--cdrd_d_fc=8",
                         "--cdrd_num_target=64", "--cdrd_num_source=64", "--output=%s" % out])
    assert result["ms_per_iteration"] > 0 and result["steps_timed"] == 2 and result["g_width"] == 16
    assert result["minutes_for_cdrd_steps"] == pytest.approx(result["ms_per_iteration"] * 6000 / 60000.0)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["bench", "--flagfile=configs/cdrd_debug.cfg", "--steps=0"])
    assert exit_info.value.code == 2 and "--steps" in capsys.readouterr().err
