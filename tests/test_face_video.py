"""Tests of ganimation_tl/datasets/face_video.py (tracked face crops from a video) and DrNet's face-video data."""
import os
from pathlib import Path

import numpy as np
import pytest
from absl import flags

from ganimation_tl.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
VIDEO = SHARED / "data" / "video" / "WolfgangLanger_Pexels.mp4"
need_video = pytest.mark.skipif(not VIDEO.is_file(), reason="shared/data/video/WolfgangLanger_Pexels.mp4 not found")


class _BrightBoxDetector:
    """Stands in for MTCNN: the "face" is the box of the bright pixels (> 100) of the frame."""

    def __init__(self):
        self.calls = 0

    def detect(self, rgb):
        from ganimation_tl.faces import Face
        self.calls += 1
        ys, xs = np.nonzero(rgb[:, :, 0] > 100)
        box = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
        return [Face(box=box, score=0.99, landmarks=np.zeros((5, 2), np.float32))]


def _write_video(path, frames, fps=24.0):
    import cv2
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        writer.write(f[:, :, ::-1])
    writer.release()


def test_block_split_and_clip_starts():
    from ganimation_tl.datasets.face_video import block_split, clip_starts
    block_id, is_test = block_split(100, 10, 5)
    assert block_id.shape == (100,) and is_test.sum() == 20
    assert is_test[40:50].all() and is_test[90:].all() and not is_test[:40].any()
    starts = clip_starts(block_id, ~is_test, 7)
    # a clip of 7 frames fits 4 times in each of the 8 training blocks of 10 frames
    assert len(starts) == 8 * 4
    for s in starts:
        assert block_id[s] == block_id[s + 6] and not is_test[s:s + 7].any()
    assert len(clip_starts(block_id, is_test, 11)) == 0
    with pytest.raises(InputError, match="test_every"):
        block_split(100, 10, 1)


def test_load_face_video_tracks_and_crops(tmp_path):
    """Synthetic video: a bright square that moves 2 px a frame; the crop follows the detected centre."""
    from ganimation_tl.datasets.face_video import load_face_video
    frames = []
    for i in range(20):
        f = np.zeros((120, 200, 3), np.uint8)
        f[30:70, 50 + 2 * i:90 + 2 * i] = 200       # the "face": 40x40 square, centre (70 + 2i, 50)
        frames.append(f)
    path = tmp_path / "v.avi"
    _write_video(path, frames)
    det = _BrightBoxDetector()
    track = load_face_video(str(path), 32, detect_every=4, margin=1.5, smooth=1, detector=det)
    assert track.frames.shape == (20, 32, 32, 3) and track.frames.dtype == np.float32
    assert 0.0 <= track.frames.min() and track.frames.max() <= 1.0
    assert det.calls == 6                              # frames 0, 4, 8, 12, 16 and the last one
    assert track.side == pytest.approx(60.0, abs=1.5)   # margin 1.5 x median box height (40)
    # centres interpolated between detections follow the square (centre x = 70 + 2i, y = 50)
    i = np.arange(20)
    assert np.allclose(track.centres[:, 0], 70 + 2 * i, atol=1.0)
    assert np.allclose(track.centres[:, 1], 50, atol=1.0)
    # the square sits at the same place in every crop: the crop moves with it
    profiles = track.frames[:, 16, :, 0]
    assert np.abs(profiles[-1] - profiles[2]).mean() < 0.05


def test_load_face_video_errors(tmp_path):
    from ganimation_tl.datasets.face_video import load_face_video
    with pytest.raises(InputError, match="--video_path is required"):
        load_face_video("", 32)
    with pytest.raises(InputError, match="--video_path.*not found"):
        load_face_video(str(tmp_path / "missing.mp4"), 32)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError, match="--video_path.*not a video"):
        load_face_video(str(bad), 32)
    frames = [np.zeros((60, 80, 3), np.uint8) for _ in range(5)]
    path = tmp_path / "empty_scene.avi"
    _write_video(path, frames)

    class NoFace:
        def detect(self, rgb):
            return []
    with pytest.raises(InputError, match="no face found"):
        load_face_video(str(path), 32, detector=NoFace())
    with pytest.raises(InputError, match="positive"):
        load_face_video(str(path), 0)


@need_video
def test_real_video_track_is_face_centred():
    """On the shared video (first 48 frames, MTCNN every 16th): the crop holds the face: MTCNN finds it again in the
    crop, near the centre, filling a stable share of it."""
    from ganimation_tl.datasets.face_video import load_face_video
    from ganimation_tl.faces import FaceDetector
    track = load_face_video(str(VIDEO), 128, detect_every=16, max_frames=48)
    assert track.frames.shape == (48, 128, 128, 3)
    assert len(track.detected) == 4 and 250 < track.side <= 360
    det = FaceDetector(min_face_size=20)
    for i in (0, 24, 47):
        faces = det.detect((track.frames[i] * 255).astype(np.uint8))
        assert faces, "no face in crop %d" % i
        x, y, w, h = max(faces, key=lambda f: f.area).box
        assert abs(x + w / 2 - 64) < 16 and abs(y + h / 2 - 64) < 20
        assert 0.5 < h / 128 < 1.05


