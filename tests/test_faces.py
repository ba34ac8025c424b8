"""Tests for ganimation_tl.faces: MTCNN detection, alignment to the training-crop template, paste-back.

Real photos: skimage's astronaut and coffee (in the wheel), and, when ../shared is present, CFP photos with
hand-labelled fiducials and a frame of the WolfgangLanger video.
"""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from ganimation_tl import faces as F
from ganimation_tl.errors import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared"
CFP = SHARED / "data" / "cfp" / "Data"
VIDEO = SHARED / "data" / "video" / "WolfgangLanger_Pexels.mp4"
need_cfp = pytest.mark.skipif(not CFP.is_dir(), reason="shared/data/cfp not found beside the repo")
need_video = pytest.mark.skipif(not VIDEO.is_file(), reason="shared/data/video/WolfgangLanger_Pexels.mp4 not found")

ASTRONAUT_BOX = (182, 64, 83, 107)   # MTCNN's box on skimage.data.astronaut() (docs/offline_assets.md)


@pytest.fixture(scope="module")
def detector():
    return F.FaceDetector()          # MTCNN loads on first use, once for the module


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def astronaut_face(detector, astronaut):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    return faces[0]


def read_rgb(path):
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def blend_alpha_in_photo(m, shape, size=128, feather=0.2):
    """The paste-back alpha in photo coordinates (independent re-implementation for checks)."""
    return cv2.warpAffine(F.face_blend_mask(size, feather), cv2.invertAffineTransform(m), (shape[1], shape[0]),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


# ------------------------------------------------------------------------------------------ module basics

def test_import_does_not_load_tensorflow():
    code = "import sys, ganimation_tl.faces; print('tensorflow' in sys.modules, 'mtcnn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_template_geometry_and_scaling():
    t = F.CANONICAL_LANDMARKS_128
    assert t.shape == (5, 2)
    le, re, nose, ml, mr = t
    assert le[0] < nose[0] < re[0] and ml[0] < mr[0]
    assert le[1] < nose[1] < ml[1]                       # eyes above nose above mouth (y grows downwards)
    np.testing.assert_allclose(le[0] + re[0], 127.0, atol=1e-9)    # mirror-symmetric about x = 63.5
    np.testing.assert_allclose(nose[0], 63.5, atol=1e-9)
    assert np.all((t > 0) & (t < 127))
    np.testing.assert_allclose(F.canonical_landmarks(128), t)
    t256 = F.canonical_landmarks(256)
    np.testing.assert_allclose(t256, (t + 0.5) * 2 - 0.5)
    # same relative geometry at every size
    np.testing.assert_allclose((F.canonical_landmarks(64) + 0.5) / 64, (t + 0.5) / 128)
    with pytest.raises(InputError):
        F.canonical_landmarks(0)


# -------------------------------------------------------------------------------------------- detection

def test_astronaut_one_face_plausible_landmarks(detector, astronaut, astronaut_face):
    f = astronaut_face
    assert detector.last_rejected == []
    np.testing.assert_allclose(f.box, ASTRONAUT_BOX, atol=4)
    assert f.score > 0.99 and not f.is_profile
    assert f.landmarks.shape == (5, 2) and f.landmarks.dtype == np.float32
    le, re, nose, ml, mr = f.landmarks
    assert le[0] < re[0] and ml[0] < mr[0]                   # "left" = image left
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])   # eyes above nose above mouth
    x, y, w, h = f.box
    assert np.all((f.landmarks[:, 0] > x) & (f.landmarks[:, 0] < x + w))
    assert np.all((f.landmarks[:, 1] > y) & (f.landmarks[:, 1] < y + h))
    assert f.area == pytest.approx(w * h)
    assert 0.4 < f.nose_position < 0.6


def test_detect_returns_rejected_tuple_and_sorted_by_area(detector, astronaut):
    # two astronauts side by side, the right one half size: two faces, largest first
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 768, 3), 200, np.uint8)
    canvas[:, :512] = astronaut
    canvas[128:384, 512:] = small
    faces, rejected = detector.detect(canvas, return_rejected=True)
    assert rejected == []
    assert len(faces) == 2
    assert faces[0].area > 3 * faces[1].area
    assert faces[0].box[0] < 512 <= faces[1].box[0]


