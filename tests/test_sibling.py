"""The shared glue of the sibling models: restore, image grids, common-flag checks."""
import numpy as np
import pytest
from absl import flags

from ganimation_tl.errors import InputError
from ganimation_tl.sibling import (check_positive_flags, define_common_flags, define_config_field_flags,
                                   define_model_flags, images_grid, model_workdir, require_flag, restore_latest,
                                   write_run_json)


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


def test_define_model_flags_adds_config_and_extra_flags_once():
    fv = flags.FlagValues()
    helps = {"toy_width": ("integer", "Width.")}
    define_model_flags(helps, fv, extra=[("string", "toy_path", "Data path.")])
    define_model_flags(helps, fv, extra=[("string", "toy_path", "Data path.")])   # idempotent
    assert fv["toy_width"].help == "Width. Unset: the config default." and fv["toy_width"].default is None
    assert fv["toy_path"].help == "Data path." and "max_steps" in fv


def test_define_config_field_flags_takes_prefixed_fields():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class ToyConfig:
        seed: int = 0
        toy_rate: float = 0.5
        toy_kind: str = "a"

    fv = flags.FlagValues()
    define_config_field_flags(ToyConfig, "toy_", "Toy %s. Unset: %r.", fv)
    assert "seed" not in fv and fv["toy_rate"].help == "Toy rate. Unset: 0.5."
    fv(["prog", "--toy_kind=b"])
    assert fv.toy_kind == "b" and fv.toy_rate is None


def test_require_flag_names_the_missing_flag():
    fv = flags.FlagValues()
    flags.DEFINE_string("toy_path", None, "", flag_values=fv)
    fv(["prog"])
    with pytest.raises(InputError, match=r"--toy_path is required \(a file\)"):
        require_flag(fv, "toy_path", "a file")
    fv(["prog", "--toy_path=x"])
    assert require_flag(fv, "toy_path", "a file") == "x"


def test_write_run_json_writes_into_the_workdir(tmp_path):
    import json
    fv = flags.FlagValues()
    define_common_flags(fv)
    fv(["prog", "--workdir=%s" % tmp_path])
    assert model_workdir("toy", fv) == str(tmp_path)
    path = write_run_json("toy", fv, "result.json", {"a": 1.5})
    assert json.loads(open(path).read()) == {"a": 1.5}
