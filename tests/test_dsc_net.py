"""DSC-Net (other_models/dsc_net.py): smoke run, self-expressive layer, post-processing, bad input."""
from pathlib import Path

import numpy as np
import pytest

from ganimation_tl.errors import InputError

from sibling_helpers import model_flags

SHARED = Path(__file__).resolve().parents[2] / "shared"
ORL = SHARED / "data" / "subspace" / "ORL_32x32.mat"
REPO = Path(__file__).resolve().parents[1]


def _flag_values(*args):
    return model_flags("dsc_net", *args, model=None)


def test_registered():
    from ganimation_tl import registry
    import other_models.dsc_net  # noqa: F401  (registers at import)
    assert registry.get("dsc_net").train is other_models.dsc_net.train


@pytest.mark.skipif(not ORL.is_file(), reason="../shared/data/subspace/ORL_32x32.mat is not beside the checkout")
def test_two_step_smoke_run(tmp_path):
    from other_models import dsc_net
    fv = _flag_values("--flagfile=%s" % (REPO / "configs" / "dsc_net_debug.cfg"), "--dsc_mat_path=%s" % ORL,
                      "--dsc_pretrain_epochs=1", "--dsc_finetune_epochs=1", "--workdir=%s" % tmp_path,
                      "--log_every=1", "--image_every=2")
    metrics = dsc_net.train(fv)
    assert all(np.isfinite(v) for v in metrics.values())
    assert "dsc/total" in metrics and 0.0 <= metrics["cluster/accuracy"] <= 1.0
    assert (tmp_path / "checkpoints" / "checkpoint").is_file()
    assert (tmp_path / "clustering.json").is_file()
    assert (tmp_path / "samples" / "latest.png").is_file()


def test_self_expressive_layer_matches_numpy():
    import tensorflow as tf
    from other_models.dsc_net import SelfExpressive, _wrap_layer
    layer = SelfExpressive(4, coef_init=0.0, zero_diagonal=True, name="test_dsc_se")
    model = _wrap_layer(layer, [4, 2, 1, 3], name="test_dsc_se_model")
    model.eval()
    coef = np.arange(16, dtype=np.float32).reshape(4, 4) / 10.0
    layer.coef.assign(coef)
    z = np.random.default_rng(0).normal(size=(4, 2, 1, 3)).astype(np.float32)
    out = model(tf.constant(z)).numpy()
    c0 = coef - np.diag(np.diag(coef))
    expected = (c0 @ z.reshape(4, -1)).reshape(z.shape)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert layer.coef.shape == (4, 4)


def test_losses_on_known_input():
    """Eq. 5 terms against NumPy for a tiny net (N=4, 8x8 images, one layer)."""
    import tensorflow as tf
    from other_models.dsc_net import DSCNet, DSCNetConfig
    config = DSCNetConfig(dsc_kernels="3", dsc_channels="2", dsc_lambda1=0.5, dsc_lambda2=3.0,
                          dsc_reconstruction_weight=1.0, dsc_coef_init=0.1, dsc_pretrain_epochs=0,
                          dsc_finetune_epochs=1)
    net = DSCNet(config, num_samples=4, image_size=8)
    x = tf.constant(np.random.default_rng(1).uniform(size=(4, 8, 8, 1)).astype(np.float32))
    terms = net.losses(x)
    z = net.encoder(x).numpy().reshape(4, -1)
    c = np.full((4, 4), 0.1, np.float32)
    zc = c @ z
    recon = net.decoder(tf.constant(zc.reshape(4, 4, 4, 2))).numpy()
    rec = np.sum((recon - x.numpy()) ** 2)
    expected = 1.0 * rec + 0.5 * np.sum(c ** 2) + 3.0 * 0.5 * np.sum((zc - z) ** 2)
    np.testing.assert_allclose(float(terms["dsc/total"]), expected, rtol=1e-4)
    np.testing.assert_allclose(float(terms["dsc/coef_regulariser"]), 16 * 0.01, rtol=1e-5)


