"""Single-image 3D shape (other_models/shape3d.py): generator, differentiable projection, smoke run, bad input."""
import numpy as np
import pytest


def _flags(argv):
    from absl import flags
    import other_models.shape3d as s3d
    fv = flags.FlagValues()
    s3d.define_flags(fv)
    fv(["test"] + argv)
    return fv


def test_generated_shapes_are_nonempty_and_fit_any_view():
    from other_models.shape3d import SHAPE_KINDS, make_shape, voxel_centres
    rng = np.random.default_rng(0)
    t = voxel_centres(32)
    X, Y, Z = np.meshgrid(t, t, t, indexing="ij")
    radius = np.sqrt(X ** 2 + Y ** 2 + Z ** 2)
    for kind in SHAPE_KINDS:
        occ = make_shape(kind, rng)
        assert occ.shape == (32, 32, 32) and occ.dtype == bool
        assert occ.sum() > 50, kind
        assert radius[occ].max() <= 0.97, kind   # rotations keep it inside the cube
    chair = make_shape("chair", rng)
    assert chair[:, 16:, :].sum() > 0 and chair[:, :8, :].sum() > 0  # seat/back up, legs down


def test_rotation_is_orthonormal():
    from other_models.shape3d import rotation
    r = rotation(0.7, -0.3)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-6)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-6)


def test_projection_of_a_box_matches_its_footprint_and_depth():
    from other_models.shape3d import project, rotation
    vox = np.zeros((1, 32, 32, 32), np.float32)
    vox[0, 8:16, 20:28, 12:20] = 1.0    # x 8..15, y 20..27 (up), z 12..19
    sil, depth = project(vox, rotation(0.0, 0.0)[None], 32)
    sil = sil.numpy()[0]
    expected = np.zeros((32, 32), np.float32)
    expected[31 - 27:31 - 20 + 1, 8:16] = 1.0   # image rows run top (y up) to bottom
    np.testing.assert_allclose(sil, expected, atol=1e-5)
    # first hit at the box front face: voxel centre of z index 12 -> -1 + 25/32
    assert depth.numpy()[0, 8, 10] == pytest.approx(-1 + 25 / 32, abs=1e-5)
    # a 90 degree azimuth turns the x extent into depth: footprint width becomes the z extent (8 voxels)
    sil90, _ = project(vox, rotation(np.pi / 2, 0.0)[None], 32)
    assert (sil90.numpy()[0] > 0.5).sum(axis=1).max() == 8


def test_projection_is_differentiable():
    import tensorflow as tf
    from other_models.shape3d import project, rotation
    vox = tf.Variable(np.full((1, 32, 32, 32), 0.05, np.float32))
    with tf.GradientTape() as tape:
        sil, _ = project(vox, rotation(0.4, 0.2)[None], 16)
        loss = tf.reduce_mean(tf.square(sil - 1.0))
    grad = tape.gradient(loss, vox).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0 and (grad <= 1e-9).all()  # more occupancy helps


def test_voxel_iou():
    from other_models.shape3d import voxel_iou
    a = np.zeros((2, 32, 32, 32)); b = np.zeros((2, 32, 32, 32))
    a[0, :4], b[0, 2:6] = 1, 1   # overlap 2 slabs of 6
    np.testing.assert_allclose(voxel_iou(a, b), [2 / 6, 1.0])


def test_bad_supervision_is_input_error_naming_the_field(tmp_path):
    import other_models.shape3d as s3d
    from ganimation_tl.errors import InputError
    fv = _flags(["--shape3d_supervision=depth", "--workdir=%s" % tmp_path])
    with pytest.raises(InputError, match="shape3d_supervision"):
        s3d.train(fv)


def test_two_step_smoke_run_mask_supervision(tmp_path):
    import tensorflow as tf
    from pathlib import Path
    from ganimation_tl import registry
    registry.load_all()
    repo = Path(__file__).resolve().parents[1]
    fv = _flags(["--flagfile=%s" % (repo / "configs" / "shape3d_debug.cfg"), "--workdir=%s" % tmp_path,
                 "--shape3d_supervision=mask", "--max_steps=2", "--log_every=1", "--shape3d_train_shapes=8",
                 "--shape3d_test_shapes=2", "--batch_size=4", "--shape3d_views=2", "--shape3d_channels=4",
                 "--shape3d_latent=16", "--image_size=16", "--shape3d_view_pool=5"])
    metrics = registry.get("shape3d").train(fv)
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert metrics["shape3d/mask_bce"] > 0
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")) is not None


