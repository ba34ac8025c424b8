"""Tests of other_models/luo_transfer.py (Luo et al., NIPS 2017): losses against NumPy, network shapes, the data
split, a 2-step smoke run through the registry with the debug flagfile, and bad input."""
import math
from pathlib import Path

import numpy as np
import pytest
from absl import flags

from ganimation_tl import registry
from ganimation_tl.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
MNIST = SHARED / "data" / "digits" / "mnist.pkl.gz"
needs_mnist = pytest.mark.skipif(not MNIST.is_file(), reason="../shared/data/digits/mnist.pkl.gz is not beside the "
                                 "checkout (the smoke run trains on real MNIST)")

L = pytest.importorskip("other_models.luo_transfer")


def _flags(argv):
    registry.load_all()
    fv = flags.FlagValues()
    flags.DEFINE_string("model", "luo_transfer", "model", flag_values=fv)
    registry.get("luo_transfer").define_flags(fv)
    fv(["test"] + argv)
    return fv



# A tiny LeNet with L_DT on fc3, no domain loss, unit L_ST weight: the semantic-transfer tests' configuration.
_SMALL_ST = dict(luo_embedding_dim=8, luo_disc_units=4, luo_fc=16, luo_conv1=2, luo_conv2=3, luo_dt_layers="fc3",
                 luo_pretrain_steps=0, batch_size=4, luo_alpha=0.0, luo_beta=1.0)


def _tiny_batch(seed, targets):
    """A joint-stage batch of 28x28x1 images in [0, 1): 4 source (labels 0-3), ``targets`` unlabelled target,
    5 labelled target (labels 0-4)."""
    rng = np.random.default_rng(seed)
    return {"source_images": rng.random((4, 28, 28, 1), np.float32), "source_labels": np.arange(4) % 5,
            "target_images": rng.random((targets, 28, 28, 1), np.float32),
            "labelled_images": rng.random((5, 28, 28, 1), np.float32), "labelled_labels": np.arange(5)}

