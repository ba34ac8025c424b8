"""tf.distribute: MirroredStrategy equals one device on the same global batch; MultiWorkerMirroredStrategy
over two local processes stays in sync, only the chief writes the workdir, and its checkpoint resumes.

Every TensorFlow set-up runs in a subprocess: logical CPU devices and the multi-worker cluster must be
configured before the first TensorFlow op, which the pytest process may already have run.
"""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _env(**extra):
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def _run_script(source: str, *args, timeout=120, **env):
    proc = subprocess.run([sys.executable, "-c", source, *map(str, args)], cwd=str(REPO), env=_env(**env),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, "subprocess failed (%d):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:],
                                                                       proc.stderr[-6000:])
    return proc


# The mirrored-vs-single comparison. Both models start from the same weights (copied), see the same
# global batch of 4 (2 faces per replica under MirroredStrategy) and the same gradient-penalty
# interpolation weights: the U(0, 1) draw per sample is replaced by an explicit ``gp_alpha``
# [4, 1, 1, 1], sharded with the images, so both runs interpolate identically.
_MIRRORED = textwrap.dedent(r"""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    from ganimation_tl.distribute import make_strategy
    from ganimation_tl.model import GANimation, GANimationConfig

    cfg = GANimationConfig(image_size=32, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=4,
                           batch_size=4)
    strategy = make_strategy("mirrored", ["/cpu:0", "/cpu:1"])
    single = GANimation(cfg)
    mirrored = GANimation(cfg, strategy=strategy)
    nets = lambda m: list(m.generator.all_weights) + list(m.critic.all_weights)
    out = {"replicas": strategy.num_replicas_in_sync,
           # Keras 3 optimizer variables wrap the tf.Variable in ``.value``.
           "non_distributed": [v.name for v in nets(mirrored) + list(mirrored.g_optimizer.variables)
                               + list(mirrored.d_optimizer.variables)
                               if not (isinstance(v, tf.distribute.DistributedValues)
                                       or isinstance(getattr(v, "value", None), tf.distribute.DistributedValues))],
           "num_weights": len(nets(mirrored))}
    # Adam's update is invariant to the gradient's scale, so a wrongly weighted gradient would go
    # unnoticed: compare the updates with plain SGD (built in each model's scope).
    for m in (single, mirrored):
        with m.strategy.scope():
            m.g_optimizer, m.d_optimizer = tf.keras.optimizers.SGD(0.01), tf.keras.optimizers.SGD(0.01)
            m.g_optimizer.build(m.generator.trainable_weights)
            m.d_optimizer.build(m.critic.trainable_weights)
    rng = np.random.default_rng(1)
    for a in nets(single):   # random weights, not only the initial ones (gamma=1, beta=0, ...)
        a.assign(a.numpy() + rng.normal(0, 0.05, a.shape).astype(np.float32))
    for a, b in zip(nets(single), nets(mirrored)):
        b.assign(a.numpy())
    initial = [a.numpy() for a in nets(single)]
    batch = {"images": rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32),
             "aus": rng.uniform(0, 1, (4, 17)).astype(np.float32),
             "target_aus": rng.uniform(0, 1, (4, 17)).astype(np.float32),
             "gp_alpha": rng.uniform(0, 1, (4, 1, 1, 1)).astype(np.float32)}
    dist = next(iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(batch).batch(4))))
    out["local_batches"] = [int(t.shape[0]) for t in strategy.experimental_local_results(dist["images"])]
    c1 = single.critic_step(batch["images"], batch["aus"], batch["target_aus"], batch["gp_alpha"])
    c2 = mirrored.critic_step(dist["images"], dist["aus"], dist["target_aus"], dist["gp_alpha"])
    g1 = single.generator_step(batch["images"], batch["aus"], batch["target_aus"])
    g2 = mirrored.generator_step(dist["images"], dist["aus"], dist["target_aus"])
    out["losses"] = {k: [float(c1[k] if k in c1 else g1[k]), float(c2[k] if k in c2 else g2[k])]
                     for k in list(c1) + list(g1)}
    diffs, moved, synced = [], [], True
    for a, b, start in zip(nets(single), nets(mirrored), initial):
        values = [v.numpy() for v in strategy.experimental_local_results(b)]
        synced &= all(np.array_equal(values[0], v) for v in values[1:])
        diffs.append(float(np.max(np.abs(a.numpy() - values[0]))))
        moved.append(float(np.max(np.abs(a.numpy() - start))))
    out["max_weight_diff"] = max(diffs)
    out["max_update"] = max(moved)
    out["replicas_identical"] = bool(synced)
    print("RESULT" + json.dumps(out))
    sys.stderr.write(json.dumps({k: out[k] for k in ("max_update", "max_weight_diff")}) + "\n")
""")


