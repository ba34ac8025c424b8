"""Tests of ML-ZSL (other_models/ml_zsl.py): smoke run through the registry, the FACS knowledge graph, the
gated graph propagation layer, the loss and metrics, and bad input."""
import math
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from ganimation_tl.aus import AU_NAMES
from ganimation_tl.errors import InputError

from sibling_helpers import model_flags

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "ml_zsl_debug.cfg"


def _flags(*extra):
    return model_flags("ml_zsl", *extra, flagfile="ml_zsl_debug.cfg")


def _i(name):
    return AU_NAMES.index(name)


def test_smoke_two_steps_through_registry(tmp_path):
    from ganimation_tl import registry
    fv = _flags("--max_steps=2", "--workdir=%s" % tmp_path, "--ml_zsl_train_faces=96", "--ml_zsl_test_faces=40",
                "--ml_zsl_identities=20", "--batch_size=32", "--log_every=1")
    metrics = registry.get("ml_zsl").train(fv)
    assert math.isfinite(metrics["ml_zsl/bce"]) and metrics["ml_zsl/bce"] > 0
    assert 0.0 <= metrics["ml_zsl/unseen_mean_f1"] <= 1.0
    assert (tmp_path / "checkpoints" / "checkpoint").is_file()
    assert list((tmp_path / "checkpoints").glob("ckpt-2.index"))


def test_knowledge_graph_relations_from_facs():
    from other_models.ml_zsl import RELATIONS, au_knowledge_graph
    adj = au_knowledge_graph()
    assert adj.shape == (3, 17, 17) and RELATIONS == ("cooccurrence", "region", "antagonism")
    assert np.array_equal(adj, np.transpose(adj, (0, 2, 1)))          # symmetric
    assert np.all(np.einsum("rvv->rv", adj) == 0)                      # no self loops
    co, region, anti = adj
    assert co[_i("AU25"), _i("AU26")] == 1 and co[_i("AU06"), _i("AU12")] == 1       # jaw drop parts lips; smile
    assert co[_i("AU12"), _i("AU15")] == 0
    assert region[_i("AU01"), _i("AU02")] == 1 and region[_i("AU01"), _i("AU26")] == 0   # brows vs jaw
    assert anti[_i("AU12"), _i("AU15")] == 1 and anti[_i("AU05"), _i("AU45")] == 1   # corners up/down; lids
    assert anti[_i("AU01"), _i("AU02")] == 0


