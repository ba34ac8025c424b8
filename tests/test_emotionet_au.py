"""Tests of the EmotioNet AU annotator (other_models/emotionet_au.py): smoke run through the registry and the
annotation CLI, the shape and Gabor features against NumPy/OpenCV, and bad input."""
import math
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from ganimation_tl.errors import InputError

from sibling_helpers import model_flags

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
CONFIG = REPO / "configs" / "emotionet_au_debug.cfg"


def _flags(*extra):
    return model_flags("emotionet_au", *extra, flagfile="emotionet_au_debug.cfg")


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    """A 2-step run of the debug config on 24 faces, through the registry (train.py's path)."""
    from ganimation_tl import registry
    workdir = tmp_path_factory.mktemp("emotionet_au")
    real = [] if (SHARED / "data").is_dir() else ["--emotionet_real_aus="]
    fv = _flags("--max_steps=2", "--workdir=%s" % workdir, "--emotionet_train_faces=24",
                "--emotionet_test_faces=6", "--emotionet_identities=10", "--batch_size=8", "--log_every=1",
                "--image_every=2", *real)
    metrics = registry.get("emotionet_au").train(fv)
    return workdir, metrics


def test_smoke_two_steps_through_registry(trained_workdir):
    workdir, metrics = trained_workdir
    for key in ("emotionet_au/mse", "emotionet_au/landmark_mse", "emotionet_au/test_mae",
                "emotionet_au/test_mae_mean_predictor"):
        assert math.isfinite(metrics[key]), key
    assert 0 <= metrics["emotionet_au/test_mae"] <= 1
    assert (workdir / "checkpoints" / "checkpoint").is_file()
    assert (workdir / "samples" / "latest.png").is_file()
    if (SHARED / "data").is_dir():
        assert -1.0 <= metrics["emotionet_au/real_pearson"] <= 1.0


def test_annotate_cli_writes_an_au_csv_train_py_reads(trained_workdir, tmp_path, capsys):
    from ganimation_tl.au_data import load_au_table, write_image_atomic
    from ganimation_tl.synthetic import SyntheticFaces
    from other_models import emotionet_au
    workdir, _ = trained_workdir
    images = tmp_path / "faces"
    images.mkdir()
    faces = SyntheticFaces(image_size=128, seed=5, num_identities=3)
    for i in range(2):
        write_image_atomic(str(images / ("face_%d.png" % i)), faces.sample(i).image)
    out = tmp_path / "aus.csv"
    assert emotionet_au.main(["annotate", "--workdir=%s" % workdir, "--images=%s" % images, "--out=%s" % out]) == 0
    table = load_au_table(str(out), str(images))
    assert len(table) == 2 and table.aus.shape == (2, 17)
    assert np.all((table.aus >= 0) & (table.aus <= 1))
    model = emotionet_au.restore(str(workdir))
    expected = model.predict_aus(np.stack([faces.sample(i).image for i in range(2)]))
    np.testing.assert_allclose(table.aus, expected, atol=1e-3)       # CSV keeps 4 decimals of OpenFace scale
    # bad input: a missing image folder -> exit 2 and an error naming --images
    assert emotionet_au.main(["annotate", "--workdir=%s" % workdir, "--images=%s" % (tmp_path / "nope"),
                              "--out=%s" % out]) == 2
    assert "--images" in capsys.readouterr().err
    assert emotionet_au.main(["annotate", "--workdir=%s" % (tmp_path / "none"), "--images=%s" % images,
                              "--out=%s" % out]) == 2


def test_shape_features_distances_and_angles():
    from scipy.spatial import Delaunay
    from other_models.emotionet_au import _normalise, feature_dim, shape_features
    rng = np.random.default_rng(0)
    shape = rng.uniform(0, 100, size=(68, 2))
    ref = _normalise(shape)
    tri = Delaunay(ref).simplices
    feats = shape_features(shape[None], ref, tri)[0]
    assert feats.shape == (2278 + 3 * len(tri),)
    i, j = 3, 40                                    # pair index of (i, j), i < j, in triu order
    k = int(np.flatnonzero((np.triu_indices(68, 1)[0] == i) & (np.triu_indices(68, 1)[1] == j))[0])
    assert feats[k] == pytest.approx(np.linalg.norm(ref[i] - ref[j]), rel=1e-5)
    angles = feats[2278:].reshape(3, len(tri))
    np.testing.assert_allclose(angles.sum(axis=0), np.pi, atol=1e-4)     # each triangle's angles sum to pi
    # similarity invariance: a scaled, rotated, shifted copy has the same features
    c, s = math.cos(0.3), math.sin(0.3)
    moved = 2.5 * shape @ np.array([[c, -s], [s, c]]).T + 7.0
    np.testing.assert_allclose(shape_features(moved[None], ref, tri)[0], feats, atol=1e-4)
    assert feature_dim(len(tri)) == feats.shape[0] + 68 * 12


def test_gabor_features_match_opencv_and_pick_the_right_wavelength():
    import cv2
    from other_models.emotionet_au import GABOR_ORIENTATIONS, GABOR_WAVELENGTHS, gabor_bank, gabor_features
    flat = np.full((1, 128, 128, 3), 90, np.uint8)
    lm = np.full((1, 68, 2), 64.0)
    assert np.abs(gabor_features(flat, lm)).max() < 1e-5              # zero-mean filters: no response to flat
    x = np.arange(128)
    stripes = (127.5 + 100 * np.cos(2 * np.pi * x / 8.0))[None, :].repeat(128, 0)   # varies along x, lambda 8
    img = np.repeat(stripes[None, :, :, None], 3, axis=3).astype(np.uint8)
    rng = np.random.default_rng(2)
    lm = rng.uniform(30, 98, size=(1, 68, 2))
    feats = gabor_features(img, lm).reshape(68, 12)
    best = np.argmax(feats.mean(axis=0))
    assert best == GABOR_WAVELENGTHS.index(8.0) * len(GABOR_ORIENTATIONS) + GABOR_ORIENTATIONS.index(0.0)
    grey = cv2.cvtColor(img[0], cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    even, odd = gabor_bank()[5]
    mag = cv2.magnitude(cv2.filter2D(grey, -1, even, borderType=cv2.BORDER_REFLECT),
                        cv2.filter2D(grey, -1, odd, borderType=cv2.BORDER_REFLECT))
    px = np.rint(lm[0]).astype(int)
    np.testing.assert_allclose(feats[:, 5], mag[px[:, 1], px[:, 0]], atol=1e-5)
    with pytest.raises(InputError):
        gabor_features(img, lm[:, :10])


def test_missing_real_faces_path_names_the_flag(tmp_path):
    from other_models.emotionet_au import config_from
    with pytest.raises(InputError, match="--emotionet_real_aus.*nowhere"):
        config_from(_flags("--emotionet_real_aus=%s" % (tmp_path / "nowhere" / "aus.csv")))
    with pytest.raises(InputError, match="emotionet_learning_rate"):
        config_from(_flags("--emotionet_learning_rate=-1", "--emotionet_real_aus="))
