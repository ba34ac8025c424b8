"""Export for TF Serving / TFLite: round trip without TensorLayer, saved_model_cli, signature checks,
atomic version folders, a real PredictRequest (and a gRPC round trip), TFLite agreement, the CLI.

All on a tiny 32-px GANimation with random (perturbed) weights saved as a trainer checkpoint.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ganimation_tl.aus import AU_NAMES, NUM_AUS  # noqa: E402
from ganimation_tl.checkpoints import load_model_and_checkpoint, load_model_from_workdir  # noqa: E402
from ganimation_tl.errors import InputError  # noqa: E402
from ganimation_tl import export as export_lib  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZE = 32
TINY = dict(image_size=SIZE, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=4, batch_size=4,
            epochs=2, decay_epochs=1)
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")


def _write_workdir(path: Path, config_values: dict, step: int = 7, perturb_seed: int = 1):
    """A workdir like train.py writes: config.json + a Trainer checkpoint, with weights moved away
    from the seeded initialisation (so a restore that silently did nothing would be noticed)."""
    from ganimation_tl.model import GANimation, GANimationConfig
    from ganimation_tl.trainer import Trainer, TrainerOptions

    config = GANimationConfig(**config_values)
    model = GANimation(config)
    rng = np.random.default_rng(perturb_seed)
    for v in list(model.generator.all_weights) + list(model.critic.all_weights):
        v.assign(v.numpy() + rng.normal(0.0, 0.05, v.shape).astype(np.float32))
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model": "ganimation", "config": config_values}))
    trainer = Trainer(model, None, TrainerOptions(workdir=str(path), epochs=1, steps_per_epoch=1))
    trainer.save(step)
    return model


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "run"
    saved = _write_workdir(path, TINY)
    weights = [v.numpy() for v in list(saved.generator.all_weights) + list(saved.critic.all_weights)]
    return path, weights


@pytest.fixture(scope="module")
def model_and_checkpoint(workdir):
    return load_model_and_checkpoint(workdir[0])


@pytest.fixture(scope="module")
def model(model_and_checkpoint):
    return model_and_checkpoint[0]


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / "ganimation"
    path = export_lib.export_saved_model(model, base, 1, tflite=True)
    return Path(path)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    return {b: (rng.uniform(-1, 1, (b, SIZE, SIZE, 3)).astype(np.float32),
                rng.uniform(0, 1, (b, NUM_AUS)).astype(np.float32),
                rng.integers(0, 256, (b, SIZE, SIZE, 3), dtype=np.uint8)) for b in (1, 3)}


def _expected(model, image, aus, image_uint8):
    """What each signature must return, computed with the in-process model."""
    edited, attention, color = (t.numpy() for t in model.edit(tf.constant(image), tf.constant(aus)))
    e8, a8, c8 = (t.numpy() for t in model.edit(tf.constant(image_uint8.astype(np.float32) / 127.5 - 1.0),
                                                 tf.constant(aus)))
    raw = model.estimate_aus(tf.constant(image)).numpy()
    return {
        "serving_default": {"image": edited, "attention_mask": attention, "color_mask": color},
        "serving_uint8": {"image_uint8": np.clip(np.floor((e8 + 1.0) * 127.5 + 0.5), 0, 255).astype(np.uint8),
                          "attention_mask": a8, "color_mask": c8},
        "estimate_aus": {"aus": np.clip(raw, 0.0, 1.0), "aus_raw": raw},
    }


def _assert_outputs_match(got, want, atol=1e-5, where=""):
    assert set(got) == set(want), where
    for key, value in want.items():
        assert got[key].shape == value.shape and got[key].dtype == value.dtype, (where, key)
        if value.dtype == np.uint8:  # rounding of a float that differs by ~1e-6 may flip one level
            diff = np.abs(got[key].astype(int) - value.astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (where, key)
        else:
            np.testing.assert_allclose(got[key], value, rtol=0, atol=atol, err_msg="%s %s" % (where, key))


def _saved_model_cli():
    script = Path(sys.executable).parent / "saved_model_cli"
    if script.exists():
        return [str(script)]
    found = shutil.which("saved_model_cli")
    return [found] if found else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


# ------------------------------------------------------------------ checkpoints.py
def test_load_model_restores_the_newest_checkpoint(workdir, model_and_checkpoint):
    """The saved weights were moved away from the seeded initialisation, so equality proves the restore."""
    model, checkpoint = model_and_checkpoint
    assert checkpoint == str(workdir[0] / "checkpoints" / "ckpt-7")
    assert model.config.image_size == SIZE and model.config.g_conv_dim == 8
    restored = [v.numpy() for v in list(model.generator.all_weights) + list(model.critic.all_weights)]
    assert len(restored) == len(workdir[1])
    for a, b in zip(restored, workdir[1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", ["no_folder", "no_config", "corrupt", "not_object", "other_model", "bad_config",
                                  "no_checkpoint"])
def test_load_model_bad_workdir_names_the_file(tmp_path, case):
    wd = tmp_path / "wd"
    config = tmp_path / "wd" / "config.json"
    if case != "no_folder":
        wd.mkdir()
    payload = {"model": "ganimation", "config": dict(TINY)}
    if case == "corrupt":
        config.write_text('{"model": "ganimation", "config": {')
    elif case == "not_object":
        config.write_text("[1, 2]")
    elif case == "other_model":
        payload["model"] = "stargan"
    elif case == "bad_config":
        payload["config"]["image_size"] = 30
    if case in ("other_model", "bad_config", "no_checkpoint"):
        config.write_text(json.dumps(payload))
    with pytest.raises(InputError) as info:
        load_model_from_workdir(wd)
    message = str(info.value)
    expected = {"no_folder": "is not a folder", "no_config": "config.json not found", "corrupt": "not valid JSON",
                "not_object": "expected a JSON object", "other_model": "'stargan'", "bad_config": "image_size",
                "no_checkpoint": "no checkpoint"}[case]
    assert expected in message
    assert str(wd) in message


def test_load_model_checkpoint_of_another_architecture(tmp_path, workdir):
    wd = tmp_path / "wd"
    shutil.copytree(workdir[0], wd)
    (wd / "config.json").write_text(json.dumps({"model": "ganimation", "config": dict(TINY, g_conv_dim=16)}))
    with pytest.raises(InputError, match="does not match"):
        load_model_from_workdir(wd)


# ------------------------------------------------------------------ round trip without TensorLayer
SUBPROCESS_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    folder, export = sys.argv[1], sys.argv[2]
    m = tf.saved_model.load(export)
    for b in (1, 3):
        x = np.load("%s/x%d.npy" % (folder, b)); a = np.load("%s/a%d.npy" % (folder, b))
        u = np.load("%s/u%d.npy" % (folder, b))
        calls = {"serving_default": dict(image=x, aus=a), "serving_uint8": dict(image=u, aus=a),
                 "estimate_aus": dict(image=x)}
        for name, feeds in calls.items():
            out = m.signatures[name](**{k: tf.constant(v) for k, v in feeds.items()})
            for key, value in out.items():
                np.save("%s/out_%s_%s_%d.npy" % (folder, name, key, b), value.numpy())
    print(json.dumps({"tensorlayer": "tensorlayer" in sys.modules,
                      "ganimation_tl": any(n.split(".")[0] == "ganimation_tl" for n in sys.modules),
                      "signatures": sorted(m.signatures)}))
""")


