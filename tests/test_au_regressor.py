"""The independent AU regressor (ganimation_tl.au_regressor): shapes, ranges, learning, save/load, errors."""
import numpy as np
import pytest

from ganimation_tl.errors import InputError


@pytest.fixture(scope="module")
def faces32():
    """12 synthetic faces at 32 px with their exact AU labels."""
    from ganimation_tl.au_regressor import render_faces
    from ganimation_tl.synthetic import SyntheticFaces
    return render_faces(SyntheticFaces(image_size=32, seed=3, num_identities=12), 0, 12)


def test_output_shape_range_and_input_types(faces32):
    from ganimation_tl.au_regressor import AURegressor
    images, _ = faces32
    reg = AURegressor(image_size=32, conv_dim=8)
    out = reg.predict(images)
    assert out.shape == (12, 17) and out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1))
    # uint8 [0, 255] and float [-1, 1] inputs are the same images.
    np.testing.assert_allclose(reg.predict(images.astype(np.float32) / 127.5 - 1.0), out, atol=1e-5)
    assert reg.predict(images[:0]).shape == (0, 17)
    # Variable names follow the project's <prefix>_<layer>/<weight> convention.
    assert all(w.name.startswith("R_") for w in reg.model.all_weights)


def test_training_lowers_error_and_save_load_round_trip(faces32, tmp_path):
    from ganimation_tl.au_regressor import AURegressor, mean_absolute_error, train_au_regressor
    images, aus = faces32
    reg = AURegressor(image_size=32, conv_dim=8)
    before = mean_absolute_error(reg.predict(images), aus)
    record = train_au_regressor(reg, images, aus, steps=40, batch_size=12, learning_rate=3e-3, flip=False,
                                log_every=10, validation=(images, aus))
    after = mean_absolute_error(reg.predict(images), aus)
    assert record["train_mse"] < 0.5 * record["first_mse"], record
    assert after < 0.6 * before, (before, after)
    assert record["validation_mae"] == pytest.approx(after, abs=1e-6)

    reg.save(str(tmp_path / "r"))
    assert AURegressor.exists(str(tmp_path / "r"))
    assert not [p.name for p in (tmp_path / "r").iterdir() if ".tmp-" in p.name]
    again = AURegressor.load(str(tmp_path / "r"))
    np.testing.assert_array_equal(again.predict(images), reg.predict(images))
    assert again.info["steps"] == 40


def test_bad_inputs_raise_input_error(faces32, tmp_path):
    from ganimation_tl.au_regressor import AURegressor, build_au_regressor, train_au_regressor
    images, aus = faces32
    reg = AURegressor(image_size=32, conv_dim=8)
    with pytest.raises(InputError, match="multiple of 32"):
        build_au_regressor(image_size=48)
    with pytest.raises(InputError, match=r"\[B, 32, 32, 3\]"):
        reg.predict(images[:, :16])
    with pytest.raises(InputError, match=r"\[-1, 1\]"):
        reg.predict(images.astype(np.float32))          # float images must be scaled to [-1, 1]
    with pytest.raises(InputError, match="aus must be"):
        train_au_regressor(reg, images, aus[:5], steps=1)
    with pytest.raises(InputError, match="aus must be"):
        train_au_regressor(reg, images, aus * 5, steps=1)  # OpenFace 0..5 instead of [0, 1]
    with pytest.raises(InputError, match="not a saved AU regressor"):
        AURegressor.load(str(tmp_path))
    (tmp_path / "regressor.json").write_text("{not json")
    (tmp_path / "weights.index").write_text("")
    with pytest.raises(InputError, match="cannot read"):
        AURegressor.load(str(tmp_path))
