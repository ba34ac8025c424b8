import numpy as np
import pytest
from PIL import Image

from ganimation_tl.errors import InputError
from ganimation_tl.input_pipeline import make_dataset, plan_epoch, steps_per_epoch


@pytest.fixture
def faces(tmp_path):
    """6 images 40x40 (not the model size, so they get resized); image i has its left half = 10*i."""
    files, aus = [], []
    for i in range(6):
        img = np.full((40, 40, 3), 200, np.uint8)
        img[:, :20] = 10 * i
        path = tmp_path / ("f%d.png" % i)
        Image.fromarray(img).save(path)
        files.append(str(path))
        aus.append(np.full(17, i / 10.0, np.float32))
    return files, np.stack(aus)


def test_plan_is_deterministic_and_targets_are_other_samples_plus_noise():
    aus = np.random.default_rng(1).uniform(0.2, 0.8, (50, 17)).astype(np.float32)
    a, b = plan_epoch(aus, seed=3, epoch=2), plan_epoch(aus, seed=3, epoch=2)
    np.testing.assert_array_equal(a.order, b.order)
    np.testing.assert_array_equal(a.target_aus, b.target_aus)
    assert not np.array_equal(a.order, plan_epoch(aus, seed=3, epoch=3).order)
    assert sorted(a.order) == list(range(50))
    # every target lies within 0.1 of some sample's AUs, and they are not simply the visited sample's own
    distance = np.abs(a.target_aus[:, None, :] - aus[None, :, :]).max(axis=2).min(axis=1)
    assert distance.max() <= 0.1 + 1e-6
    assert np.mean(np.abs(a.target_aus - aus).max(axis=1) > 0.1) > 0.5
    assert 0.3 < a.flip.mean() < 0.7


def test_dataset_batches_values_and_resume_skip(faces):
    files, aus = faces
    full = list(make_dataset(files, aus, image_size=32, batch_size=2, seed=0, epoch=1, flip=False))
    assert len(full) == 3
    first = full[0]
    assert first["images"].shape == (2, 32, 32, 3) and first["aus"].shape == (2, 17)
    images = first["images"].numpy()
    assert -1.0 <= images.min() and images.max() <= 1.0
    # The AUs travel with their image: the left half encodes i, the AUs are i/10.
    i = np.rint((images[:, 16, 4, 0] + 1) * 127.5 / 10)
    np.testing.assert_allclose(first["aus"].numpy()[:, 0], i / 10.0, atol=1e-6)
    resumed = list(make_dataset(files, aus, image_size=32, batch_size=2, seed=0, epoch=1, skip_batches=1,
                                flip=False))
    assert len(resumed) == 2
    for a, b in zip(full[1:], resumed):
        np.testing.assert_array_equal(a["images"].numpy(), b["images"].numpy())
        np.testing.assert_array_equal(a["target_aus"].numpy(), b["target_aus"].numpy())


def test_flip_mirrors_images(faces):
    files, aus = faces
    plain = next(iter(make_dataset(files, aus, image_size=32, batch_size=6, seed=5, flip=False)))
    flipped = next(iter(make_dataset(files, aus, image_size=32, batch_size=6, seed=5, flip=True)))
    a, b = plain["images"].numpy(), flipped["images"].numpy()
    mirrored = [np.allclose(a[k, :, ::-1], b[k]) for k in range(6)]
    same = [np.allclose(a[k], b[k]) for k in range(6)]
    assert all(m or s for m, s in zip(mirrored, same)) and any(mirrored)


def test_errors_name_the_problem(faces, tmp_path):
    files, aus = faces
    with pytest.raises(InputError, match="fewer than one batch.*--batch_size=8"):
        steps_per_epoch(6, 8)
    with pytest.raises(InputError, match="6 image files but 5 AU rows"):
        make_dataset(files, aus[:5], image_size=32, batch_size=2, seed=0)
    (tmp_path / "f3.png").write_bytes(b"not an image")
    import tensorflow as tf
    with pytest.raises(tf.errors.OpError, match="f3.png"):
        list(make_dataset(files, aus, image_size=32, batch_size=2, seed=0))


def test_decoded_image_cache_decodes_each_source_once_within_its_budget():
    from ganimation_tl.input_pipeline import DecodedImageCache
    calls = []

    def loader(source, size):
        calls.append(int(source))
        return np.full((size, size, 3), int(source), np.uint8)

    one_image = 4 * 4 * 3
    cache = DecodedImageCache(loader, max_bytes=2 * one_image)   # room for two 4x4 images
    for source in (1, 2, 3, 1, 2, 3, np.int64(1)):
        assert np.all(cache(source, 4) == source)
    # 1 and 2 are stored; 3 (over budget) is decoded each time it is asked for.
    assert calls == [1, 2, 3, 3]
    assert (len(cache), cache.bytes, cache.hits, cache.misses) == (2, 2 * one_image, 3, 4)
    # A path given as bytes (as tf.numpy_function passes it) and as str is one source; a new size is another.
    paths = DecodedImageCache(lambda source, size: np.zeros((size, size, 3), np.uint8))
    paths(b"a.jpg", 4), paths("a.jpg", 4), paths("a.jpg", 8)
    assert (len(paths), paths.hits) == (2, 1)
    with pytest.raises(ValueError, match="max_bytes"):
        DecodedImageCache(loader, max_bytes=-1)


def test_cached_loader_gives_the_same_batches_as_decoding_every_epoch(faces):
    from ganimation_tl.input_pipeline import DecodedImageCache
    files, aus = faces
    cache = DecodedImageCache()
    for epoch in (0, 1):
        plain = list(make_dataset(files, aus, image_size=16, batch_size=2, seed=3, epoch=epoch))
        cached = list(make_dataset(files, aus, image_size=16, batch_size=2, seed=3, epoch=epoch, loader=cache))
        for a, b in zip(plain, cached):
            for key in ("images", "aus", "target_aus"):
                np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    # The second epoch (including its flips, applied after loading) came from memory.
    assert cache.misses == len(files) // 2 * 2 and cache.hits == cache.misses