def test_view_pool_keeps_shapes_and_first_views_and_renders_the_extra_views():
    from other_models.shape3d import generate_shapes, project
    base = generate_shapes(4, 2, 16, seed=3)
    pooled = generate_shapes(4, 2, 16, seed=3, extra_views=5)
    assert pooled.masks.shape == (4, 7, 16, 16) and pooled.rotations.shape == (4, 7, 3, 3)
    np.testing.assert_array_equal(pooled.voxels, base.voxels)
    np.testing.assert_array_equal(pooled.images, base.images)
    np.testing.assert_array_equal(pooled.rotations[:, :2], base.rotations)
    np.testing.assert_allclose(pooled.masks[:, :2], base.masks, atol=1e-6)
    # the extra views are new cameras, and each mask is the projection of the shape in its own camera
    assert np.abs(pooled.rotations[:, 2:] - pooled.rotations[:, :1]).max() > 0.1
    sil, _ = project(pooled.voxels.astype(np.float32), pooled.rotations[:, 6], 16)
    np.testing.assert_allclose(pooled.masks[:, 6], sil.numpy(), atol=1e-5)


def test_pick_views_keeps_the_input_view_and_draws_distinct_pool_views():
    from other_models.shape3d import pick_views
    from ganimation_tl.errors import InputError
    rng = np.random.default_rng(0)
    picks = pick_views(rng, 500, 3, 24)
    assert picks.shape == (500, 3) and (picks[:, 0] == 0).all()
    assert ((picks[:, 1:] >= 1) & (picks[:, 1:] < 24)).all()
    assert (picks[:, 1] != picks[:, 2]).all()
    assert len(np.unique(picks[:, 1:])) == 23            # every pool view gets used
    np.testing.assert_array_equal(pick_views(rng, 2, 3, 3), [[0, 1, 2], [0, 1, 2]])
    with pytest.raises(InputError, match="pool of 2"):
        pick_views(rng, 2, 3, 2)


def test_view_pool_smaller_than_views_is_input_error_naming_the_flag(tmp_path):
    import other_models.shape3d as s3d
    from ganimation_tl.errors import InputError
    fv = _flags(["--shape3d_views=3", "--shape3d_view_pool=2", "--workdir=%s" % tmp_path])
    with pytest.raises(InputError, match="shape3d_view_pool"):
        s3d.train(fv)


def test_fill_cavities_fills_a_closed_shell_but_not_an_open_cup():
    from other_models.shape3d import fill_cavities
    shell = np.zeros((32, 32, 32), bool)
    shell[8:24, 8:24, 8:24] = True
    solid = shell.copy()
    shell[10:22, 10:22, 10:22] = False                 # closed hollow box
    cup = shell.copy()
    cup[10:22, 22:24, 10:22] = False                   # lid removed: the cavity reaches the outside
    out = fill_cavities(np.stack([shell, cup, np.zeros_like(shell)]))
    np.testing.assert_array_equal(out[0], solid)
    np.testing.assert_array_equal(out[1], cup)
    assert not out[2].any()


def test_solid_iou_and_interior_recall_of_a_hollow_prediction():
    from other_models.shape3d import interior_recall, voxel_iou
    truth = np.zeros((1, 32, 32, 32), np.float32)
    truth[0, 8:24, 8:24, 8:24] = 1
    hollow = truth.copy()
    hollow[0, 10:22, 10:22, 10:22] = 0
    raw = voxel_iou(hollow, truth, 0.5)[0]
    assert raw == pytest.approx(1 - 12 ** 3 / 16 ** 3)
    assert voxel_iou(hollow, truth, 0.5, solid=True)[0] == pytest.approx(1.0)
    # eroded by 2: the 12^3 core is the interior, none of it predicted; the full box finds all of it
    assert interior_recall(hollow, truth, 0.5) == pytest.approx(0.0)
    assert interior_recall(truth, truth, 0.5) == pytest.approx(1.0)


def test_reconstruct_returns_the_thresholded_grid_with_cavities_filled():
    from other_models.shape3d import Shape3D, Shape3DConfig, fill_cavities
    model = Shape3D(Shape3DConfig(image_size=16, shape3d_channels=4, shape3d_latent=16))
    images = np.random.default_rng(0).random((3, 16, 16, 1)).astype(np.float32)
    probs = model.predict(images)
    t = float(np.quantile(probs, 0.5))
    raw = model.reconstruct(images, t, solid=False)
    solid = model.reconstruct(images, t)
    assert raw.shape == solid.shape == (3, 32, 32, 32) and raw.dtype == bool
    np.testing.assert_array_equal(raw, probs > t)
    np.testing.assert_array_equal(solid, fill_cavities(probs > t))
    assert (solid >= raw).all()