def test_finetuning_reduces_loss():
    import tensorflow as tf
    from other_models.dsc_net import DSCNet, DSCNetConfig
    config = DSCNetConfig(dsc_kernels="3", dsc_channels="2", dsc_coef_init=0.0, dsc_pretrain_epochs=0,
                          dsc_finetune_epochs=30, dsc_lambda2=1.0, dsc_learning_rate=1e-2)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(size=(6, 8, 8, 1)).astype(np.float32))
    net = DSCNet(config, num_samples=6, image_size=8, pixel_mean=0.5)
    first = float(net.train_step(x, 0)["dsc/total"])
    for step in range(1, 30):
        last = float(net.train_step(x, step)["dsc/total"])
    assert last < 0.8 * first


def test_threshold_keeps_largest_mass():
    from other_models.dsc_net import threshold_coefficients
    c = np.array([[0.0, 0.1], [0.6, 0.0], [0.3, 0.9], [0.1, 0.0]])
    out = threshold_coefficients(c, 0.7)
    # column 0: sorted 0.6, 0.3, 0.1 (total 1.0): 0.6 < 0.7 so 0.3 is kept too, then 0.9 > 0.7 stops
    np.testing.assert_allclose(out[:, 0], [0.0, 0.6, 0.3, 0.0])
    # column 1: 0.9 of 1.0 already exceeds 0.7
    np.testing.assert_allclose(out[:, 1], [0.0, 0.0, 0.9, 0.0])
    np.testing.assert_allclose(threshold_coefficients(c, 1.0), c)


def test_affinity_separates_block_diagonal_coefficients():
    """A block-diagonal C (two subspaces) gives an affinity and clusters that recover the blocks."""
    from other_models.dsc_net import affinity_from_coefficients, clustering_accuracy, spectral_cluster
    rng = np.random.default_rng(0)
    n = 20
    c = np.zeros((n, n))
    c[:10, :10] = rng.uniform(0.1, 1.0, (10, 10))
    c[10:, 10:] = rng.uniform(0.1, 1.0, (10, 10))
    w = affinity_from_coefficients(c, num_clusters=2, subspace_dim=2, power=1.0)
    assert np.allclose(w, w.T) and w.max() == pytest.approx(1.0)
    assert w[:10, 10:].max() < 0.05 < w[:10, :10].mean()
    labels = np.array([0] * 10 + [1] * 10)
    assert clustering_accuracy(labels, spectral_cluster(w, 2, seed=0)) == 1.0


def test_clustering_accuracy_uses_best_map():
    from other_models.dsc_net import clustering_accuracy
    assert clustering_accuracy([0, 0, 1, 1, 2], [2, 2, 0, 0, 1]) == 1.0
    assert clustering_accuracy([0, 0, 1, 1], [0, 0, 0, 1]) == 0.75


def test_missing_data_file_names_flag(tmp_path):
    from other_models import dsc_net
    fv = _flag_values("--flagfile=%s" % (REPO / "configs" / "dsc_net_debug.cfg"),
                      "--dsc_mat_path=%s" % (tmp_path / "nope" / "ORL_32x32.mat"), "--workdir=%s" % tmp_path)
    with pytest.raises(InputError, match="--dsc_mat_path"):
        dsc_net.train(fv)


def test_bad_config_is_input_error(tmp_path):
    from other_models import dsc_net
    fv = _flag_values("--dsc_kernels=3,3", "--dsc_channels=3", "--dsc_mat_path=x.mat")
    with pytest.raises(InputError, match="dsc_kernels"):
        dsc_net.train(fv)


def test_bias_rescale_is_exact_reparameterisation():
    """Pre-training on X/s then scaling the biases by s maps raw X to s times the normalised output."""
    import tensorflow as tf
    from other_models.dsc_net import DSCNet, DSCNetConfig
    config = DSCNetConfig(dsc_kernels="3,3", dsc_channels="2,3", dsc_pretrain_input_scale=255.0,
                          dsc_pretrain_epochs=2, dsc_finetune_epochs=1)
    x = tf.constant(np.random.default_rng(2).uniform(0, 255, size=(4, 8, 8, 1)).astype(np.float32))
    net = DSCNet(config, num_samples=4, image_size=8, pixel_mean=128.0)
    for step in range(2):
        net.train_step(x, step)
    normalised = net.decoder(net.encoder(x / 255.0)).numpy()
    net.rescale_biases(255.0)
    raw = net.decoder(net.encoder(x)).numpy()
    np.testing.assert_allclose(raw, 255.0 * normalised, rtol=1e-4, atol=1e-3)
    assert raw.mean() > 50   # output bias started at the mean pixel (128): no dead output ReLU
