"""Evaluate C2AE on the multi-label MNIST composites against binary relevance and the prior baseline.

Usage::

    python bench/eval_c2ae.py [--flagfile_model=configs/c2ae_debug.cfg] [--workdir=runs/eval_c2ae]
        [--max_minutes=15] [--out=docs/results/c2ae.json]

Trains C2AE through the library (``registry.get('c2ae').train``, the code path of
``python train.py --model=c2ae --flagfile=configs/c2ae_debug.cfg``) in ``--workdir`` (resuming if a
checkpoint is there; ``--max_minutes`` caps this call's training time), restores the final weights and
scores the test composites (MNIST test digits). Checks (issue + spec section 6(f)):

1. micro-F1 >= binary relevance (scikit-learn one-vs-rest logistic regression on the same standardised
   pixel features) - 0.02;
2. micro-F1 >= the best constant ("prior") predictor + 0.05 ("clearly above");
3. the latent embedding loss Phi on a fixed test batch falls by more than 50% from initialisation.

Prints each check with PASS/FAIL and writes the JSON atomically.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_string("flagfile_model", "configs/c2ae_debug.cfg", "Model flagfile.")
flags.DEFINE_string("eval_workdir", "runs/eval_c2ae", "Training workdir.")
flags.DEFINE_float("train_minutes", 15.0, "Training time budget of this call (minutes).")
flags.DEFINE_string("out", "docs/results/c2ae.json", "Result JSON.")
FLAGS = flags.FLAGS


def main(argv):
    from ganimation_tl.multilabel import binary_relevance_baseline, macro_f1, micro_f1, prior_baseline
    from ganimation_tl.trainer import write_json_atomic
    import other_models.c2ae as c2ae

    fv = flags.FlagValues()
    c2ae.define_flags(fv)
    fv(["eval", "--flagfile=" + FLAGS.flagfile_model, "--workdir=" + FLAGS.eval_workdir,
        "--max_minutes=%g" % FLAGS.train_minutes])
    config, model, train_set, test_set = c2ae.build_from_flags(fv)
    test_x = model.features(test_set.images)
    probe = slice(0, config.batch_size)
    phi_init = model.phi_on(test_x[probe], test_set.labels[probe])

    start = time.time()
    c2ae.train(fv)
    train_seconds = time.time() - start
    c2ae.restore(FLAGS.eval_workdir, model)
    predicted = model.predict(test_x)
    phi_final = model.phi_on(test_x[probe], test_set.labels[probe])
    result = {"micro_f1": micro_f1(test_set.labels, predicted), "macro_f1": macro_f1(test_set.labels, predicted)}

    start = time.time()
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    br = binary_relevance_baseline(flat(train_set.images), train_set.labels, flat(test_set.images),
                                   test_set.labels, max_iter=100, seed=config.seed)
    br_seconds = time.time() - start
    prior = prior_baseline(train_set.labels, test_set.labels)
    checks = [
        ("micro-F1 >= binary relevance - 0.02", result["micro_f1"], br["micro_f1"] - 0.02,
         result["micro_f1"] >= br["micro_f1"] - 0.02),
        ("micro-F1 >= prior + 0.05", result["micro_f1"], prior["micro_f1"] + 0.05,
         result["micro_f1"] >= prior["micro_f1"] + 0.05),
        ("Phi falls > 50% from init", phi_final, 0.5 * phi_init, phi_final < 0.5 * phi_init),
    ]
    print("C2AE on %d test composites (%d training), %s" % (len(test_set.labels), len(train_set.labels),
                                                             FLAGS.flagfile_model))
    print("  C2AE            micro-F1 %.4f  macro-F1 %.4f" % (result["micro_f1"], result["macro_f1"]))
    print("  binary relevance micro-F1 %.4f  macro-F1 %.4f" % (br["micro_f1"], br["macro_f1"]))
    print("  prior (constant) micro-F1 %.4f  macro-F1 %.4f" % (prior["micro_f1"], prior["macro_f1"]))
    print("  Phi on a test batch: init %.4f -> trained %.4f" % (phi_init, phi_final))
    for name, value, threshold, ok in checks:
        print("  %-40s %.4f vs %.4f  %s" % (name, value, threshold, "PASS" if ok else "FAIL"))
    os.makedirs(os.path.dirname(FLAGS.out) or ".", exist_ok=True)
    write_json_atomic(FLAGS.out, {
        "model": "c2ae", "config_file": FLAGS.flagfile_model, "train_images": len(train_set.labels),
        "test_images": len(test_set.labels), "c2ae": result, "binary_relevance": br, "prior": prior,
        "phi_init": phi_init, "phi_final": phi_final, "train_seconds": train_seconds,
        "binary_relevance_seconds": br_seconds,
        "checks": [{"check": n, "value": v, "threshold": t, "pass": bool(ok)} for n, v, t, ok in checks]})
    print("wrote %s" % FLAGS.out)


if __name__ == "__main__":
    app.run(main)