def _face_flags(tmp_path, *extra):
    from other_models import drnet
    fv = flags.FlagValues()
    drnet.define_flags(fv)
    fv(["test", "--flagfile=%s" % (REPO / "configs" / "drnet_face_debug.cfg"), "--workdir=%s" % tmp_path,
        "--video_path=%s" % VIDEO] + list(extra), known_only=True)
    return fv


def test_face_config_validation(tmp_path):
    from other_models.drnet import DrNetConfig
    from other_models import drnet
    with pytest.raises(ValueError, match="drnet_data"):
        DrNetConfig(drnet_data="kth")
    with pytest.raises(ValueError, match="drnet_video_block"):
        DrNetConfig(drnet_data="face_video", drnet_video_stride=6, drnet_video_block=48)
    with pytest.raises(ValueError, match="drnet_video_zoom"):
        DrNetConfig(drnet_data="face_video", drnet_video_zoom=0.7)
    assert DrNetConfig(drnet_data="face_video").channels == 3
    assert DrNetConfig().channels == 2
    fv = _face_flags(tmp_path, "--video_path=%s" % (tmp_path / "nope.mp4"))
    with pytest.raises(InputError, match="--video_path.*not found"):
        drnet.train(fv)


def test_augment_clip_moves_every_frame_alike():
    from other_models.drnet import augment_clip
    # a bright 8x8 square on a dark frame, shifted one pixel per frame
    clip = np.zeros((4, 32, 32, 3), np.float32)
    for t in range(4):
        clip[t, 10:18, 10 + t:18 + t] = 0.8
    np.testing.assert_array_equal(augment_clip(clip, np.random.default_rng(0), 0, 0, 0), clip)

    def centroid(frame):
        w = frame[..., 0]
        ys, xs = np.mgrid[:32, :32]
        return np.array([(w * ys).sum() / w.sum(), (w * xs).sum() / w.sum()])
    moved = [augment_clip(clip, np.random.default_rng(seed), 0.15, 0.1, 0.0) for seed in range(8)]
    offsets = np.array([[centroid(m[t]) - centroid(clip[t]) for t in range(4)] for m in moved])   # [8, 4, 2]
    # one transform per clip: every frame's centroid moves by about the same vector (zoom adds < 0.5 px here) ...
    assert np.abs(offsets - offsets[:, :1]).max() < 0.6
    # ... and different clips get different shifts, up to 0.15 x 32 = 4.8 px (plus the zoom about the centre)
    assert offsets[:, 0].std(axis=0).min() > 0.5 and np.abs(offsets).max() < 6.5
    # the within-clip motion (1 px per frame) survives
    np.testing.assert_allclose(np.diff([centroid(f)[1] for f in moved[0]]), 1.0, atol=0.15)
    coloured = augment_clip(clip, np.random.default_rng(1), 0.0, 0.0, 0.3)
    assert coloured.shape == clip.shape and coloured.min() >= 0 and coloured.max() <= 1
    gains = coloured[0, 12, 12] - coloured[0, 0, 0]            # square minus background, per channel
    assert np.ptp(gains) > 0.01 and np.all(np.abs(gains / 0.8 - 1) <= 0.3 + 1e-5)


@need_video
def test_face_clips_and_two_step_smoke_run(tmp_path, monkeypatch):
    from ganimation_tl import registry
    from other_models import drnet
    from ganimation_tl.sibling import config_or_input_error
    monkeypatch.chdir(REPO)
    small = ["--drnet_video_max_frames=100", "--drnet_video_test_every=2", "--batch_size=4", "--drnet_nf=8",
             "--image_size=32", "--drnet_epoch_size=1", "--epochs=1", "--drnet_lstm_epochs=1", "--log_every=1",
             "--image_every=0", "--max_steps=2", "--drnet_lr_decay_epochs=1"]
    fv = _face_flags(tmp_path, *small)
    config = config_or_input_error(drnet.DrNetConfig, fv)
    clips = drnet.load_face_clips(config, fv.video_path)
    assert clips.frames.shape == (100, 32, 32, 3)
    # blocks of 48: frames 48-95 held out; training clips (19 frames) never touch them
    assert clips.is_test[48:96].all() and not clips.is_test[:48].any()
    for s in clips.starts["train"]:
        assert not clips.is_test[s:s + config.clip_span].any()
    batch = clips.sample(6, np.random.default_rng(0))
    assert batch.shape == (6, config.sequence_length, 32, 32, 3)
    # the config augments each clip (shift, zoom, colour): same shape and range, different pixels
    assert config.drnet_video_shift > 0 and config.drnet_video_colour > 0
    augmented = clips.sample(6, np.random.default_rng(0), augment=True)
    assert augmented.shape == batch.shape and 0 <= augmented.min() and augmented.max() <= 1
    assert np.abs(augmented - batch).mean() > 0.01
    assert config.drnet_video_far_similarity == 1.0                  # the config's far similarity targets
    metrics = registry.get("drnet").train(fv)
    assert "drnet/reconstruction" in metrics and "lstm/pose_mse" in metrics
    assert metrics["lr/main"] == 0.0                                    # decayed to 0 by the end of the DrNet phase
    assert all(np.isfinite(v) for v in metrics.values())
    assert any(name.startswith("ckpt-2") for name in os.listdir(tmp_path / "checkpoints"))
    model = drnet.load_trained(str(tmp_path), config)
    assert model.decode(*model.encode(clips.frames[:2])).shape == (2, 32, 32, 3)


