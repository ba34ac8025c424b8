"""DA-GAN (other_models/dagan.py): smoke run through the registry, simulator and BEGAN pieces, bad input."""
import math

import numpy as np
import pytest

from sibling_helpers import CFP, model_flags, needs_cfp


def _flags(*extra):
    return model_flags("dagan", *extra, flagfile="dagan_debug.cfg", model="dagan")


@needs_cfp
def test_two_step_smoke_run_writes_checkpoint(tmp_path):
    from ganimation_tl import registry
    registry.load_all()
    fv = _flags("--cfp_dir=%s" % CFP, "--workdir=%s" % tmp_path, "--max_steps=2", "--log_every=1",
                "--image_every=2", "--dagan_num_identities=3", "--dagan_photos_per_identity=3", "--batch_size=4",
                "--dagan_g_channels=8", "--dagan_g_blocks=1", "--dagan_d_channels=8")
    metrics = registry.get("dagan").train(fv)
    for key in ("discriminator/total", "generator/total", "began/M", "began/k"):
        assert math.isfinite(metrics[key]), key
    assert 0.0 <= metrics["began/k"] <= 1.0
    # The refiner starts near the identity (global residual): small pixel loss.
    assert metrics["generator/pixel"] < 0.2
    assert (tmp_path / "checkpoints" / "checkpoint").exists()
    assert (tmp_path / "samples" / "latest.png").exists()


