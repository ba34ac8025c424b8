"""C2AE (other_models/c2ae.py): losses against hand-computed values, networks, smoke run, bad input."""
from pathlib import Path

import numpy as np
import pytest

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "digits" / "mnist.pkl.gz"
REPO = Path(__file__).resolve().parents[1]


def _flags(argv):
    from absl import flags
    import other_models.c2ae as c2ae
    fv = flags.FlagValues()
    c2ae.define_flags(fv)
    fv(["test"] + argv)
    return fv


def test_output_loss_matches_hand_computed():
    import tensorflow as tf
    from other_models.c2ae import output_loss
    outputs = tf.constant([[0.9, 0.2, 0.4], [0.1, 0.8, 0.3], [0.5, 0.5, 0.5]])
    labels = tf.constant([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # last: no negatives -> skipped
    s = 5.0
    e0 = (np.exp(s * (0.2 - 0.9)) + np.exp(s * (0.4 - 0.9))) / 2
    e1 = (np.exp(s * (0.3 - 0.1)) + np.exp(s * (0.3 - 0.8))) / 2
    assert float(output_loss(outputs, labels, s)) == pytest.approx((e0 + e1) / 2, rel=1e-5)


def test_embedding_loss_matches_numpy():
    import tensorflow as tf
    from other_models.c2ae import embedding_loss
    rng = np.random.default_rng(0)
    fx, fe = rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    phi, dist, orth = embedding_loss(tf.constant(fx), tf.constant(fe), 0.5)
    expected_dist = np.sum((fx - fe) ** 2)
    expected_orth = np.sum((fx.T @ fx - np.eye(3)) ** 2) + np.sum((fe.T @ fe - np.eye(3)) ** 2)
    assert float(dist) == pytest.approx(expected_dist, rel=1e-5)
    assert float(orth) == pytest.approx(expected_orth, rel=1e-5)
    assert float(phi) == pytest.approx(expected_dist + 0.5 * expected_orth, rel=1e-5)
    # orthonormal, equal embeddings give zero loss
    q = np.linalg.qr(rng.normal(size=(6, 3)))[0].astype(np.float32)
    assert float(embedding_loss(tf.constant(q), tf.constant(q), 0.5)[0]) == pytest.approx(0.0, abs=1e-5)


def test_networks_shapes_ranges_and_learning_on_toy_data():
    from other_models.c2ae import C2AE, C2AEConfig
    config = C2AEConfig(image_size=4, c2ae_hidden=32, batch_size=64, epochs=1, learning_rate=3e-3,
                        c2ae_optimizer="adam", c2ae_weight_decay=0.0, c2ae_train_images=64, c2ae_test_images=64)
    model = C2AE(config, feature_dim=16, num_labels=5)
    assert model.latent == 4  # round(0.8 * 5)
    rng = np.random.default_rng(0)
    y = (rng.random((64, 5)) < 0.4).astype(np.float32)
    y[:, 0] = 1.0 - y[:, 1]  # at least one positive per row in most rows
    x = np.concatenate([y * 2 - 1, rng.normal(size=(64, 11))], axis=1).astype(np.float32)  # labels readable
    scores = model.predict_scores(x)
    assert scores.shape == (64, 5) and scores.min() >= 0 and scores.max() <= 1
    first = model.train_step((x, y), 0)
    for step in range(80):
        last = model.train_step((x, y), step)
    assert float(last["c2ae/phi"]) < 0.5 * float(first["c2ae/phi"])
    from ganimation_tl.multilabel import micro_f1
    assert micro_f1(y, model.predict(x)) > 0.8


def test_config_validation():
    from other_models.c2ae import C2AEConfig
    with pytest.raises(ValueError, match="c2ae_optimizer"):
        C2AEConfig(c2ae_optimizer="sgd")
    with pytest.raises(ValueError, match="batch_size"):
        C2AEConfig(batch_size=0)


def test_missing_mnist_is_input_error_naming_flag(tmp_path):
    import other_models.c2ae as c2ae
    from ganimation_tl.errors import InputError
    fv = _flags(["--flagfile=%s" % (REPO / "configs" / "c2ae_debug.cfg"),
                 "--mnist_path=%s" % (tmp_path / "missing.pkl.gz"), "--workdir=%s" % tmp_path])
    with pytest.raises(InputError, match="--mnist_path.*missing.pkl.gz"):
        c2ae.train(fv)


@pytest.mark.skipif(not MNIST.is_file(), reason="../shared/data/digits/mnist.pkl.gz is not beside the checkout")
@pytest.mark.parametrize("config", ["c2ae_debug.cfg", "c2ae_conv_debug.cfg"])
def test_two_step_smoke_run_from_debug_config(tmp_path, config):
    import tensorflow as tf
    from ganimation_tl import registry
    registry.load_all()
    entry = registry.get("c2ae")
    fv = _flags(["--flagfile=%s" % (REPO / "configs" / config), "--mnist_path=%s" % MNIST,
                 "--workdir=%s" % tmp_path, "--max_steps=2", "--log_every=1", "--c2ae_train_images=128",
                 "--c2ae_test_images=32", "--batch_size=64", "--c2ae_hidden=32",
                 "--c2ae_validation_images=32"])
    metrics = entry.train(fv)
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert "c2ae/phi" in metrics and "c2ae/gamma" in metrics
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")) is not None


def test_fx_dropout_only_in_training_and_validated():
    import tensorflow as tf
    from other_models.c2ae import C2AE, C2AEConfig
    with pytest.raises(ValueError, match="c2ae_dropout"):
        C2AEConfig(c2ae_dropout=1.0)
    config = C2AEConfig(image_size=4, c2ae_hidden=64, c2ae_dropout=0.5, batch_size=16, c2ae_train_images=64)
    model = C2AE(config, feature_dim=16, num_labels=5)
    x = np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32)
    # training mode: two passes differ (dropout active); prediction: deterministic
    assert not np.allclose(model.fx(tf.constant(x)).numpy(), model.fx(tf.constant(x)).numpy())
    assert np.array_equal(model.predict_scores(x), model.predict_scores(x))
    no_drop = C2AE(C2AEConfig(image_size=4, c2ae_hidden=64, batch_size=16, c2ae_train_images=64), 16, 5)
    assert np.allclose(no_drop.fx(tf.constant(x)).numpy(), no_drop.fx(tf.constant(x)).numpy())


def test_best_threshold_and_validation_split():
    from other_models.c2ae import C2AEConfig, best_threshold, split_validation
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], np.float32)
    # positives score 0.35-0.4, negatives 0.15-0.2: every t in [0.2, 0.35) is perfect, 0.5 is not;
    # among those ties the grid value nearest 0.5 (0.325) is returned
    scores = np.where(labels > 0, 0.35, 0.15) + np.array([[0.05, 0.0, 0.0]] * 3)
    assert best_threshold(scores, labels) == pytest.approx(0.325)
    # separable at 0.5 as well: ties go to the value nearest 0.5
    assert best_threshold(np.where(labels > 0, 0.9, 0.1), labels) == pytest.approx(0.5)
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    tx, ty, vx, vy = split_validation(x, x[:, :1], 3)
    assert tx.shape == (7, 2) and vx.shape == (3, 2) and vx[0, 0] == 14 and not set(tx[:, 0]) & set(vx[:, 0])
    with pytest.raises(ValueError, match="c2ae_validation_images"):
        C2AEConfig(c2ae_train_images=100, batch_size=50, c2ae_validation_images=60)


