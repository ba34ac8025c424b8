"""DR-GAN (other_models/drgan.py): smoke run through the registry, paper pieces against NumPy, bad input."""
import math

import numpy as np
import pytest

from sibling_helpers import CFP, model_flags, needs_cfp


def _flags(*extra):
    return model_flags("drgan", *extra, flagfile="drgan_debug.cfg", model="drgan")


@needs_cfp
def test_two_step_smoke_run_writes_checkpoint(tmp_path):
    from ganimation_tl import registry
    registry.load_all()
    fv = _flags("--cfp_dir=%s" % CFP, "--workdir=%s" % tmp_path, "--max_steps=2", "--log_every=1",
                "--image_every=2", "--drgan_num_identities=6", "--drgan_train_identities=4", "--batch_size=8")
    metrics = registry.get("drgan").train(fv)
    for key in ("discriminator/total", "generator/total", "generator/fused"):
        assert math.isfinite(metrics[key]), key
    # 5 classes (4 identities + synthetic): the untrained D's cross-entropy is near log(5).
    assert 0.5 * math.log(5) < metrics["discriminator/id_real"] < 2.5 * math.log(5)
    assert (tmp_path / "checkpoints" / "checkpoint").exists()
    assert (tmp_path / "samples" / "latest.png").exists()


def test_fusion_matches_numpy_weighted_mean():
    from other_models.drgan import fuse_features
    rng = np.random.default_rng(0)
    f = rng.normal(size=(6, 5)).astype(np.float32)
    logits = rng.normal(size=6).astype(np.float32)
    out = fuse_features(f, logits, group_size=3).numpy()
    w = 1 / (1 + np.exp(-logits))
    expected = np.stack([(w[g * 3:g * 3 + 3, None] * f[g * 3:g * 3 + 3]).sum(0) / (w[g * 3:g * 3 + 3].sum() + 1e-6)
                         for g in range(2)])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def _np_ce(logits, labels):
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(labels)), labels].mean()


def test_discriminator_and_generator_losses_match_paper_terms():
    from other_models.drgan import discriminator_loss, generator_loss
    rng = np.random.default_rng(1)
    nd, npose = 4, 3
    real = rng.normal(size=(5, nd + 1 + npose)).astype(np.float32)
    fake = rng.normal(size=(3, nd + 1 + npose)).astype(np.float32)
    labels, poses = np.array([0, 1, 2, 3, 0]), np.array([0, 1, 2, 0, 1])
    total, parts = discriminator_loss(real, labels, poses, fake, nd)
    expected = (_np_ce(real[:, :nd + 1], labels) + _np_ce(real[:, nd + 1:], poses)
                + _np_ce(fake[:, :nd + 1], np.full(3, nd)))
    assert float(total) == pytest.approx(expected, rel=1e-5)
    g_total, _ = generator_loss(fake, np.array([1, 2, 3]), np.array([2, 0, 1]), nd)
    assert float(g_total) == pytest.approx(_np_ce(fake[:, :nd + 1], np.array([1, 2, 3]))
                                           + _np_ce(fake[:, nd + 1:], np.array([2, 0, 1])), rel=1e-5)


def test_profile_direction_from_fiducials():
    from other_models.drgan import profile_direction
    lm = np.zeros((2, 30, 2), np.float32)
    lm[0, 0:9, 0], lm[0, 18:30, 0] = 10.0, 20.0   # nose right of the jaw -> facing image-right (2)
    lm[1, 0:9, 0], lm[1, 18:30, 0] = 20.0, 10.0
    assert profile_direction(lm).tolist() == [2, 1]
    assert profile_direction(lm * np.array([-1, 1], np.float32)).tolist() == [1, 2]  # mirrored x


