"""How far can a refiner that only retouches (no training, no geometry) move DA-GAN's two checks?

    python bench/dagan_photometric_ceiling.py [--flagfile_path=configs/dagan_debug_val.cfg]
        [--output=docs/results/dagan_photometric_ceiling_val.json] [--model_flag=--dagan_num_identities=10 ...]

Applies fixed image transforms to the simulated profiles of a DA-GAN configuration and scores each with
``bench/eval_dagan.py``'s own measures: the identity accuracy of C_ref (HOG + logistic regression trained on real
photos only) on the simulated profiles of the held-out frontal photos, and the 5-fold cross-validated AUC of a
real-vs-X HOG classifier over all simulated faces against the real profiles. The transforms:

* ``simulated``: the simulator's output as the GAN sees it (the baseline of both checks);
* ``contrast_restored``: contrast x 1/``SIM_CONTRAST`` (1/0.85) about each image's mean (undoes the simulator's
  contrast step);
* ``unsharp_s1_a1`` / ``unsharp_s0.7_a2`` / ``unsharp_s1_a2``: unsharp masks ``x + a (x - g_s * x)`` (a
  fixed "sharpening refiner");
* ``contrast_restored_unsharp_s1_a1``: both;
* ``simulator_without_blur``: the simulator re-run with ``--dagan_sim_blur=0``, contrast restored (an upper
  bound for a refiner that exactly inverts the simulator's photometric degradation);
* ``noise_0.05``: Gaussian noise of sigma 0.05 (a control that should make both checks worse);
* ``support_fill_blur_s3`` / ``support_fill_mean_real``: only the pixels the simulator invented (texture
  support < 1, ``simulate_profile``) change, towards a Gaussian blur of sigma 3 (smooths the streaks away) or
  towards the mean real profile (what a refiner could paint there knowing only the real distribution).

Every result is clipped to [-1, 1]. The mean |T(x) - x| of each transform is reported, as for the closeness
check (<= 0.15). The output is written atomically. No GAN is trained; runs in about a minute.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import flags

from bench._common import model_flags, parse_eval_flags, write_json_atomic  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("flagfile_path", "configs/dagan_debug_val.cfg", "DA-GAN flagfile (people, simulator settings).",
                    flag_values=FLAGS)
flags.DEFINE_string("output", "docs/results/dagan_photometric_ceiling_val.json", "Where to write the JSON.",
                    flag_values=FLAGS)
flags.DEFINE_multi_string("model_flag", [], "A model flag that overrides the flagfile (repeatable).",
                          flag_values=FLAGS)
flags.DEFINE_integer("photos_per_identity", None, "Load at most this many photos per identity and view (tests).",
                     flag_values=FLAGS)

def gaussian(images: np.ndarray, sigma: float) -> np.ndarray:
    """OpenCV Gaussian blur (sigma in pixels) of each ``[N, S, S, 3]`` image; float32, same shape."""
    import cv2
    return np.stack([cv2.GaussianBlur(im, (0, 0), sigma) for im in images.astype(np.float32)])


def unsharp(images: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp mask ``clip(x + amount (x - g_sigma * x), -1, 1)`` of each image (OpenCV Gaussian, sigma in
    pixels, amount >= 0). ``images``: float ``[N, S, S, 3]`` in [-1, 1]; returns float32, same shape and range."""
    images = images.astype(np.float32)
    return np.clip(images + amount * (images - gaussian(images, sigma)), -1.0, 1.0)


