"""The low-memory mode (``ganimation_tl.runtime``, ``train.py --low_memory``): it takes effect, or says why not."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _python(code):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


def test_low_memory_mode_replaces_the_pool_allocator():
    """After the call a 64 MB tensor leaves TensorFlow's pool statistics at zero (it came from malloc); a fresh
    process without the call has them at >= 64 MB."""
    probe = ("import tensorflow as tf; x = tf.fill([1 << 24], 1.0); x = x + 1.0; "
             "print('HELD', tf.config.experimental.get_memory_info('CPU:0')['current'], float(x[0]))")
    with_mode = _python("from ganimation_tl import runtime; r = runtime.enable_low_memory(); print('MODE', r)\n"
                        + probe)
    assert with_mode.returncode == 0, with_mode.stderr[-2000:]
    held = [line for line in with_mode.stdout.splitlines() if line.startswith("HELD")][0].split()
    assert int(held[1]) < (1 << 20) and float(held[2]) == 2.0
    assert "'mmap_threshold': 262144" in with_mode.stdout
    without = _python(probe)
    assert without.returncode == 0, without.stderr[-2000:]
    held = [line for line in without.stdout.splitlines() if line.startswith("HELD")][0].split()
    assert int(held[1]) >= 64 << 20


def test_gpu_check_leaves_the_low_memory_mode_possible():
    """train.py asks whether a GPU is visible before it decides on the low-memory mode: that question must not start
    TensorFlow's pool allocator."""
    result = _python("from ganimation_tl import runtime\nprint('GPU', runtime.gpu_visible())\n"
                     "print('MODE', runtime.enable_low_memory())")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "GPU False" in result.stdout and "'system_allocator': True" in result.stdout


def test_low_memory_mode_too_late_is_refused():
    result = _python("import tensorflow as tf; x = tf.zeros([1 << 22]); x = x + 1\n"
                     "from ganimation_tl import runtime\n"
                     "try:\n    runtime.enable_low_memory()\nexcept RuntimeError as e:\n    print('REFUSED', e)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "REFUSED" in result.stdout and "before TensorFlow's first operation" in result.stdout


def test_mmap_threshold_range_is_checked():
    from ganimation_tl.runtime import set_mmap_threshold
    with pytest.raises(ValueError, match="mmap threshold"):
        set_mmap_threshold(0)
    with pytest.raises(ValueError, match="mmap threshold"):
        set_mmap_threshold(64 << 20)