def test_round_trip_in_a_process_without_tensorlayer(tmp_path, model, exported, inputs):
    for b, (x, a, u) in inputs.items():
        np.save(tmp_path / ("x%d.npy" % b), x)
        np.save(tmp_path / ("a%d.npy" % b), a)
        np.save(tmp_path / ("u%d.npy" % b), u)
    result = subprocess.run([sys.executable, "-c", SUBPROCESS_SCRIPT, str(tmp_path), str(exported)],
                            capture_output=True, text=True, env=ENV, cwd=str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"tensorlayer": False, "ganimation_tl": False,
                      "signatures": ["estimate_aus", "serving_default", "serving_uint8"]}
    for b, (x, a, u) in inputs.items():
        want = _expected(model, x, a, u)
        for name, outputs in want.items():
            got = {k: np.load(tmp_path / ("out_%s_%s_%d.npy" % (name, k, b))) for k in outputs}
            _assert_outputs_match(got, outputs, where="%s batch %d" % (name, b))
    # the edit really depends on the AUs and the estimate is in [0, 1] (clipped raw head)
    x, a, u = inputs[3]
    want = _expected(model, x, a, u)
    assert np.all((want["estimate_aus"]["aus"] >= 0) & (want["estimate_aus"]["aus"] <= 1))
    other = model.edit(tf.constant(x), tf.constant(1.0 - a))[0].numpy()
    assert np.abs(other - want["serving_default"]["image"]).max() > 1e-4