def test_semantic_vectors_encode_facs_motion():
    from other_models.ml_zsl import au_semantic_vectors
    sem = au_semantic_vectors()
    assert sem.shape == (17, 204)
    np.testing.assert_allclose(np.linalg.norm(sem[:, :136], axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(sem[:, 136:], axis=1), 1.0, atol=1e-6)
    disp = sem[:, :136].reshape(17, 68, 2)
    assert disp[_i("AU01"), 21, 1] < 0 and disp[_i("AU01"), 21, 0] == 0      # inner brow up (y down)
    assert disp[_i("AU26"), 8, 1] > 0                                          # chin down
    assert disp[_i("AU12"), 48, 0] < 0 and disp[_i("AU12"), 54, 0] > 0        # corners outward
    assert np.count_nonzero(sem[_i("AU05"), 136:]) == 4                       # 37, 38, 43, 44


def test_align_landmarks_removes_similarity_transforms():
    from other_models.ml_zsl import _normalise_shape, align_landmarks
    rng = np.random.default_rng(0)
    shape = rng.normal(size=(68, 2))
    reference = _normalise_shape(shape)
    angle = 0.4
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = 3.7 * shape @ rot.T + np.array([50.0, -20.0])
    aligned = align_landmarks(moved[None], reference)[0]
    np.testing.assert_allclose(aligned, reference, atol=1e-5)
    with pytest.raises(InputError):
        align_landmarks(np.zeros((1, 68, 2)), reference)


def _layer(steps, name, message="belief"):
    from other_models.ml_zsl import GatedGraphPropagation
    return GatedGraphPropagation(6, 4, 5, 2, steps, message, name=name)


@pytest.mark.parametrize("message", ["belief", "state"])
def test_propagation_shapes_and_message_flow(message):
    import tensorflow as tf
    layer = _layer(2, "t_ggnn_flow_" + message, message)
    rng = np.random.default_rng(1)
    feats = tf.constant(rng.normal(size=(3, 6)), tf.float32)
    sem = rng.normal(size=(4, 4)).astype(np.float32)
    assert layer.forward([feats, tf.constant(sem), tf.zeros([2, 4, 4])]).shape == (3, 4)
    assert layer.forward([feats, tf.constant(sem[:3]), tf.zeros([2, 3, 3])]).shape == (3, 3)   # graph size may change
    sem2 = sem.copy()
    sem2[1] += 1.0                                   # change node 1 only
    no_edges = tf.zeros([2, 4, 4])
    a = layer.forward([feats, tf.constant(sem), no_edges]).numpy()
    b = layer.forward([feats, tf.constant(sem2), no_edges]).numpy()
    np.testing.assert_allclose(a[:, 0], b[:, 0], atol=1e-6)         # without edges node 0 ignores node 1
    edge = np.zeros((2, 4, 4), np.float32)
    edge[0, 0, 1] = 1.0                              # 1 -> 0 under relation 0
    a = layer.forward([feats, tf.constant(sem), tf.constant(edge)]).numpy()
    b = layer.forward([feats, tf.constant(sem2), tf.constant(edge)]).numpy()
    assert np.abs(a[:, 0] - b[:, 0]).max() > 1e-5                    # with the edge it does not
    np.testing.assert_allclose(a[:, 2], b[:, 2], atol=1e-6)


def test_edge_weights_gated_and_degree_normalised():
    import tensorflow as tf
    layer = _layer(1, "t_ggnn_edges")
    layer.gate_p.assign(tf.zeros_like(layer.gate_p))
    layer.gate_q.assign(tf.zeros_like(layer.gate_q))
    layer.gate_c.assign(tf.zeros_like(layer.gate_c))
    adj = np.zeros((2, 4, 4), np.float32)
    adj[0, 0, [1, 2, 3]] = 1.0
    adj[1, 2, 3] = 1.0
    w = layer.edge_weights(tf.ones([4, 4]), tf.constant(adj)).numpy()
    expected = adj * 0.5 / np.maximum(adj.sum(axis=2, keepdims=True), 1.0)     # sigmoid(0) = 0.5
    np.testing.assert_allclose(w, expected, atol=1e-7)


def test_bce_loss_and_f1_against_hand_values():
    import tensorflow as tf
    from other_models.ml_zsl import bce_loss, f1_scores
    y = np.array([[1.0, 0.0]], np.float32)
    logits = np.array([[0.0, 2.0]], np.float32)
    expected = (math.log(2.0) + (2.0 + math.log1p(math.exp(-2.0)))) / 2.0
    assert float(bce_loss(tf.constant(y), tf.constant(logits))) == pytest.approx(expected, rel=1e-6)
    truth = np.array([[1, 0], [1, 1], [0, 0], [1, 0]])
    pred = np.array([[1, 1], [0, 1], [0, 0], [1, 0]])
    # label 0: tp 2, fp 0, fn 1 -> F1 = 4/5; label 1: tp 1, fp 1, fn 0 -> 2/3
    np.testing.assert_allclose(f1_scores(truth, pred), [0.8, 2.0 / 3.0])


def test_model_trains_on_seen_labels_only_and_scores_unseen(tmp_path):
    from other_models.ml_zsl import MLZSLConfig, MLZSLModel
    config = MLZSLConfig(ml_zsl_unseen="AU02,AU26", batch_size=16, ml_zsl_state_dim=8, ml_zsl_feature_dim=16,
                         ml_zsl_node_dropout=0.0)
    model = MLZSLModel(config)
    assert len(model.seen) == 15 and list(model.unseen) == [_i("AU02"), _i("AU26")]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 136)).astype(np.float32)
    y = (rng.random((16, 17)) < 0.3).astype(np.float32)
    y2 = y.copy()
    y2[:, model.unseen] = 1.0 - y2[:, model.unseen]          # unseen labels must not matter
    model.optimizer.learning_rate.assign(0.0)
    l1 = float(model.train_step((x, y), 0)["ml_zsl/bce"])
    l2 = float(model.train_step((x, y2), 1)["ml_zsl/bce"])
    assert l1 == pytest.approx(l2, rel=1e-6)
    probs = model.predict(x)
    assert probs.shape == (16, 17) and np.all((probs >= 0) & (probs <= 1))
    graph_only = model.predict(x, graph_only=list(model.unseen))          # unseen scored without visual evidence
    assert np.abs(graph_only[:, model.unseen] - probs[:, model.unseen]).max() > 1e-6


