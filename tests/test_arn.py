"""Tests of other_models/arn.py (ARN, Li et al., CVPRW 2018): losses against NumPy, re-ID metrics on known
features, network shapes, the P x K sampler, a 2-step smoke run through the registry, and bad input."""
import math
from pathlib import Path

import numpy as np
import pytest
from absl import flags

from ganimation_tl import registry
from ganimation_tl.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
CFP = SHARED / "data" / "cfp"
needs_cfp = pytest.mark.skipif(not CFP.is_dir(), reason="../shared/data/cfp is not beside the checkout "
                               "(the smoke run trains on real CFP faces)")

A = pytest.importorskip("other_models.arn")


def _flags(argv):
    registry.load_all()
    fv = flags.FlagValues()
    flags.DEFINE_string("model", "arn", "model", flag_values=fv)
    registry.get("arn").define_flags(fv)
    fv(["test"] + argv)
    return fv


def test_difference_loss_zero_for_orthogonal_columns_and_matches_numpy():
    # Unit-length rows; the shared column (1,1,1,1) is orthogonal over the batch to the private one (1,-1,1,-1).
    shared = np.array([[1, 0], [1, 0], [1, 0], [1, 0]], np.float32)
    private = np.array([[1], [-1], [1], [-1]], np.float32)
    assert float(A.difference_loss(shared, private)) == pytest.approx(0.0, abs=1e-7)
    # Same private code for every image: H_c^T H_p = [[4], [0]] -> (4 / 4)^2 = 1.
    assert float(A.difference_loss(shared, np.ones((4, 1), np.float32))) == pytest.approx(1.0, rel=1e-6)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    an, bn = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    expected = np.sum((an.T @ bn) ** 2) / 25.0
    assert float(A.difference_loss(a, b)) == pytest.approx(expected, rel=1e-5)


def test_contrastive_loss_hand_computed():
    # Unit codes: two of identity 0 at 90 degrees (d = sqrt 2), one of identity 1 equal to the first (d = 0).
    codes = np.array([[1, 0], [0, 1], [1, 0]], np.float32)
    labels = np.array([0, 0, 1])
    m = 1.5
    # pairs: (0,1) same, d^2 = 2; (0,2) different, d = 0 -> m^2; (1,2) different, d = sqrt2 -> (m - sqrt2)^2
    expected = (2.0 + m ** 2 + (m - math.sqrt(2)) ** 2) / 3
    assert float(A.contrastive_loss(codes, labels, m)) == pytest.approx(expected, rel=1e-4)


def test_reconstruction_loss_is_mse():
    x = np.zeros((2, 4, 4, 3), np.float32)
    assert float(A.reconstruction_loss(x, x + 0.5)) == pytest.approx(0.25)


def test_rank1_and_map_on_known_features():
    feats = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    perfect = A.rank1_and_map(feats, np.array([1, 1, 2, 2]))
    assert perfect == {"rank1": 1.0, "map": 1.0, "queries": 4}
    crossed = A.rank1_and_map(feats, np.array([1, 2, 1, 2]))
    assert crossed["rank1"] == 0.0
    # Hand-ranked: queries 0 and 2 find their match 3rd of 3 (AP 1/3), queries 1 and 3 2nd (AP 1/2).
    assert crossed["map"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 3 + 1 / 2) / 4)


def test_networks_shapes():
    import tensorflow as tf
    cfg = A.ARNConfig(image_size=32, arn_conv_dim=4, arn_feature_dim=16, arn_code_dim=8, arn_source_ids=10,
                      arn_ids_per_batch=2, arn_images_per_id=2, batch_size=4)
    model = A.ARN(cfg, name="t_arn")
    x = tf.zeros([3, 32, 32, 3])
    feats = model.backbone(x)
    assert feats.shape == (3, 16)
    code = model.shared_encoder(feats)
    assert code.shape == (3, 8) and model.classifier(code).shape == (3, 10)
    recon = model.decoder(code + model.target_encoder(feats))
    assert recon.shape == (3, 32, 32, 3)
    assert float(tf.reduce_max(tf.abs(recon))) <= 1.0


def test_config_validation():
    with pytest.raises(ValueError, match="batch_size"):
        A.ARNConfig(batch_size=30)
    with pytest.raises(ValueError, match="image_size"):
        A.ARNConfig(image_size=40)
    with pytest.raises(ValueError, match="arn_mode"):
        A.ARNConfig(arn_mode="dann")
    with pytest.raises(ValueError, match="arn_profile_orientation"):
        A.ARNConfig(arn_profile_orientation="left")