def test_grey_and_rgba_inputs(detector, astronaut, astronaut_face):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    for image in (grey, grey[:, :, None], cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), rgba):
        faces = detector.detect(image)
        assert len(faces) == 1
        np.testing.assert_allclose(faces[0].box, astronaut_face.box, atol=8)


def test_no_face_gives_empty_list(detector):
    assert detector.detect(skimage.data.coffee()) == []
    assert detector.detect(np.full((300, 400, 3), 128, np.uint8)) == []
    assert detector.last_rejected == []
    assert detector.detect(np.zeros((10, 7), np.uint8)) == []      # smaller than any detectable face


@pytest.mark.parametrize("bad", [
    np.zeros((64, 64, 3), np.float32),
    np.zeros((64, 64, 2), np.uint8),
    np.zeros((2, 64, 64, 3), np.uint8),
    np.zeros((0, 64, 3), np.uint8),
    [[0, 0], [0, 0]],
])
def test_detect_rejects_bad_input(detector, bad):
    with pytest.raises(InputError):
        detector.detect(bad)


def test_detector_parameter_errors():
    with pytest.raises(InputError, match="min_score"):
        F.FaceDetector(min_score=1.5)
    with pytest.raises(InputError, match="min_face_size"):
        F.FaceDetector(min_face_size=-1)
    with pytest.raises(InputError, match="max_detect_side"):
        F.FaceDetector(max_detect_side=10)


def test_huge_image_is_downscaled_for_detection(detector, astronaut, astronaut_face):
    side = 8000
    huge = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_LINEAR)
    faces = detector.detect(huge)
    assert len(faces) == 1
    k = side / 512.0
    f = faces[0]
    # detection ran at 1024 px: positions agree with the 512-px detection to a few 512-px pixels
    np.testing.assert_allclose(np.array(f.box) / k, astronaut_face.box, atol=5)
    np.testing.assert_allclose((f.landmarks + 0.5) / k - 0.5, astronaut_face.landmarks, atol=3)
    crop, m = F.align_face(huge, f)
    assert crop.shape == (128, 128, 3)
    out = F.paste_back(huge, crop, m, original_crop=crop)
    assert np.array_equal(out, huge)


def test_tiny_face_is_rejected_as_too_small(detector, astronaut):
    tiny = cv2.resize(astronaut, (60, 60), interpolation=cv2.INTER_AREA)   # face about 10 px
    faces, rejected = detector.detect(tiny, return_rejected=True)
    assert faces == []
    assert [r.reason for r in rejected] == [F.REJECT_TOO_SMALL]
    assert "40 px" in rejected[0].message
    assert detector.last_rejected == rejected
    # the same detection is kept when the minimum is lowered: it was the size filter that dropped it
    assert len(F.FaceDetector(min_face_size=5).detect(tiny)) == 1


def test_low_score_is_rejected(detector, astronaut):
    strict = F.FaceDetector(min_score=1.0)
    faces, rejected = strict.detect(astronaut, return_rejected=True)
    assert faces == [] and [r.reason for r in rejected] == [F.REJECT_LOW_SCORE]


