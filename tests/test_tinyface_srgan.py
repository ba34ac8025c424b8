"""Tests of other_models/tinyface_srgan.py: networks, PSNR, resizing, negatives, a 2-step smoke run."""
import json
import math

import numpy as np
import pytest

from sibling_helpers import CFP, model_flags, needs_cfp

tfs = pytest.importorskip("other_models.tinyface_srgan")


def _flags(*overrides):
    return model_flags("tinyface_srgan", *overrides, flagfile="tinyface_srgan_debug.cfg")


def test_psnr_on_known_error():
    ref = np.zeros((2, 4, 4, 3), np.float32)
    # +0.1 on [-1, 1] is +0.05 on [0, 1]: MSE 0.0025 -> 10 log10(1 / 0.0025) = 26.0206 dB.
    np.testing.assert_allclose(tfs.psnr(ref + 0.1, ref), 26.0206, atol=1e-3)
    assert tfs.psnr(ref, ref)[0] == 100.0
    with pytest.raises(ValueError):
        tfs.psnr(ref[:, :2], ref)


def test_bicubic_resizing_shapes_and_constants():
    images = np.full((3, 32, 32, 3), 77, np.uint8)
    down = tfs.bicubic_down(images)
    assert down.shape == (3, 8, 8, 3) and down.dtype == np.uint8 and (down == 77).all()
    up = tfs.bicubic_up(np.full((2, 8, 8, 3), 0.25, np.float32))
    assert up.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(up, 0.25, atol=1e-6)


def test_generator_and_discriminator_shapes_and_ranges():
    g = tfs.build_generator(lr_size=8, width=8, up_width=8, res_blocks=1)
    g.eval()
    sr, refined = g(np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32))
    assert sr.shape == (2, 32, 32, 3) and refined.shape == (2, 32, 32, 3)
    assert float(np.abs(refined.numpy()).max()) <= 1.0
    d = tfs.build_discriminator(32, width=4)
    d.eval()
    gan, clc = d(np.zeros((5, 32, 32, 3), np.float32))
    assert gan.shape == (5, 1) and clc.shape == (5, 1)
    with pytest.raises(ValueError, match="multiple of 16"):
        tfs.build_discriminator(24, width=4)


def test_residual_generator_starts_at_bicubic_and_beats_plain_init():
    import tensorflow as tf
    rng = np.random.default_rng(0)
    lr = np.clip(rng.normal(0, 0.4, (2, 8, 8, 3)), -0.9, 0.9).astype(np.float32)
    g = tfs.build_generator(lr_size=8, width=8, up_width=8, res_blocks=1, residual=True)
    g.eval()
    sr, refined = g(lr)
    bicubic = tf.image.resize(lr, (32, 32), method="bicubic").numpy()
    np.testing.assert_allclose(sr.numpy(), bicubic, atol=1e-5)              # zero-initialised residual
    np.testing.assert_allclose(refined.numpy(), np.clip(bicubic, -0.99, 0.99), atol=1e-4)


def test_background_crops_avoid_the_face_box():
    photo = np.zeros((120, 160, 3), np.uint8)
    photo[..., 2] = 255                                   # blue background
    box = (50, 30, 110, 100)
    photo[30:100, 50:110] = (255, 0, 0)                   # red "face"
    crops = tfs.sample_background_crops(photo, box, 20, 16, np.random.default_rng(0), attempts=500)
    assert len(crops) == 20 and crops[0].shape == (16, 16, 3)
    red_fraction = [(c[..., 0] > 127).mean() for c in crops]
    assert max(red_fraction) < 0.35
    # A face covering the whole photo leaves no background: fewer crops, never a noise substitute.
    assert tfs.sample_background_crops(photo, (0, 0, 160, 120), 5, 16, np.random.default_rng(0)) == []


def test_wrong_image_size_is_an_input_error():
    from ganimation_tl import registry
    from ganimation_tl.errors import InputError
    with pytest.raises(InputError, match="image_size"):
        registry.get("tinyface_srgan").train(_flags("--image_size=24", "--cfp_dir=/nonexistent"))


def test_missing_cfp_folder_is_an_input_error_naming_the_flag(tmp_path):
    from ganimation_tl import registry
    from ganimation_tl.errors import InputError
    with pytest.raises(InputError, match="--cfp_dir"):
        registry.get("tinyface_srgan").train(_flags("--cfp_dir=%s" % (tmp_path / "nope"), "--workdir=%s" % tmp_path))


@needs_cfp
def test_two_step_smoke_run_through_the_registry(tmp_path):
    from ganimation_tl import registry
    fv = _flags("--cfp_dir=%s" % CFP, "--workdir=%s" % tmp_path, "--max_steps=2", "--log_every=1",
                "--image_every=2", "--tinyface_max_identities=4", "--tinyface_test_identities=1",
                "--tinyface_negatives_train=16", "--tinyface_negatives_test=6", "--batch_size=4",
                "--tinyface_width=4", "--tinyface_up_width=4", "--tinyface_res_blocks=1", "--tinyface_d_width=4",
                "--tinyface_pretrain_steps=1")
    metrics = registry.get("tinyface_srgan").train(fv)
    assert "discriminator/total" in metrics                 # step 2 was a GAN step
    for key in ("generator/mse", "generator/total", "heldout/psnr_refined", "heldout/psnr_bicubic",
                "heldout/face_accuracy_generated"):
        assert math.isfinite(metrics[key]), key
    assert (tmp_path / "checkpoints" / "checkpoint").exists()
    assert (tmp_path / "samples" / "latest.png").exists()
    saved = json.loads((tmp_path / "heldout_metrics.json").read_text())
    assert saved["heldout/num_faces"] == 14.0 and saved["heldout/num_nonfaces"] == 6.0