def test_network_shapes_and_feature_size():
    import tensorflow as tf
    from other_models.drgan import DRGANConfig, NUM_POSES, build_decoder, build_discriminator, build_encoder
    cfg = DRGANConfig(image_size=16, drgan_conv_dim=4, drgan_downsamplings=2, drgan_feature_dim=12,
                      drgan_noise_dim=3, batch_size=4)
    enc, dec, disc = build_encoder(cfg), build_decoder(cfg), build_discriminator(cfg, num_identities=7)
    for m in (enc, dec, disc):
        m.eval()
    x = tf.random.uniform([2, 16, 16, 3], -1, 1)
    assert enc(x).shape == (2, 13)                     # N_f + confidence
    y = dec(tf.zeros([2, 12 + NUM_POSES + 3])).numpy()
    assert y.shape == (2, 16, 16, 3) and np.abs(y).max() <= 1.0
    assert disc(x).shape == (2, 7 + 1 + NUM_POSES)


def test_config_validation():
    from other_models.drgan import DRGANConfig
    with pytest.raises(ValueError, match="multiple of drgan_images_per_identity"):
        DRGANConfig(batch_size=7, drgan_images_per_identity=2)
    with pytest.raises(ValueError, match="image_size"):
        DRGANConfig(image_size=36, drgan_downsamplings=3)
    with pytest.raises(ValueError, match="drgan_lambda_pair"):
        DRGANConfig(drgan_lambda_pair=-1.0)


def test_missing_cfp_folder_is_an_input_error(tmp_path):
    from ganimation_tl.errors import InputError
    from other_models import drgan
    fv = _flags("--cfp_dir=%s" % (tmp_path / "nope"), "--workdir=%s" % tmp_path)
    with pytest.raises(InputError, match="--cfp_dir"):
        drgan.prepare(fv)
    fv = _flags("--workdir=%s" % tmp_path, "--image_size=36")
    with pytest.raises(InputError, match="image_size"):
        drgan.prepare(fv)


def test_pose_fake_class_adds_the_synthetic_pose_term():
    from other_models.drgan import NUM_POSES, discriminator_loss, generator_loss
    rng = np.random.default_rng(2)
    nd = 4
    real = rng.normal(size=(5, nd + 1 + NUM_POSES + 1)).astype(np.float32)
    fake = rng.normal(size=(3, nd + 1 + NUM_POSES + 1)).astype(np.float32)
    labels, poses = np.array([0, 1, 2, 3, 0]), np.array([0, 1, 2, 0, 1])
    total, parts = discriminator_loss(real, labels, poses, fake, nd, pose_fake_class=True)
    expected = (_np_ce(real[:, :nd + 1], labels) + _np_ce(real[:, nd + 1:], poses)
                + _np_ce(fake[:, :nd + 1], np.full(3, nd)) + _np_ce(fake[:, nd + 1:], np.full(3, NUM_POSES)))
    assert float(total) == pytest.approx(expected, rel=1e-5)
    assert float(parts["pose_fake"]) == pytest.approx(_np_ce(fake[:, nd + 1:], np.full(3, NUM_POSES)), rel=1e-5)
    g_total, _ = generator_loss(fake, np.array([1, 2, 3]), np.array([2, 0, 1]), nd)   # G still asks for pose c
    assert float(g_total) == pytest.approx(_np_ce(fake[:, :nd + 1], np.array([1, 2, 3]))
                                           + _np_ce(fake[:, nd + 1:], np.array([2, 0, 1])), rel=1e-5)


def test_partner_indices_pair_within_identity_groups():
    from other_models.drgan import pair_loss, partner_indices
    assert partner_indices(6, 2).tolist() == [1, 0, 3, 2, 5, 4]
    assert partner_indices(6, 3).tolist() == [1, 2, 0, 4, 5, 3]
    assert partner_indices(3, 1).tolist() == [0, 1, 2]            # n = 1: plain reconstruction
    with pytest.raises(ValueError, match="multiple of group_size"):
        partner_indices(5, 2)
    a = np.zeros((2, 4, 4, 3), np.float32)
    b = np.full((2, 4, 4, 3), 0.5, np.float32)
    b[1] = -1.0
    assert float(pair_loss(a, b)) == pytest.approx((0.5 + 1.0) / 2)