def test_pk_sampler_gives_positive_pairs_and_is_deterministic():
    cfg = A.ARNConfig(image_size=16, arn_ids_per_batch=3, arn_images_per_id=2, batch_size=6, arn_source_ids=5)
    labels = np.repeat(np.arange(5), 4).astype(np.int32)
    data = A.ARNData(np.zeros((20, 16, 16, 3), np.float32) + labels[:, None, None, None], labels,
                     np.zeros((7, 16, 16, 3), np.float32), np.arange(7))
    batches = list(A.batches_for_epoch(data, cfg, epoch=2))
    assert len(batches) == 3
    for b in batches:
        counts = np.bincount(b["source_labels"], minlength=5)
        assert sorted(counts[counts > 0].tolist()) == [2, 2, 2]
        assert b["target_images"].shape == (6, 16, 16, 3)
    skipped = list(A.batches_for_epoch(data, cfg, epoch=2, skip=1))
    np.testing.assert_array_equal(skipped[0]["source_labels"], batches[1]["source_labels"])


def test_missing_cfp_dir_is_an_input_error_naming_the_flag(tmp_path):
    fv = _flags(["--cfp_dir=%s" % (tmp_path / "no_cfp"), "--workdir=%s" % tmp_path])
    with pytest.raises(InputError, match="--cfp_dir.*no_cfp"):
        registry.get("arn").train(fv)


@needs_cfp
def test_two_step_smoke_run_through_the_registry(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    fv = _flags(["--flagfile=configs/arn_debug.cfg", "--max_steps=2", "--arn_source_ids=8", "--arn_target_ids=4",
                 "--arn_ids_per_batch=4", "--arn_images_per_id=2", "--batch_size=8", "--arn_conv_dim=8",
                 "--log_every=1", "--image_every=2", "--workdir=%s" % tmp_path, "--cfp_dir=%s" % CFP])
    metrics = registry.get("arn").train(fv)
    for key in ("loss/classification", "loss/contrastive", "loss/reconstruction", "loss/difference"):
        assert math.isfinite(metrics[key])
    assert 0.0 <= metrics["eval/target_rank1"] <= 1.0
    assert (tmp_path / "checkpoints" / "checkpoint").is_file()
    assert (tmp_path / "samples" / "latest.png").is_file()


def test_mmd_loss_zero_for_equal_batches_and_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 5)).astype(np.float32)
    assert float(A.mmd_loss(a, a)) == pytest.approx(0.0, abs=1e-3)
    b = rng.normal(size=(4, 5)).astype(np.float32) + 2.0
    an, bn = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)

    def k(x, y):
        d = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        return sum(np.exp(-d / (2 * s * s)) for s in (1.0, 2.0, 10.0))

    expected = np.sqrt(k(an, an).mean() + k(bn, bn).mean() - 2 * k(an, bn).mean())
    assert float(A.mmd_loss(a, b)) == pytest.approx(expected, rel=1e-4)
    gap = A.domain_gap(a, b)
    assert gap["mmd"] == pytest.approx(expected, rel=1e-4)
    assert -1.0 <= gap["cross_cos"] <= 1.0 and gap["within_cos"] > gap["cross_cos"]


def test_flip_augmentation_mirrors_images_and_keeps_the_batches():
    cfg = A.ARNConfig(image_size=16, arn_ids_per_batch=2, arn_images_per_id=2, batch_size=4, arn_source_ids=3)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 3).astype(np.int32)
    data = A.ARNData(rng.normal(size=(9, 16, 16, 3)).astype(np.float32), labels,
                     rng.normal(size=(5, 16, 16, 3)).astype(np.float32), np.arange(5))
    plain = list(A.batches_for_epoch(data, cfg, epoch=1))
    import dataclasses
    flipped = list(A.batches_for_epoch(data, dataclasses.replace(cfg, arn_flip=True), epoch=1))
    n_flipped = 0
    for p, f in zip(plain, flipped):
        np.testing.assert_array_equal(p["source_labels"], f["source_labels"])
        for key in ("source_images", "target_images"):
            for x, y in zip(p[key], f[key]):
                same, mirrored = np.array_equal(x, y), np.array_equal(x[:, ::-1], y)
                assert same or mirrored
                n_flipped += int(mirrored and not same)
    assert 0 < n_flipped < 2 * 4 * len(plain)