def _numbered_clips(num_frames=480, side=8):
    """FaceVideoClips over synthetic frames: channel 0 holds the frame index / 1000 everywhere, channel 1 a
    left-to-right ramp (reversed when a clip is mirrored)."""
    from types import SimpleNamespace
    from other_models.drnet import DrNetConfig, FaceVideoClips
    frames = np.zeros((num_frames, side, side, 3), np.float32)
    frames[..., 0] = (np.arange(num_frames) / 1000.0)[:, None, None]
    frames[..., 1] = np.linspace(0.0, 1.0, side)[None, None, :]
    config = DrNetConfig(drnet_data="face_video", image_size=32, drnet_video_far_similarity=1.0)
    track = SimpleNamespace(frames=frames, path="synthetic.mp4", detected=np.arange(0, num_frames, 8))
    return FaceVideoClips(track, config), config


def test_far_frames_come_from_anywhere_in_the_split_and_share_the_clip_mirroring():
    clips, config = _numbered_clips()
    rng = np.random.default_rng(0)
    batch = clips.sample(64, rng, "train", flip=True, far_frames=1)
    t_len = config.sequence_length
    assert batch.shape == (64, t_len + 1, 8, 8, 3)
    index = np.rint(batch[:, :, 0, 0, 0] * 1000).astype(int)               # [64, T + 1] frame numbers
    # clip frames: consecutive frames every stride-th frame; the far frame: any training frame, any block
    np.testing.assert_array_equal(np.diff(index[:, :t_len], axis=1), config.drnet_video_stride)
    far = index[:, t_len]
    assert not clips.is_test[far].any()
    assert len(np.unique(clips.block_id[far])) >= 3
    assert np.abs(far - index[:, 0]).max() > config.drnet_video_block         # seconds away from its clip
    # mirroring: the far frame's ramp runs the same way as its clip's
    ramp = batch[:, :, 0, -1, 1] - batch[:, :, 0, 0, 1]                     # +1 plain, -1 mirrored
    assert (ramp[:, 0] < 0).any() and (ramp[:, 0] > 0).any()
    np.testing.assert_array_equal(np.sign(ramp[:, t_len]), np.sign(ramp[:, 0]))
    test_batch = clips.sample(16, rng, "test", far_frames=1)
    assert clips.is_test[np.rint(test_batch[:, -1, 0, 0, 0] * 1000).astype(int)].all()
    # the training draw: one far frame under the config's far similarity, none for LSTM sequences
    np.testing.assert_array_equal(clips.sample_training(5, np.random.default_rng(4)),
                                  clips.sample(5, np.random.default_rng(4), far_frames=1))
    assert clips.sample_training(5, np.random.default_rng(4), far=False).shape[1] == t_len
    # without far frames the clip stream is unchanged (same draws as before the option existed)
    np.testing.assert_array_equal(clips.sample(4, np.random.default_rng(3)),
                                  clips.sample(4, np.random.default_rng(3), far_frames=0))


def test_far_similarity_targets_replace_only_the_similarity_frame():
    from other_models.drnet import DrNetConfig, use_far_similarity_targets
    rng = np.random.default_rng(0)
    tuples = rng.random((4, 400, 2, 2, 1)).astype(np.float32)
    far = rng.random((400, 2, 2, 1)).astype(np.float32) + 2.0
    np.testing.assert_array_equal(use_far_similarity_targets(tuples, far, 0.0, rng), tuples)
    out = use_far_similarity_targets(tuples, far, 1.0, rng)
    np.testing.assert_array_equal(out[1], far)
    np.testing.assert_array_equal(out[[0, 2, 3]], tuples[[0, 2, 3]])
    assert tuples.max() < 1.0                                               # the input is not modified
    half = use_far_similarity_targets(tuples, far, 0.5, rng)
    replaced = (half[1] > 1.5).all(axis=(1, 2, 3))
    assert 0.4 < replaced.mean() < 0.6
    np.testing.assert_array_equal(half[1][~replaced], tuples[1][~replaced])
    with pytest.raises(ValueError, match="far frames have shape"):
        use_far_similarity_targets(tuples, far[:3], 1.0, rng)
    with pytest.raises(ValueError, match="drnet_video_far_similarity must be in"):
        DrNetConfig(drnet_data="face_video", drnet_video_far_similarity=1.5)
    with pytest.raises(ValueError, match="needs drnet_data=face_video"):
        DrNetConfig(drnet_video_far_similarity=0.5)