def test_began_pieces_match_numpy():
    from other_models.dagan import autoencoder_error, convergence_measure, update_k
    rng = np.random.default_rng(0)
    v = rng.uniform(-1, 1, (3, 4, 4, 3)).astype(np.float32)
    r = rng.uniform(-1, 1, (3, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(autoencoder_error(v, r).numpy(), np.abs(v - r).mean(axis=(1, 2, 3)), rtol=1e-6)
    assert float(update_k(0.5, 0.4, 0.1, gamma=0.5, lambda_k=0.01)) == pytest.approx(0.5 + 0.01 * (0.2 - 0.1))
    assert float(update_k(0.0, 0.1, 0.9, gamma=0.5, lambda_k=1.0)) == 0.0      # clipped at 0
    assert float(update_k(0.99, 1.0, 0.0, gamma=1.0, lambda_k=1.0)) == 1.0     # clipped at 1
    assert float(convergence_measure(0.4, 0.5, 0.5)) == pytest.approx(0.4 + abs(0.2 - 0.5))


def _frontal_landmarks():
    """A synthetic CFP-style frontal half face (midline x = 40)."""
    lm = np.zeros((30, 2), np.float32)
    lm[0:9] = np.stack([np.linspace(24, 40, 9), np.linspace(22, 48, 9)], 1)
    lm[9:12] = [[25, 18], [30, 16], [35, 17]]
    lm[12:18] = [[28, 21], [30, 20], [32, 20], [34, 21], [32, 22], [30, 22]]
    lm[18:23] = np.stack([np.full(5, 40.0), np.linspace(20, 32, 5)], 1)
    lm[23:25] = [[37, 32], [36, 31]]
    lm[25:30] = [[33, 37], [40, 35], [40, 37], [40, 40], [40, 38]]
    return lm


def test_generic_face_fit_and_rotation():
    from other_models.dagan import fit_generic_face, rotate_points
    lm = _frontal_landmarks()
    face = fit_generic_face(lm)
    assert face.x_mid == pytest.approx(40.0)
    assert face.w == pytest.approx(40 - np.mean(lm[0:3, 0]))
    assert face.depth(40.0, 32.0) > face.depth(30.0, 32.0) > 0        # nose tip in front of the cheek
    x = np.array([30.0, 40.0, 50.0])
    np.testing.assert_allclose(rotate_points(face, x, np.full(3, 32.0), 0.0), x, atol=1e-9)  # yaw 0: identity
    rot = rotate_points(face, x, np.full(3, 32.0), 60.0)
    assert rot[1] > 40.0 + 0.5 * face.w * np.sin(np.deg2rad(60))      # the nose moves towards image-right
    gx, gy = np.meshgrid(np.arange(80.0), np.arange(64.0))
    rows = rotate_points(face, gx, gy, 75.0, monotone_rows=True)
    assert np.all(np.diff(rows, axis=1) > 0)                           # occluded points folded, no overlap


def test_simulate_profile_shape_determinism_and_blur():
    from other_models.dagan import simulate_profile
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:80]
    image = np.clip(128 + 60 * np.sin(xx / 3.0)[..., None] + rng.normal(0, 20, (64, 80, 3)), 0, 255).astype(np.uint8)
    lm = _frontal_landmarks()
    a = simulate_profile(image, lm, 70.0, 32, blur=1.0)
    b = simulate_profile(image, lm, 70.0, 32, blur=1.0)
    sharp = simulate_profile(image, lm, 70.0, 32, blur=0.0, contrast=1.0)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    grad = lambda im: np.abs(np.diff(im.astype(float), axis=1)).mean()
    assert grad(a) < grad(sharp)                                        # rendered look is blurrier
    np.testing.assert_array_equal(simulate_profile(image, lm, 70.0, 32, blur=1.0, mirror=True), a[:, ::-1])


def test_networks_shapes_and_identity_start():
    import tensorflow as tf
    from other_models.dagan import DAGANConfig, build_discriminator, build_refiner
    cfg = DAGANConfig(image_size=16, dagan_g_channels=4, dagan_g_blocks=1, dagan_d_channels=4, dagan_d_hidden=8,
                      dagan_d_scales=2, dagan_num_identities=5)
    g, d = build_refiner(cfg), build_discriminator(cfg)
    g.eval(); d.eval()
    x = tf.random.uniform([2, 16, 16, 3], -0.9, 0.9)
    y = g(x).numpy()
    assert y.shape == (2, 16, 16, 3) and np.abs(y).max() < 1.0
    assert np.abs(y - x.numpy()).mean() < 0.1                           # global residual: near identity at init
    recon, logits = d(x)
    assert recon.shape == (2, 16, 16, 3) and logits.shape == (2, 5)


def test_config_validation():
    from other_models.dagan import DAGANConfig
    with pytest.raises(ValueError, match="image_size"):
        DAGANConfig(image_size=36, dagan_d_scales=4)
    with pytest.raises(ValueError, match="yaw"):
        DAGANConfig(dagan_yaw_min=50, dagan_yaw_max=95)


def test_missing_cfp_folder_is_an_input_error(tmp_path):
    from ganimation_tl.errors import InputError
    from other_models import dagan
    fv = _flags("--cfp_dir=%s" % (tmp_path / "nope"), "--workdir=%s" % tmp_path)
    with pytest.raises(InputError, match="--cfp_dir"):
        dagan.prepare(fv)
    fv = _flags("--workdir=%s" % tmp_path, "--image_size=36", "--dagan_d_scales=4")
    with pytest.raises(InputError, match="image_size"):
        dagan.prepare(fv)


@needs_cfp
def test_first_identity_selects_disjoint_people():
    from ganimation_tl.datasets import cfp
    from other_models.dagan import DAGANConfig, load_data
    cfg = DAGANConfig(dagan_first_identity=51, dagan_num_identities=2)
    data = load_data(CFP, cfg, limit_per_identity=3)
    profiles = cfp.load_faces(CFP, 32, identities=[51, 52], views=("profile",), limit_per_identity=3)
    np.testing.assert_allclose(data.real_profiles, profiles.images.astype(np.float32) / 127.5 - 1.0)
    assert sorted(set(data.real_labels.tolist())) == [0, 1]              # labels count from the first identity
    assert sorted(set(data.sim_train_labels.tolist())) == [0, 1]
    first = load_data(CFP, DAGANConfig(dagan_num_identities=2), limit_per_identity=3)
    assert np.abs(first.real_profiles - data.real_profiles).mean() > 0.05  # other people
    with pytest.raises(ValueError, match="dagan_first_identity"):
        DAGANConfig(dagan_first_identity=0)


@pytest.mark.parametrize("refined_in_d", [True, False])
def test_identity_agent_on_refined_faces_is_optional(refined_in_d):
    """With --dagan_identity_agent_refined=false, D's loss ignores the labels of refined faces."""
    from other_models.dagan import DAGAN, DAGANConfig
    cfg = DAGANConfig(image_size=16, dagan_g_channels=4, dagan_g_blocks=1, dagan_d_channels=4, dagan_d_hidden=8,
                      dagan_d_scales=2, dagan_num_identities=5, dagan_identity_agent_refined=refined_in_d)
    model = DAGAN(cfg)
    model.discriminator.eval()                                           # no dropout: deterministic losses
    rng = np.random.default_rng(0)
    for w in model.discriminator.all_weights:                            # logits are ~1e-8 at initialisation:
        if "id_logits/weights" in w.name:                                # spread them so the labels matter
            w.assign(rng.normal(0, 1e8, w.shape).astype(np.float32))
    refined, real = (rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32) for _ in range(2))
    real_labels = np.array([0, 1, 2, 3], np.int32)
    a = model.discriminator_losses(refined, np.array([0, 1, 2, 3], np.int32), real, real_labels)
    b = model.discriminator_losses(refined, np.array([4, 4, 0, 1], np.int32), real, real_labels)
    if refined_in_d:
        assert abs(float(a["total"]) - float(b["total"])) > 1e-4
        assert float(a["identity"]) == pytest.approx(float(a["id_real"]) + float(a["id_fake"]), rel=1e-5)
    else:
        assert float(a["total"]) == pytest.approx(float(b["total"]), rel=1e-6)
        assert float(a["identity"]) == pytest.approx(float(a["id_real"]), rel=1e-6)
    g = model.generator_losses(refined, np.array([0, 1, 2, 3], np.int32))
    assert float(g["identity"]) > 0 and float(g["pixel"]) < 0.2           # G always gets the identity loss


