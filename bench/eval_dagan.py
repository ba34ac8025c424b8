"""Evaluate DA-GAN (``--model=dagan``) on CFP: train with the debug config, then the issue's checks.

    python bench/eval_dagan.py --max_minutes=15 [--workdir=runs/dagan_eval] [--flagfile_path=configs/dagan_debug.cfg]
        [--model_flag=--dagan_lambda_local=1.0 ...]

Settings are chosen on the validation people (``--flagfile_path=configs/dagan_debug_val.cfg``: CFP
identities 51-100, disjoint from the evaluation's 1-50) and only then measured on identities 1-50.
``--model_flag`` overrides one model flag of the flagfile (repeatable; recorded in the JSON with the
resolved model config and the planned and reached iteration counts).

Training runs through the library (``other_models.dagan.train``) with a wall-clock budget (resuming
if the workdir has a checkpoint); the in-memory refiner is then evaluated on the simulated profiles
of the held-out frontal photos (9-10 of every identity), which neither GAN nor reference classifier saw
(with ``--dagan_ema_decay`` the refiner's moving average refines; the JSON's ``trained_weights`` has checks 1-3
for the trained weights as well):

1. Identity: a reference face-identity classifier C_ref (HOG + logistic regression; scikit-image,
   scikit-learn) trained on REAL photos only (frontal 1-8 and profiles 1-4 of every identity, plus
   their mirror images) must recognise refined profiles better than simulated ones. PASS if
   acc(refined) > acc(simulated) (issue); the spec's +5 points margin is reported too.
2. Realism: a real-vs-X classifier (HOG + logistic regression, 5-fold cross-validated ROC AUC)
   trained afterwards separates refined from real profiles less well than simulated from real.
   PASS if AUC_refined < AUC_simulated (issue); the spec's -0.05 margin is reported too.
3. Refined stays close to its input: mean |G(x) - x| (images in [-1, 1]) <= 0.15 (spec).
4. BEGAN convergence measure M (EMA) at the end below its value at iteration 100 (spec).

Prints a table and writes ``docs/results/dagan.json`` atomically.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import flags, logging

from bench._common import define_eval_flags, hog_features, model_flags, parse_eval_flags  # noqa: E402

EVAL = flags.FlagValues()
define_eval_flags(EVAL, "dagan", 15.0)
flags.DEFINE_multi_string("model_flag", [], "A model flag that overrides the flagfile, e.g. "
                          "--model_flag=--dagan_gamma=1.0 (repeatable; recorded in the JSON).", flag_values=EVAL)


def real_vs_fake_auc(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> float:
    """5-fold cross-validated ROC AUC of HOG + logistic regression separating ``real`` from ``fake``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x = np.concatenate([hog_features(real), hog_features(fake)])
    y = np.array([1] * len(real) + [0] * len(fake))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1, class_weight="balanced"))
    scores = cross_val_predict(clf, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                               method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def reference_identity_classifier(data):
    """C_ref: HOG + logistic regression fitted on REAL photos only (frontal 1-8 and every profile of each identity,
    plus their mirror images) of a :class:`other_models.dagan.DAGANData`. Returns the fitted sklearn pipeline."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    real_x = np.concatenate([data.real_frontal_train, data.real_profiles])
    real_y = np.concatenate([data.real_frontal_train_labels, data.real_labels])
    real_x, real_y = np.concatenate([real_x, real_x[:, :, ::-1]]), np.concatenate([real_y, real_y])
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.05)).fit(hog_features(real_x), real_y)


def identity_accuracy(c_ref, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``images`` (``[N, S, S, 3]`` in [-1, 1]) that ``c_ref`` labels with their identity ``labels``."""
    return float(np.mean(c_ref.predict(hog_features(images)) == labels))


def main(argv):
    EVAL.unparse_flags()          # a fresh parse (main may be called more than once in one process)
    parse_eval_flags(EVAL, argv, __doc__)
    logging.set_verbosity(logging.INFO)
    from ganimation_tl.trainer import write_json_atomic
    from other_models import dagan

    steps_cap = ["--max_steps=%d" % EVAL.max_steps] if EVAL.max_steps else []
    for extra in EVAL.model_flag:
        if not extra.startswith("--") or extra.split("=")[0] in ("--workdir", "--max_minutes", "--max_steps"):
            print("error: --model_flag=%s must be a model flag like --dagan_gamma=1.0 (not --workdir, "
                  "--max_minutes or --max_steps, which are eval flags)" % extra, file=sys.stderr)
            raise SystemExit(2)
    try:
        fv = model_flags(dagan.define_flags, EVAL.flagfile_path, *EVAL.model_flag, "--workdir=" + EVAL.workdir,
                         "--max_minutes=%g" % EVAL.max_minutes, *steps_cap, model="dagan")
    except flags.Error as error:
        print("error: bad --model_flag or --flagfile_path: %s" % error, file=sys.stderr)
        raise SystemExit(2)
    start = time.time()
    config, data, model = dagan.prepare(fv)
    last = dagan.train(fv, prepared=(config, data, model))
    train_minutes = (time.time() - start) / 60.0
    steps = int(model.g_optimizer.iterations.numpy())

    refined_test = model.refine(data.sim_test)
    refined_train = model.refine(data.sim_train)

    # 1. Reference identity classifier trained on real photos only.
    c_ref = reference_identity_classifier(data)
    acc_real_frontal_test = identity_accuracy(c_ref, data.real_frontal_test, data.real_frontal_test_labels)
    acc_sim = identity_accuracy(c_ref, data.sim_test, data.sim_test_labels)
    acc_ref = identity_accuracy(c_ref, refined_test, data.sim_test_labels)

    # 2. Real-vs-X separability (all simulated faces, train and held-out photos).
    sims = np.concatenate([data.sim_train, data.sim_test])
    refs = np.concatenate([refined_train, refined_test])
    auc_sim = real_vs_fake_auc(data.real_profiles, sims)
    auc_ref = real_vs_fake_auc(data.real_profiles, refs)

    # 3. Closeness.
    l1 = float(np.mean(np.abs(refined_test - data.sim_test)))
    # 4. BEGAN M.
    m_end, m_100 = float(model.m_ema.numpy()), float(model.m_at_100.numpy())
    # With --dagan_ema_decay the checks above read the refiner's moving average; the trained weights too.
    trained_weights = None
    if model.refiner_average is not None:
        trained_test = model.refine(data.sim_test, averaged=False)
        trained_train = model.refine(data.sim_train, averaged=False)
        trained_weights = {
            "identity_accuracy_refined": identity_accuracy(c_ref, trained_test, data.sim_test_labels),
            "auc_real_vs_refined": real_vs_fake_auc(data.real_profiles, np.concatenate([trained_train, trained_test])),
            "mean_abs_change": float(np.mean(np.abs(trained_test - data.sim_test)))}

    chance = 1.0 / data.num_identities
    checks = [
        {"check": "C_ref (real photos only) identity accuracy on refined vs simulated held-out profiles",
         "value": acc_ref, "baseline": acc_sim, "baseline_name": "same classifier on simulated profiles",
         "criterion": "> baseline (issue); spec margin +0.05", "pass": acc_ref > acc_sim,
         "pass_spec_margin": acc_ref >= acc_sim + 0.05, "chance": chance,
         "c_ref_accuracy_real_heldout_frontal": acc_real_frontal_test},
        {"check": "real-vs-X classifier AUC (5-fold CV): real vs refined, baseline real vs simulated",
         "value": auc_ref, "baseline": auc_sim, "baseline_name": "AUC real vs simulated",
         "criterion": "< baseline (issue); spec margin -0.05", "pass": auc_ref < auc_sim,
         "pass_spec_margin": auc_ref <= auc_sim - 0.05},
        {"check": "mean |G(x) - x| on held-out simulated profiles (images in [-1, 1])", "value": l1,
         "baseline": 0.15, "baseline_name": "spec bound", "criterion": "<= 0.15", "pass": l1 <= 0.15},
        {"check": "BEGAN convergence measure M (EMA) at the end vs at iteration 100", "value": m_end,
         "baseline": m_100, "baseline_name": "M at iteration 100", "criterion": "< baseline",
         "pass": bool(m_100 > 0 and m_end < m_100)},
    ]
    results = {"model": "dagan", "config": EVAL.flagfile_path, "model_flag_overrides": list(EVAL.model_flag),
               "model_config": dataclasses.asdict(config),
               "planned_steps": (len(data.sim_train) // config.batch_size) * config.epochs,
               "identities": [config.dagan_first_identity, config.dagan_first_identity + config.dagan_num_identities - 1],
               "workdir": EVAL.workdir, "steps": steps,
               "train_minutes_this_process": train_minutes, "last_train_metrics": last, "checks": checks,
               "refiner_weights": "moving average, decay %g" % config.dagan_ema_decay if trained_weights else "trained",
               "trained_weights": trained_weights,
               "eval_minutes_total": (time.time() - start) / 60.0}
    print("\nDA-GAN evaluation after %d steps (%.1f min training in this process)" % (steps, train_minutes))
    print("%-90s %8s %9s  %s" % ("check", "value", "baseline", "result"))
    for c in checks:
        print("%-90s %8.4f %9.4f  %s (%s)" % (c["check"][:90], c["value"], c["baseline"],
                                              "PASS" if c["pass"] else "FAIL", c["criterion"]))
    print("C_ref accuracy on real held-out frontal photos: %.4f (chance %.4f)" % (acc_real_frontal_test, chance))
    if trained_weights:
        print("checks on the refiner's moving average (decay %g); the trained weights: identity %.4f, AUC %.4f, "
              "|G(x) - x| %.4f" % (config.dagan_ema_decay, trained_weights["identity_accuracy_refined"],
                                   trained_weights["auc_real_vs_refined"], trained_weights["mean_abs_change"]))
    write_json_atomic(EVAL.output, json.loads(json.dumps(results, default=float)))
    print("wrote", EVAL.output)


if __name__ == "__main__":
    main(sys.argv)