def _tiny_model_and_batch(**overrides):
    from other_models.drgan import DRGAN, DRGANConfig, NUM_POSES
    cfg = DRGANConfig(image_size=16, drgan_conv_dim=4, drgan_downsamplings=2, drgan_feature_dim=12,
                      drgan_noise_dim=3, batch_size=4, drgan_images_per_identity=2, **overrides)
    rng = np.random.default_rng(0)
    batch = {"images": rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32),
             "labels": np.array([0, 0, 2, 2], np.int32), "poses": np.array([0, 1, 2, 0], np.int32),
             "codes": np.array([1, 2, 0, 1], np.int32), "noise": rng.uniform(-1, 1, (4, 3)).astype(np.float32),
             "group_codes": np.array([0, 2], np.int32), "group_noise": rng.uniform(-1, 1, (2, 3)).astype(np.float32)}
    return DRGAN(cfg, num_identities=3), batch, NUM_POSES


def test_pair_loss_option_adds_its_weighted_term_to_the_generator_loss():
    model, batch, _ = _tiny_model_and_batch(drgan_lambda_pair=10.0)
    metrics = {k: float(v) for k, v in model.train_step(batch, 0).items()}
    # untrained decoder outputs are near 0 (tanh of small values); the uniform targets are ~0.5 away on average
    assert 0.2 < metrics["generator/pair_l1"] < 0.8
    assert metrics["generator/total"] == pytest.approx(
        metrics["generator/id"] + metrics["generator/pose"] + metrics["generator/fused"]
        + 10.0 * metrics["generator/pair_l1"], rel=1e-4)


def test_eval_per_pose_accuracy_scores_mirrored_profiles_as_the_other_direction(monkeypatch):
    import os
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import bench.eval_drgan as ev

    # features = which half is brighter (0 even, 1 left, 2 right); the "classifier" returns them as the pose
    def side(x):
        d = x[:, :, :8].mean((1, 2, 3)) - x[:, :, 8:].mean((1, 2, 3))
        return np.where(np.abs(d) < 0.3, 0, np.where(d > 0, 1, 2))

    class Identity:
        def predict(self, features):
            return np.asarray(features)

    monkeypatch.setattr(ev, "hog_features", side)
    images = np.zeros((4, 16, 16, 3), np.float32)
    images[1, :, :8] = 0.8     # profile facing left (bright left half)
    images[2, :, 8:] = 0.8     # profile facing right
    images[3, :, 8:] = 0.8     # a frontal photo the classifier reads as right-facing: its error
    acc, counts = ev.per_pose_accuracy(Identity(), images, np.array([0, 1, 1, 0]), np.array([0, 1, 2, 0]), 3)
    assert counts == [2, 2, 2]           # the 2 profiles, mirrored, add one photo to each direction
    assert acc == [0.5, 1.0, 1.0]


def test_symmetric_frontal_box_is_centred_on_the_midline():
    from other_models.drgan import FRONTAL_MIDLINE_POINTS, symmetric_frontal_box
    # half-face points spanning x 10..50 with the midline points at x = 50: the mirrored set spans 10..90
    pts = np.zeros((30, 2), np.float32)
    pts[:, 0] = np.linspace(10, 50, 30)
    pts[:, 1] = np.linspace(0, 60, 30)
    pts[list(FRONTAL_MIDLINE_POINTS), 0] = 50.0
    cx, cy, side = symmetric_frontal_box(pts, margin=0.5)
    assert cx == pytest.approx(50.0)                 # the plain box would be centred at x = 30
    assert cy == pytest.approx(30.0)
    assert side == pytest.approx(80.0 * 1.5)         # the wider side (80 px across both halves) plus 50%
    from other_models.drgan import DRGANConfig
    with pytest.raises(ValueError, match="drgan_frontal_crop"):
        DRGANConfig(drgan_frontal_crop="centre")


@needs_cfp
def test_symmetric_frontal_crops_remove_the_left_right_imbalance_of_frontal_faces():
    from other_models.drgan import DRGANConfig, load_data
    # 2 training + 1 held-out identity, 16 px: frontal crops only change, profiles stay the same
    kw = dict(image_size=16, drgan_num_identities=3, drgan_train_identities=2)
    plain = load_data(CFP, DRGANConfig(**kw))
    sym = load_data(CFP, DRGANConfig(drgan_frontal_crop="symmetric", **kw))
    profile = plain.train_poses > 0
    np.testing.assert_array_equal(plain.train_images[profile], sym.train_images[profile])
    imbalance = lambda x: abs(float(x[..., :8, :].mean() - x[..., 8:, :].mean()))
    frontal = plain.train_poses == 0
    assert imbalance(sym.train_images[frontal]) < 0.5 * imbalance(plain.train_images[frontal])