def support_fill(images: np.ndarray, support: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``s x + (1 - s) f``: keep each pixel by its texture support ``s`` (``[N, S, S, 1]`` in [0, 1], from
    ``simulate_profile``) and fill the rest from ``fill`` (broadcast to ``images``); clipped to [-1, 1]."""
    out = support * images + (1.0 - support) * np.broadcast_to(fill, images.shape)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def restore_contrast(images: np.ndarray, factor: Optional[float] = None) -> np.ndarray:
    """Scale each image's deviations from its mean colour by ``factor`` (default ``1 / SIM_CONTRAST``, which
    undoes the simulator's contrast step of ``other_models.dagan.simulate_profile``) and clip to [-1, 1].
    ``images``: float ``[N, S, S, 3]`` in [-1, 1]; returns float32, same shape."""
    if factor is None:
        from other_models.dagan import SIM_CONTRAST
        factor = 1.0 / SIM_CONTRAST
    mean = images.mean(axis=(1, 2), keepdims=True)
    return np.clip(mean + factor * (images - mean), -1.0, 1.0).astype(np.float32)


def main(argv):
    FLAGS.unparse_flags()
    parse_eval_flags(FLAGS, argv, __doc__)
    from bench.eval_dagan import identity_accuracy, real_vs_fake_auc, reference_identity_classifier
    from ganimation_tl.errors import InputError
    from other_models import dagan

    start = time.time()
    try:
        fv = model_flags(dagan.define_flags, FLAGS.flagfile_path, *FLAGS.model_flag, model="dagan")
        config = dagan.config_or_input_error(dagan.DAGANConfig, fv)
        data = dagan.load_data(fv.cfp_dir, config, limit_per_identity=FLAGS.photos_per_identity)
        unblurred = dagan.load_data(fv.cfp_dir, dataclasses.replace(config, dagan_sim_blur=0.0),
                                    limit_per_identity=FLAGS.photos_per_identity)
    except (flags.Error, InputError) as error:
        print("error: %s" % error, file=sys.stderr)
        raise SystemExit(2)
    c_ref = reference_identity_classifier(data)
    rng = np.random.default_rng(config.seed)
    transforms = {
        "simulated": lambda x: x,
        "contrast_restored": restore_contrast,
        "unsharp_s1_a1": lambda x: unsharp(x, 1.0, 1.0),
        "unsharp_s0.7_a2": lambda x: unsharp(x, 0.7, 2.0),
        "unsharp_s1_a2": lambda x: unsharp(x, 1.0, 2.0),
        "contrast_restored_unsharp_s1_a1": lambda x: unsharp(restore_contrast(x), 1.0, 1.0),
        "noise_0.05": lambda x: np.clip(x + rng.normal(0, 0.05, x.shape), -1, 1).astype(np.float32),
    }
    rows = []

    def score(name, test, train, inputs_test):
        acc = identity_accuracy(c_ref, test, data.sim_test_labels)
        auc = real_vs_fake_auc(data.real_profiles, np.concatenate([train, test]))
        rows.append({"transform": name, "identity_accuracy": acc, "real_vs_x_auc": auc,
                     "mean_abs_change": float(np.mean(np.abs(test - inputs_test)))})
        print("%-34s identity accuracy %.3f   real-vs-X AUC %.4f   mean |T(x) - x| %.3f"
              % (name, acc, auc, rows[-1]["mean_abs_change"]), flush=True)

    for name, transform in transforms.items():
        score(name, transform(data.sim_test), transform(data.sim_train), data.sim_test)
    # Repaint only what the simulator invented (texture support < 1): a smooth fill, and the mean real profile.
    mean_real = data.real_profiles.mean(axis=0, keepdims=True)
    fills = {"support_fill_blur_s3": lambda x: gaussian(x, 3.0), "support_fill_mean_real": lambda x: mean_real}
    for name, fill in fills.items():
        test, train = (support_fill(x, s, fill(x)) for x, s in ((data.sim_test, data.sim_test_support),
                                                                (data.sim_train, data.sim_train_support)))
        score(name, test, train, data.sim_test)
    score("simulator_without_blur", restore_contrast(unblurred.sim_test), restore_contrast(unblurred.sim_train),
          data.sim_test)
    base = rows[0]
    for row in rows:
        row["identity_check_pass"] = row["identity_accuracy"] > base["identity_accuracy"]
        row["realism_check_pass"] = row["real_vs_x_auc"] < base["real_vs_x_auc"]
    results = {"what": "fixed transforms of the simulated profiles scored by bench/eval_dagan.py's checks (no GAN)",
               "flagfile": FLAGS.flagfile_path, "model_flag_overrides": list(FLAGS.model_flag),
               "identities": [config.dagan_first_identity, config.dagan_first_identity + config.dagan_num_identities - 1],
               "held_out_faces": int(len(data.sim_test)), "simulated_faces": int(len(data.sim_train) + len(data.sim_test)),
               "real_profiles": int(len(data.real_profiles)),
               "c_ref_accuracy_real_heldout_frontal": identity_accuracy(c_ref, data.real_frontal_test,
                                                                        data.real_frontal_test_labels),
               "rows": rows, "seconds": time.time() - start}
    write_json_atomic(FLAGS.output, results)
    print("wrote", FLAGS.output)
    return results


if __name__ == "__main__":
    main(sys.argv)