def test_local_realism_agent_shapes_loss_and_learning():
    """--dagan_lambda_local > 0 adds a SimGAN-style patch agent: logits per patch, a D and G term, and it learns
    to tell sharp from blurred patches in a few steps."""
    import tensorflow as tf
    from other_models.dagan import DAGAN, DAGANConfig, build_local_discriminator, local_realism_loss
    assert DAGANConfig().dagan_lambda_local == 0.0                       # off by default: the paper's two agents
    cfg = DAGANConfig(image_size=16, dagan_g_channels=4, dagan_g_blocks=1, dagan_d_channels=4, dagan_d_hidden=8,
                      dagan_d_scales=2, dagan_num_identities=5, dagan_lambda_local=0.5, dagan_local_channels=8)
    zeros = tf.zeros([2, 4, 4, 1])
    assert float(local_realism_loss(zeros, True)) == pytest.approx(np.log(2.0), rel=1e-5)
    model = DAGAN(cfg)
    assert DAGAN(DAGANConfig(image_size=16, dagan_d_scales=2)).local_discriminator is None
    rng = np.random.default_rng(0)
    sharp = np.clip(rng.normal(0, 0.6, (8, 16, 16, 3)), -1, 1).astype(np.float32)
    smooth = np.repeat(sharp.mean(axis=(1, 2), keepdims=True), 16, 1).repeat(16, 2)
    labels = np.zeros(8, np.int32)
    d = model.discriminator_losses(smooth, labels, sharp, labels)
    g = model.generator_losses(smooth, labels)
    assert "local" in d and "local" in g and float(d["local"]) == pytest.approx(2 * np.log(2.0), abs=0.05)
    local = build_local_discriminator(cfg)
    local.train()
    assert local(sharp).shape == (8, 4, 4, 1)
    opt = tf.keras.optimizers.Adam(5e-3)
    opt.build(local.trainable_weights)
    for _ in range(60):
        with tf.GradientTape() as tape:
            loss = local_realism_loss(local(sharp), True) + local_realism_loss(local(smooth), False)
        opt.apply_gradients(zip(tape.gradient(loss, local.trainable_weights), local.trainable_weights))
    assert float(loss) < 0.5 * 2 * np.log(2.0)                            # separates sharp from flat patches


def test_bounded_residual_caps_the_change_per_pixel():
    import tensorflow as tf
    from other_models.dagan import DAGANConfig, build_refiner
    assert DAGANConfig().dagan_residual_scale == 0.0                     # default: tanh(atanh(x) + conv)
    cfg = DAGANConfig(image_size=16, dagan_g_channels=4, dagan_g_blocks=1, dagan_d_scales=2, dagan_residual_scale=0.2)
    g = build_refiner(cfg)
    g.eval()
    x = tf.random.uniform([2, 16, 16, 3], -0.7, 0.7, seed=1)
    assert float(tf.reduce_max(tf.abs(g(x) - x))) < 0.05                 # near the identity at initialisation
    for w in g.all_weights:
        if "conv_out/biases" in w.name:
            w.assign([50.0, -50.0, 0.0])                                 # saturate the residual
    diff = (g(x) - x).numpy()
    np.testing.assert_allclose(diff[..., 0], 0.2, atol=1e-4)
    np.testing.assert_allclose(diff[..., 1], -0.2, atol=1e-4)
    assert np.abs(diff).max() <= 0.2 + 1e-5
    with pytest.raises(ValueError, match="dagan_residual_scale"):
        DAGANConfig(dagan_residual_scale=-0.1)