def test_negative_validation_flag_is_input_error_naming_flag(tmp_path):
    import other_models.c2ae as c2ae
    from ganimation_tl.errors import InputError
    fv = _flags(["--flagfile=%s" % (REPO / "configs" / "c2ae_debug.cfg"), "--c2ae_validation_images=-1",
                 "--mnist_path=%s" % (tmp_path / "missing.pkl.gz"), "--workdir=%s" % tmp_path])
    with pytest.raises(InputError, match="c2ae_validation_images"):
        c2ae.train(fv)


def test_conv_feature_mapping_shapes_decay_and_learning():
    """conv Fx: [B, S*S] -> [B, K] in (-0.5, 0.5); its conv kernels are weight-decayed; it learns to
    read which quadrant of an image is lit (a multi-label toy problem)."""
    from other_models.c2ae import C2AE, C2AEConfig, build_networks
    with pytest.raises(ValueError, match="c2ae_feature_net"):
        C2AEConfig(c2ae_feature_net="resnet")
    with pytest.raises(ValueError, match="square"):
        build_networks(15, 4, 8, 3, prefix="bad", feature_net="conv")
    with pytest.raises(ValueError, match="divisible by 4"):
        build_networks(36, 4, 8, 3, prefix="bad6", feature_net="conv")
    config = C2AEConfig(image_size=8, c2ae_hidden=32, batch_size=64, learning_rate=3e-3, c2ae_optimizer="adam",
                        c2ae_weight_decay=0.0, c2ae_feature_net="conv", c2ae_train_images=64)
    model = C2AE(config, feature_dim=64, num_labels=4)
    assert any("filters" in k.name for k in model.kernels)
    rng = np.random.default_rng(0)
    y = (rng.random((64, 4)) < 0.5).astype(np.float32)
    y[y.sum(1) == 0, 0] = 1.0
    y[y.sum(1) == 4, 3] = 0.0
    images = rng.normal(scale=0.3, size=(64, 8, 8)).astype(np.float32)
    for q, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        images[:, r:r + 4, c:c + 4] += 2.0 * y[:, q, None, None]
    x = images.reshape(64, 64)
    import tensorflow as tf
    fx = model.fx(tf.constant(x)).numpy()
    assert fx.shape == (64, 3) and np.all(np.abs(fx) < 0.5)
    from ganimation_tl.multilabel import micro_f1
    before = micro_f1(y, model.predict(x))
    for step in range(300):
        model.train_step((x, y), step)
    after = micro_f1(y, model.predict(x))
    assert after > 0.9 and after > before + 0.3, (before, after)