def test_pose_balanced_batches_draw_each_pose_equally_often():
    from other_models.drgan import DRGANConfig, DRGANData, make_batches
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 16).astype(np.int32)
    poses = np.tile(np.array([0] * 10 + [1] * 3 + [2] * 3), 4).astype(np.int32)
    images = rng.uniform(-1, 1, (64, 8, 8, 3)).astype(np.float32)
    data = DRGANData(images, labels, poses, images[:1], labels[:1], poses[:1], images[:1], labels[:1], poses[:1],
                     poses[:1], [1, 2, 3, 4])
    kw = dict(image_size=8, drgan_downsamplings=3, batch_size=8, drgan_images_per_identity=2, drgan_noise_dim=2)
    counts = {False: np.zeros(3), True: np.zeros(3)}
    for balanced in (False, True):
        cfg = DRGANConfig(drgan_pose_balanced_batches=balanced, **kw)
        for epoch in range(40):
            for batch in make_batches(data, cfg, epoch, 0):
                counts[balanced] += np.bincount(batch["poses"], minlength=3)
                first = batch["labels"][::2]
                assert (batch["labels"][1::2] == first).all()                 # still n photos per identity
                assert (data.train_poses[np.argmax((images[None] == batch["images"][:, None]).all((2, 3, 4)), 1)]
                        == batch["poses"]).all()                                # poses match the drawn photos
    share = {b: c / c.sum() for b, c in counts.items()}
    assert share[False][0] == pytest.approx(10 / 16, abs=0.04)
    np.testing.assert_allclose(share[True], [1 / 3] * 3, atol=0.04)
    cfg0, cfg1 = DRGANConfig(**kw), DRGANConfig(drgan_pose_balanced_batches=True, **kw)
    b0, b1 = next(make_batches(data, cfg0, 0, 0)), next(make_batches(data, cfg1, 0, 0))
    np.testing.assert_array_equal(b0["codes"], b1["codes"])                    # same codes and noise per seed
    np.testing.assert_array_equal(b0["labels"], b1["labels"])


def _tiny_data(poses):
    """DRGANData of 16 random 8x8 photos, 4 identities x 4 photos with the given poses ``[16]``."""
    from other_models.drgan import DRGANData
    labels = np.repeat(np.arange(4), 4).astype(np.int32)
    poses = np.asarray(poses, np.int32)
    images = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    return DRGANData(images, labels, poses, images[:1], labels[:1], poses[:1], images[:1], labels[:1], poses[:1],
                     poses[:1], [1, 2, 3, 4])


def test_random_crop_shifts_each_photo_within_the_padding_and_is_deterministic():
    from other_models.drgan import DRGANConfig, make_batches
    data = _tiny_data(np.zeros(16))
    kw = dict(image_size=8, drgan_downsamplings=3, batch_size=8, drgan_images_per_identity=2, drgan_noise_dim=2)
    plain = next(make_batches(data, DRGANConfig(**kw), 0, 0))
    cfg = DRGANConfig(drgan_random_crop=2, **kw)
    shifted = next(make_batches(data, cfg, 0, 0))
    np.testing.assert_array_equal(plain["labels"], shifted["labels"])          # same photos, codes and noise
    np.testing.assert_array_equal(plain["noise"], shifted["noise"])
    assert shifted["images"].shape == plain["images"].shape
    moved = 0
    for crop, photo in zip(shifted["images"], plain["images"]):
        padded = np.pad(photo, ((2, 2), (2, 2), (0, 0)), mode="edge")
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if np.array_equal(padded[dy:dy + 8, dx:dx + 8], crop)]
        assert hits, "crop is not a window of the edge-padded photo"
        moved += (2, 2) not in hits
    assert moved >= 4                                                            # most photos moved
    again = next(make_batches(data, cfg, 0, 0))
    np.testing.assert_array_equal(again["images"], shifted["images"])         # deterministic per epoch
    resumed = next(make_batches(data, cfg, 0, 1))
    np.testing.assert_array_equal(resumed["images"], list(make_batches(data, cfg, 0, 0))[1]["images"])
    with pytest.raises(ValueError, match="drgan_random_crop"):
        DRGANConfig(drgan_random_crop=4, **kw)