def test_relation_selection_masks_the_graph():
    from other_models.ml_zsl import MLZSLConfig, MLZSLModel
    config = MLZSLConfig(ml_zsl_relations="cooccurrence", ml_zsl_state_dim=4, ml_zsl_feature_dim=8)
    np.testing.assert_array_equal(config.relation_mask(), [1.0, 0.0, 0.0])
    model = MLZSLModel(config)
    assert model.adjacency[1:].sum() == 0 and model.adjacency[0].sum() > 0
    with pytest.raises(ValueError, match="ml_zsl_relations"):
        MLZSLConfig(ml_zsl_relations="cooccurrence,wordnet")


def test_bad_unseen_au_names_the_flag():
    from other_models.ml_zsl import config_from
    with pytest.raises(InputError, match="--ml_zsl_unseen"):
        config_from(_flags("--ml_zsl_unseen=AU02,AU99"))
    with pytest.raises(InputError, match="ml_zsl_unseen"):
        config_from(_flags("--ml_zsl_unseen=AU02,AU02"))
    with pytest.raises(InputError, match="ml_zsl_node_dropout"):
        config_from(_flags("--ml_zsl_node_dropout=1.5"))


def test_graph_scoring_takes_the_held_out_aus_from_their_neighbours_only():
    from other_models.ml_zsl import MLZSLConfig, MLZSLModel, ZSLData, evaluate, f1_scores
    config = MLZSLConfig(ml_zsl_unseen="AU02,AU26", ml_zsl_state_dim=8, ml_zsl_feature_dim=16,
                         ml_zsl_propagation_steps=1, ml_zsl_relations="cooccurrence",
                         ml_zsl_unseen_scoring="graph")
    model = MLZSLModel(config)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 136)).astype(np.float32)
    y = (rng.random((32, 17)) < 0.4).astype(np.float32)
    graph = model.predict(x, graph_only=list(model.unseen))
    assert np.ptp(graph[:, model.unseen], axis=0).min() > 1e-5       # varies with the face through the messages
    adjacency = model.adjacency
    model.adjacency = np.zeros_like(adjacency)                        # no neighbours: nothing face-specific is left
    isolated = model.predict(x, graph_only=list(model.unseen))
    assert np.ptp(isolated[:, model.unseen], axis=0).max() < 1e-6
    assert np.ptp(model.predict(x)[:, model.unseen], axis=0).min() > 1e-5   # visual scoring keeps the image term
    model.adjacency = adjacency
    data = ZSLData(x_train=x, y_train=y, x_test=x, y_test=y, aus_test=y, features=model.landmark_features())
    result = evaluate(model, data)
    assert result["scoring"] == "graph"
    expected = f1_scores(y, graph >= 0.5)[model.unseen].mean()
    assert result["unseen_mean_f1"] == pytest.approx(expected)
    assert evaluate(model, data, scoring="visual")["unseen_mean_f1"] == pytest.approx(
        f1_scores(y, model.predict(x) >= 0.5)[model.unseen].mean())


def test_bad_unseen_scoring_names_the_flag():
    from other_models.ml_zsl import config_from
    with pytest.raises(InputError, match="ml_zsl_unseen_scoring"):
        config_from(_flags("--ml_zsl_unseen_scoring=image"))
    with pytest.raises(InputError, match="ml_zsl_unseen_scoring=graph.*propagation_steps"):
        config_from(_flags("--ml_zsl_unseen_scoring=graph", "--ml_zsl_propagation_steps=0"))