def test_mmd_term_enters_the_arn_step():
    cfg = A.ARNConfig(image_size=16, arn_conv_dim=2, arn_feature_dim=8, arn_code_dim=4, arn_source_ids=4,
                      arn_ids_per_batch=2, arn_images_per_id=2, batch_size=4, arn_mmd=0.5)
    model = A.ARN(cfg, name="t_arn_mmd")
    rng = np.random.default_rng(0)
    out = model.train_step({"source_images": rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32),
                            "source_labels": np.array([0, 0, 1, 1], np.int32),
                            "target_images": rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)}, 0)
    parts = (float(out["loss/classification"]) + float(out["loss/contrastive"]) + float(out["loss/reconstruction"])
             + 0.1 * float(out["loss/difference"]) + 0.5 * float(out["loss/mmd"]))
    assert float(out["loss/mmd"]) > 0 and float(out["loss/total"]) == pytest.approx(parts, rel=1e-5)


def _profile_landmarks(nose_x, n=30):
    """Synthetic fiducials: 29 points spread over x in [10, 20] and the nose tip (point 22) at ``nose_x``."""
    lm = np.stack([np.linspace(10, 20, n), np.linspace(5, 25, n)], 1)
    lm[22, 0] = nose_x
    return lm


def test_faces_left_reads_the_nose_tip_and_inverts_under_mirroring():
    lm = np.stack([_profile_landmarks(8.0), _profile_landmarks(22.0)])
    np.testing.assert_array_equal(A.faces_left(lm), [True, False])
    mirrored = lm.copy()
    mirrored[:, :, 0] = 31.0 - mirrored[:, :, 0]
    np.testing.assert_array_equal(A.faces_left(mirrored), [False, True])
    with pytest.raises(ValueError, match=r"\[N, 30, 2\]"):
        A.faces_left(np.zeros((2, 5, 2)))


def test_mirror_where_mirrors_only_the_masked_images_and_copies():
    images = np.arange(2 * 2 * 3 * 1, dtype=np.float32).reshape(2, 2, 3, 1)
    out = A.mirror_where(images, np.array([True, False]))
    np.testing.assert_array_equal(out[0], images[0][:, ::-1])
    np.testing.assert_array_equal(out[1], images[1])
    assert not np.shares_memory(out, images)
    with pytest.raises(ValueError, match="mask"):
        A.mirror_where(images, np.array([True]))


@needs_cfp
def test_face_right_orientation_mirrors_the_left_facing_cfp_profiles():
    from ganimation_tl.datasets.cfp import load_faces
    import dataclasses
    cfg = A.ARNConfig(image_size=16, arn_source_ids=2, arn_target_ids=3, arn_ids_per_batch=2, arn_images_per_id=2,
                      batch_size=4)
    as_is = A.prepare_data(str(CFP), cfg)
    right = A.prepare_data(str(CFP), dataclasses.replace(cfg, arn_profile_orientation="face_right"))
    left = A.faces_left(load_faces(str(CFP), 16, identities=[3, 4, 5], views=("profile",)).landmarks)
    assert 0 < left.sum() < len(left)  # CFP has profiles facing both ways
    for i, is_left in enumerate(left):
        expected = as_is.target_images[i][:, ::-1] if is_left else as_is.target_images[i]
        np.testing.assert_array_equal(right.target_images[i], expected)
    np.testing.assert_array_equal(right.source_images, as_is.source_images)


def test_flip_pooled_codes_are_mirror_invariant():
    import dataclasses
    cfg = A.ARNConfig(image_size=16, arn_conv_dim=2, arn_feature_dim=8, arn_code_dim=4, arn_source_ids=4,
                      arn_ids_per_batch=2, arn_images_per_id=2, batch_size=4)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(3, 16, 16, 3)).astype(np.float32)
    mirror = np.ascontiguousarray(x[:, :, ::-1])
    model = A.ARN(cfg, name="t_arn_plain_codes")
    assert not np.allclose(model.shared_codes(x), model.shared_codes(mirror), atol=1e-4)
    pooled = A.ARN(dataclasses.replace(cfg, arn_flip_pool=True), name="t_arn_pooled_codes")
    codes = pooled.shared_codes(x)
    np.testing.assert_allclose(codes, pooled.shared_codes(mirror), atol=1e-5)
    assert codes.shape == (3, 4) and np.all(np.linalg.norm(codes, axis=1) <= 2.0 + 1e-5)
