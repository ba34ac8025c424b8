"""Training and inference speed of the TensorLayer port against the PyTorch reference (issue 5).

``python bench/bench_speed.py [--batch_sizes=4,25] [--repeats=3] [--passes=1] [--frameworks=tl,torch]``

Every figure comes from a fresh worker process (so peak resident memory is that measurement's own),
the frameworks interleaved so both see the same machine load. Printed per batch size, in ms per
image (median of ``--repeats`` timed calls after a warm-up call, pooled over ``--passes``):

* generator inference (edit = G forward + composition);
* critic step; generator step;
* one full 5:1 iteration cycle (``n_critic`` = 5 iterations: 5 critic steps + 1 generator step,
  which consume 5 batches; ms per image = cycle time / (5 * batch)). TL runs ``GANimation.train_step``
  with its defaults (fused generator iteration, joint critic forward, fused Adam). Variants are
  ``tl-`` plus ``+``-joined tokens: ``unfused`` (the official order), ``micro5`` (generator-step
  micro-batches of 5), ``bf16`` (oneDNN's automatic bfloat16 rewrite of the traced steps, grappler
  ``auto_mixed_precision_onednn_bfloat16``: fp32 weights, bf16 convolutions and matmuls; CPUs with
  AVX512-BF16 or AMX: the bf16-training lever), ``sysalloc`` (``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1``:
  oneDNN's large buffers from malloc instead of TensorFlow's never-shrinking BFC pool), ``mmap``
  (glibc ``M_MMAP_THRESHOLD`` 256 KiB: large buffers go back to the OS when freed), ``lowmem`` (=
  ``sysalloc+mmap``, what ``train.py --low_memory`` does: ``ganimation_tl.runtime``), ``twocalls``
  (critic scores real and fake in two calls), ``kerasadam`` (Keras' Adam instead of the fused kernel),
  ``old`` (= ``twocalls+kerasadam``, the defaults before 2026-12-06); e.g. ``tl-bf16+lowmem``;
* ``trainer`` (TL): the project's real training, ``Trainer.run`` on on-the-fly synthetic faces
  through the ``tf.data`` pipeline with scalar summaries, timed by the loop itself over 10 iterations
  after 5 warm-up iterations; plus its input wait (share of time waiting for data) and the time of
  one checkpoint write (``checkpoint_seconds``; amortise it over ``--checkpoint_every``);
* steps per second, peak RSS (MB), and achieved GFLOP/s against the machine's measured fp32 matmul
  rate (TF, N=2048).

FLOPs are counted analytically from the convolutions (``ganimation_tl.bench.flops_per_image``). Results go to ``docs/results/speed.json`` (atomic write).
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import run_result_worker  # noqa: E402
from ganimation_tl.bench import N_CRITIC, flops_per_image  # noqa: E402

flags.DEFINE_list("batch_sizes", ["4", "25"], "Batch sizes.")
flags.DEFINE_list("frameworks", ["tl", "torch"], "tl, torch, and TL variants tl-TOKEN[+TOKEN...] with tokens "
                  "unfused, micro5, bf16, sysalloc, mmap, lowmem, twocalls, kerasadam, old (see the module "
                  "docstring).")
flags.DEFINE_list("measures", ["infer", "critic", "generator", "iteration", "trainer"], "What to time.")
flags.DEFINE_integer("image_size", 128, "Image side.")
flags.DEFINE_integer("repeats", 3, "Timed calls per measurement, after one warm-up call.")
flags.DEFINE_integer("passes", 1, "Fresh-process passes per measurement (pooled).")
flags.DEFINE_string("worker", None, "Internal: framework:measure:batch to run in this process.")
flags.DEFINE_string("out", "docs/results/speed.json", "Where to write the JSON results.")
FLAGS = flags.FLAGS


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _times(fn, repeats):
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


VARIANT_TOKENS = ("unfused", "micro5", "bf16", "sysalloc", "mmap", "lowmem", "twocalls", "kerasadam", "old")


def variant_tokens(variant: str) -> set:
    """The tokens of a TL variant string (``"bf16+sysalloc"`` -> {"bf16", "sysalloc"}); ``old`` expands."""
    tokens = {t for t in variant.split("+") if t}
    unknown = tokens - set(VARIANT_TOKENS)
    if unknown:
        raise SystemExit("error: --frameworks: unknown TL variant token(s) %s (known: %s)"
                         % (", ".join(sorted(unknown)), ", ".join(VARIANT_TOKENS)))
    if "old" in tokens:
        tokens |= {"twocalls", "kerasadam"}
    if "lowmem" in tokens:
        tokens |= {"sysalloc", "mmap"}
    return tokens


def _worker_tl(measure, batch, size, repeats, variant):
    tokens = variant_tokens(variant)
    if "sysalloc" in tokens:   # read when TensorFlow creates its CPU allocator (first op), so before any op
        os.environ["TF_ONEDNN_USE_SYSTEM_ALLOCATOR"] = "1"
    if "mmap" in tokens:
        from ganimation_tl.runtime import LOW_MEMORY_MMAP_THRESHOLD, set_mmap_threshold
        set_mmap_threshold(LOW_MEMORY_MMAP_THRESHOLD)
    import numpy as np
    import tensorflow as tf
    from ganimation_tl.model import GANimation, GANimationConfig

    if "bf16" in tokens:
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
    config = GANimationConfig(image_size=size, batch_size=batch,
                              fuse_generator_forward="unfused" not in tokens,
                              micro_batch_size=5 if "micro5" in tokens else 0,
                              critic_joint_forward="twocalls" not in tokens,
                              fused_adam="kerasadam" not in tokens)
    if measure == "trainer":
        return _worker_trainer(config, repeats)
    model = GANimation(config)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32)
    a = tf.constant(rng.uniform(0, 1, (batch, 17)), tf.float32)
    t = tf.constant(rng.uniform(0, 1, (batch, 17)), tf.float32)
    b = {"images": x, "aus": a, "target_aus": t}
    fns = {
        "infer": (lambda: model.edit(x, t)[0].numpy(), batch),
        "critic": (lambda: float(model.critic_step(x, a, t)["critic/total"]), batch),
        "generator": (lambda: float(model.generator_step(x, a, t)["generator/total"]), batch),
        "iteration": (lambda: [float(model.train_step(b, s)["critic/total"]) for s in range(N_CRITIC)],
                      N_CRITIC * batch),
    }
    fn, images = fns[measure]
    if measure == "iteration":   # trace both paths before timing
        fn()
    return {"seconds": _times(fn, repeats), "images": images}


def _worker_trainer(config, repeats):
    """The real training path: synthetic faces -> tf.data -> Trainer (summaries, checkpoints)."""
    import numpy as np
    from ganimation_tl.input_pipeline import make_dataset
    from ganimation_tl.model import GANimation
    from ganimation_tl.synthetic import SyntheticFaces
    from ganimation_tl.trainer import Trainer, TrainerOptions

    faces = SyntheticFaces(image_size=config.image_size, seed=0, num_identities=200)
    count = config.batch_size * 40
    indices = np.arange(count)
    aus = np.stack([faces.aus_of(int(i)) for i in indices])

    def loader(index, size):
        return faces.sample(int(index)).image

    def dataset_for(epoch, skip):
        return make_dataset(indices, aus, image_size=config.image_size, batch_size=config.batch_size,
                            seed=0, epoch=epoch, skip_batches=skip, target_noise=0.1, loader=loader)

    model = GANimation(config)
    warm, timed = N_CRITIC, 2 * N_CRITIC
    with tempfile.TemporaryDirectory() as workdir:
        def run(max_steps):
            options = TrainerOptions(workdir=workdir, epochs=1, steps_per_epoch=40, max_steps=max_steps,
                                     log_every=timed, image_every=0, checkpoint_every=10 ** 6, keep_checkpoints=1)
            trainer = Trainer(model, dataset_for, options, print_fn=lambda s: None)
            return trainer, trainer.run()
        run(warm)
        trainer, metrics = run(warm + timed)
        # The loop's own rate over the timed window (data waits and summaries included; the restore
        # before it and the final checkpoint after it excluded: checkpoints are timed separately).
        seconds = timed / metrics["perf/steps_per_second"]
        t0 = time.perf_counter()
        trainer.save(warm + timed + 1)
        save_seconds = time.perf_counter() - t0
    return {"seconds": [seconds], "images": timed * config.batch_size, "checkpoint_seconds": save_seconds,
            "input_wait": float(metrics.get("perf/input_wait_fraction", float("nan")))}


def _worker_torch(measure, batch, size, repeats):
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_reference import Reference

    ref = Reference(size)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    a = torch.rand(batch, 17, generator=g)
    t = torch.rand(batch, 17, generator=g)
    params = (sum(p.numel() for p in ref.G.parameters()), sum(p.numel() for p in ref.D.parameters()))
    fns = {
        "infer": (lambda: ref.edit(x, t), batch),
        "critic": (lambda: ref.critic_step(x, a, t), batch),
        "generator": (lambda: ref.generator_step(x, a, t), batch),
        "iteration": (lambda: [ref.iteration(x, a, t, s) for s in range(N_CRITIC)], N_CRITIC * batch),
    }
    fn, images = fns[measure]
    return {"seconds": _times(fn, repeats), "images": images, "params": params}


def _matmul_gflops() -> float:
    import tensorflow as tf
    n = 2048
    a = tf.random.normal([n, n])
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)))
    seconds = statistics.median(_times(lambda: f().numpy(), 5))
    return 2 * n ** 3 / seconds / 1e9


def worker(spec: str) -> dict:
    framework, measure, batch = spec.split(":")
    batch = int(batch)
    if framework == "matmul":
        return {"gflops": _matmul_gflops()}
    base, _, variant = framework.partition("-")
    if base == "tl":
        result = _worker_tl(measure, batch, FLAGS.image_size, FLAGS.repeats, variant)
    else:
        result = _worker_torch(measure, batch, FLAGS.image_size, FLAGS.repeats)
    result["peak_rss_mb"] = _peak_mb()
    return result


def _run_worker(spec):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker=" + spec, "--image_size=%d" % FLAGS.image_size,
           "--repeats=%d" % FLAGS.repeats]
    return run_result_worker(cmd, spec)


def main(argv):
    if FLAGS.worker:
        print("RESULT " + json.dumps(worker(FLAGS.worker)), flush=True)
        return 0
    for framework in FLAGS.frameworks:   # refuse unknown names before minutes of measuring
        base, _, variant = framework.partition("-")
        if base not in ("tl", "torch") or (base == "torch" and variant):
            raise SystemExit("error: --frameworks: unknown framework %r (tl, torch or tl-TOKEN[+TOKEN...])"
                             % framework)
        variant_tokens(variant)
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "processor": platform.processor() or "unknown", "python": platform.python_version()},
               "image_size": FLAGS.image_size, "repeats": FLAGS.repeats, "passes": FLAGS.passes, "rows": []}
    results["matmul_gflops"] = statistics.median(_run_worker("matmul:-:0")["gflops"] for _ in range(2))
    import tensorflow as tf
    results["machine"]["tensorflow"] = tf.__version__
    try:
        import torch
        results["machine"]["torch"] = torch.__version__
    except ImportError:
        pass
    print("fp32 matmul (TF, N=2048): %.0f GFLOP/s" % results["matmul_gflops"])
    header = "%-11s %-9s %5s %9s %8s %8s %6s %9s %7s" % ("framework", "measure", "batch", "ms/image", "steps/s",
                                                        "GFLOP/s", "%peak", "RSS MB", "wait")
    print(header)
    for batch in [int(b) for b in FLAGS.batch_sizes]:
        for measure in FLAGS.measures:
            for framework in FLAGS.frameworks:
                if measure == "trainer" and not framework.startswith("tl"):
                    continue
                runs = [_run_worker("%s:%s:%d" % (framework, measure, batch)) for _ in range(FLAGS.passes)]
                per_image = [s / r["images"] for r in runs for s in r["seconds"]]
                ms = 1000 * statistics.median(per_image)
                steps = 1000.0 / (ms * batch) * (N_CRITIC if measure in ("iteration", "trainer") else 1)
                fused = framework.startswith("tl") and "unfused" not in framework
                gflops = flops_per_image("iteration" if measure == "trainer" else measure, FLAGS.image_size,
                                         fused) / (ms / 1000) / 1e9
                row = {"framework": framework, "measure": measure, "batch": batch, "ms_per_image": ms,
                       "steps_per_second": steps / (N_CRITIC if measure in ("iteration", "trainer") else 1),
                       "gflops": gflops, "share_of_matmul": gflops / results["matmul_gflops"],
                       "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                       "input_wait": max((r.get("input_wait", 0.0) for r in runs), default=0.0),
                       "checkpoint_seconds": max((r.get("checkpoint_seconds", 0.0) for r in runs), default=0.0),
                       "samples_ms": [1000 * p for p in per_image]}
                results["rows"].append(row)
                print("%-11s %-9s %5d %9.1f %8.3f %8.0f %5.0f%% %9.0f %6.1f%%" % (
                    framework, measure, batch, ms, row["steps_per_second"], gflops, 100 * row["share_of_matmul"],
                    row["peak_rss_mb"], 100 * row["input_wait"]), flush=True)
    _ratios(results)
    os.makedirs(os.path.dirname(FLAGS.out) or ".", exist_ok=True)
    tmp = FLAGS.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, FLAGS.out)
    print("wrote", FLAGS.out)
    return 0


def _ratios(results):
    """Print TL / PyTorch ratios (the issue's targets: training <= 0.85x at batch 25, <= 1.0x at 4,
    memory <= 1.2x, inference <= 0.85x)."""
    rows = {(r["framework"], r["measure"], r["batch"]): r for r in results["rows"]}
    results["ratios"] = []
    for (fw, measure, batch), r in sorted(rows.items()):
        if fw == "torch":
            continue
        ref = rows.get(("torch", "iteration" if measure == "trainer" else measure, batch))
        if not ref:
            continue
        ratio = {"framework": fw, "measure": measure, "batch": batch,
                 "time_ratio": r["ms_per_image"] / ref["ms_per_image"],
                 "memory_ratio": r["peak_rss_mb"] / ref["peak_rss_mb"]}
        results["ratios"].append(ratio)
        print("%s/%s %-9s batch %2d: time %.2fx, peak memory %.2fx" % (fw, "torch", measure, batch,
                                                                      ratio["time_ratio"], ratio["memory_ratio"]))


if __name__ == "__main__":
    app.run(main)