def test_low_pass_pixel_loss_matches_opencv_and_frees_fine_detail():
    """--dagan_pixel_loss_sigma: the low-pass is OpenCV's Gaussian blur (reflected borders); the loss ignores detail
    finer than sigma (an unsharp-masked face costs far less than under the plain L1), not a shift of content."""
    import cv2
    from other_models.dagan import DAGAN, DAGANConfig, gaussian_low_pass, pixel_loss
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0, 0.5, (3, 32, 32, 3)), -1, 1).astype(np.float32)
    for sigma in (0.7, 1.0, 2.0):
        radius = int(np.ceil(3 * sigma))
        expected = np.stack([cv2.GaussianBlur(im, (2 * radius + 1,) * 2, sigma, borderType=cv2.BORDER_REFLECT_101)
                             for im in x])
        np.testing.assert_allclose(gaussian_low_pass(x, sigma).numpy(), expected, atol=1e-5)
    assert float(pixel_loss(x, 0.5 * x)) == pytest.approx(np.abs(0.5 * x).mean(), rel=1e-5)   # sigma 0: plain L1
    smooth = np.stack([cv2.GaussianBlur(im, (0, 0), 2.0) for im in x])                         # a "simulated" face
    detail = 0.3 * np.sign(rng.normal(size=x.shape)).astype(np.float32)                        # pixel-level texture
    plain, low = float(pixel_loss(smooth + detail, smooth)), float(pixel_loss(smooth + detail, smooth, 2.0))
    assert plain == pytest.approx(0.3, rel=1e-5) and low < 0.2 * plain                       # 0.04 vs 0.3
    shifted = np.roll(smooth, 4, axis=2)                                                       # moved content
    assert float(pixel_loss(shifted, smooth, 2.0)) > 0.5 * float(pixel_loss(shifted, smooth))
    cfg = DAGANConfig(image_size=16, dagan_g_channels=4, dagan_g_blocks=1, dagan_d_channels=4, dagan_d_hidden=8,
                      dagan_d_scales=2, dagan_num_identities=5, dagan_pixel_loss_sigma=1.0)
    model = DAGAN(cfg)
    model.refiner.eval()
    for w in model.refiner.all_weights:
        if "conv_out/filters" in w.name:                                 # a refiner that writes texture
            w.assign(rng.normal(0, 3.0, w.shape).astype(np.float32))
    sim = x[:, :16, :16]
    g = model.generator_losses(sim, np.zeros(3, np.int32))
    refined = model.refiner(sim)
    low, plain = float(pixel_loss(refined, sim, 1.0)), float(pixel_loss(refined, sim))
    assert float(g["pixel"]) == pytest.approx(low, rel=1e-4) and abs(low - plain) > 0.01
    assert DAGANConfig().dagan_pixel_loss_sigma == 0.0                   # default: the slides' plain L1
    with pytest.raises(ValueError, match="dagan_pixel_loss_sigma"):
        DAGANConfig(dagan_pixel_loss_sigma=-1.0)
    with pytest.raises(ValueError, match="dagan_pixel_loss_sigma"):
        DAGANConfig(image_size=16, dagan_d_scales=2, dagan_pixel_loss_sigma=6.0)   # 3 sigma >= the image side


def test_eval_model_flag_override_errors_name_the_flag(capsys):
    import importlib
    import sys
    import os
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    eval_dagan = importlib.import_module("bench.eval_dagan")
    for argv, needle in ((["eval", "--model_flag=--nope=1"], "nope"),
                         (["eval", "--model_flag=--workdir=x"], "--model_flag=--workdir=x"),
                         (["eval", "--model_flag=dagan_gamma=1"], "--model_flag=dagan_gamma=1")):
        with pytest.raises(SystemExit) as exit_info:
            eval_dagan.main(argv)
        assert exit_info.value.code == 2
        assert needle in capsys.readouterr().err


