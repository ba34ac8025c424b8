"""Tests of other_models/laplacekl.py: softargmax, scales, KL losses, data jitter, a 2-step smoke run."""
import json
import math

import numpy as np
import pytest

from sibling_helpers import CFP, model_flags, needs_cfp

lkl = pytest.importorskip("other_models.laplacekl")


def _flags(*overrides):
    return model_flags("laplacekl", *overrides, flagfile="laplacekl_debug.cfg")


def test_softargmax_and_scales_on_known_maps():
    import tensorflow as tf
    prob = np.zeros((1, 8, 10, 2), np.float32)
    prob[0, 3, 5, 0] = 1.0                       # delta at row 3, column 5
    prob[0, 4, 2, 1] = prob[0, 4, 6, 1] = 0.5    # two points on row 4, columns 2 and 6
    mu = lkl.softargmax(tf.constant(prob)).numpy()
    np.testing.assert_allclose(mu[0], [[5, 3], [4, 4]], atol=1e-6)   # (x = column, y = row)
    b = lkl.laplace_scale(tf.constant(prob), tf.constant(mu)).numpy()
    np.testing.assert_allclose(b[0], [[0, 0], [2, 0]], atol=1e-6)
    s = lkl.gaussian_scale(tf.constant(prob), tf.constant(mu)).numpy()
    np.testing.assert_allclose(s[0], [[0, 0], [2, 0]], atol=1e-2)


def _numeric_kl(p, q, lo=-60, hi=60, n=200001):
    x = np.linspace(lo, hi, n)
    px, qx = p(x), q(x)
    mask = px > 1e-300
    return np.trapezoid(px[mask] * (np.log(px[mask]) - np.log(qx[mask])), x[mask])


def test_laplace_and_gaussian_kl_match_numerical_integration():
    a1, b1, a2, b2 = 0.3, 1.0, 1.7, 2.5
    lap = lambda a, b: (lambda x: np.exp(-np.abs(x - a) / b) / (2 * b))  # noqa: E731
    gau = lambda a, s: (lambda x: np.exp(-(x - a) ** 2 / (2 * s * s)) / (s * math.sqrt(2 * math.pi)))  # noqa: E731
    target = np.array([[[a1, a1]]], np.float32)
    mu = np.array([[[a2, a1]]], np.float32)        # x axis off by 1.4, y axis exact
    scale = np.array([[[b2, b1]]], np.float32)     # y axis has the target scale -> KL 0 there
    got = lkl.laplace_kl(target, b1, mu, scale).numpy()[0, 0]
    assert got == pytest.approx(_numeric_kl(lap(a1, b1), lap(a2, b2)), rel=1e-3)
    got = lkl.gaussian_kl(target, b1, mu, scale).numpy()[0, 0]
    assert got == pytest.approx(_numeric_kl(gau(a1, b1), gau(a2, b2)), rel=1e-3)
    # Zero at the target, and a sharper prediction at the right place has lower KL than a diffuse one.
    assert lkl.laplace_kl(target, 1.0, target, np.ones_like(target)).numpy()[0, 0] == pytest.approx(0, abs=1e-6)
    sharp = lkl.laplace_kl(target, 1.0, target + 0.2, np.full_like(target, 1.0)).numpy()[0, 0]
    diffuse = lkl.laplace_kl(target, 1.0, target + 0.2, np.full_like(target, 4.0)).numpy()[0, 0]
    assert sharp < diffuse


def test_rendered_heatmaps_are_distributions_centred_on_the_points():
    points = np.array([[[10.0, 12.0], [20.3, 7.6]]], np.float32)
    maps = lkl.render_laplace_heatmaps(points, 32, 1.0).numpy()
    assert maps.shape == (1, 32, 32, 2)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, atol=1e-5)
    np.testing.assert_allclose(lkl.softargmax(maps).numpy(), points, atol=0.05)


