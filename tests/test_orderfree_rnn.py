"""Order-free RNN (other_models/orderfree_rnn.py): decoder step, order-free alignment, candidate pooling,
smoke run, bad input."""
from pathlib import Path

import numpy as np
import pytest

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "digits" / "mnist.pkl.gz"
REPO = Path(__file__).resolve().parents[1]
L, C, N = 6, 8, 9


def _flags(argv):
    from absl import flags
    import other_models.orderfree_rnn as ofr
    fv = flags.FlagValues()
    ofr.define_flags(fv)
    fv(["test"] + argv)
    return fv


@pytest.fixture(scope="module")
def decoder():
    from other_models.orderfree_rnn import build_decoder
    return build_decoder(L, C, hidden=16, embed=4, attention=5, name="test_ofr_rnn")


def _inputs(batch=3, seed=0):
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.normal(size=(batch, N, C)), tf.float32),
            tf.constant(rng.random((batch, L)), tf.float32))


def test_step_shapes_and_attention_is_a_distribution(decoder):
    import tensorflow as tf
    features, scores = _inputs()
    state = decoder.initial_state(features, scores)
    projected = tf.einsum("bnc,ca->bna", features, decoder.w_v)
    logits, (h, c), alpha = decoder.step(features, projected, tf.fill([3], L), state)
    assert logits.shape == (3, L + 1) and h.shape == (3, 16) and c.shape == (3, 16)
    assert alpha.shape == (3, N)
    np.testing.assert_allclose(alpha.numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert (alpha.numpy() >= 0).all()


def test_order_free_targets_follow_predicted_probabilities(decoder):
    import tensorflow as tf
    features, scores = _inputs()
    labels = np.zeros((3, L), np.float32)
    labels[0, [1, 4]] = 1
    labels[1, [0, 2, 5]] = 1
    labels[2, 3] = 1
    loss, targets = decoder.order_free_loss(features, scores, tf.constant(labels))
    targets = targets.numpy()
    assert np.isfinite(float(loss)) and float(loss) > 0
    for b in range(3):
        k = int(labels[b].sum())
        assert sorted(targets[b, :k]) == list(np.flatnonzero(labels[b]))   # every label once, any order
        assert (targets[b, k:] == L).all()                                  # then <end>
    # the first target is the ground-truth label with the highest probability at step 0
    state = decoder.initial_state(features, scores)
    projected = tf.einsum("bnc,ca->bna", features, decoder.w_v)
    logits, _, _ = decoder.step(features, projected, tf.fill([3], L), state)
    probs = tf.nn.softmax(logits[:, :L]).numpy()
    for b in range(3):
        positives = np.flatnonzero(labels[b])
        assert targets[b, 0] == positives[np.argmax(probs[b, positives])]


def test_candidate_pooling_never_repeats_and_stops_at_end(decoder):
    features, scores = _inputs(batch=2)
    original = decoder.b_p.numpy().copy()
    try:
        bias = np.zeros(L + 1, np.float32)
        bias[3], bias[L] = 100.0, 50.0      # label 3 first; once pooled out, <end> wins
        decoder.b_p.assign(bias)
        predicted, tokens, attention = decoder.decode(features, scores)
        np.testing.assert_array_equal(predicted.numpy(), np.eye(L, dtype=np.float32)[[3, 3]])
        assert list(tokens.numpy()[0, :2]) == [3, L]
        assert attention.shape == (2, 5, N)
        bias[L] = 200.0                     # <end> first: empty prediction
        decoder.b_p.assign(bias)
        assert decoder.decode(features, scores)[0].numpy().sum() == 0
        bias[:] = 0.0
        bias[:L] = 100.0                    # labels beat <end>: all steps emit distinct labels
        decoder.b_p.assign(bias)
        predicted, tokens, _ = decoder.decode(features, scores)
        assert predicted.numpy().sum(axis=1).tolist() == [5.0, 5.0]
        assert all(len(set(row)) == 5 for row in tokens.numpy().tolist())
    finally:
        decoder.b_p.assign(original)


def test_config_validation():
    from other_models.orderfree_rnn import OrderFreeRNNConfig
    with pytest.raises(ValueError, match="multiple of 4"):
        OrderFreeRNNConfig(image_size=30)
    with pytest.raises(ValueError, match="orderfree_hidden"):
        OrderFreeRNNConfig(orderfree_hidden=0)


def test_missing_mnist_is_input_error_naming_flag(tmp_path):
    import other_models.orderfree_rnn as ofr
    from ganimation_tl.errors import InputError
    fv = _flags(["--flagfile=%s" % (REPO / "configs" / "orderfree_rnn_debug.cfg"),
                 "--mnist_path=%s" % (tmp_path / "gone.pkl.gz"), "--workdir=%s" % tmp_path])
    with pytest.raises(InputError, match="--mnist_path.*gone.pkl.gz"):
        ofr.train(fv)


@pytest.mark.skipif(not MNIST.is_file(), reason="../shared/data/digits/mnist.pkl.gz is not beside the checkout")
def test_two_step_smoke_run_from_debug_config(tmp_path):
    import tensorflow as tf
    from ganimation_tl import registry
    registry.load_all()
    fv = _flags(["--flagfile=%s" % (REPO / "configs" / "orderfree_rnn_debug.cfg"), "--mnist_path=%s" % MNIST,
                 "--workdir=%s" % tmp_path, "--max_steps=2", "--log_every=1", "--orderfree_train_images=64",
                 "--orderfree_test_images=16", "--batch_size=16", "--orderfree_channels=16",
                 "--orderfree_hidden=16", "--image_every=2"])
    metrics = registry.get("orderfree_rnn").train(fv)
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert "orderfree/rnn_ce" in metrics
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")) is not None
    assert (tmp_path / "samples" / "latest.png").is_file()