def _ceiling_module():
    import importlib
    import os
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return importlib.import_module("bench.dagan_photometric_ceiling")


def test_photometric_ceiling_transforms_match_their_formulas():
    import cv2
    ceiling = _ceiling_module()
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (2, 16, 16, 3)).astype(np.float32)
    expected = x + 2.0 * (x - np.stack([cv2.GaussianBlur(im, (0, 0), 1.0) for im in x]))
    np.testing.assert_allclose(ceiling.unsharp(x, 1.0, 2.0), np.clip(expected, -1, 1), atol=1e-6)
    mean = x.mean(axis=(1, 2), keepdims=True)
    lowered = mean + 0.85 * (x - mean)                                   # the simulator's contrast step
    np.testing.assert_allclose(ceiling.restore_contrast(lowered), x, atol=1e-5)
    support = np.zeros((2, 16, 16, 1), np.float32)
    support[:, :, :8] = 1.0                                              # left half: photo texture
    fill = np.full((1, 16, 16, 3), 0.25, np.float32)
    filled = ceiling.support_fill(x, support, fill)
    np.testing.assert_array_equal(filled[:, :, :8], x[:, :, :8])
    np.testing.assert_allclose(filled[:, :, 8:], 0.25)
    np.testing.assert_allclose(ceiling.gaussian(x, 1.0)[0], cv2.GaussianBlur(x[0], (0, 0), 1.0), atol=1e-6)


@needs_cfp
def test_photometric_ceiling_scores_every_transform(tmp_path, capsys):
    """bench/dagan_photometric_ceiling.py on 3 people: every transform is scored with eval_dagan's measures, the
    baseline row is the untouched simulation, and a bad flag is exit 2 naming it."""
    ceiling = _ceiling_module()
    out = tmp_path / "ceiling.json"
    results = ceiling.main(["ceiling", "--flagfile_path=configs/dagan_debug.cfg", "--output=%s" % out,
                            "--model_flag=--cfp_dir=%s" % CFP, "--model_flag=--dagan_num_identities=3",
                            "--photos_per_identity=3"])
    import json
    assert json.loads(out.read_text())["rows"] == json.loads(json.dumps(results["rows"]))
    rows = {r["transform"]: r for r in results["rows"]}
    assert set(rows) == {"simulated", "contrast_restored", "unsharp_s1_a1", "unsharp_s0.7_a2", "unsharp_s1_a2",
                         "contrast_restored_unsharp_s1_a1", "noise_0.05", "simulator_without_blur",
                         "support_fill_blur_s3", "support_fill_mean_real"}
    assert rows["support_fill_mean_real"]["mean_abs_change"] > 0.01                 # the invented pixels changed
    assert rows["simulated"]["mean_abs_change"] == 0.0
    assert not rows["simulated"]["identity_check_pass"] and not rows["simulated"]["realism_check_pass"]
    assert rows["noise_0.05"]["mean_abs_change"] == pytest.approx(0.05 * np.sqrt(2 / np.pi), rel=0.15)
    assert rows["unsharp_s1_a2"]["mean_abs_change"] > rows["unsharp_s1_a1"]["mean_abs_change"] > 0.005
    for r in results["rows"]:
        assert 0.0 <= r["identity_accuracy"] <= 1.0 and 0.0 <= r["real_vs_x_auc"] <= 1.0
    assert results["held_out_faces"] == 3 and results["real_profiles"] == 9
    with pytest.raises(SystemExit) as exit_info:
        ceiling.main(["ceiling", "--model_flag=--dagan_nope=1", "--output=%s" % out])
    assert exit_info.value.code == 2 and "dagan_nope" in capsys.readouterr().err


