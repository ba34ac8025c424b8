"""Measure the serving export of a full-size (128 px, paper architecture) GANimation with random weights.

    python bench/bench_export.py [--out /tmp/bench_export] [--repeats 5] [--batches 1,8] [--tflite]

Prints: the time to build the serving module and write the SavedModel (``export_saved_model``), the
SavedModel's size on disk (total and variables), and then, in a FRESH Python process that imports only
TensorFlow (no TensorLayer, no ganimation_tl): the time of ``tf.saved_model.load``, the first call of
``serving_default`` (graph optimisation) and the throughput of ``serving_default`` (images/s, median of
``--repeats`` timed calls after one warm-up call) at each batch size, plus ``estimate_aus`` at batch 1.
With ``--tflite`` also the TFLite conversion time, its size and the interpreter's batch-1 latency.

Random weights take exactly as long as trained ones: the networks are dense convolutions.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRESH_PROCESS = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np
    import tensorflow as tf
    t_import = time.perf_counter() - t0
    path, repeats, batches = sys.argv[1], int(sys.argv[2]), [int(b) for b in sys.argv[3].split(",")]
    t0 = time.perf_counter()
    m = tf.saved_model.load(path)
    t_load = time.perf_counter() - t0
    edit, estimate = m.signatures["serving_default"], m.signatures["estimate_aus"]
    rng = np.random.default_rng(0)
    result = {"import_s": t_import, "load_s": t_load, "tensorlayer_imported": "tensorlayer" in sys.modules}
    for i, b in enumerate(batches):
        x = tf.constant(rng.uniform(-1, 1, (b, 128, 128, 3)).astype(np.float32))
        a = tf.constant(rng.uniform(0, 1, (b, 17)).astype(np.float32))
        t0 = time.perf_counter()
        edit(image=x, aus=a)["image"].numpy()
        if i == 0:
            result["first_call_s"] = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            edit(image=x, aus=a)["image"].numpy()
            times.append(time.perf_counter() - t0)
        med = float(np.median(times))
        result["edit_b%d" % b] = {"median_s": med, "images_per_s": b / med, "ms_per_image": 1e3 * med / b}
    x = tf.constant(rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32))
    estimate(image=x)["aus"].numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        estimate(image=x)["aus"].numpy()
        times.append(time.perf_counter() - t0)
    result["estimate_aus_b1_ms"] = 1e3 * float(np.median(times))
    print(json.dumps(result))
""")


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/bench_export", help="scratch folder (deleted first)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--tflite", action="store_true", help="also convert to TFLite and time batch 1")
    args = ap.parse_args()

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    from ganimation_tl.export import export_saved_model
    from ganimation_tl.model import GANimation, GANimationConfig
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = GANimation(GANimationConfig())  # 128 px, paper architecture, random N(0, 0.02) weights
    t_build = time.perf_counter() - t0
    g_params = sum(int(v.shape.num_elements()) for v in model.generator.all_weights)
    d_params = sum(int(v.shape.num_elements()) for v in model.critic.all_weights)
    print("import TF+TL+ganimation_tl %.1f s; build model %.1f s (G %d params, D %d params)"
          % (t_import, t_build, g_params, d_params))

    t0 = time.perf_counter()
    path = Path(export_saved_model(model, out / "ganimation", 1))
    t_export = time.perf_counter() - t0
    print("export_saved_model (G + critic, 3 signatures): %.1f s -> %s" % (t_export, path))
    print("  SavedModel size %.1f MB (variables %.1f MB, saved_model.pb %.2f MB)"
          % (folder_size(path) / 1e6, folder_size(path / "variables") / 1e6,
             (path / "saved_model.pb").stat().st_size / 1e6))
    t0 = time.perf_counter()
    path_g = Path(export_saved_model(model, out / "ganimation_g_only", 1, include_critic=False))
    print("export_saved_model (generator only, include_critic=False): %.1f s, %.1f MB"
          % (time.perf_counter() - t0, folder_size(path_g) / 1e6))

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(path), str(args.repeats), args.batches],
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print("fresh process (wall %.1f s): import tensorflow %.1f s, tf.saved_model.load %.2f s, first call %.2f s, "
          "tensorlayer imported: %s" % (time.perf_counter() - t0, r["import_s"], r["load_s"], r["first_call_s"],
                                        r["tensorlayer_imported"]))
    for b in [int(b) for b in args.batches.split(",")]:
        e = r["edit_b%d" % b]
        print("  serving_default batch %d: %.3f s per call, %.2f images/s (%.0f ms/image)"
              % (b, e["median_s"], e["images_per_s"], e["ms_per_image"]))
    print("  estimate_aus batch 1: %.0f ms" % r["estimate_aus_b1_ms"])

    if args.tflite:
        import numpy as np
        from ganimation_tl.export import _tflite_interpreter, convert_to_tflite
        t0 = time.perf_counter()
        tfl = convert_to_tflite(str(path), str(out / "ganimation.tflite"))
        t_conv = time.perf_counter() - t0
        interp = _tflite_interpreter(tfl)
        runner = interp.get_signature_runner("serving_default")
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
        a = rng.uniform(0, 1, (1, 17)).astype(np.float32)
        runner(image=x, aus=a)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            runner(image=x, aus=a)
            times.append(time.perf_counter() - t0)
        print("TFLite: convert %.1f s, %.1f MB, serving_default batch 1 %.0f ms"
              % (t_conv, os.path.getsize(tfl) / 1e6, 1e3 * float(np.median(times))))
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