def test_export_description(exported, model):
    config = json.loads((exported / "assets.extra" / "ganimation_config.json").read_text())
    assert config["image_size"] == SIZE and config["num_aus"] == NUM_AUS
    assert config["au_names"] == list(AU_NAMES)
    assert config["config"]["g_conv_dim"] == 8
    assert set(config["signatures"]) == {"serving_default", "serving_uint8", "estimate_aus"}
    assert config["tflite"] == "ganimation.tflite"
    # TF Serving's layout: only the version folder, no temporary leftovers beside it
    assert sorted(p.name for p in exported.parent.iterdir()) == ["1"]
    assert (exported / "saved_model.pb").is_file() and (exported / "variables" / "variables.index").is_file()


# ------------------------------------------------------------------ saved_model_cli
def test_saved_model_cli_show_lists_fixed_signatures(exported):
    result = subprocess.run(_saved_model_cli() + ["show", "--all", "--dir", str(exported)], capture_output=True,
                            text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    blocks = {}
    for chunk in text.split("signature_def['")[1:]:
        name, _, body = chunk.partition("']:")
        blocks[name] = body.split("Method name is")[0]

    def tensors(body, kind):
        found = {}
        for part in body.split("%s['" % kind)[1:]:
            key, _, rest = part.partition("']")
            dtype = rest.split("dtype: ")[1].split()[0]
            shape = rest.split("shape: ")[1].split("\n")[0].strip()
            found[key] = (dtype, shape)
        return found

    s = "(-1, %d, %d, 3)" % (SIZE, SIZE)
    m = "(-1, %d, %d, 1)" % (SIZE, SIZE)
    a = "(-1, %d)" % NUM_AUS
    assert tensors(blocks["serving_default"], "inputs") == {"image": ("DT_FLOAT", s), "aus": ("DT_FLOAT", a)}
    assert tensors(blocks["serving_default"], "outputs") == {
        "image": ("DT_FLOAT", s), "attention_mask": ("DT_FLOAT", m), "color_mask": ("DT_FLOAT", s)}
    assert tensors(blocks["serving_uint8"], "inputs") == {"image": ("DT_UINT8", s), "aus": ("DT_FLOAT", a)}
    assert tensors(blocks["serving_uint8"], "outputs") == {
        "image_uint8": ("DT_UINT8", s), "attention_mask": ("DT_FLOAT", m), "color_mask": ("DT_FLOAT", s)}
    assert tensors(blocks["estimate_aus"], "inputs") == {"image": ("DT_FLOAT", s)}
    assert tensors(blocks["estimate_aus"], "outputs") == {"aus": ("DT_FLOAT", a), "aus_raw": ("DT_FLOAT", a)}
    for name in ("serving_default", "serving_uint8", "estimate_aus"):
        assert "tensorflow/serving/predict" in text.split("signature_def['%s']" % name)[1].split("signature_def")[0]


def test_saved_model_cli_run_matches(tmp_path, model, exported, inputs):
    """The TF1 Session loader (the path TF Serving's C++ loader takes) restores every variable."""
    x, a, u = inputs[3]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "a.npy", a)
    out = tmp_path / "out"
    result = subprocess.run(_saved_model_cli() + [
        "run", "--dir", str(exported), "--tag_set", "serve", "--signature_def", "serving_default",
        "--inputs", "image=%s;aus=%s" % (tmp_path / "x.npy", tmp_path / "a.npy"), "--outdir", str(out)],
        capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    want = _expected(model, x, a, u)["serving_default"]
    got = {k: np.load(out / ("%s.npy" % k)) for k in want}
    _assert_outputs_match(got, want, where="saved_model_cli run")


# ------------------------------------------------------------------ signatures refuse bad requests
@pytest.mark.parametrize("signature,image,aus", [
    ("serving_default", ((1, SIZE, SIZE, 4), "float32"), ((1, NUM_AUS), "float32")),   # 4 channels
    ("serving_default", ((1, SIZE, SIZE, 3), "int32"), ((1, NUM_AUS), "float32")),     # int image
    ("serving_default", ((1, SIZE, SIZE, 3), "float32"), ((1, NUM_AUS - 1), "float32")),  # 16 AUs
    ("serving_default", ((1, SIZE // 2, SIZE // 2, 3), "float32"), ((1, NUM_AUS), "float32")),  # 16 px
    ("serving_default", ((2, SIZE, SIZE, 3), "float32"), ((1, NUM_AUS), "float32")),   # batch mismatch
    ("serving_default", ((1, SIZE, SIZE, 3), "uint8"), ((1, NUM_AUS), "float32")),     # uint8 on float
    ("serving_uint8", ((1, SIZE, SIZE, 3), "float32"), ((1, NUM_AUS), "float32")),     # float on uint8
    ("serving_uint8", ((1, SIZE, SIZE, 3), "uint8"), ((1, NUM_AUS + 1), "float32")),   # 18 AUs
    ("estimate_aus", ((1, SIZE, SIZE, 1), "float32"), None),                          # grey image
])
def test_signature_rejects_bad_requests(loaded, signature, image, aus):
    feeds = {"image": tf.zeros(image[0], image[1])}
    if aus is not None:
        feeds["aus"] = tf.zeros(aus[0], aus[1])
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError)):
        loaded.signatures[signature](**feeds)


def test_signature_accepts_good_request(loaded):
    out = loaded.signatures["serving_uint8"](image=tf.zeros([2, SIZE, SIZE, 3], tf.uint8), aus=tf.zeros([2, NUM_AUS]))
    assert out["image_uint8"].dtype == tf.uint8 and out["image_uint8"].shape == (2, SIZE, SIZE, 3)
    assert out["attention_mask"].shape == (2, SIZE, SIZE, 1)


# ------------------------------------------------------------------ atomic version folders
def _entries(folder: Path):
    return sorted(p.name for p in folder.iterdir())


def test_existing_version_refused_then_overwritten(tmp_path, model):
    base = tmp_path / "ganimation"
    first = Path(export_lib.export_saved_model(model, base, 3, include_critic=False))
    (first / "marker").write_text("old")
    with pytest.raises(InputError, match="already exists"):
        export_lib.export_saved_model(model, base, 3)
    assert (first / "marker").read_text() == "old" and _entries(base) == ["3"]
    again = Path(export_lib.export_saved_model(model, base, 3, overwrite=True))
    assert again == first and not (again / "marker").exists()
    assert (again / "saved_model.pb").is_file() and _entries(base) == ["3"]
    assert "estimate_aus" in json.loads((again / export_lib.CONFIG_ASSET).read_text())["signatures"]


def test_failure_in_the_middle_leaves_nothing(tmp_path, model, monkeypatch):
    base = tmp_path / "ganimation"

    def broken_save(*args, **kwargs):
        Path(args[1], "saved_model.pb").write_bytes(b"half")  # something half-written first
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export_lib.export_saved_model(model, base, 5)
    assert _entries(base) == []
    # a failed overwrite keeps the old version untouched
    monkeypatch.undo()
    old = Path(export_lib.export_saved_model(model, base, 5, include_critic=False))
    (old / "marker").write_text("old")
    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError):
        export_lib.export_saved_model(model, base, 5, overwrite=True)
    assert _entries(base) == ["5"] and (old / "marker").read_text() == "old"


@pytest.mark.parametrize("version", [-1, "x", 1.5])
def test_bad_version_or_export_dir(tmp_path, model, version):
    with pytest.raises(InputError, match="version"):
        export_lib.export_saved_model(model, tmp_path / "ganimation", version)


def test_export_dir_that_is_a_version_folder_or_a_file(tmp_path, model):
    with pytest.raises(InputError, match="ends in a number"):
        export_lib.export_saved_model(model, tmp_path / "ganimation" / "1", 1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        export_lib.export_saved_model(model, tmp_path / "file", 1)


# ------------------------------------------------------------------ TF Serving request protos
def test_predict_request_proto_round_trip(loaded, inputs):
    try:
        from tensorflow_serving.apis import predict_pb2
    except ImportError as error:
        pytest.skip("tensorflow-serving-api is not installed (pip install --no-deps "
                    "tensorflow-serving-api==2.21.0): %s" % error)
    x, a, u = inputs[3]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "ganimation"
    request.model_spec.signature_name = "serving_default"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(x))
    request.inputs["aus"].CopyFrom(tf.make_tensor_proto(a))
    wire = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # what the server receives
    assert wire.model_spec.name == "ganimation" and wire.model_spec.signature_name == "serving_default"
    function = loaded.signatures[wire.model_spec.signature_name]
    specs = function.structured_input_signature[1]
    feeds = {}
    for key, proto in wire.inputs.items():
        value = tf.make_ndarray(proto)
        assert value.dtype == specs[key].dtype.as_numpy_dtype and specs[key].shape.is_compatible_with(value.shape)
        feeds[key] = tf.constant(value)
    got = {k: v.numpy() for k, v in function(**feeds).items()}
    direct = {k: v.numpy() for k, v in loaded.signatures["serving_default"](image=tf.constant(x),
                                                                             aus=tf.constant(a)).items()}
    _assert_outputs_match(got, direct, atol=0.0, where="PredictRequest")


def test_grpc_prediction_service_round_trip(loaded, inputs):
    """The docs' gRPC client code against a minimal PredictionService backed by the SavedModel
    (tensorflow_model_server itself is not installable here)."""
    try:
        import grpc
        from concurrent import futures
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as error:
        pytest.skip("tensorflow-serving-api / grpcio not importable: %s" % error)

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            function = loaded.signatures[request.model_spec.signature_name or "serving_default"]
            outputs = function(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        x, a, u = inputs[1]
        with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "ganimation"
            request.model_spec.signature_name = "serving_uint8"
            request.inputs["image"].CopyFrom(tf.make_tensor_proto(u))
            request.inputs["aus"].CopyFrom(tf.make_tensor_proto(a))
            response = stub.Predict(request, timeout=60.0)
            edited = tf.make_ndarray(response.outputs["image_uint8"])
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "ganimation"
            request.model_spec.signature_name = "estimate_aus"
            request.inputs["image"].CopyFrom(tf.make_tensor_proto(x))
            aus = tf.make_ndarray(stub.Predict(request, timeout=60.0).outputs["aus"])
    finally:
        server.stop(0)
    direct = loaded.signatures["serving_uint8"](image=tf.constant(u), aus=tf.constant(a))["image_uint8"].numpy()
    np.testing.assert_array_equal(edited, direct)
    assert edited.dtype == np.uint8 and edited.shape == (1, SIZE, SIZE, 3)
    np.testing.assert_array_equal(aus, loaded.signatures["estimate_aus"](image=tf.constant(x))["aus"].numpy())


# ------------------------------------------------------------------ TFLite
def test_tflite_matches_saved_model(exported, loaded, inputs):
    path = exported / export_lib.TFLITE_FILENAME
    assert path.is_file()
    interpreter = export_lib._tflite_interpreter(str(path))
    assert set(interpreter.get_signature_list()) == {"serving_default", "serving_uint8", "estimate_aus"}
    for b, (x, a, u) in inputs.items():
        calls = {"serving_default": dict(image=x, aus=a), "serving_uint8": dict(image=u, aus=a),
                 "estimate_aus": dict(image=x)}
        for name, feeds in calls.items():
            outputs = loaded.signatures[name](**{k: tf.constant(v) for k, v in feeds.items()})
            want = {k: v.numpy() for k, v in outputs.items()}
            got = interpreter.get_signature_runner(name)(**feeds)
            _assert_outputs_match({k: got[k] for k in want}, want, atol=1e-4, where="tflite %s batch %d" % (name, b))


def test_check_tflite_detects_a_wrong_model(tmp_path, model, exported):
    """check_tflite compares against the SavedModel: a TFLite file of other weights must fail."""
    from ganimation_tl.model import GANimation
    other = GANimation(model.config)  # the seeded initial weights, not the restored ones
    other_sm = tmp_path / "other"
    module = export_lib.build_serving_module(other)
    tf.saved_model.save(module, str(other_sm), signatures=export_lib.serving_signatures(module))
    with pytest.raises(export_lib.ExportError, match="differs"):
        export_lib.check_tflite(str(exported / export_lib.TFLITE_FILENAME), str(other_sm))


# ------------------------------------------------------------------ CLI
def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ganimation_tl.export", *args], capture_output=True, text=True,
                          env=ENV, cwd=str(REPO), timeout=300)


def test_cli_bad_workdir_exits_2(tmp_path):
    result = _cli("--workdir", str(tmp_path / "missing"), "--export_dir", str(tmp_path / "e" / "ganimation"),
                  "--version", "1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "missing" in result.stderr and "Traceback" not in result.stderr
    result = _cli("--workdir", str(tmp_path), "--export_dir", str(tmp_path / "e" / "ganimation"))
    assert result.returncode == 2 and "error: --version is required" in result.stderr
    assert not (tmp_path / "e").exists()


def test_cli_exports_and_refuses_existing_version(tmp_path, workdir):
    base = tmp_path / "export" / "ganimation"
    result = _cli("--workdir", str(workdir[0]), "--export_dir", str(base), "--version", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (base / "2" / "saved_model.pb").is_file()
    assert (base / "2" / "assets.extra" / "ganimation_config.json").is_file()
    assert not (base / "2" / export_lib.TFLITE_FILENAME).exists()
    assert "ckpt-7" in result.stdout and _entries(base) == ["2"]
    again = _cli("--workdir", str(workdir[0]), "--export_dir", str(base), "--version", "2")
    assert again.returncode == 2 and "error: version 2 already exists" in again.stderr