def test_refiner_moving_average_is_used_by_refine_and_leaves_training_unchanged(tmp_path):
    """--dagan_ema_decay: training is the same as without it; refine() reads the average (also its batch-norm
    statistics), refine(averaged=False) the trained refiner; the average is checkpointed."""
    import tensorflow as tf
    from other_models.dagan import DAGAN, DAGANConfig
    small = dict(image_size=16, dagan_g_channels=4, dagan_g_blocks=1, dagan_d_channels=4, dagan_d_hidden=8,
                 dagan_d_scales=2, dagan_num_identities=5, dagan_learning_rate=1e-2)
    plain, averaged = DAGAN(DAGANConfig(**small)), DAGAN(DAGANConfig(dagan_ema_decay=0.9, **small))
    assert plain.refiner_average is None
    assert len(averaged.refiner_average.variables) == len(averaged.refiner.all_weights) > len(averaged.g_weights)
    rng = np.random.default_rng(0)
    for step in range(3):
        batch = {"simulated": rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32),
                 "simulated_labels": np.array([0, 1, 2, 3], np.int32),
                 "real": rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32),
                 "real_labels": np.array([4, 3, 2, 1], np.int32)}
        plain.train_step(batch, step)
        averaged.train_step(batch, step)
    for a, b in zip(plain.refiner.all_weights, averaged.refiner.all_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    sim = batch["simulated"]
    trained = averaged.refine(sim, averaged=False)
    np.testing.assert_allclose(trained, plain.refine(sim), rtol=1e-4, atol=1e-5)
    smoothed = averaged.refine(sim)
    assert not np.allclose(smoothed, trained, atol=1e-4)
    # Outside refine() the trained weights are back in place.
    np.testing.assert_allclose(averaged.refine(sim, averaged=False), trained, rtol=1e-6, atol=1e-7)
    path = tf.train.Checkpoint(**averaged.trackables()).save(str(tmp_path / "ckpt"))
    restored = DAGAN(DAGANConfig(dagan_ema_decay=0.9, **small))
    tf.train.Checkpoint(**restored.trackables()).restore(path).assert_existing_objects_matched()
    np.testing.assert_allclose(restored.refine(sim), smoothed, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="dagan_ema_decay"):
        DAGANConfig(dagan_ema_decay=1.0)


def test_texture_support_follows_the_warps_stretch():
    """1 where the warp keeps (or compresses) the texture, 0 where it smears one source pixel over >= 2 output
    pixels, linear in the stretch between 1.25 and 2 (the simulated profiles' streaks)."""
    from other_models.dagan import texture_support
    x = np.tile(np.arange(40.0), (3, 1))
    np.testing.assert_array_equal(texture_support(x), 1.0)                      # identity warp
    np.testing.assert_array_equal(texture_support(2.0 * x), 1.0)                # compressed (hidden points)
    np.testing.assert_array_equal(texture_support(0.25 * x), 0.0)               # stretch 4
    stretch = 1.0 / 0.6                                                         # slope 0.6: stretch 1.67
    np.testing.assert_allclose(texture_support(0.6 * x), (2.0 - stretch) / 0.75, rtol=1e-5)
    with pytest.raises(ValueError, match="full < none"):
        texture_support(x, full=2.0, none=1.0)


def test_simulator_texture_support_marks_smeared_and_outside_photo_pixels():
    from other_models.dagan import simulate_profile
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:80]
    image = np.clip(128 + 60 * np.sin(xx / 3.0)[..., None] + rng.normal(0, 20, (64, 80, 3)), 0, 255).astype(np.uint8)
    lm = _frontal_landmarks()
    plain = simulate_profile(image, lm, 70.0, 32)
    sim, support = simulate_profile(image, lm, 70.0, 32, return_support=True)
    np.testing.assert_array_equal(sim, plain)                                   # the image is unchanged
    assert support.shape == (32, 32) and support.dtype == np.float32
    assert 0.0 <= support.min() and support.max() <= 1.0
    assert 0.1 < (support < 0.5).mean() < 0.9 and (support == 1.0).any()        # smeared side vs kept centre
    _, at_yaw0 = simulate_profile(image, lm, 1e-3, 32, return_support=True)     # no rotation: nothing smeared
    assert at_yaw0.min() > 0.99
    _, nothing = simulate_profile(image, lm, 70.0, 32, in_photo=np.zeros((64, 80)), return_support=True)
    np.testing.assert_array_equal(nothing, 0.0)                                 # all of it replicated border
    half = np.ones((64, 80), np.float32)
    half[:, :40] = 0.0
    _, left_gone = simulate_profile(image, lm, 1e-3, 32, in_photo=half, return_support=True)
    assert left_gone[:, :10].max() < 0.01 and left_gone[:, -10:].min() > 0.99
    mirrored, mirrored_support = simulate_profile(image, lm, 70.0, 32, mirror=True, return_support=True)
    np.testing.assert_array_equal(mirrored_support, support[:, ::-1])
    with pytest.raises(ValueError, match="in_photo"):
        simulate_profile(image, lm, 70.0, 32, in_photo=np.ones((10, 10)), return_support=True)


