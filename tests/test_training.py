"""Training on the 8 real OpenFace-annotated faces in ../shared: learning, checkpoints, resume, CLI."""
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganimation_tl.editing import cpu_supports_bfloat16
from ganimation_tl.errors import InputError
from ganimation_tl.runtime import resolve_bf16

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_faces(shared_data):
    """The 8 real faces: 4 from a single AU CSV, 4 from per-image OpenFace CSVs."""
    from ganimation_tl.au_data import load_au_table
    a = load_au_table(str(shared_data / "emotionet_sample" / "aus.csv"))
    b = load_au_table(str(shared_data / "openface_sample" / "openface"))
    return list(a.files) + list(b.files), np.concatenate([a.aus, b.aus])


def make_trainer(workdir, files, aus, config, max_steps):
    from ganimation_tl.input_pipeline import make_dataset, steps_per_epoch
    from ganimation_tl.model import GANimation
    from ganimation_tl.trainer import Trainer, TrainerOptions
    model = GANimation(config)
    options = TrainerOptions(workdir=str(workdir), epochs=config.epochs,
                             steps_per_epoch=steps_per_epoch(len(files), config.batch_size),
                             max_steps=max_steps, log_every=10, image_every=20, checkpoint_every=20)
    data = lambda epoch, skip: make_dataset(files, aus, image_size=config.image_size,
                                            batch_size=config.batch_size, seed=config.seed, epoch=epoch,
                                            skip_batches=skip)
    return model, Trainer(model, data, options, print_fn=lambda s: None)


def test_critic_au_error_falls_on_real_faces_and_resume_continues(real_faces, tmp_path):
    """128 px real faces, narrow networks (8/16 channels) and a 5x learning rate to fit a CI budget."""
    from ganimation_tl.input_pipeline import load_images_numpy
    from ganimation_tl.model import GANimationConfig
    files, aus = real_faces
    config = GANimationConfig(image_size=128, g_conv_dim=8, g_repeat_num=1, d_conv_dim=16, d_repeat_num=6,
                              batch_size=4, epochs=40, decay_epochs=0, learning_rate_d=5e-4,
                              learning_rate_g=5e-4)
    images = load_images_numpy(files, 128)
    mae = lambda m: float(np.mean(np.abs(m.estimate_aus(images).numpy() - aus)))

    model, trainer = make_trainer(tmp_path, files, aus, config, max_steps=40)
    before = mae(model)
    trainer.run()
    assert int(trainer.step.numpy()) == 40
    weights = [w.numpy().copy() for w in model.critic.all_weights + model.generator.all_weights]

    # A fresh process-equivalent: new model and trainer on the same workdir resume at step 40.
    model2, trainer2 = make_trainer(tmp_path, files, aus, config, max_steps=80)
    assert trainer2.restore() == 40
    restored = [w.numpy() for w in model2.critic.all_weights + model2.generator.all_weights]
    assert all(np.array_equal(a, b) for a, b in zip(weights, restored))
    assert int(model2.d_optimizer.iterations.numpy()) == 40
    assert int(model2.g_optimizer.iterations.numpy()) == 8   # one generator step per 5 iterations
    trainer2.run()
    after = mae(model2)
    baseline = float(np.mean(np.abs(aus - aus.mean(axis=0))))
    assert after < 0.75 * before, (before, after)
    assert after < baseline, (after, baseline)
    assert (tmp_path / "samples" / "latest.png").is_file()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("ckpt-*.index"))[-1] == "ckpt-80.index"


def run_cli(*args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO), env=env)


