"""infer.py end to end: a (briefly trained) model edits a real photo; bad input exits 2 with a message."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def run(script, *args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO), env=env)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, shared_data):
    """A 128-px GANimation with narrow layers trained 2 steps on the real EmotioNet sample."""
    wd = tmp_path_factory.mktemp("infer") / "wd"
    result = run("train.py", "--flagfile=%s" % (REPO / "configs" / "ganimation_debug.cfg"), "--image_size=128",
                 "--d_repeat_num=6", "--au_csv=%s" % (shared_data / "emotionet_sample" / "aus.csv"),
                 "--workdir=%s" % wd, "--max_steps=2")
    assert result.returncode == 0, result.stderr[-2000:]
    return wd


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    import skimage.data
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(path)
    return path


def test_edit_real_photo_keeps_size_and_only_changes_the_face(workdir, astronaut, tmp_path):
    out = tmp_path / "edited.png"
    result = run("infer.py", "--image=%s" % astronaut, "--aus=AU12=0.8,25=0.5", "--workdir=%s" % workdir,
                 "--output=%s" % out)
    assert result.returncode == 0, result.stderr[-2000:]
    before = np.asarray(Image.open(astronaut))
    after = np.asarray(Image.open(out))
    assert after.shape == before.shape
    changed = np.any(after != before, axis=-1)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 1000                       # the face was re-rendered
    # Changes stay near the face (MTCNN box about x 182-265, y 64-171 on this photo).
    assert 150 < xs.min() and xs.max() < 300 and 30 < ys.min() and ys.max() < 210
    mask = np.asarray(Image.open(tmp_path / "edited_attention.png"))
    assert mask.shape[:2] == (128, 128)
    assert "0 target" in result.stdout and "0.80" in result.stdout


def test_print_aus_prints_a_row_of_17_values(workdir, astronaut):
    result = run("infer.py", "--image=%s" % astronaut, "--workdir=%s" % workdir, "--print_aus")
    assert result.returncode == 0, result.stderr[-2000:]
    header, row = result.stdout.strip().splitlines()[-2:]
    assert header.split()[1:] == ["AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14",
                                  "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45"]
    values = [float(v) for v in row.split()[1:]]
    assert len(values) == 17 and all(0.0 <= v <= 1.0 for v in values)


@pytest.mark.parametrize("case,expected", [
    ("no_face", "no face found"),
    ("bad_aus", "AU12 in --aus must be in [0, 1]"),
    ("missing_aus_value", "malformed AU setting 'AU12='"),
    ("no_workdir", "not a folder"),
    ("missing_image", "missing.jpg"),
    ("unwritable", "cannot write --output"),
])
def test_bad_input_exits_2_and_writes_nothing(case, expected, workdir, astronaut, tmp_path):
    image, aus, wd, out = astronaut, "AU12=0.5", workdir, tmp_path / "out.png"
    if case == "no_face":
        image = tmp_path / "grey.png"
        Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(image)
    elif case == "bad_aus":
        aus = "AU12=1.7"
    elif case == "missing_aus_value":
        aus = "AU12="
    elif case == "no_workdir":
        wd = tmp_path / "nothing"
    elif case == "missing_image":
        image = tmp_path / "missing.jpg"
    elif case == "unwritable":
        out = tmp_path / "no" / "such" / "dir" / "out.png"
    result = run("infer.py", "--image=%s" % image, "--aus=%s" % aus, "--workdir=%s" % wd, "--output=%s" % out)
    assert result.returncode == 2, result.stderr[-2000:]
    assert expected in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not out.exists() and not list(tmp_path.glob("out*"))