def test_similarity_logits_cosine_and_dot_match_numpy():
    rng = np.random.default_rng(0)
    a, r = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    cos = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (r / np.linalg.norm(r, axis=1, keepdims=True)).T
    np.testing.assert_allclose(L.similarity_logits(a, r, 0.5, "cosine").numpy(), cos / 0.5, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(L.similarity_logits(a, r, 2.0, "dot").numpy(), a @ r.T / 2.0, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        L.similarity_logits(a, r, 1.0, "euclid")


def test_entropy_uniform_is_log_c_and_confident_is_near_zero():
    assert float(L.mean_entropy(np.zeros((3, 5), np.float32))) == pytest.approx(math.log(5), rel=1e-6)
    confident = np.array([[100.0, 0, 0, 0, 0]], np.float32)
    assert float(L.mean_entropy(confident)) < 1e-6
    p = np.array([0.7, 0.2, 0.1])
    logits = np.log(p).astype(np.float32)[None]
    assert float(L.mean_entropy(logits)) == pytest.approx(-(p * np.log(p)).sum(), rel=1e-5)


def test_centroids_and_metric_cross_entropy():
    emb = np.array([[1, 0], [3, 0], [0, 2], [0, 4]], np.float32)
    labels = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(L.class_centroids(emb, labels, 2).numpy(), [[2, 0], [0, 3]])
    logits = np.array([[2.0, 0.0], [0.0, 1.0]], np.float32)
    expected = np.mean([-np.log(np.exp(2) / (np.exp(2) + 1)), -np.log(np.exp(0) / (1 + np.exp(1)))])
    assert float(L.metric_cross_entropy(logits, np.array([0, 0]))) == pytest.approx(expected, rel=1e-5)


def test_domain_losses_at_zero_logits_and_confident_discriminator():
    zeros = np.zeros((6, 1), np.float32)
    assert float(L.discriminator_loss(zeros, zeros)) == pytest.approx(2 * math.log(2), rel=1e-6)
    assert float(L.inverted_label_loss(zeros)) == pytest.approx(math.log(2), rel=1e-6)
    # A discriminator that is right (source +10, target -10) has ~0 loss; the encoder's inverted loss is ~10.
    assert float(L.discriminator_loss(zeros + 10, zeros - 10)) < 1e-3
    assert float(L.inverted_label_loss(zeros - 10)) == pytest.approx(10.0, abs=1e-3)


def test_networks_shapes_and_parameter_count():
    import tensorflow as tf
    cfg = L.LuoTransferConfig(luo_embedding_dim=16, luo_disc_units=8)
    net = L.build_embedding_net(cfg, "t_luo_E")
    net.eval()
    fc3, emb, logits, pool2 = net(tf.zeros([2, 28, 28, 1]))
    assert fc3.shape == (2, 500) and emb.shape == (2, 16) and logits.shape == (2, 5) and pool2.shape == (2, 800)
    # conv1 20*25+20, conv2 50*20*25+50, fc3 800*500+500, emb 500*16+16, head 16*5+5 (ADDA LeNet).
    expected = 520 + 25050 + 400500 + 8016 + 85
    assert sum(int(np.prod(w.shape)) for w in net.trainable_weights) == expected
    disc = L.build_domain_discriminator(16, 8, "t_luo_D")
    disc.eval()
    assert disc(tf.zeros([3, 16])).shape == (3, 1)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="luo_tau"):
        L.LuoTransferConfig(luo_tau=0)
    with pytest.raises(ValueError, match="luo_mode"):
        L.LuoTransferConfig(luo_mode="ablate")


def test_missing_mnist_is_an_input_error_naming_the_flag(tmp_path):
    fv = _flags(["--mnist_path=%s" % (tmp_path / "nope.pkl.gz"), "--workdir=%s" % tmp_path])
    with pytest.raises(InputError, match="--mnist_path.*nope.pkl.gz"):
        registry.get("luo_transfer").train(fv)


@needs_mnist
def test_data_split_is_disjoint_and_relative(tmp_path):
    data = L.prepare_data(str(MNIST), k=2, unlabelled=50, seed=3)
    assert data.labelled_images.shape == (10, 28, 28, 1) and sorted(set(data.labelled_labels)) == [0, 1, 2, 3, 4]
    assert set(np.unique(data.source_labels)) == {0, 1, 2, 3, 4}
    assert len(data.unlabelled_images) == 50 and len(data.test_images) == 4861
    flat_l = {x.tobytes() for x in data.labelled_images}
    assert not flat_l & {x.tobytes() for x in data.unlabelled_images}
    first = [b["source_labels"] for b in L.batches_for_epoch(data, 16, 0, 1)]
    again = [b["source_labels"] for b in L.batches_for_epoch(data, 16, 0, 1, skip=2)]
    np.testing.assert_array_equal(first[2], again[0])


@needs_mnist
def test_digits_m_source_is_grey_cluttered_mnist_0_to_4_disjoint_from_the_target():
    """--luo_source=digits_m: 2,000 MNIST-train digits 0-4 on photo crops, grey; the target split is unchanged."""
    plain = L.prepare_data(str(MNIST), k=1, unlabelled=50, seed=3)
    data = L.prepare_data(str(MNIST), k=1, unlabelled=50, seed=3, source="digits_m")
    assert data.source_images.shape == (L.DIGITS_M_SOURCE_IMAGES, 28, 28, 1)
    assert data.source_images.dtype == np.float32 and 0.0 <= data.source_images.min() <= data.source_images.max() <= 1.0
    assert set(np.unique(data.source_labels)) == {0, 1, 2, 3, 4}
    np.testing.assert_array_equal(data.unlabelled_images, plain.unlabelled_images)
    np.testing.assert_array_equal(data.labelled_images, plain.labelled_images)
    # Photo clutter: the outer 3-pixel frame is about 0 in MNIST, photo texture in Digits-M.
    def frame(x):
        return float(np.median(np.concatenate([x[:, :3].reshape(len(x), -1), x[:, -3:].reshape(len(x), -1)], 1).mean(1)))
    assert frame(data.source_images) > 0.1 and frame(plain.unlabelled_images) < 0.01
    again = L.prepare_data(str(MNIST), k=1, unlabelled=50, seed=4, source="digits_m")
    np.testing.assert_array_equal(again.source_images, data.source_images)   # the source does not depend on the seed
    with pytest.raises(InputError, match="luo_source"):
        L.prepare_data(str(MNIST), k=1, unlabelled=50, seed=3, source="svhn")
    with pytest.raises(ValueError, match="luo_source"):
        L.LuoTransferConfig(luo_source="svhn")


@needs_mnist
def test_two_step_smoke_run_through_the_registry(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    fv = _flags(["--flagfile=configs/luo_transfer_debug.cfg", "--max_steps=2", "--luo_pretrain_steps=1",
                 "--luo_unlabelled=64", "--batch_size=16", "--log_every=1", "--image_every=2",
                 "--workdir=%s" % tmp_path, "--mnist_path=%s" % MNIST])
    metrics = registry.get("luo_transfer").train(fv)
    # Step 0 is stage 1 (pre-training), step 1 stage 2 (joint): both kinds of metric appear and are finite.
    assert "pretrain/source_ce" in metrics and "encoder/semantic_transfer_entropy" in metrics
    assert all(math.isfinite(v) for v in metrics.values())
    assert 0.0 <= metrics["eval/target_test_accuracy"] <= 1.0
    assert (tmp_path / "checkpoints" / "checkpoint").is_file()
    assert (tmp_path / "samples" / "latest.png").is_file()


def test_alpha_warmup_schedule_and_layer_selection():
    cfg = L.LuoTransferConfig(luo_alpha=0.2, luo_alpha_warmup=4)
    assert [cfg.alpha_at(s) for s in range(6)] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
    assert L.LuoTransferConfig(luo_alpha=0.2).alpha_at(0) == pytest.approx(0.2)
    assert L.LuoTransferConfig().dt_layer_indices == (0, 1)
    assert L.LuoTransferConfig(luo_dt_layers="embedding").dt_layer_indices == (1,)
    assert L.LuoTransferConfig(luo_dt_layers="pool2,fc3").dt_layer_indices == (2, 0)
    for bad in ("", "fc3,fc3", "conv1"):
        with pytest.raises(ValueError, match="luo_dt_layers"):
            L.LuoTransferConfig(luo_dt_layers=bad)
    with pytest.raises(ValueError, match="luo_target_weight"):
        L.LuoTransferConfig(luo_target_weight=-1)


def test_one_discriminator_per_adapted_layer_and_alpha_reaches_the_step():
    cfg = L.LuoTransferConfig(luo_embedding_dim=8, luo_disc_units=4, luo_fc=16, luo_conv1=2, luo_conv2=3,
                              luo_dt_layers="embedding", luo_alpha=0.5, luo_alpha_warmup=2, luo_pretrain_steps=1,
                              batch_size=4)
    model = L.LuoTransfer(cfg, name="t_luo_sel")
    assert len(model.discriminators) == 1
    assert model.discriminators[0].all_weights[0].shape[0] == 8   # fed the embedding, not fc3
    batch = _tiny_batch(0, targets=4)
    first = model.train_step(batch, 1)     # first joint step: half of alpha
    later = model.train_step(batch, 5)
    assert float(first["encoder/alpha"]) == pytest.approx(0.25) and float(later["encoder/alpha"]) == pytest.approx(0.5)
    assert all(np.isfinite(float(v)) for v in later.values())


def test_marginal_entropy_and_semantic_transfer_options():
    # Batch-mean prediction uniform over 2 of 4 classes -> log 2; all rows confident on one class -> 0.
    logits = np.array([[50.0, 0, 0, 0], [0, 50.0, 0, 0]], np.float32)
    assert float(L.marginal_entropy(logits)) == pytest.approx(math.log(2), rel=1e-5)
    assert float(L.marginal_entropy(logits[:1])) == pytest.approx(0.0, abs=1e-5)
    cfg = L.LuoTransferConfig(luo_beta=0.4, luo_beta_warmup=4)
    assert [cfg.beta_at(s) for s in range(5)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4])
    assert L.LuoTransferConfig(luo_tau=0.1).st_tau == pytest.approx(0.1)
    assert L.LuoTransferConfig(luo_tau=0.1, luo_st_tau=0.5).st_tau == pytest.approx(0.5)
    for bad in (dict(luo_st_tau=-1), dict(luo_st_balance=-0.1), dict(luo_beta_warmup=-2)):
        with pytest.raises(ValueError, match=list(bad)[0]):
            L.LuoTransferConfig(**bad)


def test_semantic_transfer_temperature_and_balance_change_the_joint_step():
    # Same starting weights and batch: the L_ST entropy depends on luo_st_tau, the total on luo_st_balance.
    batch = _tiny_batch(1, targets=6)
    small = dict(_SMALL_ST)
    start = None
    out = {}
    for tag, extra in (("base", {}), ("soft", dict(luo_st_tau=10.0)), ("bal", dict(luo_st_balance=1.0))):
        model = L.LuoTransfer(L.LuoTransferConfig(**small, **extra), name="t_luo_st_" + tag)
        if start is None:
            start = model.get_weights()
        model.set_weights(start)
        out[tag] = {k: float(v) for k, v in model.train_step(batch, 0).items()}
    base, soft, bal = out["base"], out["soft"], out["bal"]
    # A much softer temperature gives a higher-entropy similarity distribution (close to log 5).
    assert soft["encoder/semantic_transfer_entropy"] > base["encoder/semantic_transfer_entropy"]
    assert soft["encoder/semantic_transfer_entropy"] > 0.95 * math.log(5)
    # The balance term subtracts beta * weight * H(mean p) from the total; the entropies themselves are unchanged.
    assert bal["encoder/semantic_transfer_entropy"] == pytest.approx(base["encoder/semantic_transfer_entropy"],
                                                                     rel=1e-4)
    assert bal["encoder/total"] == pytest.approx(base["encoder/total"] - bal["monitor/unlabelled_marginal_entropy"],
                                                 rel=1e-4, abs=1e-4)


def test_source_semantic_transfer_term_enters_the_total():
    # With luo_st_target=0 and luo_st_source=1, L_ST is the entropy over the batch's source images only.
    batch = _tiny_batch(2, targets=6)
    cfg = L.LuoTransferConfig(luo_embedding_dim=8, luo_disc_units=4, luo_fc=16, luo_conv1=2, luo_conv2=3,
                              luo_dt_layers="fc3", luo_pretrain_steps=0, batch_size=4, luo_alpha=0.0, luo_beta=0.5,
                              luo_st_source=1.0, luo_st_target=0.0)
    out = {k: float(v) for k, v in L.LuoTransfer(cfg, name="t_luo_src").train_step(batch, 0).items()}
    h_src = out["encoder/semantic_transfer_source_entropy"]
    assert 0.0 <= h_src <= math.log(4) + 1e-6
    assert out["encoder/total"] == pytest.approx(out["encoder/source_ce"] + out["encoder/target_metric_ce"]
                                                 + 0.5 * h_src, rel=1e-4, abs=1e-5)


def test_stop_centroids_changes_the_update_not_the_loss():
    batch = _tiny_batch(3, targets=6)
    small = dict(_SMALL_ST)
    start, outs, weights = None, [], []
    for stop in (False, True):
        model = L.LuoTransfer(L.LuoTransferConfig(luo_st_stop_centroids=stop, **small), name="t_luo_stop%d" % stop)
        start = start or model.get_weights()
        model.set_weights(start)
        outs.append({k: float(v) for k, v in model.train_step(batch, 0).items()})
        weights.append(model.get_weights())
    assert outs[0]["encoder/total"] == pytest.approx(outs[1]["encoder/total"], rel=1e-5)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(*weights)) > 0


