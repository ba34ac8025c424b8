"""Evaluate the order-free RNN on the multi-label MNIST composites against binary relevance.

Usage::

    python bench/eval_orderfree_rnn.py [--flagfile_model=configs/orderfree_rnn_debug.cfg]
        [--eval_workdir=runs/eval_orderfree_rnn] [--train_minutes=20] [--out=docs/results/orderfree_rnn.json]

Trains through the library (``registry.get('orderfree_rnn').train``, the code path of ``python train.py
--model=orderfree_rnn --flagfile=configs/orderfree_rnn_debug.cfg``) in the workdir (resuming if a
checkpoint is there; ``--train_minutes`` caps this call), restores the final weights and decodes the
test composites (MNIST test digits). Check (issue): RNN micro-F1 > binary relevance (scikit-learn
one-vs-rest logistic regression on the composites' standardised pixels). Also reported: macro-F1,
the CNN head alone (thresholded at 0.5), and the prior (best constant) predictor.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from bench._common import model_flags  # noqa: E402

flags.DEFINE_string("flagfile_model", "configs/orderfree_rnn_debug.cfg", "Model flagfile.")
flags.DEFINE_string("eval_workdir", "runs/eval_orderfree_rnn", "Training workdir.")
flags.DEFINE_float("train_minutes", 20.0, "Training time budget of this call (minutes).")
flags.DEFINE_string("out", "docs/results/orderfree_rnn.json", "Result JSON.")
FLAGS = flags.FLAGS


def main(argv):
    from ganimation_tl import sibling
    from ganimation_tl.multilabel import binary_relevance_baseline, macro_f1, micro_f1, prior_baseline
    from ganimation_tl.trainer import write_json_atomic
    import other_models.orderfree_rnn as ofr

    fv = model_flags(ofr.define_flags, FLAGS.flagfile_model, "--workdir=" + FLAGS.eval_workdir,
                     "--max_minutes=%g" % FLAGS.train_minutes)
    start = time.time()
    ofr.train(fv)
    train_seconds = time.time() - start
    config = sibling.config_or_input_error(ofr.OrderFreeRNNConfig, fv)
    train_set, test_set = ofr.load_data(config, fv.mnist_path)
    model = ofr.OrderFreeRNN(config, num_labels=train_set.labels.shape[1])
    ofr.restore(FLAGS.eval_workdir, model)
    rnn, cnn_scores = model.predict(test_set.images)
    cnn = (cnn_scores > 0.5).astype("float32")
    result = {"micro_f1": micro_f1(test_set.labels, rnn), "macro_f1": macro_f1(test_set.labels, rnn)}
    cnn_result = {"micro_f1": micro_f1(test_set.labels, cnn), "macro_f1": macro_f1(test_set.labels, cnn)}
    start = time.time()
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    br = binary_relevance_baseline(flat(train_set.images), train_set.labels, flat(test_set.images),
                                   test_set.labels, max_iter=100, seed=config.seed)
    br_seconds = time.time() - start
    prior = prior_baseline(train_set.labels, test_set.labels)
    checks = [("RNN micro-F1 > binary relevance", result["micro_f1"], br["micro_f1"],
               result["micro_f1"] > br["micro_f1"])]
    print("Order-free RNN on %d test composites (%d training), %s" % (len(test_set.labels), len(train_set.labels),
                                                                       FLAGS.flagfile_model))
    for name, r in (("order-free RNN", result), ("CNN head alone", cnn_result), ("binary relevance", br),
                    ("prior (constant)", prior)):
        print("  %-18s micro-F1 %.4f  macro-F1 %.4f" % (name, r["micro_f1"], r["macro_f1"]))
    for name, value, threshold, ok in checks:
        print("  %-40s %.4f vs %.4f  %s" % (name, value, threshold, "PASS" if ok else "FAIL"))
    os.makedirs(os.path.dirname(FLAGS.out) or ".", exist_ok=True)
    write_json_atomic(FLAGS.out, {
        "model": "orderfree_rnn", "config_file": FLAGS.flagfile_model, "train_images": len(train_set.labels),
        "test_images": len(test_set.labels), "orderfree_rnn": result, "cnn_head": cnn_result,
        "binary_relevance": br, "prior": prior, "train_seconds": train_seconds, "binary_relevance_seconds": br_seconds,
        "checks": [{"check": n, "value": v, "threshold": t, "pass": bool(ok)} for n, v, t, ok in checks]})
    print("wrote %s" % FLAGS.out)


if __name__ == "__main__":
    app.run(main)