@needs_cfp
def test_validation_profile_leaves_the_training_pool():
    from other_models.drgan import DRGANConfig, load_data
    cfg = DRGANConfig(drgan_num_identities=4, drgan_train_identities=3)
    full = load_data(CFP, cfg)
    val = load_data(CFP, cfg, validation_profile=3)
    assert full.validation_profile_images is None
    assert len(val.validation_profile_images) == 3 and sorted(val.validation_profile_labels) == [0, 1, 2]
    # one profile photo per identity and its flip leave the pool; photo 4 stays the held-out test photo
    assert len(full.train_images) - len(val.train_images) == 2 * 3
    np.testing.assert_array_equal(full.heldout_profile_images, val.heldout_profile_images)
    pool = full.train_images.reshape(len(full.train_images), -1)
    for photo in val.validation_profile_images:
        assert np.any(np.all(pool == photo.reshape(1, -1), 1))                  # it was in the full pool
        assert not np.any(np.all(val.train_images.reshape(len(val.train_images), -1) == photo.reshape(1, -1), 1))
    with pytest.raises(ValueError, match="validation_profile"):
        load_data(CFP, cfg, validation_profile=4)


def test_d_bn_real_stats_keep_the_moving_statistics_of_the_real_batch():
    import tensorflow as tf
    from other_models.drgan import DRGAN, DRGANConfig, make_batches
    data = _tiny_data(np.tile([0, 0, 1, 2], 4))
    kw = dict(image_size=8, drgan_downsamplings=2, drgan_conv_dim=2, drgan_feature_dim=4, drgan_noise_dim=2,
              batch_size=8, drgan_images_per_identity=2)
    batch = next(make_batches(data, DRGANConfig(**kw), 0, 0))
    stats = {}
    for flag in (False, True):
        model = DRGAN(DRGANConfig(drgan_d_bn_real_stats=flag, **kw), 4)
        start = [w.numpy() for w in model.discriminator.all_weights]
        assert len(model.d_bn_statistics) >= 2
        model.train_step(batch, 0)
        stats[flag] = [w.numpy() for w in model.d_bn_statistics]
        # reference: the initial D called once in train mode on the real batch only
        for w, value in zip(model.discriminator.all_weights, start):
            w.assign(value)
        model.discriminator(tf.convert_to_tensor(batch["images"]))
        stats["real_only"] = [w.numpy() for w in model.d_bn_statistics]
        same = all(np.allclose(a, b, atol=1e-6) for a, b in zip(stats[flag], stats["real_only"]))
        assert same == flag


def test_identity_accuracy_reads_the_first_nd_logits():
    """bench/eval_drgan.identity_accuracy (check (i), also the probe's): argmax over D's N_d real-identity logits
    only, the synthetic class ignored; NaN for no images."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.eval_drgan import identity_accuracy

    class FixedD:
        def discriminate(self, images):
            # identities 0..2 + synthetic; the synthetic logit is the largest everywhere
            return np.array([[3.0, 1.0, 0.0, 9.0], [0.0, 2.0, 1.0, 9.0], [0.0, 2.0, 1.0, 9.0], [1.0, 0.0, 2.0, 9.0]])

    images = np.zeros((4, 8, 8, 3), np.float32)
    assert identity_accuracy(FixedD(), images, np.array([0, 1, 2, 2]), 3) == 0.75
    assert math.isnan(identity_accuracy(FixedD(), images[:0], np.array([], int), 3))


def test_identity_probe_refuses_the_test_photo_and_a_missing_cfp_dir(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    probe = [sys.executable, "bench/eval_drgan_idprobe.py", "--output=%s" % (tmp_path / "probe.json")]
    result = subprocess.run(probe + ["--validation_profile=4"], cwd=repo, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--validation_profile" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(probe + ["--set=--cfp_dir=%s" % (tmp_path / "nope")], cwd=repo, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2 and "cfp_dir" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "probe.json").exists()