def test_coordinate_maps_and_nme():
    pts = np.array([[[0.0, 0.0], [31.0, 63.0]]])
    back = lkl.to_image_coords(lkl.to_heatmap_coords(pts, 64, 32), 64, 32)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    assert lkl.to_heatmap_coords(np.array([0.5]), 64, 32)[0] == pytest.approx(0.0)  # pixel pair 0,1 -> cell 0
    target = np.array([[[0.0, 0.0], [30.0, 40.0]]])                   # box diagonal 50
    assert lkl.nme(target + [3.0, 4.0], target)[0] == pytest.approx(5.0 / 50.0)
    with pytest.raises(ValueError):
        lkl.nme(target[:, :1], target)


def test_heatmap_net_shapes_and_discriminator():
    net = lkl.build_heatmap_net(image_size=32, channels=1, num_landmarks=5, width=4, beta_init=2.0)
    net.eval()
    prob = net(np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 1)).astype(np.float32)).numpy()
    assert prob.shape == (3, 16, 16, 5)
    np.testing.assert_allclose(prob.sum(axis=(1, 2)), 1.0, atol=1e-5)
    beta = [w for w in net.all_weights if "log_beta" in w.name]
    assert len(beta) == 1 and float(np.exp(beta[0].numpy()[0])) == pytest.approx(2.0)
    d = lkl.build_heatmap_discriminator(16, 1, 5, width=4)
    d.eval()
    assert d(np.zeros((3, 16, 16, 6), np.float32)).shape == (3, 1)


def test_jitter_moves_landmarks_with_the_image():
    rng = np.random.default_rng(1)
    images = np.full((4, 64, 64, 1), -1.0, np.float32)
    points = rng.uniform(20, 44, (4, 1, 2)).astype(np.float32)
    for i, (x, y) in enumerate(points[:, 0]):
        images[i, int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2, 0] = 1.0
    out, moved = lkl.jitter_batch(images, points, np.random.default_rng(2), 2.0)
    assert np.abs(moved - points).max() > 1.0            # it did move
    for i in range(4):
        row, col = np.unravel_index(np.argmax(out[i, ..., 0]), out.shape[1:3])
        assert abs(col - moved[i, 0, 0]) <= 2.0 and abs(row - moved[i, 0, 1]) <= 2.0


def test_config_validation_names_the_field():
    from ganimation_tl.errors import InputError
    with pytest.raises(ValueError, match="laplacekl_loss"):
        lkl.LaplaceKLConfig(laplacekl_loss="l1")
    with pytest.raises(ValueError, match="image_size"):
        lkl.LaplaceKLConfig(image_size=30)
    from ganimation_tl.sibling import config_or_input_error
    with pytest.raises(InputError, match="image_size"):
        config_or_input_error(lkl.LaplaceKLConfig, _flags("--image_size=30", "--cfp_dir=/nonexistent"))


def test_missing_cfp_folder_is_an_input_error_naming_the_flag(tmp_path):
    from ganimation_tl import registry
    from ganimation_tl.errors import InputError
    with pytest.raises(InputError, match="--cfp_dir"):
        registry.get("laplacekl").train(_flags("--cfp_dir=%s" % (tmp_path / "nope"), "--workdir=%s" % tmp_path))


@needs_cfp
def test_two_step_smoke_run_through_the_registry(tmp_path):
    from ganimation_tl import registry
    fv = _flags("--cfp_dir=%s" % CFP, "--workdir=%s" % tmp_path, "--max_steps=2", "--log_every=1",
                "--image_every=2", "--laplacekl_max_identities=6", "--laplacekl_test_identities=2",
                "--laplacekl_labelled_identities=2", "--batch_size=4", "--image_size=32", "--laplacekl_width=4",
                "--laplacekl_d_width=4", "--laplacekl_adv_start_step=1")
    metrics = registry.get("laplacekl").train(fv)
    assert "discriminator/total" in metrics                 # step 2 ran the adversarial branch
    for key in ("generator/landmark_loss", "generator/total", "heldout/nme", "heldout/mean_shape_nme"):
        assert math.isfinite(metrics[key]), key
    assert (tmp_path / "checkpoints" / "checkpoint").exists()
    assert (tmp_path / "samples" / "latest.png").exists()
    saved = json.loads((tmp_path / "heldout_metrics.json").read_text())
    assert saved["heldout/num_images"] == 20.0               # 2 held-out identities x 10 frontal photos