def test_mirrored_two_replicas_equal_one_device():
    proc = _run_script(_MIRRORED, timeout=120)
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result["replicas"] == 2
    assert result["local_batches"] == [2, 2]
    # Every network variable and optimizer slot is mirrored (incl. the transposed convolutions).
    assert result["num_weights"] > 10
    assert result["non_distributed"] == []
    for name, (one, two) in result["losses"].items():
        assert two == pytest.approx(one, rel=1e-4, abs=1e-5), name
    # One SGD critic step and one generator step: the weights move by up to max_update; the two runs'
    # updates must agree to float32 round-off (a 2x weighting error would differ by ~max_update).
    assert result["max_update"] > 1e-3
    assert result["max_weight_diff"] < 1e-4 * result["max_update"] + 1e-6
    assert result["replicas_identical"]


_WORKER = textwrap.dedent(r"""
    import sys
    import numpy as np
    out = sys.argv[1]
    argv = ["train.py"] + sys.argv[2:]
    import ganimation_tl.trainer as trainer_module
    captured = {}
    original_run = trainer_module.Trainer.run
    def run(self):
        captured["trainer"] = self
        return original_run(self)
    trainer_module.Trainer.run = run
    import train
    train.FLAGS(argv)
    from absl import logging
    logging.set_verbosity(logging.INFO)
    code = train.main([argv[0]])
    model = captured["trainer"].model
    weights = [v.numpy() for v in list(model.generator.all_weights) + list(model.critic.all_weights)]
    np.savez(out, *weights, step=int(captured["trainer"].step.numpy()),
             d_iterations=int(model.d_optimizer.iterations.numpy()))
    sys.exit(code)
""")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _load(path):
    with np.load(path) as data:
        arrays = [data["arr_%d" % i] for i in range(len([k for k in data.files if k.startswith("arr_")]))]
        return arrays, int(data["step"]), int(data["d_iterations"])


def _debug_args(workdir):
    # The 32-px debug model (global batch 4: 2 faces per worker), 16 synthetic faces = 4 steps per epoch.
    return ["--flagfile=%s" % (REPO / "configs" / "ganimation_debug.cfg"), "--workdir=%s" % workdir,
            "--n_critic=2", "--synthetic_faces=16", "--synthetic_identities=4",
            "--log_every=2", "--image_every=3", "--checkpoint_every=3"]