def test_pool2_discriminator_reads_the_conv_features():
    cfg = L.LuoTransferConfig(luo_embedding_dim=8, luo_disc_units=4, luo_fc=16, luo_conv1=2, luo_conv2=3,
                              luo_dt_layers="pool2", luo_alpha=0.5, luo_pretrain_steps=0, batch_size=4)
    model = L.LuoTransfer(cfg, name="t_luo_pool2")
    assert len(model.discriminators) == 1 and model.discriminators[0].all_weights[0].shape[0] == 4 * 4 * 3
    batch = _tiny_batch(4, targets=4)
    out = model.train_step(batch, 0)
    assert np.isfinite(float(out["discriminator/loss"])) and float(out["encoder/domain_transfer"]) > 0


def test_untied_target_encoder_starts_as_the_source_encoder_and_takes_the_target_losses():
    # luo_untied: E_t is copied from E_s when the joint stage starts (step == luo_pretrain_steps); after that the
    # target-only losses (fine-tune mode: the metric cross-entropy) move E_t and leave E_s alone.
    cfg = L.LuoTransferConfig(luo_embedding_dim=8, luo_disc_units=4, luo_fc=16, luo_conv1=2, luo_conv2=3,
                              luo_dt_layers="fc3", luo_pretrain_steps=1, batch_size=4, luo_untied=True,
                              luo_mode="finetune")
    model = L.LuoTransfer(cfg, name="t_luo_untied")
    assert model.target_encoder is not model.encoder
    batch = _tiny_batch(5, targets=4)
    model.train_step(batch, 0)                       # stage 1 trains E_s only
    source = model.get_weights()
    target = [w.numpy() for w in model.target_encoder.all_weights]
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(source, target)) > 0
    model.train_step(batch, 1)                       # first joint step: copy, then fine-tune E_t
    after_s = model.get_weights()
    after_t = [w.numpy() for w in model.target_encoder.all_weights]
    assert all(np.array_equal(a, b) for a, b in zip(source, after_s))           # E_s untouched by target losses
    changed = max(float(np.max(np.abs(a - b))) for a, b in zip(source, after_t))
    assert 0 < changed < 0.05                                                  # E_t = E_s + one small Adam step
    # Predictions use E_t; the checkpoint holds both encoders.
    assert "target_encoder_weights" in model.trackables()
    np.testing.assert_allclose(model.embed(batch["target_images"]),
                               model.target_encoder(batch["target_images"])[1].numpy(), rtol=1e-5, atol=1e-6)