def test_support_weighted_pixel_loss_frees_invented_pixels():
    """--dagan_pixel_loss_support: L_pp = sum w |x~ - x| / (3 sum w); weight-0 pixels cost nothing, weight 1
    everywhere is the plain loss; the model's generator loss uses the batch's support only with the flag."""
    import tensorflow as tf
    from other_models.dagan import DAGAN, DAGANConfig, pixel_loss
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    y = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    w = rng.uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    expected = (w * np.abs(x - y)).sum() / (3 * w.sum())
    assert float(pixel_loss(x, y, weights=w)) == pytest.approx(expected, rel=1e-5)
    assert float(pixel_loss(x, y, weights=np.ones_like(w))) == pytest.approx(np.abs(x - y).mean(), rel=1e-5)
    w0 = np.ones_like(w)
    w0[:, :, :4] = 0.0
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = pixel_loss(xv, y, weights=w0)
    grad = tape.gradient(loss, xv).numpy()
    assert np.all(grad[:, :, :4] == 0.0) and np.all(grad[:, :, 4:] != 0.0)       # the free half gets no pull
    changed = y.copy()
    changed[:, :, :4] = -y[:, :, :4]                                              # repaint the free half only
    assert float(pixel_loss(changed, y, weights=w0)) == 0.0
    cfg = dict(image_size=8, dagan_g_channels=4, dagan_g_blocks=1, dagan_d_channels=4, dagan_d_hidden=8,
               dagan_d_scales=2, dagan_num_identities=3)
    labels = np.zeros(2, np.int32)
    for on in (False, True):
        model = DAGAN(DAGANConfig(dagan_pixel_loss_support=on, **cfg))
        for v in model.refiner.all_weights:
            if "conv_out/filters" in v.name:                                      # a refiner that changes pixels
                v.assign(rng.normal(0, 1.0, v.shape).astype(np.float32))
        model.refiner.eval()
        refined = model.refiner(x)
        got = float(model.generator_losses(x, labels, w0)["pixel"])
        want = float(pixel_loss(refined, x, weights=w0 if on else None))
        assert got == pytest.approx(want, rel=1e-4)
    assert DAGANConfig().dagan_pixel_loss_support is False                       # default: the slides' loss


@needs_cfp
def test_cfp_in_photo_marks_the_replicated_border_and_dagan_batches_carry_support():
    from ganimation_tl.datasets import cfp
    from other_models.dagan import DAGANConfig, load_data, make_batches
    tight = cfp.load_faces(CFP, 32, identities=[1], views=("frontal",), margin=0.0, limit_per_identity=1,
                           with_in_photo=True)
    wide = cfp.load_faces(CFP, 32, identities=[1], views=("frontal",), margin=3.0, limit_per_identity=1,
                          with_in_photo=True)
    assert cfp.load_faces(CFP, 32, identities=[1], views=("frontal",), limit_per_identity=1).in_photo is None
    assert tight.in_photo.shape == (1, 32, 32) and tight.in_photo[0, 4:-4, 4:-4].min() == pytest.approx(1.0)
    assert wide.in_photo.min() == 0.0 and wide.in_photo.max() == pytest.approx(1.0)
    outside = wide.in_photo[0] == 0.0                                               # replicated: rows/columns repeat
    edge = wide.images[0].astype(int)
    left = int(np.argmin(outside.all(axis=0)))                                      # columns 0..left-1 outside
    assert left > 1 and np.abs(np.diff(edge[:, :left], axis=1)).max() == 0
    assert wide.subset([0]).in_photo.shape == (1, 32, 32)
    config = DAGANConfig(dagan_num_identities=3, batch_size=4)
    data = load_data(CFP, config, limit_per_identity=3)
    assert data.sim_train_support.shape == data.sim_train.shape[:3] + (1,)
    assert 0.05 < float(data.sim_train_support.mean()) < 0.95
    batch = next(make_batches(data, config, 0, 0))
    assert batch["simulated_support"].shape == (4, 32, 32, 1)