def _run_two_workers(tmp_path, args, extra=((), ())):
    """Run ``train.py`` (through _WORKER) as workers 0 and 1 of a loopback cluster; returns their logs."""
    ports = _free_ports(2)
    cluster = {"worker": ["127.0.0.1:%d" % p for p in ports]}
    procs = []
    for index in range(2):
        env = _env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        log = open(tmp_path / ("worker%d.log" % index), "w")
        procs.append((subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(tmp_path / ("worker%d.npz" % index)), *args,
             "--strategy=multi_worker", *extra[index]],
            cwd=str(REPO), env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        for proc, log in procs:
            proc.wait(timeout=150)
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
            log.close()
    logs = [(tmp_path / ("worker%d.log" % i)).read_text() for i in range(2)]
    for (proc, _), text in zip(procs, logs):
        assert proc.returncode == 0, text[-6000:]
    return logs


def test_multi_worker_two_processes_stay_in_sync_and_chief_checkpoint_resumes(tmp_path):
    workdir = tmp_path / "run"
    common = _debug_args(workdir)
    logs = _run_two_workers(tmp_path, common + ["--max_steps=5"])
    assert "2 replicas, chief" in logs[0] and "2 replicas, worker 1" in logs[1]
    # GANimation's default low-memory mode on a CPU host starts no TensorFlow operation before the strategy exists.
    assert all("Low-memory mode: TensorFlow tensors from malloc" in log for log in logs)

    w0, step0, it0 = _load(tmp_path / "worker0.npz")
    w1, step1, it1 = _load(tmp_path / "worker1.npz")
    assert step0 == step1 == 5 and it0 == it1 == 5
    assert len(w0) == len(w1) > 10
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)

    # Only the chief wrote the workdir: its checkpoints (step 3 and the final 5), summaries, samples
    # and config.json; the other worker's scratch folder is gone.
    names = sorted(os.listdir(workdir))
    assert names == ["checkpoints", "config.json", "samples", "tb"], names
    ckpts = sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.endswith(".index"))
    assert ckpts == ["ckpt-3.index", "ckpt-5.index"]

    # A single-process default-strategy run resumes from the chief's checkpoint with the same weights.
    proc = _run_script(_WORKER, tmp_path / "resumed.npz", *common, "--strategy=default", "--max_steps=5",
                       timeout=90)
    assert "Nothing to do" in proc.stderr + proc.stdout
    w2, step2, it2 = _load(tmp_path / "resumed.npz")
    assert step2 == 5 and it2 == 5
    # The untrained start differs, so equality shows the restore (not the seed) set these weights.
    for a, b in zip(w0, w2):
        np.testing.assert_array_equal(a, b)


def test_make_strategy_rejects_bad_names_and_tf_config():
    source = textwrap.dedent(r"""
        import os
        from ganimation_tl.distribute import make_strategy, is_chief
        from ganimation_tl.errors import InputError
        import tensorflow as tf
        assert make_strategy("default") is tf.distribute.get_strategy() and is_chief(make_strategy("default"))
        for name, config in (("bogus", ""), ("multi_worker", ""), ("multi_worker", "{not json"),
                             ("multi_worker", '{"cluster": {"worker": ["127.0.0.1:1"]}, '
                                              '"task": {"type": "worker", "index": 3}}')):
            os.environ["TF_CONFIG"] = config
            try:
                make_strategy(name)
            except InputError as error:
                print("OK", name, error)
            else:
                raise SystemExit("no InputError for %s %r" % (name, config))
        try:
            make_strategy("default", ["/cpu:0"])
        except InputError:
            print("OK devices")
    """)
    proc = _run_script(source, timeout=60)
    assert proc.stdout.count("OK") == 5, proc.stdout
    assert "TF_CONFIG" in proc.stdout


@pytest.mark.slow  # ~21 s; the default run keeps the two-worker sync + chief-resume test
def test_multi_worker_time_budget_of_one_worker_stops_both_at_the_same_step(tmp_path):
    workdir = tmp_path / "run"
    # Only worker 1 has a (tiny) time budget: it runs out after its first step, and the chief, which
    # has none, must stop at the same step rather than wait for it forever.
    logs = _run_two_workers(tmp_path, _debug_args(workdir) + ["--max_steps=8"],
                            extra=((), ("--max_minutes=0.0001",)))
    assert "Time budget" in logs[1] and "another worker stopped" in logs[0]
    w0, step0, _ = _load(tmp_path / "worker0.npz")
    w1, step1, _ = _load(tmp_path / "worker1.npz")
    assert step0 == step1 == 1
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    ckpts = sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.endswith(".index"))
    assert ckpts == ["ckpt-1.index"]
    assert not any(name.startswith(".worker") for name in os.listdir(workdir))
