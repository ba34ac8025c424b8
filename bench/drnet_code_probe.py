"""Probe a trained DrNet (Moving MNIST) for what its codes carry; prints the figures quoted in
``docs/results/drnet.md`` ("Diagnosis").

    python bench/drnet_code_probe.py --workdir=runs/eval_drnet [--config=configs/drnet_debug.cfg] [--drnet_...]

On 1000 held-out videos (MNIST test digits, frame 3): the per-dimension std across videos of the content code
h_c and the pose code h_p (eval-mode BN), the accuracy of an MLP (700 train / 300 test videos) reading the first
digit's class from each code (chance 10%), and how much the decoder output moves when the content codes are
shuffled between videos (MSE), next to the reconstruction MSE; then the same reconstruction / shuffle figures with
the BN layers in train mode (batch statistics, batches of 32), and the learned scale (gamma) and moving variance of
the content code's last BatchNorm, which show whether a shrunken code comes from the normalisation's learned scale
rather than from a train/eval statistics mismatch.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from bench._common import model_flags  # noqa: E402


def main(argv):
    import argparse
    from sklearn.neural_network import MLPClassifier
    from other_models import drnet
    from ganimation_tl.sibling import config_or_input_error

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--config", default="configs/drnet_debug.cfg")
    args, extra = parser.parse_known_args(argv)
    fv = model_flags(drnet.define_flags, args.config, "--workdir=" + args.workdir, *extra, known_only=True)
    config = config_or_input_error(drnet.DrNetConfig, fv)
    model = drnet.load_trained(args.workdir, config, config.drnet_num_digits)
    digits, labels = drnet.load_digits_for(fv.mnist_path, "test")
    seq = drnet.make_sequences(config, digits, labels, 1000, seed=5)
    x = seq.frames[:, 3]
    h_c_all, h_p = model.encode(x)
    h_c = drnet.content_code(h_c_all)
    y = seq.labels[:, 0]
    for name, code in (("content", h_c), ("pose", h_p)):
        clf = MLPClassifier((128,), max_iter=300, random_state=0).fit(code[:700], y[:700])
        print("%-7s code: dim %d, mean per-dim std across videos %.3f, first digit's class read %.1f%%" % (
            name, code.shape[1], float(code.std(0).mean()), 100 * clf.score(code[700:], y[700:])))
    shuffled = tuple(np.roll(np.asarray(t), 1, 0) for t in h_c_all) if isinstance(h_c_all, tuple) \
        else np.roll(h_c_all, 1, 0)
    out = model.decode(h_c_all, h_p)
    out_shuffled = model.decode(shuffled, h_p)
    print("decoder change when content is shuffled between videos (MSE): %.5f; self-reconstruction MSE: %.5f" % (
        float(np.mean((out - out_shuffled) ** 2)), float(np.mean((out - x) ** 2))))

    import tensorflow as tf
    model._set_mode(True, (model.content_encoder, model.pose_encoder, model.decoder))
    recon, change = [], []
    for i in range(0, len(x) - 31, 32):
        xb = tf.constant(x[i:i + 32], tf.float32)
        content_b, hp_b = model._content(xb), model.pose_encoder(xb)  # [h_c] or [h_c, skips...]
        out_b = model.decoder([content_b[0], hp_b] + content_b[1:]).numpy()
        rolled = [tf.roll(t, 1, 0) for t in content_b]
        recon.append(np.mean((out_b - xb.numpy()) ** 2))
        change.append(np.mean((out_b - model.decoder([rolled[0], hp_b] + rolled[1:]).numpy()) ** 2))
    model._set_mode(False)
    print("train-mode BN (batch statistics): shuffle change %.5f, reconstruction MSE %.5f" % (
        float(np.mean(change)), float(np.mean(recon))))
    for w in model.content_encoder.all_weights:
        if "code_bn" in w.name and ("gamma" in w.name or "moving_var" in w.name):
            v = np.abs(w.numpy()) if "gamma" in w.name else w.numpy()
            print("%-40s min %.3f median %.3f max %.3f" % (w.name, v.min(), np.median(v), v.max()))


if __name__ == "__main__":
    main(sys.argv[1:])
