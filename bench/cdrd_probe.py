"""CDRD training curves: train ``--model=cdrd`` and measure diagnostics every ``--probe_every`` iterations.

    python bench/cdrd_probe.py --flagfile=configs/cdrd_debug.cfg [--cdrd_tied_init] \
        [--probe_every=250] [--probe_output=/tmp/cdrd_probe.jsonl]

Diagnosis tool behind ``docs/results/cdrd.md`` (not an evaluation: ``bench/eval_cdrd.py`` gives the
verdicts). It trains the CDRD model of the flags with its own ``train_step`` (no checkpoints) and, at
step 0 and every ``--probe_every`` iterations, prints and appends to ``--probe_output`` (JSON lines):

* ``valid_target_acc``: argmax D_l(x_T) through the target branch on the *unlabelled target training*
  images (MNIST ``valid`` split, or the scikit-learn target's training images; their labels are read here for
  diagnosis only, never by training);
* ``valid_source_branch_acc``: the same images through the source branch;
* ``branch_agreement``: how often the two branches agree on those images (needs no target label);
* ``source_acc``: D_l on the held-out source images;
* ``gt_by_oracle`` / ``gt_by_source_lenet`` / ``gt_by_source_branch``: fraction of G_T(z, l) (50 fixed z x
  l = 0..9) labelled l by a target oracle LeNet (``eval_cdrd.oracle_training_set``: MNIST ``train``,
  preprocessed like the target, or the labelled scikit-learn target images; judge only), by the source-only LeNet,
  and by D_l's *source* branch (the last two need no target label);
* ``gs_by_source_lenet``: G_S(z, l) labelled l by the source-only LeNet;
* ``criterion``: the label-free selection criterion of ``other_models.cdrd.selection_criterion``.

With ``--cdrd_ema_decay`` > 0 every measure is taken twice at each probe: on the trained weights (the names
above) and with the averaged networks (the same names prefixed ``ema_``; the target-accuracy measures change
only with ``--cdrd_ema_discriminator``). Training is the same either way, so
one run compares the two paired. ``--probe_extra_ema_decays=0.9995,0.9999`` adds more averages, kept by the
probe itself (updated after every iteration) over the same networks (the generator; with
``--cdrd_ema_discriminator`` the discriminator too), measured under the prefixes ``ema<decay>_``.

It also prints, per label l, the digit the target oracle most often sees in G_T(z, l), and writes the
model's sample grid (rows G_S(z, 0..9), G_T(z, 0..9) for two z) to ``<probe_output>.step<N>.png``.

The target test images (MNIST ``test``, or the held-out scikit-learn digits) are never touched.
"""
from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import eval_cdrd  # noqa: E402  (defines the CDRD flags and the LeNet helpers)

FLAGS = flags.FLAGS
flags.DEFINE_integer("probe_every", 250, "Iterations between diagnostics.")
flags.DEFINE_string("probe_output", "/tmp/cdrd_probe.jsonl", "JSON-lines file the diagnostics are appended to.")
flags.DEFINE_list("probe_extra_ema_decays", [], "Further weight-average decays in (0, 1) to measure alongside.")


def main(argv):
    del argv
    import cv2
    import numpy as np
    import other_models.cdrd as cdrd

    config, data, model = cdrd.build(FLAGS)
    source_only = eval_cdrd.train_lenet("probe_source_only", data.source_train, data.source_train_labels,
                                        FLAGS.reference_steps, config.seed)
    oracle_x, oracle_y = eval_cdrd.oracle_training_set(config, data, FLAGS.mnist_path)
    oracle = eval_cdrd.train_lenet("probe_oracle", oracle_x, oracle_y, FLAGS.reference_steps, config.seed)
    x_v, y_v = data.target_train, data.target_train_labels
    print("source-only LeNet on the target valid images: %.4f"
          % np.mean(eval_cdrd.predict(source_only, x_v) == y_v))
    from ganimation_tl.averaging import WeightAverage
    from ganimation_tl.errors import InputError
    try:
        averaged = model.g_vars + (model.d_vars if config.cdrd_ema_discriminator else [])
        extra = {d: WeightAverage(averaged, float(d), name="probe_ema") for d in FLAGS.probe_extra_ema_decays}
    except ValueError as e:
        raise InputError("--probe_extra_ema_decays: %s" % e) from None
    batches = model.make_dataset_fn(data)(0, 0)
    start = time.time()

    def measures(prefix=""):
        fake_s, fake_t, labels = cdrd.generate(model)
        p_t, p_s = model.classify(x_v, "target"), model.classify(x_v, "source")
        row = {"valid_target_acc": float(np.mean(p_t == y_v)),
               "valid_source_branch_acc": float(np.mean(p_s == y_v)),
               "branch_agreement": float(np.mean(p_t == p_s)),
               "source_acc": float(np.mean(model.classify(data.source_test, "source") == data.source_test_labels)),
               "gt_by_oracle": float(np.mean(eval_cdrd.predict(oracle, fake_t) == labels)),
               "gt_by_source_lenet": float(np.mean(eval_cdrd.predict(source_only, fake_t) == labels)),
               "gt_by_source_branch": float(np.mean(model.classify(fake_t, "source") == labels)),
               "gs_by_source_lenet": float(np.mean(eval_cdrd.predict(source_only, fake_s) == labels)),
               "criterion": float(cdrd.selection_criterion(model, data))}
        return {prefix + k: v for k, v in row.items()}, fake_t, labels

    def probe(step):
        row = {"step": step, "minutes": (time.time() - start) / 60.0}
        if model.weight_average is not None:
            with model.evaluation_weights():
                row.update(measures("ema_")[0])
        for decay, average in extra.items():
            with average.swapped():
                row.update(measures("ema%s_" % decay)[0])
        raw, fake_t, labels = measures()
        row.update(raw)
        print(" ".join("%s=%.4g" % kv if isinstance(kv[1], float) else "%s=%s" % kv for kv in row.items()), flush=True)
        with open(FLAGS.probe_output, "a") as f:
            f.write(json.dumps(row) + "\n")
        # Which digit the target oracle sees in G_T(z, l), per l (the most frequent one and its share).
        oracle_t = eval_cdrd.predict(oracle, fake_t)
        print("  G_T(z, l) -> oracle: " + " ".join(
            "%d:%d(%.0f%%)" % (k, np.bincount(oracle_t[labels == k], minlength=10).argmax(),
                               100.0 * np.bincount(oracle_t[labels == k], minlength=10).max() / np.sum(labels == k))
            for k in range(cdrd.NUM_CLASSES)), flush=True)
        grid = model.sample_grid(None)
        cv2.imwrite("%s.step%d.png" % (FLAGS.probe_output, step), grid[..., ::-1])

    probe(0)
    for step, batch in enumerate(batches, start=1):
        model.set_learning_rate_epoch((step - 1) / float(config.cdrd_steps))
        model.train_step(batch, step - 1)
        for average in extra.values():
            average.update()
        if step % FLAGS.probe_every == 0 or step == config.cdrd_steps:
            probe(step)


if __name__ == "__main__":
    app.run(main)
