"""Build the ``tf.distribute`` strategy that training runs under, and tell chief from workers.

Three strategies (``train.py --strategy``):

* ``default``: ``tf.distribute.get_strategy()``, the no-op default strategy (one device, exactly
  the single-process code path);
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over all local GPUs (or the given devices; on a
  machine without GPU it uses the CPU), synchronous data parallelism inside one process;
* ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy``, synchronous data parallelism
  over several processes/hosts, the cluster and this process's role read from the ``TF_CONFIG``
  environment variable (``{"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker",
  "index": i}}``). Worker 0 is the chief.

Checkpoints, summaries, sample grids and ``config.json`` are written by the chief only; other
workers write their (collective) checkpoint saves to a scratch folder that is deleted afterwards
(:func:`worker_scratch_dir`), the pattern of TensorFlow's multi-worker tutorial.

Source: TensorFlow guide "Distributed training with TensorFlow" and "Multi-worker training with
Keras / custom training loop"; ``../shared/docs/toolchain.md`` section 1.4.
"""
from __future__ import annotations

import json
import os
from typing import Optional, Sequence

from ganimation_tl.errors import InputError

__all__ = ["STRATEGIES", "make_strategy", "is_chief", "worker_index", "worker_scratch_dir",
           "num_replicas", "first_local_value"]

#: Accepted values of ``--strategy``.
STRATEGIES = ("default", "mirrored", "multi_worker")


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise InputError("TF_CONFIG is not valid JSON (%s): %r" % (error, raw[:200])) from None
    if not isinstance(value, dict):
        raise InputError("TF_CONFIG must be a JSON object with \"cluster\" and \"task\", got %r" % raw[:200])
    return value


def make_strategy(name: str = "default", devices: Optional[Sequence[str]] = None):
    """Create the distribution strategy ``name``.

    Args:
        name: one of :data:`STRATEGIES`.
        devices: for ``mirrored`` only: device names (``["/gpu:0", "/gpu:1"]``); default: all local
            GPUs, else the CPU.

    Returns:
        A ``tf.distribute.Strategy``. Build the model (networks and optimizers) inside its
        ``scope()``.

    Call it before any TensorFlow op and before importing TensorLayer (whose import starts the
    TensorFlow context): ``MultiWorkerMirroredStrategy`` otherwise fails with "Collective ops must be
    configured at program startup". Likewise logical devices must be configured before.

    Raises:
        InputError: unknown name; ``devices`` given for another strategy; for ``multi_worker``, a
            missing or invalid ``TF_CONFIG`` (it must list the workers and this task's index).
    """
    if name not in STRATEGIES:
        raise InputError("--strategy must be one of %s, got %r" % (", ".join(STRATEGIES), name))
    if devices is not None and name != "mirrored":
        raise InputError("devices can only be given with --strategy=mirrored, not %r" % name)
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    config = _tf_config()
    cluster = config.get("cluster") if isinstance(config.get("cluster"), dict) else {}
    task = config.get("task") if isinstance(config.get("task"), dict) else {}
    if not isinstance(cluster.get("worker"), list) or not cluster["worker"]:
        raise InputError("--strategy=multi_worker needs TF_CONFIG with a "
                         "\"cluster\": {\"worker\": [\"host:port\", ...]} list (got TF_CONFIG=%r)"
                         % os.environ.get("TF_CONFIG", ""))
    task_type, index = task.get("type"), task.get("index")
    members = cluster.get(task_type) if task_type in ("worker", "chief") else None
    if not isinstance(members, list) or not isinstance(index, int) or not 0 <= index < len(members):
        raise InputError("TF_CONFIG \"task\" must be {\"type\": \"worker\" (or \"chief\"), \"index\": i} with i an "
                         "index into that list of \"cluster\", got %r" % (task,))
    return tf.distribute.MultiWorkerMirroredStrategy()


def worker_index(strategy=None) -> int:
    """This process's worker index (0 for the default and mirrored strategies)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return 0
    return int(resolver.task_id or 0)


def is_chief(strategy=None) -> bool:
    """True if this process writes checkpoints, summaries and images: always, except on workers
    1.. of a ``MultiWorkerMirroredStrategy`` (worker 0, or a task of type ``chief``, is the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    task_type = resolver.task_type
    return task_type == "chief" or (task_type == "worker" and int(resolver.task_id or 0) == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())


def worker_scratch_dir(workdir: str, strategy=None) -> str:
    """Where a non-chief worker writes its share of a checkpoint save (deleted after the run):
    ``<workdir>/.worker_<i>_scratch``. Returns ``workdir`` itself for the chief."""
    if is_chief(strategy):
        return workdir
    return os.path.join(workdir, ".worker_%d_scratch" % worker_index(strategy))


def num_replicas(strategy=None) -> int:
    """Replicas in sync (1 without a strategy)."""
    return int(getattr(strategy, "num_replicas_in_sync", 1) or 1)


def first_local_value(value):
    """The first local replica's component of a per-replica value (the value itself otherwise)."""
    import tensorflow as tf

    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value
