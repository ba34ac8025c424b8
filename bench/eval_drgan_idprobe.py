"""DR-GAN identity probe: D's identity accuracy on a validation profile photo during training (no test photo).

    python bench/eval_drgan_idprobe.py --steps=3000 --every=250 [--flagfile_path=configs/drgan_debug.cfg] \
        [--set=--drgan_random_crop=2 --set=--seed=1] --output=docs/results/drgan_idprobe_NAME.json

Profile photo 3 of every training identity (and its flip) is taken out of the training pool
(``drgan.load_data(..., validation_profile=3)``); photo 4, the eval's check (i) photo, is neither trained on nor
read. The model trains in this process (no checkpoints) for ``--steps`` steps over ``make_batches`` epochs, and
every ``--every`` steps D (eval mode, its N_d real-identity logits, as in ``bench/eval_drgan.py``) is scored on:
the training frontals, the training profiles (photos 1-2 as they are and flipped), and the validation profile
photo 3 as it is and mirrored. Used to choose settings for the identity check without reading photo 4; the JSON
holds every curve.
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import flags

from bench._common import model_flags, parse_eval_flags  # noqa: E402
from bench.eval_drgan import identity_accuracy  # noqa: E402

EVAL = flags.FlagValues()
flags.DEFINE_string("flagfile_path", "configs/drgan_debug.cfg", "Model flagfile.", flag_values=EVAL)
flags.DEFINE_multi_string("set", [], "Model flag override, e.g. --set=--drgan_random_crop=2 (repeatable).",
                          flag_values=EVAL)
flags.DEFINE_integer("steps", 3000, "Training steps.", flag_values=EVAL)
flags.DEFINE_integer("every", 250, "Score D every this many steps.", flag_values=EVAL)
flags.DEFINE_integer("validation_profile", 3, "Profile photo (1-3) of training identities held out for validation.",
                     flag_values=EVAL)
flags.DEFINE_string("output", "docs/results/drgan_idprobe.json", "Where to write the JSON curves.", flag_values=EVAL)


def main(argv):
    parse_eval_flags(EVAL, argv, __doc__)
    if EVAL.steps < 1 or EVAL.every < 1:
        print("error: --steps and --every must be positive", file=sys.stderr)
        raise SystemExit(2)
    if EVAL.validation_profile not in (1, 2, 3):
        print("error: --validation_profile must be 1, 2 or 3 (photo 4 is the test photo), got %d"
              % EVAL.validation_profile, file=sys.stderr)
        raise SystemExit(2)
    from ganimation_tl.errors import InputError
    from ganimation_tl.trainer import write_json_atomic
    from other_models import drgan

    fv = model_flags(drgan.define_flags, EVAL.flagfile_path, *EVAL.set, model="drgan")
    try:
        config = drgan.config_or_input_error(drgan.DRGANConfig, fv)
        data = drgan.load_data(fv.cfp_dir, config, validation_profile=EVAL.validation_profile)
    except InputError as error:
        print("error: %s" % error, file=sys.stderr)
        raise SystemExit(2)
    nd = len(data.train_identity_numbers)
    model = drgan.DRGAN(config, nd)
    frontal = data.train_poses == 0
    val_x = np.concatenate([data.validation_profile_images, data.validation_profile_images[:, :, ::-1]])
    val_y = np.concatenate([data.validation_profile_labels] * 2)
    curve, step, epoch, start = [], 0, 0, time.time()
    while step < EVAL.steps:
        for batch in drgan.make_batches(data, config, epoch, 0):
            metrics = model.train_step(batch, step)
            step += 1
            if step % EVAL.every == 0 or step == EVAL.steps:
                row = {"step": step, "minutes": (time.time() - start) / 60.0,
                       "train_frontal": identity_accuracy(model, data.train_images[frontal],
                                                          data.train_labels[frontal], nd),
                       "train_profile": identity_accuracy(model, data.train_images[~frontal],
                                                          data.train_labels[~frontal], nd),
                       "validation_profile": identity_accuracy(model, data.validation_profile_images,
                                                               data.validation_profile_labels, nd),
                       "validation_profile_and_mirrored": identity_accuracy(model, val_x, val_y, nd),
                       "batch_real_identity": float(metrics["accuracy/real_identity"]),
                       "batch_fake_pose": float(metrics["accuracy/fake_pose"])}
                curve.append(row)
                print(json.dumps(row), flush=True)
            if step >= EVAL.steps:
                break
        epoch += 1
    results = {"model": "drgan", "probe": "identity accuracy of D on validation profile photo %d (photo 4 unread)"
               % EVAL.validation_profile, "config": EVAL.flagfile_path, "overrides": list(EVAL.set),
               "steps": step, "validation_photos": int(len(data.validation_profile_images)), "curve": curve}
    os.makedirs(os.path.dirname(EVAL.output) or ".", exist_ok=True)
    write_json_atomic(EVAL.output, results)
    print("wrote", EVAL.output)


if __name__ == "__main__":
    main(sys.argv)