def test_untied_full_model_aligns_target_features_with_source_features():
    # In the full model with two encoders, L_DT's discriminator compares E_s(source) with E_t(target) and the
    # source cross-entropy trains E_s only; both encoders move.
    cfg = L.LuoTransferConfig(luo_embedding_dim=8, luo_disc_units=4, luo_fc=16, luo_conv1=2, luo_conv2=3,
                              luo_dt_layers="fc3", luo_pretrain_steps=0, batch_size=4, luo_untied=True,
                              luo_alpha=0.5)
    model = L.LuoTransfer(cfg, name="t_luo_untied_full")
    start_s, start_t = model.get_weights(), [w.numpy() for w in model.target_encoder.all_weights]
    assert all(np.array_equal(a, b) for a, b in zip(start_s, start_t))
    out = {k: float(v) for k, v in model.train_step(_tiny_batch(6, targets=4), 0).items()}
    assert out["encoder/domain_transfer"] > 0 and np.isfinite(out["discriminator/loss"])
    moved_s = max(float(np.max(np.abs(a - b))) for a, b in zip(start_s, model.get_weights()))
    moved_t = max(float(np.max(np.abs(a - w.numpy()))) for a, w in zip(start_t, model.target_encoder.all_weights))
    assert moved_s > 0 and moved_t > 0
    assert max(float(np.max(np.abs(a.numpy() - b.numpy())))
               for a, b in zip(model.encoder.all_weights, model.target_encoder.all_weights)) > 0
