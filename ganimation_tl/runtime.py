"""Process-wide runtime settings for training on CPU: the low-memory mode (a memory lever of issue 5).

TensorFlow's oneDNN build allocates tensors on the CPU from a BFC pool that grows to the largest step's peak and
never shrinks, and glibc keeps freed buffers below its (growing) mmap threshold in the heap. A GANimation training
process therefore stays at its worst step's resident size. The low-memory mode takes tensors from ``malloc``
instead (``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1``) and lowers glibc's ``M_MMAP_THRESHOLD`` to 256 KiB, so every large
buffer is its own mapping, returned to the operating system when freed. Measured with ``bench/bench_speed.py``
(128 px, batch 4, 5:1 iterations, 2026-12-06, see README "Speed"): peak resident memory 3200 -> 2225 MB, time per
image 553 -> 691 ms (each large buffer is mapped and zeroed afresh).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["LOW_MEMORY_MMAP_THRESHOLD", "enable_low_memory", "gpu_visible", "resolve_bf16", "set_mmap_threshold"]

LOW_MEMORY_MMAP_THRESHOLD = 256 * 1024
"""Bytes: buffers at least this large are mmap-ed by glibc (and unmapped when freed) in the low-memory mode."""

_M_MMAP_THRESHOLD = -3   # glibc's mallopt parameter number (malloc.h)


def set_mmap_threshold(threshold_bytes: int) -> bool:
    """Set glibc's ``M_MMAP_THRESHOLD`` (``mallopt``) for this process.

    Args:
        threshold_bytes: allocations of at least this many bytes get their own mapping; positive, at most
            32 MiB (glibc's ``HEAP_MAX`` / 2 on 64-bit).

    Returns:
        True if applied; False if this C library has no ``mallopt`` (not glibc, e.g. macOS or musl).

    Raises:
        ValueError: ``threshold_bytes`` out of range.
    """
    if not 0 < int(threshold_bytes) <= 32 * 1024 * 1024:
        raise ValueError("mmap threshold must be in (0, 32 MiB], got %r bytes" % (threshold_bytes,))
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes)) == 1


def enable_low_memory(mmap_threshold: int = LOW_MEMORY_MMAP_THRESHOLD) -> dict:
    """Turn on the low-memory mode (module docstring) for this process; call before TensorFlow's first operation.

    Sets ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`` (read when TensorFlow creates its CPU allocator, at the first
    operation, so importing TensorFlow earlier is fine) and glibc's mmap threshold. If TensorFlow has already
    started (its eager context is initialised), it then checks with a 4 MB tensor that the pool allocator is not in
    use; before that it runs no operation, so a ``MultiWorkerMirroredStrategy`` can still be created afterwards
    (tested).

    Args:
        mmap_threshold: bytes, see :func:`set_mmap_threshold`.

    Returns:
        ``{"system_allocator": True, "mmap_threshold": bytes or None}`` (None: not glibc, only the allocator
        changed).

    Raises:
        RuntimeError: TensorFlow already ran an operation in this process with its pool allocator, so the setting
            cannot take effect (start a new process and call this first).
        ValueError: bad ``mmap_threshold``.
    """
    os.environ["TF_ONEDNN_USE_SYSTEM_ALLOCATOR"] = "1"
    applied = set_mmap_threshold(mmap_threshold)
    import tensorflow as tf
    from tensorflow.python.eager import context as eager_context

    result = {"system_allocator": True, "mmap_threshold": int(mmap_threshold) if applied else None}
    if not getattr(eager_context.context(), "_initialized", True):
        # TensorFlow has not started, so its allocator will read the setting. No probe: a first operation here
        # would start TensorFlow before a MultiWorkerMirroredStrategy could configure its collective ops.
        return result
    probe = tf.zeros([1 << 20], tf.float32)   # 4 MB
    try:
        held = tf.config.experimental.get_memory_info("CPU:0")["current"]
    except (ValueError, tf.errors.OpError):
        held = 0   # no allocator statistics: not the pool allocator
    del probe
    if held >= 4 << 20:
        raise RuntimeError("the low-memory mode must be enabled before TensorFlow's first operation in the process "
                           "(TensorFlow's CPU pool allocator already holds %d bytes)" % held)
    return result


def gpu_visible() -> bool:
    """True if TensorFlow sees a GPU. Lists physical devices only, so the low-memory mode can still be enabled
    afterwards (tested)."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def resolve_bf16(requested, cpu_has_bfloat16: bool, gpu_is_visible: bool) -> bool:
    """Whether the GANimation generator (training: every traced step) runs with oneDNN's bfloat16 rewrite; the one
    rule behind ``train.py --bf16`` and ``infer.py --bf16``.

    Args:
        requested: the flag: True (``--bf16``), False (``--nobf16``) or None (unset: automatic).
        cpu_has_bfloat16: the CPU has native bfloat16 arithmetic
            (:func:`ganimation_tl.editing.cpu_supports_bfloat16`).
        gpu_is_visible: TensorFlow sees a GPU (:func:`gpu_visible`).

    Returns:
        ``requested`` when given; otherwise True exactly when the CPU has native bfloat16 and no GPU is visible.
        Measured on this project's 2-core AVX512-BF16 host (README "Speed", ``docs/synthetic_eval.md``): training
        0.6-0.75x the float32 step time with the same synthetic-face evaluation scores within run-to-run spread;
        the generator forward 0.42-0.51x PyTorch's.

    Raises:
        InputError: ``requested`` True on a CPU without native bfloat16 (emulated bfloat16 is slower than float32).
    """
    from ganimation_tl.errors import InputError

    if requested is None:
        return bool(cpu_has_bfloat16) and not gpu_is_visible
    if requested and not cpu_has_bfloat16:
        raise InputError("--bf16: this CPU has no native bfloat16 (avx512_bf16 / amx_bf16 in /proc/cpuinfo); "
                         "emulated bfloat16 is slower than float32, so use --nobf16")
    return bool(requested)