def test_train_cli_on_openface_folder_then_resume(shared_data, tmp_path):
    workdir = tmp_path / "run"
    common = ["--flagfile=%s" % (REPO / "configs" / "ganimation_debug.cfg"),
              "--au_csv=%s" % (shared_data / "openface_sample" / "openface"), "--workdir=%s" % workdir,
              "--epochs=5"]
    first = run_cli(*common, "--max_steps=2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "starting from step 0" in first.stderr
    assert (workdir / "checkpoints" / "ckpt-2.index").is_file()
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["model"] == "ganimation" and saved["config"]["image_size"] == 32 and saved["num_faces"] == 4
    second = run_cli(*common, "--max_steps=3", "--low_memory")   # resume in the low-memory mode
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resumed from" in second.stderr and "at step 2" in second.stderr
    assert "Low-memory mode: TensorFlow tensors from malloc" in second.stderr
    assert (workdir / "checkpoints" / "ckpt-3.index").is_file()
    # A different architecture in the same workdir is refused, naming the field.
    third = run_cli(*common, "--max_steps=4", "--g_conv_dim=16")
    assert third.returncode == 2 and "g_conv_dim=8" in third.stderr


@pytest.mark.parametrize("case", ["missing_csv", "no_au_columns", "negative", "unknown_model", "missing_image",
                                  "bad_flag_value"])
def test_train_cli_bad_input_exits_2_with_message(case, shared_data, tmp_path):
    csv_path = tmp_path / "aus.csv"
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    source = shared_data / "emotionet_sample"
    for name in os.listdir(source / "imgs"):
        (imgs / name).write_bytes((source / "imgs" / name).read_bytes())
    rows = list(csv.reader(open(source / "aus.csv"), skipinitialspace=True))
    args = ["--au_csv=%s" % csv_path, "--workdir=%s" % (tmp_path / "wd"), "--batch_size=2", "--max_steps=1"]
    expected = None
    if case == "missing_csv":
        args[0] = "--au_csv=%s" % (tmp_path / "nope.csv")
        expected = "nope.csv"
    elif case == "no_au_columns":
        rows = [r[:1] + ["x"] for r in rows]
        expected = "AU01_r"
    elif case == "negative":
        rows[2][9] = "-0.5"
        expected = "line 3"
    elif case == "unknown_model":
        args.append("--model=stylegan9")
        expected = "valid models: arn, c2ae"  # sorted; ganimation is further on
    elif case == "missing_image":
        (imgs / rows[1][0]).unlink()
        expected = rows[1][0]
    elif case == "bad_flag_value":
        args.append("--log_every=0")
        expected = "--log_every"
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error:" in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_image_during_training_is_an_input_error_naming_it(real_faces, tmp_path, small_config):
    from ganimation_tl.errors import InputError
    files, aus = real_faces
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(open(files[0], "rb").read()[:300])   # a truncated JPEG
    files = [str(bad)] + files[1:]
    _, trainer = make_trainer(tmp_path / "wd", files, aus, small_config, max_steps=4)
    with pytest.raises(InputError, match="broken.jpg"):
        trainer.run()
    assert trainer.manager.latest_checkpoint is None


def test_train_cli_defaults_to_generated_synthetic_faces(tmp_path):
    workdir = tmp_path / "synthetic"
    result = run_cli("--flagfile=%s" % (REPO / "configs" / "ganimation_debug.cfg"), "--workdir=%s" % workdir,
                     "--synthetic_faces=8", "--max_steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["data"].startswith("synthetic faces (8 per epoch") and saved["num_faces"] == 8
    assert (workdir / "checkpoints" / "ckpt-2.index").is_file()
    # The rendered faces went through the decoded-image cache (its summary names what it holds).
    assert re.search(r"decoded-image cache: \d+ of 8 images", result.stderr), result.stderr[-3000:]
    # Precision left unset: bfloat16 exactly on a CPU with native bfloat16 (this project's CI host has it).
    expected = "bfloat16" if cpu_supports_bfloat16() else "float32"
    assert saved["precision"] == expected and expected in result.stderr
    forced = run_cli("--flagfile=%s" % (REPO / "configs" / "ganimation_debug.cfg"), "--workdir=%s" % (tmp_path / "f32"),
                     "--synthetic_faces=8", "--max_steps=1", "--nobf16")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert json.loads((tmp_path / "f32" / "config.json").read_text())["precision"] == "float32"
    # The low-memory mode is GANimation's default on a host without GPU; --nolow_memory turns it off.
    assert "Low-memory mode: TensorFlow tensors from malloc" in result.stderr
    assert "Low-memory mode" in forced.stderr
    off = run_cli("--flagfile=%s" % (REPO / "configs" / "ganimation_debug.cfg"), "--workdir=%s" % (tmp_path / "off"),
                  "--synthetic_faces=8", "--max_steps=1", "--nolow_memory")
    assert off.returncode == 0 and "Low-memory mode" not in off.stderr, off.stderr[-3000:]
    bad = run_cli("--workdir=%s" % (tmp_path / "x"), "--synthetic_faces=0")
    assert bad.returncode == 2 and "--synthetic_faces must be positive" in bad.stderr


def test_train_cli_unknown_and_conflicting_flags(tmp_path):
    unknown = run_cli("--no_such_flag=1")
    assert unknown.returncode != 0 and "no_such_flag" in unknown.stderr and "Traceback" not in unknown.stderr
    conflict = run_cli("--image_dir=%s" % tmp_path, "--workdir=%s" % (tmp_path / "wd"))
    assert conflict.returncode == 2 and "--image_dir needs --au_csv" in conflict.stderr
    budget = run_cli("--max_minutes=-1", "--workdir=%s" % (tmp_path / "wd"))
    assert budget.returncode == 2 and "--max_minutes must be positive" in budget.stderr
    cache = run_cli("--decoded_cache_mb=-1", "--workdir=%s" % (tmp_path / "wd"))
    assert cache.returncode == 2 and "--decoded_cache_mb must be >= 0" in cache.stderr


@pytest.mark.parametrize("requested, cpu_bf16, gpu, expected", [
    (None, True, False, True), (None, False, False, False), (None, True, True, False),
    (False, True, False, False), (True, True, False, True), (True, True, True, True)])
def test_bf16_default_follows_the_hardware(requested, cpu_bf16, gpu, expected):
    assert resolve_bf16(requested, cpu_bf16, gpu) is expected


def test_bf16_forced_on_a_cpu_without_it_is_an_input_error():
    with pytest.raises(InputError, match="no native bfloat16.*--nobf16"):
        resolve_bf16(True, False, False)