@need_video
def test_video_frame_has_a_face(detector):
    cap = cv2.VideoCapture(str(VIDEO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 200)
    ok, bgr = cap.read()
    cap.release()
    assert ok and bgr.shape == (360, 640, 3)
    faces = detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert len(faces) == 1
    assert faces[0].size > 150 and not faces[0].is_profile


@need_cfp
def test_cfp_frontal_eyes_agree_with_hand_labelled_fiducials(detector):
    # CFP frontal fiducials: 30 hand-labelled points on the IMAGE-LEFT half of the face: 0-8 jaw,
    # 9-11 brow, 12-17 eye contour (the image-left eye), 18-24 nose (18 = bridge between the eyes, on the
    # midline), 25 image-left mouth corner, 26-29 mouth midline. Errors are relative to MTCNN's IOD.
    errors, iod_ratios = [], []
    for ident in ("001", "002", "003", "004", "005"):
        for n in ("01", "02"):
            rgb = read_rgb(CFP / "Images" / ident / "frontal" / (n + ".jpg"))
            fid = np.loadtxt(CFP / "Fiducials" / ident / "frontal" / (n + ".txt"), delimiter=",")
            assert fid.shape == (30, 2)
            faces = detector.detect(rgb)
            assert faces, "no face in CFP %s/frontal/%s" % (ident, n)
            f = faces[0]
            assert not f.is_profile
            eye = fid[12:18].mean(axis=0)
            errors.append(np.linalg.norm(f.landmarks[0] - eye) / f.eye_distance)
            iod_ratios.append(2 * abs(fid[18, 0] - eye[0]) / f.eye_distance)   # IOD from the half face
            assert np.linalg.norm(f.landmarks[3] - fid[25]) / f.eye_distance < 0.3  # mouth corner
    assert max(errors) < 0.2 and np.median(errors) < 0.1
    assert 0.8 < min(iod_ratios) and max(iod_ratios) < 1.2


@need_cfp
def test_cfp_profiles_are_missed_or_flagged(detector):
    outcomes = []
    for ident in ("001", "002", "003", "004", "005"):
        for n in ("01", "02", "03", "04"):
            faces = detector.detect(read_rgb(CFP / "Images" / ident / "profile" / (n + ".jpg")))
            outcomes.append("missed" if not faces else ("flagged" if faces[0].is_profile else "frontal"))
    # measured on identities 001-030: 8 % missed, 96 % of the found ones flagged
    assert outcomes.count("frontal") <= 2, outcomes
    assert outcomes.count("flagged") >= 10, outcomes


def test_profile_flag_from_landmarks():
    frontal = F.Face((0, 0, 100, 100), 1.0, [[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]])
    assert not frontal.is_profile and frontal.nose_position == pytest.approx(0.5)
    nose_outside = F.Face((0, 0, 100, 100), 1.0, [[30, 40], [50, 40], [60, 60], [35, 80], [55, 80]])
    assert nose_outside.nose_position == pytest.approx(1.5) and nose_outside.is_profile
    eyes_together = F.Face((0, 0, 100, 100), 1.0, [[45, 40], [55, 40], [50, 60], [45, 80], [55, 80]])
    assert eyes_together.eye_mouth_ratio == pytest.approx(0.25) and eyes_together.is_profile
    with pytest.raises(InputError):
        F.Face((0, 0, 10, 10), 1.0, np.zeros((4, 2)))
    with pytest.raises(InputError):
        F.Face((0, 0, 10, 10), 1.0, np.full((5, 2), np.nan))


# ---------------------------------------------------------------------------------------- select_faces

def _faces(n):
    return [F.Face((0, 0, 10 * (n - i), 10), 1.0, np.arange(10, dtype=np.float32).reshape(5, 2)) for i in range(n)]


def test_select_faces_semantics():
    fs = _faces(3)
    assert F.select_faces(fs, "largest") == [fs[0]]
    assert F.select_faces(list(reversed(fs)), "largest") == [fs[0]]   # by area, not position
    assert F.select_faces(fs, "all") == fs
    assert F.select_faces(fs, "2") == [fs[2]] and F.select_faces(fs, 1) == [fs[1]]
    assert F.select_faces(fs, " ALL ") == fs
    assert F.select_faces([], "largest") == [] and F.select_faces([], "all") == []


@pytest.mark.parametrize("which,pattern", [
    ("3", r"--face=3: face index out of range, 3 faces found \(valid indices: 0\.\.2\)"),
    ("-1", r"--face=-1: face index out of range, 3 faces found"),
    ("biggest", r"--face=biggest: expected 'largest', 'all' or a 0-based face index \(3 faces found\)"),
    ("1.5", r"--face=1.5: expected"),
    (True, r"--face=True: expected"),
])
def test_select_faces_errors(which, pattern):
    with pytest.raises(InputError, match=pattern):
        F.select_faces(_faces(3), which)


def test_select_faces_index_with_no_face():
    with pytest.raises(InputError, match="0 faces found .no face was found"):
        F.select_faces([], "0")


# ------------------------------------------------------------------------------------------ alignment

def test_aligned_astronaut_eyes_on_template(astronaut, astronaut_face):
    crop, m = F.align_face(astronaut, astronaut_face)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    assert m.shape == (2, 3) and m.dtype == np.float64
    mapped = np.c_[astronaut_face.landmarks, np.ones(5)] @ m.T
    tpl = F.canonical_landmarks(128)
    err = np.linalg.norm(mapped - tpl, axis=1)
    assert err[:2].max() < 2.0 and err[2] < 3.0   # measured 1.6 and 2.0 px
    assert err[3:].max() < 10.0                   # the broad smile widens the mouth: 7.4 px
    # M is a similarity: equal scale on both axes, no shear
    a = m[:, :2]
    np.testing.assert_allclose(a @ a.T, np.eye(2) * np.linalg.det(a), atol=1e-9)
    # the crop really is the photo under M (check a pixel at the crop centre)
    x, y = cv2.invertAffineTransform(m) @ np.array([64.0, 64.0, 1.0])
    np.testing.assert_allclose(crop[64, 64], astronaut[int(round(y)), int(round(x))], atol=20)
    np.testing.assert_array_equal(F.crop_for_training(astronaut, astronaut_face), crop)


def test_align_scales_with_crop_size(astronaut, astronaut_face):
    c256, m256 = F.align_face(astronaut, astronaut_face, size=256)
    c128, m128 = F.align_face(astronaut, astronaut_face, size=128)
    assert c256.shape == (256, 256, 3)
    down = cv2.resize(c256, (128, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(down.astype(int) - c128).mean() < 3.0


def test_align_rotated_face_is_upright(astronaut, astronaut_face):
    # rotate the photo by 30 degrees: the aligned crop must look like the unrotated one
    h, w = astronaut.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.0)
    rotated = cv2.warpAffine(astronaut, rot, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    lm = np.c_[astronaut_face.landmarks, np.ones(5)] @ rot.T
    crop_rot, _ = F.align_face(rotated, lm)
    crop, _ = F.align_face(astronaut, astronaut_face)
    assert np.abs(crop_rot.astype(int) - crop).mean() < 4.0


def test_align_errors(astronaut, astronaut_face):
    with pytest.raises(InputError, match="degenerate"):
        F.align_face(astronaut, np.ones((5, 2)))
    with pytest.raises(InputError):
        F.align_face(astronaut.astype(np.float32), astronaut_face)
    with pytest.raises(InputError, match="crop size"):
        F.align_face(astronaut, astronaut_face, size=0)


# ----------------------------------------------------------------------------------------- paste back

def test_blend_mask_shape_and_border():
    a = F.face_blend_mask(128, 0.2)
    assert a.shape == (128, 128) and a.dtype == np.float32
    assert a.min() == 0.0 and a.max() == 1.0
    for edge in (a[0], a[-1], a[:, 0], a[:, -1]):
        assert np.all(edge == 0.0)
    assert a[64, 64] == 1.0
    np.testing.assert_array_equal(a, a[:, ::-1])                    # symmetric
    with pytest.raises(InputError, match="feather"):
        F.face_blend_mask(128, 0.6)


def test_paste_back_unchanged_crop_round_trip(astronaut, astronaut_face):
    crop, m = F.align_face(astronaut, astronaut_face)
    out = F.paste_back(astronaut, crop, m)
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    alpha = blend_alpha_in_photo(m, astronaut.shape)
    diff = np.abs(out.astype(int) - astronaut.astype(int))
    assert diff[alpha > 0.5].mean() < 3.0           # measured 0.6 grey levels
    assert np.all(diff[alpha == 0] == 0)            # outside the face: bit-exact
    assert np.array_equal(F.paste_back(astronaut, crop, m, original_crop=crop), astronaut)


def test_paste_back_locality_and_no_seam(astronaut, astronaut_face):
    crop, m = F.align_face(astronaut, astronaut_face)
    flat_photo = np.full_like(astronaut, 40)
    edited = np.full_like(crop, 240)                # a maximal edit: every crop pixel changes by 200
    out = F.paste_back(flat_photo, edited, m).astype(int)
    # outside the inverse-mapped crop square nothing changes
    inside_square = cv2.warpAffine(np.ones((128, 128), np.uint8), cv2.invertAffineTransform(m),
                                   (512, 512), flags=cv2.INTER_NEAREST) > 0
    assert np.all(out[~inside_square] == 40)
    # the crop's border maps to unchanged pixels: no box edge
    border = np.array([[0, 0], [127, 0], [0, 127], [127, 127], [64, 0], [0, 64], [127, 64], [64, 127]], float)
    for x, y in np.c_[border, np.ones(len(border))] @ cv2.invertAffineTransform(m).T:
        assert np.all(out[int(round(y)), int(round(x))] == 40)
    # the face centre gets the edit in full
    cx, cy = cv2.invertAffineTransform(m) @ np.array([63.5, 63.5, 1.0])
    assert np.all(out[int(round(cy)), int(round(cx))] == 240)
    # soft edge: no step larger than 10 % of the edit between neighbouring pixels
    steps = max(np.abs(np.diff(out[..., 0], axis=0)).max(), np.abs(np.diff(out[..., 0], axis=1)).max())
    assert steps <= 20


@pytest.mark.parametrize("method", ["alpha", "seamless"])
def test_paste_back_edit_lands_in_face_only(astronaut, astronaut_face, method):
    crop, m = F.align_face(astronaut, astronaut_face)
    edited = crop.copy()
    edited[:, :, 0] = 255 - edited[:, :, 0]
    out = F.paste_back(astronaut, edited, m, method=method)
    alpha = blend_alpha_in_photo(m, astronaut.shape)
    diff = np.abs(out.astype(int) - astronaut.astype(int))
    assert np.all(diff[alpha == 0] == 0)
    assert diff[alpha > 0.9].mean() > 20
    assert out is not astronaut and np.array_equal(astronaut, skimage.data.astronaut())   # input untouched


def test_paste_back_many(detector, astronaut):
    canvas = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)   # two faces
    faces = detector.detect(canvas)
    assert len(faces) == 2
    crops, ms = zip(*(F.align_face(canvas, f) for f in faces))
    edited = [np.full_like(c, 255) for c in crops]
    out = F.paste_back_many(canvas, edited, ms)
    for f in faces:
        lx, ly = f.landmarks[2]
        assert np.all(out[int(ly), int(lx)] == 255)          # both noses painted white
    assert np.array_equal(F.paste_back_many(canvas, crops, ms, original_crops=crops), canvas)
    with pytest.raises(InputError, match="2 crops but 1 matrices"):
        F.paste_back_many(canvas, edited, ms[:1])


def test_paste_back_errors(astronaut, astronaut_face):
    crop, m = F.align_face(astronaut, astronaut_face)
    with pytest.raises(InputError, match="square"):
        F.paste_back(astronaut, crop[:100], m)
    with pytest.raises(InputError, match=r"\[2, 3\]"):
        F.paste_back(astronaut, crop, np.eye(3))
    with pytest.raises(InputError, match="singular"):
        F.paste_back(astronaut, crop, np.zeros((2, 3)))
    with pytest.raises(InputError, match="method"):
        F.paste_back(astronaut, crop, m, method="poisson")
    with pytest.raises(InputError, match="uint8"):
        F.paste_back(astronaut, crop.astype(np.float32) / 127.5 - 1, m)
    with pytest.raises(InputError, match="original crop"):
        F.paste_back(astronaut, crop, m, original_crop=crop[:64, :64])


def test_face_partly_outside_photo(astronaut, astronaut_face):
    # crop the photo through the face: alignment reflects at the border, paste-back stays in bounds
    part = np.ascontiguousarray(astronaut[:, 200:])
    lm = astronaut_face.landmarks - np.array([200, 0], np.float32)
    crop, m = F.align_face(part, lm)
    assert crop.shape == (128, 128, 3)
    out = F.paste_back(part, np.full_like(crop, 255), m)
    assert out.shape == part.shape and (out == 255).all(axis=2).any()
