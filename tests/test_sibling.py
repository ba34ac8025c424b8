"""The shared glue of the sibling models: restore, image grids, common-flag checks."""
import numpy as np
import pytest
from absl import flags

from ganimation_tl.errors import InputError
from ganimation_tl.sibling import check_positive_flags, define_common_flags, images_grid, restore_latest


def test_images_grid_tiles_rows_with_padding_and_converts_ranges():
    a = np.full((4, 5), -1.0, np.float32)            # [-1, 1] grey -> black
    b = np.ones((4, 5, 1), np.float32)                # -> white
    c = np.zeros((4, 5, 3), np.uint8)
    grid = images_grid([[a, b], [c]], pad=2)
    assert grid.shape == (2 * 4 + 2, 2 * 5 + 2, 3) and grid.dtype == np.uint8
    assert (grid[:4, :5] == 0).all() and (grid[:4, 7:] == 255).all()
    assert (grid[4:6] == 255).all()                  # padding row
    assert (grid[6:, :5] == 0).all() and (grid[6:, 7:] == 255).all()   # missing cell stays white


def test_restore_latest_names_the_empty_workdir(tmp_path):
    with pytest.raises(InputError, match="no checkpoint in .*checkpoints"):
        restore_latest(object(), str(tmp_path))


def test_restore_latest_round_trips_variables(tmp_path):
    import tensorflow as tf

    class Tiny:
        def __init__(self, value):
            self.w = tf.Variable(value)

        def trackables(self):
            return {"w": self.w}

    source = Tiny([1.0, 2.0])
    tf.train.CheckpointManager(tf.train.Checkpoint(**source.trackables()), str(tmp_path / "checkpoints"), 1).save()
    target = Tiny([0.0, 0.0])
    path = restore_latest(target, str(tmp_path))
    assert path.endswith("ckpt-1")
    np.testing.assert_array_equal(target.w.numpy(), [1.0, 2.0])


def test_common_flags_are_defined_once_and_checked():
    fv = flags.FlagValues()
    define_common_flags(fv)
    define_common_flags(fv)   # idempotent
    fv(["prog", "--max_steps=0"])
    with pytest.raises(InputError, match="--max_steps must be positive"):
        check_positive_flags(fv, ["max_steps", "log_every"])
