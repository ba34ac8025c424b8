"""Tests of the synthetic AU-labelled face generator (ganimation_tl.synthetic)."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ganimation_tl.aus import AU_COLUMNS, AU_NAMES, NUM_AUS, au_index
from ganimation_tl.errors import InputError
from ganimation_tl.synthetic import (OCCLUDERS, Augmentations, SyntheticFaces, au_occurrence, backgrounds,
                                     sample_aus, write_dataset)
from ganimation_tl.synthetic import geometry as G
from ganimation_tl.synthetic.contact_sheet import contact_sheet

REPO = Path(__file__).resolve().parents[1]
SIZE = 128


@pytest.fixture(scope="module")
def faces():
    return SyntheticFaces(image_size=SIZE, seed=0, num_identities=50)


@pytest.fixture(scope="module")
def ident(faces):
    """A medium-skinned identity (AU effects on very dark skin are darker, so smaller in pixel values)."""
    for i in range(faces.num_identities):
        if 130 <= faces.identity_params(i).skin.mean() <= 200:
            return i
    raise AssertionError("no medium-skinned identity")


def _one_au(name, value=1.0):
    a = np.zeros(NUM_AUS, np.float32)
    a[au_index(name)] = value
    return a


# ---------------------------------------------------------------------------------------------------------------
def test_sample_shapes_dtypes_and_ranges(faces):
    for i in (0, 1, 17, 123):
        s = faces.sample(i)
        assert s.image.shape == (SIZE, SIZE, 3) and s.image.dtype == np.uint8
        assert s.aus.shape == (NUM_AUS,) and s.aus.dtype == np.float32
        assert np.all(s.aus >= 0) and np.all(s.aus <= 1)
        assert s.landmarks.shape == (68, 2) and s.landmarks.dtype == np.float32
        assert s.pose.shape == (3,) and s.pose.dtype == np.float32
        assert abs(s.pose[0]) <= 30 and abs(s.pose[1]) <= 15 and abs(s.pose[2]) <= 15
        assert s.identity == i % 50 and s.index == i
        assert s.occlusion_mask.shape == (SIZE, SIZE) and s.occlusion_mask.dtype == bool
        assert s.region_masks.shape == (NUM_AUS, SIZE, SIZE) and s.region_masks.dtype == bool
        assert np.all(s.region_masks.reshape(NUM_AUS, -1).any(axis=1)), "every AU has a non-empty region"
        # Landmarks on the face, mostly inside the tight crop.
        inside = np.all((s.landmarks > -2) & (s.landmarks < SIZE + 2), axis=1)
        assert inside.mean() > 0.9
        assert s.image.std() > 10


def test_same_seed_identical_samples_other_seed_differs():
    a = SyntheticFaces(image_size=64, seed=3, num_identities=20)
    b = SyntheticFaces(image_size=64, seed=3, num_identities=20)
    c = SyntheticFaces(image_size=64, seed=4, num_identities=20)
    for i in (0, 5, 99):
        sa, sb = a.sample(i), b.sample(i)
        for field in ("image", "aus", "landmarks", "pose", "occlusion_mask", "region_masks"):
            np.testing.assert_array_equal(getattr(sa, field), getattr(sb, field))
        assert sa.identity == sb.identity
    assert not np.array_equal(a.sample(5).image, c.sample(5).image)
    # Out-of-order access gives the same result as in-order access.
    np.testing.assert_array_equal(a.sample(99).image, b.sample(99).image)


def test_identity_can_be_rerendered(faces, ident):
    one = faces.render(ident, _one_au("AU12"))
    two = faces.render(ident, _one_au("AU12"))
    np.testing.assert_array_equal(one.image, two.image)
    other = faces.render((ident + 1) % faces.num_identities, _one_au("AU12"))
    assert np.abs(one.image.astype(int) - other.image.astype(int)).mean() > 5
    # The identity's face is the same whether reached through sample() or render().
    assert faces.identity_params(ident) is faces.identity_params(ident)
    np.testing.assert_array_equal(faces.identity_params(ident).skin,
                                  SyntheticFaces(SIZE, seed=0, num_identities=50).identity_params(ident).skin)


def test_batch_stacks_samples(faces):
    b = faces.batch(10, 3)
    assert b.images.shape == (3, SIZE, SIZE, 3) and b.region_masks.shape == (3, NUM_AUS, SIZE, SIZE)
    for j in range(3):
        s = faces.sample(10 + j)
        np.testing.assert_array_equal(b.images[j], s.image)
        np.testing.assert_array_equal(b.aus[j], s.aus)
        np.testing.assert_array_equal(b.landmarks[j], s.landmarks)
        assert b.identity[j] == s.identity and b.index[j] == 10 + j


@pytest.mark.parametrize("name", AU_NAMES)
def test_each_au_is_visible_and_inside_its_region(faces, ident, name):
    k = au_index(name)
    base = faces.render(ident)
    act = faces.render(ident, _one_au(name))
    diff = np.abs(act.image.astype(np.int32) - base.image.astype(np.int32)).max(axis=2)
    region = act.region_masks[k] | base.region_masks[k]
    changed = diff > 20
    assert changed.sum() >= 80, "%s changes only %d pixels by more than 20 levels" % (name, changed.sum())
    assert diff[region].mean() >= 2.5, "%s: mean change in its region only %.2f" % (name, diff[region].mean())
    energy_inside = diff[region].sum() / diff.sum()
    assert energy_inside >= 0.9, "%s: only %.2f of the change is inside its region" % (name, energy_inside)
    assert changed[region].sum() / changed.sum() >= 0.9
    # Continuous: half intensity changes the face about halfway.
    half = faces.render(ident, _one_au(name, 0.5))
    d_half = np.abs(half.image.astype(np.int32) - base.image.astype(np.int32)).max(axis=2).sum()
    assert 0.15 * diff.sum() < d_half < 0.9 * diff.sum()


def _landmarks(faces, ident, name, value=1.0):
    return faces.render(ident, _one_au(name, value)).landmarks.astype(np.float64)


def test_landmark_directions_follow_facs(faces, ident):
    """Directions from shared/docs/facs.md (image y grows downward)."""
    n = _landmarks(faces, ident, "AU01", 0.0)
    up = lambda pts, i: n[i, 1] - pts[i, 1]             # noqa: E731  positive when point i rose

    au01, au02 = _landmarks(faces, ident, "AU01"), _landmarks(faces, ident, "AU02")
    assert up(au01, 21) > 2 and up(au01, 22) > 2 and up(au01, 21) > up(au01, 17) + 1       # inner ends most
    assert up(au02, 17) > 2 and up(au02, 26) > 2 and up(au02, 17) > up(au02, 21) + 1       # outer ends most
    au04 = _landmarks(faces, ident, "AU04")
    assert all(up(au04, i) < -1 for i in range(18, 26))                                     # brows down
    assert (au04[22, 0] - au04[21, 0]) < (n[22, 0] - n[21, 0]) - 1                          # and together
    au05 = _landmarks(faces, ident, "AU05")
    assert all(up(au05, i) > 0.5 for i in (37, 38, 43, 44))
    au06 = _landmarks(faces, ident, "AU06")
    assert all(up(au06, i) > 0.5 for i in (40, 41, 46, 47))
    au09 = _landmarks(faces, ident, "AU09")
    assert all(up(au09, i) > 1 for i in range(31, 36))
    au10 = _landmarks(faces, ident, "AU10")
    assert up(au10, 51) > 2 and up(au10, 62) > 2
    au12 = _landmarks(faces, ident, "AU12")
    assert up(au12, 48) > 2 and up(au12, 54) > 2                                             # corners up
    assert au12[48, 0] < n[48, 0] - 1 and au12[54, 0] > n[54, 0] + 1                         # and outward
    au14 = _landmarks(faces, ident, "AU14")
    assert au14[48, 0] > n[48, 0] + 1 and au14[54, 0] < n[54, 0] - 1 and abs(up(au14, 48)) < 1
    au15 = _landmarks(faces, ident, "AU15")
    assert up(au15, 48) < -2 and up(au15, 54) < -2
    au17 = _landmarks(faces, ident, "AU17")
    assert up(au17, 57) > 1.5 and up(au17, 8) > 1.5
    au20 = _landmarks(faces, ident, "AU20")
    assert au20[48, 0] < n[48, 0] - 2 and au20[54, 0] > n[54, 0] + 2 and up(au20, 48) < 0.5
    au23 = _landmarks(faces, ident, "AU23")
    assert (au23[54, 0] - au23[48, 0]) < (n[54, 0] - n[48, 0]) - 1
    assert (au23[57, 1] - au23[51, 1]) < (n[57, 1] - n[51, 1]) - 1                          # thinner lips
    au25 = _landmarks(faces, ident, "AU25")
    assert (au25[66, 1] - au25[62, 1]) > (n[66, 1] - n[62, 1]) + 2                          # lips apart
    au26 = _landmarks(faces, ident, "AU26")
    assert up(au26, 8) < -5 and (au26[57, 1] - au26[51, 1]) > (n[57, 1] - n[51, 1]) + 5       # jaw drops
    au45 = _landmarks(faces, ident, "AU45")
    for a, b in ((37, 41), (38, 40), (43, 47), (44, 46)):
        open_d, closed_d = np.linalg.norm(n[a] - n[b]), np.linalg.norm(au45[a] - au45[b])
        assert open_d > 2 and closed_d < 0.25 * open_d
    au45h = _landmarks(faces, ident, "AU45", 0.5)
    assert np.linalg.norm(au45[37] - au45[41]) < np.linalg.norm(au45h[37] - au45h[41]) < np.linalg.norm(n[37] - n[41])


def test_pose_rotation_moves_landmarks(faces, ident):
    def render(pose):
        return faces.render(ident, pose=pose).landmarks.astype(np.float64)

    def nose_x(lm):                 # nose tip relative to the middle of the jaw's ends
        return lm[30, 0] - 0.5 * (lm[0, 0] + lm[16, 0])

    lm0, lm_r, lm_l = render((0, 0, 0)), render((25, 0, 0)), render((-25, 0, 0))
    assert nose_x(lm_r) > nose_x(lm0) + 5 and nose_x(lm_l) < nose_x(lm0) - 5   # positive yaw: nose tip right
    lm_p = render((0, 15, 0))
    assert (lm_p[30, 1] - lm_p[36:48, 1].mean()) > (lm0[30, 1] - lm0[36:48, 1].mean()) + 1   # +pitch: nose down
    lm_roll = render((0, 0, 15))
    assert lm_roll[45, 1] - lm_roll[36, 1] > lm0[45, 1] - lm0[36, 1] + 5        # positive roll: clockwise
    # A frontal face is left-right symmetric about the nose bridge.
    mirror = lm0[G.MIRROR]
    mid = lm0[27:31, 0].mean()
    np.testing.assert_allclose(2 * mid - mirror[:, 0], lm0[:, 0], atol=0.6)
    np.testing.assert_allclose(mirror[:, 1], lm0[:, 1], atol=0.6)


def test_frontal_only_and_pose_ranges():
    frontal = SyntheticFaces(image_size=64, seed=1, num_identities=5, frontal_only=True)
    assert all(np.all(frontal.sample(i).pose == 0) for i in range(5))
    wide = SyntheticFaces(image_size=64, seed=1, num_identities=5, max_yaw=10, max_pitch=5, max_roll=0)
    poses = np.stack([wide.sample(i).pose for i in range(30)])
    assert np.abs(poses[:, 0]).max() <= 10 and np.abs(poses[:, 1]).max() <= 5 and np.all(poses[:, 2] == 0)
    assert poses[:, 0].std() > 1


@pytest.mark.parametrize("kind", OCCLUDERS)
def test_occluder_gives_mask(faces, ident, kind):
    clean = faces.render(ident)
    occ = faces.render(ident, occlusion=kind, seed=2)
    mask = occ.occlusion_mask
    assert mask.dtype == bool and mask.mean() > 0.01, "%s: occlusion mask nearly empty" % kind
    assert not clean.occlusion_mask.any()
    diff = np.abs(occ.image.astype(int) - clean.image.astype(int)).max(axis=2) > 10
    near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert diff.sum() > 0 and diff[near].sum() / diff.sum() > 0.9


def test_occlusion_probability_knob():
    always = SyntheticFaces(image_size=64, seed=0, num_identities=5, augment=Augmentations(occlusion=1.0))
    never = SyntheticFaces(image_size=64, seed=0, num_identities=5, augment=Augmentations(occlusion=0.0))
    assert all(always.sample(i).occlusion_mask.any() for i in range(8))
    assert not any(never.sample(i).occlusion_mask.any() for i in range(8))
    # Labels do not depend on the augmentation settings.
    off = SyntheticFaces(image_size=64, seed=0, num_identities=5, augment=Augmentations.off())
    np.testing.assert_array_equal(off.sample(3).aus, always.sample(3).aus)
    np.testing.assert_array_equal(off.sample(3).pose, always.sample(3).pose)


def test_backgrounds_survive_missing_photos():
    def broken():
        raise OSError("no such photo")

    srcs = [("broken", broken), ("ok", lambda: np.full((64, 80, 3), 100, np.uint8)),
            ("grey", lambda: np.full((50, 50), 30, np.uint8)), ("tiny", lambda: np.zeros((4, 4, 3), np.uint8))]
    photos = backgrounds.photos(srcs)
    assert len(photos) == 2 and all(p.ndim == 3 and p.shape[2] == 3 for p in photos)
    rng = np.random.default_rng(0)
    assert backgrounds.photo_background(rng, 64, []) is None
    bg = backgrounds.random_background(rng, 64, photo_prob=1.0, images=[])      # falls back to procedural
    assert bg.shape == (64, 64, 3) and bg.dtype == np.uint8
    faces = SyntheticFaces(image_size=64, seed=0, num_identities=3, photos=[],
                           augment=Augmentations(photo_background=1.0))
    assert faces.sample(0).image.shape == (64, 64, 3)
    # The photos shipped with scikit-image / scikit-learn are found here.
    assert len(backgrounds.photos()) >= 5


def test_sample_aus_is_sparse_and_realistic():
    rng = np.random.default_rng(0)
    aus = np.stack([sample_aus(rng) for _ in range(3000)])
    assert aus.dtype == np.float32 and aus.min() >= 0 and aus.max() <= 1
    assert (aus == 0).mean() > 0.6                                # many exact zeros, like real data
    assert (aus.max(axis=1) < 0.2).mean() > 0.1                   # neutral faces (below the occurrence level)
    active = au_occurrence(aus)                                   # OpenFace intensity >= 1
    assert active.dtype == bool and np.array_equal(active, aus >= 0.2)
    assert 0.5 < active.sum(axis=1).mean() < 3.5
    happy = active[:, au_index("AU06")] & active[:, au_index("AU12")]
    assert happy.mean() > 0.08                                    # the commonest prototype
    jaw = aus[:, au_index("AU26")] > 0.3
    assert np.all(aus[jaw, au_index("AU25")] > 0)                 # a jaw drop parts the lips
    assert len(np.unique(np.round(aus[active], 3))) > 300         # continuous intensities
    assert np.all(active.mean(axis=0) > 0.01)                     # every AU occurs


def test_invalid_arguments_raise_input_error(faces):
    for kwargs in (dict(image_size=30), dict(image_size=130), dict(image_size=2048), dict(image_size=64.5),
                   dict(seed=-1), dict(num_identities=0), dict(max_yaw=90), dict(supersample=0),
                   dict(augment=Augmentations(noise=1.5))):
        with pytest.raises(InputError):
            SyntheticFaces(**kwargs)
    with pytest.raises(InputError, match="aus"):
        faces.render(0, np.full(NUM_AUS, 2.0))
    with pytest.raises(InputError, match="aus"):
        faces.render(0, np.zeros(5))
    with pytest.raises(InputError, match="identity"):
        faces.render(faces.num_identities)
    with pytest.raises(InputError, match="occlusion"):
        faces.render(0, occlusion="scarf")
    with pytest.raises(InputError, match="index"):
        faces.sample(-1)
    with pytest.raises(InputError, match="test_fraction"):
        faces.test_identities(1.0)


def test_supersampling_and_small_sizes():
    small = SyntheticFaces(image_size=64, seed=0, num_identities=5, supersample=2)
    s = small.sample(0)
    assert s.image.shape == (64, 64, 3) and s.region_masks.shape == (NUM_AUS, 64, 64)
    plain = SyntheticFaces(image_size=64, seed=0, num_identities=5, supersample=1).sample(0)
    np.testing.assert_allclose(s.landmarks, plain.landmarks, atol=0.35)


# ---------------------------------------------------------------------------------------------------------------
def _run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "ganimation_tl.synthetic", *args], capture_output=True, text=True,
                          env=env, cwd=str(REPO), timeout=120)


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_cli_writes_the_layout_atomically(tmp_path):
    out = tmp_path / "faces"
    r = _run_cli("--out", str(out), "--count", "14", "--image_size", "64", "--num_identities", "7",
                 "--test_fraction", "0.3", "--quiet")
    assert r.returncode == 0, r.stderr
    aus = _read_csv(out / "aus.csv")
    assert aus[0] == ["file"] + list(AU_COLUMNS)
    assert len(aus) == 15
    names = [row[0] for row in aus[1:]]
    assert names == ["%06d.png" % i for i in range(14)]
    values = np.array([[float(v) for v in row[1:]] for row in aus[1:]])
    assert values.min() >= 0 and values.max() <= 5 and values.max() > 1      # OpenFace 0..5 scale
    assert all(len(v.split(".")[1]) == 4 for row in aus[1:] for v in row[1:])
    for name in names:
        img = cv2.imread(str(out / "imgs" / name))
        assert img is not None and img.shape == (64, 64, 3)
        occ = cv2.imread(str(out / "occlusion" / name), cv2.IMREAD_UNCHANGED)
        assert occ.shape == (64, 64) and set(np.unique(occ)) <= {0, 255}
    lms = _read_csv(out / "landmarks.csv")
    assert lms[0][:3] == ["file", "x0", "y0"] and len(lms[0]) == 137 and len(lms) == 15
    pose = _read_csv(out / "pose.csv")
    assert pose[0] == ["file", "yaw", "pitch", "roll"] and len(pose) == 15
    ids = dict((row[0], int(row[1])) for row in _read_csv(out / "identities.csv")[1:])
    assert set(ids.values()) == set(range(7))
    train = (out / "train_ids.csv").read_text().split()
    test = (out / "test_ids.csv").read_text().split()
    assert sorted(train + test) == names and train and test
    assert not {ids[n] for n in train} & {ids[n] for n in test}                 # split by identity
    # Same seed, same data set: the CSV matches a direct render.
    faces = SyntheticFaces(image_size=64, seed=0, num_identities=7)
    np.testing.assert_allclose(values[5] / 5.0, faces.sample(5).aus, atol=1e-4)
    # No temporary folder left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]
    # Refuses to overwrite, leaves the data set untouched; --overwrite replaces it.
    before = (out / "aus.csv").read_text()
    r = _run_cli("--out", str(out), "--count", "3", "--image_size", "64", "--quiet")
    assert r.returncode == 2 and r.stderr.startswith("error:") and "--overwrite" in r.stderr
    assert (out / "aus.csv").read_text() == before
    r = _run_cli("--out", str(out), "--count", "3", "--image_size", "64", "--quiet", "--overwrite", "--seed", "5")
    assert r.returncode == 0, r.stderr
    assert len(_read_csv(out / "aus.csv")) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]


@pytest.mark.parametrize("args,needle", [
    (["--count", "0"], "count"), (["--count", "-3"], "count"), (["--count", "2", "--image_size", "30"], "image_size"),
    (["--count", "2", "--image_size", "66"], "multiple of 4"), (["--count", "2", "--seed", "-1"], "seed"),
    (["--count", "2", "--occlusion_prob", "1.5"], "occlusion"), (["--count", "2", "--num_identities", "0"],
                                                                 "num_identities")])
def test_cli_bad_arguments_exit_2(tmp_path, args, needle):
    r = _run_cli("--out", str(tmp_path / "x"), *args)
    assert r.returncode == 2
    assert r.stderr.startswith("error:") and needle in r.stderr
    assert not (tmp_path / "x").exists()


def test_write_dataset_failure_leaves_nothing(tmp_path):
    faces = SyntheticFaces(image_size=32, seed=0, num_identities=3)
    real = faces.sample

    def flaky(i):
        if i == 2:
            raise RuntimeError("disk on fire")
        return real(i)

    faces.sample = flaky
    with pytest.raises(RuntimeError):
        write_dataset(tmp_path / "out", 4, faces)
    assert list(tmp_path.iterdir()) == []
    faces.sample = real
    (tmp_path / "empty").mkdir()
    stats = write_dataset(tmp_path / "empty", 3, faces)            # an existing empty folder is fine
    assert stats["count"] == 3 and (tmp_path / "empty" / "aus.csv").exists()


def test_package_does_not_import_tensorflow():
    code = ("import sys; from ganimation_tl.synthetic import SyntheticFaces; "
            "SyntheticFaces(64, num_identities=2).sample(0); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr


def test_contact_sheet_renders():
    sheet = contact_sheet(seed=0, n_random=3, columns=3, size=64)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[2] == 3
    assert sheet.shape[0] > 6 * 64 and sheet.std() > 20


def test_aus_of_matches_sample_without_rendering():
    from ganimation_tl.synthetic import SyntheticFaces
    faces = SyntheticFaces(image_size=64, seed=7)
    for i in (0, 5, 123):
        np.testing.assert_array_equal(faces.aus_of(i), faces.sample(i).aus)
