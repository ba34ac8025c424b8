"""Drawing of the synthetic faces with OpenCV and NumPy.

:func:`render_face` takes an identity, its AU-deformed 3D points (:mod:`.geometry`), a head pose, lighting and a
background, and paints a stylised face: hair, neck, ears, skin with smooth shading from a head ellipsoid and a
directional light, brows, eyes (whites, iris, pupil, lids, lashes), nose, lips, teeth and the dark inner mouth,
wrinkles and folds that strengthen with their AUs (forehead lines for AU01/AU02, glabella lines for AU04, crow's
feet for AU06, nose wrinkles for AU09, nasolabial furrows for AU10/AU12, dimples for AU14, chin wrinkles for
AU17, ...). Occluders (glasses, a hand, hair strands, a face mask) are drawn last with their own mask.
Polygons use ``cv2.LINE_AA`` with 4 fractional bits, so features move continuously with the AUs.

Images are RGB, HWC, uint8 [0, 255]. Landmarks are (x, y) pixel coordinates with pixel centres at integers
(OpenCV's convention).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from ganimation_tl.aus import AU_NAMES, NUM_AUS
from ganimation_tl.synthetic import geometry as G

SHIFT = 4
_ONE = 1 << SHIFT
AA = cv2.LINE_AA

#: Occluder kinds accepted by :func:`render_face`.
OCCLUDERS = ("glasses", "hand", "hair", "mask")

# Crop: half-side (face units) and centre (the anchor point, mid-face) of an EmotioNet-like tight crop.
CROP_HALF = 1.35


@dataclasses.dataclass(frozen=True)
class Lighting:
    """A directional light plus ambient light on the face.

    Attributes:
        azimuth: degrees; positive puts the light on the image right.
        elevation: degrees above the horizontal (positive: from above).
        ambient: fraction of light that is ambient, in (0, 1].
        colour: RGB gains of the light (1 = white).
        intensity: overall gain.
        wrap: soft-skin wrap-around term of the diffuse shading (0 = Lambert).
    """

    azimuth: float = 0.0
    elevation: float = 25.0
    ambient: float = 0.5
    colour: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    intensity: float = 1.0
    wrap: float = 0.45

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Lighting":
        """Random direction (azimuth within +-70 degrees, elevation -10..60), ambient, colour and intensity."""
        tint = rng.choice(3, p=[0.5, 0.3, 0.2])
        colour = [(1.0, 1.0, 1.0), (1.06, 0.98, 0.88), (0.92, 0.98, 1.07)][int(tint)]
        colour = tuple(float(c) for c in np.asarray(colour) * rng.normal(1.0, 0.02, 3))
        return cls(azimuth=float(rng.uniform(-70, 70)), elevation=float(rng.uniform(-10, 60)),
                   ambient=float(rng.uniform(0.3, 0.7)), colour=colour, intensity=float(rng.uniform(0.8, 1.2)),
                   wrap=float(rng.uniform(0.25, 0.6)))

    def direction(self) -> np.ndarray:
        """Unit vector toward the light in camera space (x right, y down, z toward the camera)."""
        az, el = np.deg2rad(self.azimuth), np.deg2rad(self.elevation)
        return np.array([np.sin(az) * np.cos(el), -np.sin(el), np.cos(az) * np.cos(el)])


@dataclasses.dataclass
class RenderResult:
    """What :func:`render_face` draws.

    Attributes:
        image: uint8 ``[S, S, 3]`` RGB.
        landmarks: float32 ``[68, 2]`` (x, y) pixels.
        occlusion_mask: bool ``[S, S]``, True where an occluder covers the image.
        region_masks: bool ``[17, S, S]``, per AU (model order) where that AU changes the face.
        face_mask: bool ``[S, S]``, True on the head (skin, hair, ears, neck).
    """

    image: np.ndarray
    landmarks: np.ndarray
    occlusion_mask: np.ndarray
    region_masks: np.ndarray
    face_mask: np.ndarray


# ----------------------------------------------------------------------------------------------------------------
# Small geometric helpers.
def _cr_basis(n: int) -> np.ndarray:
    t = np.arange(n) / n
    t2, t3 = t * t, t * t * t
    return 0.5 * np.stack([-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2], 1)


_BASIS = {n: _cr_basis(n) for n in (2, 3, 4, 5, 6, 8)}


def smooth_open(pts: np.ndarray, n: int = 4) -> np.ndarray:
    """Catmull-Rom curve through ``pts`` ``[k, 2]`` (open; ``n`` samples per segment). Returns ``[(k-1)*n+1, 2]``."""
    pts = np.asarray(pts, np.float64)
    k = len(pts)
    ext = np.empty((k + 2, 2))
    ext[1:-1] = pts
    ext[0] = 2 * pts[0] - pts[1]
    ext[-1] = 2 * pts[-1] - pts[-2]
    out = np.empty(((k - 1) * n + 1, 2))
    out[:-1] = np.matmul(_BASIS[n], ext[_open_idx(k)]).reshape(-1, 2)
    out[-1] = pts[-1]
    return out


_OPEN_IDX: Dict[int, np.ndarray] = {}
_CLOSED_IDX: Dict[int, np.ndarray] = {}


def _open_idx(k: int) -> np.ndarray:
    idx = _OPEN_IDX.get(k)
    if idx is None:
        idx = _OPEN_IDX[k] = np.arange(k - 1)[:, None] + np.arange(4)[None, :]
    return idx


def smooth_closed(pts: np.ndarray, n: int = 4) -> np.ndarray:
    """Closed Catmull-Rom curve through ``pts`` ``[k, 2]``. Returns ``[k*n, 2]``."""
    pts = np.asarray(pts, np.float64)
    k = len(pts)
    idx = _CLOSED_IDX.get(k)
    if idx is None:
        idx = _CLOSED_IDX[k] = (np.arange(k)[:, None] + np.arange(-1, 3)[None, :]) % k
    return np.matmul(_BASIS[n], pts[idx]).reshape(-1, 2)


def _fx(pts: np.ndarray) -> np.ndarray:
    """Pixel coordinates to OpenCV fixed point (``SHIFT`` fractional bits), int32 ``[k, 2]``."""
    return np.rint(np.multiply(pts, float(_ONE))).astype(np.int32)


def _col(c) -> Tuple[float, ...]:
    if isinstance(c, np.ndarray):
        c = c.tolist()
    return tuple(min(255.0, max(0.0, float(v))) for v in c)


def _poly(img: np.ndarray, pts: np.ndarray, colour) -> None:
    cv2.fillPoly(img, [_fx(pts)], _col(colour) if np.ndim(colour) else float(colour), AA, SHIFT)


def _line(img: np.ndarray, pts: np.ndarray, colour, thickness: int) -> None:
    cv2.polylines(img, [_fx(pts)], False, _col(colour) if np.ndim(colour) else float(colour), max(1, int(thickness)),
                  AA, SHIFT)


def _ellipse(img: np.ndarray, centre, axes, angle: float, colour, thickness: int = -1) -> None:
    ax = (max(1, int(round(axes[0] * _ONE))), max(1, int(round(axes[1] * _ONE))))
    cv2.ellipse(img, tuple(int(v) for v in _fx(centre)), ax, float(angle), 0, 360,
                _col(colour) if np.ndim(colour) else float(colour), thickness, AA, SHIFT)


def _hull(pts: np.ndarray) -> np.ndarray:
    return cv2.convexHull(np.asarray(pts, np.float32)).reshape(-1, 2)


def _lerp(a, b, t):
    return np.asarray(a) + (np.asarray(b) - np.asarray(a)) * t


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / (np.linalg.norm(v) + 1e-9)


def _fib_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5 ** 0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.cos(phi), np.sin(theta) * np.sin(phi)], 1)


_SPHERE = _fib_sphere(120)
_TEETH_TOP = np.linspace(0.12, 0.88, 9)
_FACE_OUTLINE = np.concatenate([G.JAW, G.P_TEMPLE, G.P_CHEEK, G.P_HAIRLINE])
_TEETH_BOT = np.linspace(0.3, 0.7, 7)
_DISC = np.stack([np.cos(np.arange(12) * np.pi / 6), np.sin(np.arange(12) * np.pi / 6)], 1)
_BROW_PROFILE = {n: np.linspace(0.55, 1.0, n) ** 0.7 for n in range(2, 40)}
_CHIN_DIMPLES = ((-0.09, -0.03), (0.08, -0.04), (-0.02, 0.03), (0.1, 0.05), (-0.12, 0.06), (0.01, 0.1))
_GRID: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}


def _grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
    if size not in _GRID:
        r = np.arange(size, dtype=np.float32)
        _GRID[size] = (r[None, :].repeat(size, 0), r[:, None].repeat(size, 1))
    return _GRID[size]


# ----------------------------------------------------------------------------------------------------------------
class _Canvas:
    """The layers one face is painted into (render resolution ``R``)."""

    def __init__(self, background: np.ndarray):
        self.img = background.copy()
        R = background.shape[0]
        self.R = R
        self.fg = np.zeros((R, R), np.uint8)          # head / hair / neck coverage (lit by the face light)
        self.soft = np.zeros((R, R, 2), np.uint8)     # soft shadow (0) and soft highlight (1), blurred later
        self.fine = np.zeros((R, R, 2), np.uint8)     # wrinkles: dark line (0) and ridge highlight (1)

    def part(self, pts: np.ndarray, colour) -> None:
        _poly(self.img, pts, colour)
        _poly(self.fg, pts, 255)

    def wrinkle(self, pts: np.ndarray, strength: float, width: int, normal=None) -> None:
        """A fold: a dark line (value ``strength``) and a paler ridge one pixel along ``normal``."""
        if strength <= 0.01:
            return
        s = float(min(strength, 1.0)) * 255.0
        cv2.polylines(self.fine, [_fx(pts)], False, (s, 0.0), max(1, width), AA, SHIFT)
        if normal is not None:
            off = np.asarray(normal, np.float64) * max(1.0, width * 0.9)
            cv2.polylines(self.fine, [_fx(pts + off)], False, (0.0, s * 0.55), max(1, width), AA, SHIFT)

    def shadow(self, pts: np.ndarray, strength: float) -> None:
        if strength > 0.01:
            cv2.fillPoly(self.soft, [_fx(pts)], (min(strength, 1.0) * 255.0, 0.0), AA, SHIFT)

    def shadow_line(self, pts: np.ndarray, strength: float, width: int) -> None:
        if strength > 0.01:
            cv2.polylines(self.soft, [_fx(pts)], False, (min(strength, 1.0) * 255.0, 0.0), max(1, width), AA, SHIFT)

    def highlight(self, centre, axes, angle: float, strength: float) -> None:
        if strength > 0.01:
            ax = (max(1, int(round(axes[0] * _ONE))), max(1, int(round(axes[1] * _ONE))))
            cv2.ellipse(self.soft, tuple(int(v) for v in _fx(centre)), ax, float(angle), 0, 360,
                        (0.0, min(strength, 1.0) * 255.0), -1, AA, SHIFT)


def _clip_draw(img: np.ndarray, clip_poly: np.ndarray, draw) -> None:
    """Run ``draw(sub_image, offset)`` on a copy of the clip polygon's bounding box and keep what falls inside
    the polygon (hard edge: callers draw an anti-aliased outline over it afterwards)."""
    R = img.shape[0]
    x0, y0 = np.floor(clip_poly.min(0)).astype(int) - 1
    x1, y1 = np.ceil(clip_poly.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, R), min(y1, R)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    sub = img[y0:y1, x0:x1]
    layer = sub.copy()
    off = np.array([x0, y0], np.float64)
    draw(layer, off)
    mask = np.zeros(sub.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_fx(clip_poly - off)], 255, cv2.LINE_8, SHIFT)
    cv2.copyTo(layer, mask, sub)


# ----------------------------------------------------------------------------------------------------------------
def _head_shading(pivot: np.ndarray, R_mat: np.ndarray, p: G.IdentityParams, centre2: np.ndarray,
                  half: float, R: int, light: Lighting) -> np.ndarray:
    """Diffuse shading of a head ellipsoid, float32 ``[R, R]`` (about 1 on the lit front of the face)."""
    local_c = np.array([0.0, 0.25, -0.9])
    c = (local_c - pivot) @ R_mat.T
    radii = np.array([p.face_half_width * 1.0, 1.5, 1.1])
    A = R_mat @ np.diag(1.0 / radii ** 2) @ R_mat.T
    s = G.FOCAL / (G.FOCAL - c[2])
    Rs = max(32, R // 2)                         # smooth: computed at half resolution, then resized
    gx, gy = _grid(Rs)
    k = (2.0 * half) / Rs
    dx = ((gx - (Rs / 2.0 - 0.5)) * k + centre2[0]) / s - c[0]
    dy = ((gy - (Rs / 2.0 - 0.5)) * k + centre2[1]) / s - c[1]
    a = A[2, 2]
    b = A[2, 0] * dx + A[2, 1] * dy
    cc = A[0, 0] * dx * dx + 2 * A[0, 1] * dx * dy + A[1, 1] * dy * dy - 1.0
    disc = np.maximum(b * b - a * cc, 0.0)
    dz = (-b + np.sqrt(disc)) / a
    nx = A[0, 0] * dx + A[0, 1] * dy + A[0, 2] * dz
    ny = A[1, 0] * dx + A[1, 1] * dy + A[1, 2] * dz
    nz = A[2, 0] * dx + A[2, 1] * dy + A[2, 2] * dz
    inv = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz + 1e-12)
    ld = light.direction()
    ndl = (nx * ld[0] + ny * ld[1] + nz * ld[2]) * inv
    diffuse = np.clip((ndl + light.wrap) / (1.0 + light.wrap), 0.0, 1.0)
    shade = light.ambient + (1.0 - light.ambient) * diffuse
    norm = light.ambient + (1.0 - light.ambient) * np.clip((0.8 * max(ld[2], 0) + light.wrap) / (1 + light.wrap), 0, 1)
    out = (shade / max(norm, 0.55) * light.intensity).astype(np.float32)
    return cv2.resize(out, (R, R), interpolation=cv2.INTER_LINEAR) if Rs != R else out


# ----------------------------------------------------------------------------------------------------------------
def render_face(p: G.IdentityParams, points: np.ndarray, aus: np.ndarray, pose: Sequence[float], *, size: int,
                background: np.ndarray, lighting: Lighting, occluder: Optional[str] = None,
                rng: Optional[np.random.Generator] = None, crop: Sequence[float] = (0.0, 0.0, 1.0),
                gaze: Sequence[float] = (0.0, 0.0), supersample: int = 1,
                region_dilation: float = 0.04) -> RenderResult:
    """Paint one face.

    Args:
        p: identity.
        points: float ``[NUM_POINTS, 3]`` AU-deformed 3D points (:func:`geometry.deform`), face units.
        aus: float ``[17]`` AU intensities in [0, 1] (drive wrinkles and folds).
        pose: (yaw, pitch, roll) in degrees (conventions in :mod:`.geometry`).
        size: output side S in pixels.
        background: uint8 ``[S*supersample, S*supersample, 3]`` RGB.
        lighting: the light on the face.
        occluder: None or one of :data:`OCCLUDERS`.
        rng: generator for the occluder's placement and look (needed when ``occluder`` is set).
        crop: (dx, dy, scale): crop centre offset as a fraction of the crop half-side, and crop size factor.
        gaze: (horizontal, vertical) eye direction in degrees (positive: image right / down).
        supersample: render at ``size * supersample`` and shrink with area averaging.
        region_dilation: dilation of the AU region masks, as a fraction of ``size``.

    Returns:
        RenderResult at ``size`` x ``size``.
    """
    a = np.clip(np.asarray(aus, np.float64), 0, 1)
    A = {n: float(a[i]) for i, n in enumerate(AU_NAMES)}
    R = size * supersample
    yaw, pitch, roll = (float(v) for v in pose)
    R_mat = G.rotation_matrix(yaw, pitch, roll)
    pts = points.copy()
    # Gaze: the iris sits on the eyeball, turned by the gaze angles.
    gh, gv = np.deg2rad(gaze[0]), np.deg2rad(gaze[1])
    for eb, ir in zip(G.P_EYEBALL, G.P_IRIS):
        pts[ir] = pts[eb] + 0.17 * np.array([np.sin(gh), np.sin(gv), np.cos(gh) * np.cos(gv)])
    pivot = pts[G.P_PIVOT].copy()
    cam = (pts - pivot) @ R_mat.T
    half = CROP_HALF * float(crop[2])
    # Crop like a face detector: horizontally centred on the face's outline, vertically on the mid-face anchor.
    outline_x = G.perspective_xy(cam[_FACE_OUTLINE])[:, 0]
    centre2 = np.array([0.5 * (outline_x.min() + outline_x.max()), G.perspective_xy(cam[G.P_ANCHOR])[1]])
    centre2 += np.array([crop[0], crop[1]]) * half
    px_per_unit = R / (2.0 * half)

    def proj(c):
        return G.project(c, centre2, half, R) - 0.5

    P = proj(cam)
    canvas = _Canvas(background)
    unit = px_per_unit                     # pixels per face unit
    lw = max(1, int(round(R / 128.0)))     # base line width
    skin = p.skin.astype(np.float64)
    hair = p.hair.astype(np.float64)
    down = _unit(P[8] - P[27])                        # the face's downward direction in the image
    right = np.array([down[1], -down[0]])             # and its image-right direction

    # Neck and body turn only partly with the head.
    R_body = G.rotation_matrix(yaw * 0.3, pitch * 0.3, roll * 0.3)
    w = p.face_half_width
    neck_local = np.array([[-0.6 * w, 0.6, -0.75], [-0.62 * w, 3.5, -0.75], [0.62 * w, 3.5, -0.75],
                           [0.6 * w, 0.6, -0.75]])
    body_local = np.array([[-0.55 * w, 2.15, -0.7], [-2.4, 2.6, -0.8], [-3.2, 4.0, -0.8], [3.2, 4.0, -0.8],
                           [2.4, 2.6, -0.8], [0.55 * w, 2.15, -0.7]])
    neck2 = proj((neck_local - pivot) @ R_body.T)
    body2 = proj((body_local - pivot) @ R_body.T)
    style = G.HAIR_STYLES[p.hair_style]
    vol = p.hair_volume
    skull_r = np.array([w * 1.02 + (vol if style != "bald" else 0.0), 1.38 + 0.6 * vol, 1.22 + vol])
    skull_local = np.array([0.0, -0.28 - 0.3 * vol, -0.95]) + _SPHERE * skull_r
    skull2 = _hull(proj((skull_local - pivot) @ R_mat.T))

    # 1. Long hair behind the head and neck.
    if style in ("long", "medium"):
        drop = 2.9 if style == "long" else 1.15
        wide = w + vol + (0.28 if style == "long" else 0.12)
        back_local = np.concatenate([skull_local[skull_local[:, 1] < 0.2],
                                     np.array([[-wide, drop, -1.0], [wide, drop, -1.0], [-wide * 0.98, 0.3, -1.0],
                                               [wide * 0.98, 0.3, -1.0]])])
        canvas.part(_hull(proj((back_local - pivot) @ R_mat.T)), hair * 0.75)
    # 2. Body (clothing) and neck.
    canvas.part(body2, p.clothing)
    canvas.part(neck2, skin * 0.86)
    # 3. Ears.
    for side in (0, 1):
        ear = P[G.P_EAR[8 * side: 8 * side + 8]]
        ear_c = smooth_closed(ear, 3)
        canvas.part(ear_c, skin * 0.93)
        _poly(canvas.img, smooth_closed(_lerp(ear.mean(0), ear, 0.55), 2), skin * 0.7)   # concha
    # 4. Skull: hair cap (or bare scalp).
    canvas.part(skull2, skin if style == "bald" else hair * 0.92)
    # 5. Side hair that covers the ears.
    if style in ("medium", "long"):
        for side, sign in ((0, -1.0), (1, 1.0)):
            side_local = np.array([
                [sign * 0.55 * w, p.hairline_y - 0.05, -0.3], [sign * (w + vol + 0.1), p.hairline_y + 0.1, -0.6],
                [sign * (w + vol + 0.14), 0.75, -0.75], [sign * (w + 0.02), 0.9, -0.7],
                [sign * 0.93 * w, 0.1, -0.5], [sign * 0.9 * w, -0.5, -0.45]])
            canvas.part(_hull(proj((side_local - pivot) @ R_mat.T)), hair * 0.85)
    # 6. Face skin.
    face_poly = smooth_closed(_hull(P[_FACE_OUTLINE]), 3)     # rounded outline through the hull's corners
    canvas.part(face_poly, skin)
    hl = P[G.P_HAIRLINE]
    # 7. Fringe over the forehead.
    if style == "fringe":
        fr_y = -p.brow_height - 0.13
        fr_local = np.array([[-0.98 * w, p.hairline_y - 0.2, -0.5], [-0.95 * w, fr_y - 0.05, -0.45],
                             [-0.5 * w, fr_y + 0.05, -0.05], [0.0, fr_y - 0.02, 0.05], [0.5 * w, fr_y + 0.03, -0.05],
                             [0.95 * w, fr_y - 0.07, -0.45], [0.98 * w, p.hairline_y - 0.2, -0.5],
                             [0.0, p.hairline_y - 0.35, -0.1]])
        fr = proj((fr_local - pivot) @ R_mat.T)
        edge = smooth_open(fr[1:6], 4)
        canvas.part(np.concatenate([fr[:1], edge, fr[6:]]), hair * 0.95)
        canvas.shadow_line(edge + down * 1.5 * lw, 0.5, 2 * lw)
    elif style != "bald":
        canvas.shadow_line(smooth_open(hl, 3) + down * lw, 0.25, 2 * lw)
    # Hair strands (texture) on the cap.
    if style != "bald":
        srng = np.random.default_rng(p.strand_seed)
        for _ in range(7):
            x0 = srng.uniform(-0.9, 0.9) * w
            strand_local = np.array([[x0 * 0.4 + p.hair_part, -1.6 - vol, -0.6],
                                     [x0 * 0.8, p.hairline_y - 0.25, -0.15 - 0.4 * x0 ** 2],
                                     [x0 * 1.05, p.hairline_y - 0.02, -0.12 - 0.5 * x0 ** 2]])
            s2 = smooth_open(proj((strand_local - pivot) @ R_mat.T), 4)
            colour = hair * srng.uniform(0.7, 1.3)
            _line(canvas.img, s2, colour, lw)

    # 8. Static shading: eye sockets, under the chin, nose, lower lip; cheeks; stubble.
    ld = lighting.direction()
    for brow, eye in ((G.RIGHT_BROW, G.RIGHT_EYE), (G.LEFT_BROW, G.LEFT_EYE)):
        socket = np.concatenate([P[brow] * 0.35 + P[eye].mean(0) * 0.65, P[eye]])
        canvas.shadow(_hull(socket), 0.2 + 0.4 * A["AU04"])
    canvas.shadow(np.concatenate([P[3:14], P[3:14][::-1] + down * 0.25 * unit]), 0.75)
    nose_base = P[31:36]
    canvas.shadow(np.concatenate([nose_base, nose_base[::-1] + down * 0.06 * unit]), 0.4)
    lower_lip_b = P[55:60]
    canvas.shadow(np.concatenate([lower_lip_b, lower_lip_b[::-1] + down * (0.07 + 0.04 * A["AU17"]) * unit]),
                  0.25 + 0.35 * A["AU17"])
    for ala, inner_corner, sgn in ((P[31], P[39], -1.0), (P[35], P[42], 1.0)):   # nose side walls
        away = (ld[0] < 0) == (sgn > 0)         # this side of the nose faces away from the light
        wall = np.concatenate([P[27:31], [ala, _lerp(inner_corner, ala, 0.3)]])
        canvas.shadow(wall, (0.25 + 0.35 * abs(ld[0])) if away else 0.12)
        canvas.highlight(_lerp(ala, P[30], 0.25) - down * 0.02 * unit, (0.045 * unit, 0.03 * unit), 0.0, 0.3)
    down_angle = np.degrees(np.arctan2(down[1], down[0]))
    right_angle = np.degrees(np.arctan2(right[1], right[0]))
    canvas.highlight(_lerp(P[28], P[30], 0.6), (0.12 * unit, 0.028 * unit), down_angle, 0.3 + 0.3 * max(ld[2], 0))
    cheek_up = 0.16 * A["AU06"] + 0.14 * A["AU12"]
    for side, apex in enumerate(G.P_CHEEK_APEX):
        lit = 1.0 + 0.4 * (ld[0] if side == 1 else -ld[0])
        canvas.highlight(P[apex], (0.16 * unit, 0.09 * unit), right_angle, (0.06 + cheek_up) * lit)
        if cheek_up > 0.01:   # the raised cheek casts a soft shadow below itself
            below = P[apex] + down * 0.17 * unit
            canvas.shadow(cv2.ellipse2Poly(tuple(int(v) for v in below), (int(0.16 * unit), int(0.05 * unit)),
                                           int(right_angle), 0, 360, 30).astype(np.float64), 0.5 * cheek_up)
    canvas.highlight(P[111] - down * 0.1 * unit, (0.3 * unit, 0.1 * unit), right_angle, 0.2)
    if p.stubble > 0:
        canvas.shadow(_hull(np.concatenate([P[2:15], P[[54, 33, 48]]])), p.stubble * 0.6)

    # 9. Brows: a tapered band along 17-21 / 22-26, thicker at the inner end.
    brow_col = skin * (1 - p.brow_density) + p.brow * p.brow_density
    for brow in (G.RIGHT_BROW, G.LEFT_BROW[::-1]):                       # outer -> inner
        c = smooth_open(P[brow], 3)
        tang = np.gradient(c, axis=0)
        nrm = np.stack([tang[:, 1], -tang[:, 0]], 1)
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-9
        nrm *= np.sign((nrm @ -down).mean() + 1e-9)               # point up
        prof = _BROW_PROFILE[len(c)] * p.brow_thickness * unit
        _poly(canvas.img, np.concatenate([c + nrm * prof[:, None] * 0.45, (c - nrm * prof[:, None] * 0.55)[::-1]]),
              brow_col)

    # 10. Eyes: white, iris, pupil, catchlight (clipped to the lid opening), lash line, lid crease, lower lid.
    eye_white = np.array([226.0, 222.0, 216.0])
    lash = skin * (1 - p.lash) * 0.5 + np.array([20.0, 15.0, 15.0]) * p.lash
    cosy = max(abs(R_mat[2, 2]), 0.3)
    iris_r = 0.082 * unit
    for side, eye in enumerate((G.RIGHT_EYE, G.LEFT_EYE)):
        e = P[eye]
        outline = smooth_closed(e, 4)
        upper_lid = outline[:13]
        lower_lid = np.concatenate([outline[12:], outline[:1]])
        x, y = outline[:, 0], outline[:, 1]
        opening = 0.5 * abs(float(x[:-1] @ y[1:] - y[:-1] @ x[1:] + x[-1] * y[0] - y[-1] * x[0]))
        if opening > 0.3 * supersample ** 2:
            iris_c = P[G.P_IRIS[side]]

            def draw_eye(layer, off, iris_c=iris_c, outline=outline, upper_lid=upper_lid):
                _poly(layer, outline - off, eye_white)
                _ellipse(layer, iris_c - off, (iris_r * cosy, iris_r), right_angle, p.iris)
                _ellipse(layer, iris_c - off, (iris_r * cosy, iris_r), right_angle, p.iris * 0.5, lw)
                _ellipse(layer, iris_c - off, (iris_r * 0.42 * cosy, iris_r * 0.42), right_angle, (12, 10, 10))
                _ellipse(layer, iris_c - off + (-0.3 * right - 0.35 * down) * iris_r, (0.15 * iris_r, 0.15 * iris_r),
                         0, (250, 250, 250))
                _line(layer, upper_lid - off + down * 0.9 * lw, eye_white * 0.6, lw)   # lid shadow on the eyeball
            _clip_draw(canvas.img, outline, draw_eye)
        _line(canvas.img, upper_lid, lash, 2 * lw if R >= 96 else lw)
        _line(canvas.img, lower_lid, skin * 0.62, lw)
        bmean = P[G.RIGHT_BROW if side == 0 else G.LEFT_BROW].mean(0)
        crease = upper_lid[2:-2] + (bmean - upper_lid[2:-2].mean(0)) * 0.3
        canvas.wrinkle(crease, 0.3, lw, -down)
        # Lower-lid bulge (AU06, AU07; AU12 at high intensity).
        canvas.wrinkle(lower_lid[2:-2] + down * (0.05 * unit),
                       0.08 + 0.5 * A["AU06"] + 0.35 * A["AU07"] + 0.3 * A["AU12"] ** 2, lw, down)
        cf = 0.45 * A["AU06"] + 0.25 * A["AU12"] ** 2 + 0.08 * p.age
        if cf > 0.02:  # crow's feet (AU06)
            corner = e[0] if side == 0 else e[3]
            outward = _unit(corner - e.mean(0))
            start = corner + outward * 0.06 * unit
            for ang in (-0.45, 0.0, 0.45):
                dvec = np.array([outward[0] * np.cos(ang) - outward[1] * np.sin(ang),
                                 outward[0] * np.sin(ang) + outward[1] * np.cos(ang)])
                canvas.wrinkle(np.stack([start, start + dvec * 0.1 * unit]), cf, lw)

    # 11. Nose: nostrils and alar creases; AU wrinkles and folds.
    ala_strength = 0.22 + 0.3 * A["AU10"] + 0.3 * A["AU09"]
    for a_i, b_i in ((31, 32), (35, 34)):
        c = _lerp(P[a_i], P[b_i], 0.5) - down * 0.01 * unit
        v = P[b_i] - P[a_i]
        _ellipse(canvas.img, c, (max(np.linalg.norm(v) * 0.5, 0.5), max(0.022 * unit, 0.6)),
                 np.degrees(np.arctan2(v[1], v[0])), skin * 0.35)
        out = P[a_i] - P[33]
        canvas.wrinkle(smooth_open(np.stack([P[a_i] - down * 0.06 * unit + out * 0.15, P[a_i] + out * 0.12, c]), 3),
                       ala_strength, lw)
    if A["AU09"] > 0.01:  # nose wrinkles across the upper nose
        for t in (0.25, 0.45, 0.65):
            cpt = _lerp(P[27], P[29], t)
            canvas.wrinkle(np.stack([cpt - right * 0.09 * unit, cpt + down * 0.015 * unit, cpt + right * 0.09 * unit]),
                           0.85 * A["AU09"], lw, down)
    if A["AU04"] > 0.01:  # glabella: vertical lines between the brows
        mid = 0.5 * (P[21] + P[22])
        for sgn in (-1.0, 1.0):
            base = mid + right * sgn * 0.045 * unit
            canvas.wrinkle(np.stack([base - down * 0.1 * unit, base + down * 0.06 * unit]), 0.9 * A["AU04"], lw,
                           right * sgn)
    if A["AU04"] + A["AU09"] > 0.01:  # procerus line at the nasion
        canvas.wrinkle(np.stack([P[27] - right * 0.07 * unit, P[27] + right * 0.07 * unit]) + down * 0.02 * unit,
                       0.5 * A["AU04"] + 0.45 * A["AU09"], lw, down)
    fl_c, fl_s = 0.6 * A["AU01"] + 0.08 * p.age, 0.55 * A["AU02"] + 0.05 * p.age
    if fl_c > 0.02 or fl_s > 0.02:  # forehead lines: centre (AU01), sides (AU02)
        brow_mid = 0.5 * (P[20] + P[23])
        for j, t in enumerate((0.12, 0.22, 0.32)):
            fade = 1.0 - 0.18 * j
            cpt = brow_mid - down * t * unit
            line = np.stack([cpt - right * 0.34 * unit + down * 0.03 * unit, cpt, cpt + right * 0.34 * unit
                             + down * 0.03 * unit])
            canvas.wrinkle(smooth_open(line, 4), fl_c * fade, lw, down)
            if fl_s > 0.02:
                for i0, i1, sgn in ((17, 19, -1.0), (26, 24, 1.0)):
                    bo = _lerp(P[i0], P[i1], 0.5) - down * (t + 0.03) * unit
                    line = np.stack([bo + right * sgn * 0.22 * unit + down * 0.05 * unit, bo,
                                     bo - right * sgn * 0.2 * unit])
                    canvas.wrinkle(smooth_open(line, 3), fl_s * fade, lw, down)
    # Nasolabial folds (AU09, AU10, AU12; faint with age).
    nl = 0.1 + 0.2 * p.age + 0.5 * A["AU12"] + 0.55 * A["AU10"] + 0.3 * A["AU09"] + 0.15 * A["AU06"]
    for base, sgn in ((103, -1.0), (106, 1.0)):
        curve = smooth_open(P[base:base + 3], 4)
        canvas.wrinkle(curve, nl, lw, right * sgn)
        canvas.shadow_line(curve + right * sgn * 0.5 * lw, 0.35 * nl, 2 * lw)
    # Dimples (AU14), marionette lines (AU15), stretch lines (AU20) at the lip corners.
    for corner, sgn in ((48, -1.0), (54, 1.0)):
        c = P[corner]
        if A["AU14"] > 0.01:
            d0 = c + right * sgn * 0.06 * unit - down * 0.05 * unit
            canvas.wrinkle(smooth_open(np.stack([d0, d0 + right * sgn * 0.025 * unit + down * 0.05 * unit,
                                                 d0 + down * 0.1 * unit]), 3), A["AU14"], lw, right * sgn)
            canvas.shadow_line(np.stack([d0 + down * 0.02 * unit, d0 + down * 0.08 * unit]) + right * sgn * 0.02 * unit,
                               0.6 * A["AU14"], 2 * lw)
        m15 = 0.8 * A["AU15"] + 0.1 * p.age
        if m15 > 0.02:
            canvas.wrinkle(np.stack([c + right * sgn * 0.03 * unit + down * 0.03 * unit,
                                     c + right * sgn * 0.08 * unit + down * 0.22 * unit]), m15, lw, right * sgn)
        if A["AU20"] > 0.01:
            canvas.wrinkle(np.stack([c + right * sgn * 0.03 * unit,
                                     c + right * sgn * 0.13 * unit + down * 0.01 * unit]),
                           0.6 * A["AU20"], lw, down)
    if A["AU23"] > 0.01:  # vertical lines above and below the tightened lips
        for x in (-0.17, -0.07, 0.07, 0.17):
            top = _lerp(P[33], P[51], 0.45) + right * x * unit
            canvas.wrinkle(np.stack([top, top + down * 0.07 * unit]), 0.7 * A["AU23"], lw, right)
            bot = P[57] + down * 0.05 * unit + right * x * 0.8 * unit
            canvas.wrinkle(np.stack([bot, bot + down * 0.05 * unit]), 0.5 * A["AU23"], lw, right)
    chin_c = _lerp(P[57], P[8], 0.55)
    if A["AU17"] > 0.01:  # chin raiser: wrinkled chin boss
        for dx, dy in _CHIN_DIMPLES:
            cpt = chin_c + right * dx * unit + down * dy * unit
            canvas.wrinkle(np.stack([cpt - right * 0.035 * unit, cpt + down * 0.012 * unit,
                                     cpt + right * 0.035 * unit]),
                           0.75 * A["AU17"], lw, down)
    sulcus = smooth_open(np.stack([_lerp(P[59], P[7], 0.3), _lerp(P[57], P[8], 0.25), _lerp(P[55], P[9], 0.3)]), 3)
    canvas.wrinkle(sulcus, 0.1 + 0.6 * A["AU17"], lw, down)
    canvas.highlight(chin_c + down * 0.06 * unit, (0.15 * unit, 0.1 * unit), right_angle, 0.12 + 0.35 * A["AU17"])
    if A["AU20"] > 0.01:  # platysma cords on the neck
        for sgn in (-1.0, 1.0):
            top = P[8] + right * sgn * 0.25 * unit + down * 0.1 * unit
            canvas.wrinkle(np.stack([top, top + down * 0.5 * unit + right * sgn * 0.1 * unit]), 0.5 * A["AU20"], lw,
                           right)
    if len(p.moles):
        moles = np.concatenate([p.moles[:, :1] * w, p.moles[:, 1:], np.zeros((len(p.moles), 1))], 1)
        for mp in proj((moles - pivot) @ R_mat.T):
            _ellipse(canvas.img, mp, (0.012 * unit, 0.012 * unit), 0, skin * 0.55)

    # 12. Lips and mouth.
    up_outer = smooth_open(P[48:55], 4)
    lo_outer = smooth_open(P[[54, 55, 56, 57, 58, 59, 48]], 4)
    up_inner = smooth_open(P[[60, 61, 62, 63, 64]], 4)
    lo_inner = smooth_open(P[[64, 65, 66, 67, 60]], 4)
    gap = np.min(np.linalg.norm(P[[67, 66, 65]] - P[[61, 62, 63]], axis=1))
    gap_max = np.max(np.linalg.norm(P[[67, 66, 65]] - P[[61, 62, 63]], axis=1))
    mouth_poly = np.concatenate([up_inner, lo_inner[1:-1]])
    if gap_max > 0.6:
        teeth_col = np.array([238.0, 234.0, 222.0])
        tooth_h = 0.075 * unit

        def draw_mouth(layer, off):
            _poly(layer, mouth_poly - off, (52, 18, 22))
            span = up_inner[-1] - up_inner[0]
            grid = np.linspace(0, 1, len(up_inner))
            top = np.stack([np.interp(_TEETH_TOP, grid, up_inner[:, k]) for k in (0, 1)], 1)
            upper_teeth = np.concatenate([top - down * 0.03 * unit, (top + down * tooth_h)[::-1]])
            _poly(layer, upper_teeth - off, teeth_col)
            bot = np.stack([np.interp(_TEETH_BOT, grid, lo_inner[:, k]) for k in (0, 1)], 1)
            lower_teeth = np.concatenate([bot + down * 0.03 * unit, (bot - down * tooth_h * 0.55)[::-1]])
            _poly(layer, lower_teeth - off, teeth_col * 0.9)
            tongue_c = _lerp(P[66], P[62], 0.25)
            _ellipse(layer, tongue_c - off, (np.linalg.norm(span) * 0.28, max(gap_max * 0.22, 1.0)),
                     np.degrees(np.arctan2(span[1], span[0])), (170, 82, 86))
            # shade the mouth corners
            _line(layer, up_inner - off + down * 0.5, (40, 14, 18), lw)
        _clip_draw(canvas.img, mouth_poly, draw_mouth)
    _poly(canvas.img, np.concatenate([up_outer, [P[54]], up_inner[::-1], [P[48]]]), p.lip * 0.88)
    _poly(canvas.img, np.concatenate([lo_outer, [P[48]], lo_inner[::-1], [P[54]]]), p.lip * 1.02)
    if gap < 1.2:
        _line(canvas.img, up_inner, p.lip * (0.45 - 0.2 * A["AU23"] - 0.15 * A["AU14"]), lw)
    # lower lip highlight
    canvas.highlight(_lerp(P[57], P[66], 0.45), (0.1 * unit, 0.025 * unit),
                     np.degrees(np.arctan2(right[1], right[0])), 0.35)
    # Philtrum and under-nose shading.
    for sgn in (-1.0, 1.0):
        top = P[33] + right * sgn * 0.035 * unit
        canvas.wrinkle(np.stack([top, _lerp(P[51], P[50 if sgn < 0 else 52], 0.6)]), 0.08, lw, right * sgn)

    # 13. Lighting.
    img = _compose(canvas, pivot, R_mat, p, centre2, half, lighting)

    # 14. Occluders (not lit by the face light), and the occlusion mask.
    occ = np.zeros((R, R), np.uint8)
    if occluder is not None:
        if rng is None:
            raise ValueError("an occluder needs rng")
        _draw_occluder(img, occ, occluder, P, p, rng, unit, down, right, lw)

    # 15. Back to the output size.
    if supersample > 1:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        occ = cv2.resize(occ, (size, size), interpolation=cv2.INTER_AREA)
        fg = cv2.resize(canvas.fg, (size, size), interpolation=cv2.INTER_AREA)
        P_out = (P + 0.5) / supersample - 0.5
    else:
        fg = canvas.fg
        P_out = P
    regions = region_masks(P_out, size, region_dilation)
    return RenderResult(image=img, landmarks=P_out[:G.NUM_LANDMARKS].astype(np.float32),
                        occlusion_mask=occ > 127, region_masks=regions, face_mask=fg > 127)


def _compose(canvas: _Canvas, pivot, R_mat, p, centre2, half, lighting: Lighting) -> np.ndarray:
    """Light the painted albedo: head-ellipsoid shading times the soft shadows and wrinkles, plus highlights, on
    the head only (the background keeps its own light)."""
    R = canvas.R
    shade = _head_shading(pivot, R_mat, p, centre2, half, R, lighting)
    s0, s1 = cv2.split(cv2.GaussianBlur(canvas.soft, (0, 0), 0.022 * R))
    f0, f1 = cv2.split(cv2.GaussianBlur(canvas.fine, (0, 0), max(0.45, 0.004 * R)))
    k = s0.astype(np.float32)
    k *= np.float32(-0.6 / 255.0)
    k += np.float32(1.0)
    t = f0.astype(np.float32)
    t *= np.float32(-0.7 / 255.0)
    t += np.float32(1.0)
    k *= t
    k *= shade
    k += s1 * np.float32(0.3 / 255.0)
    k += f1 * np.float32(0.22 / 255.0)
    fg = canvas.fg.astype(np.float32)
    fg *= np.float32(1.0 / 255.0)
    k *= fg                                  # multiplier = fg * k * light + (1 - fg)
    fg -= np.float32(1.0)
    planes = [k * np.float32(c) - fg for c in lighting.colour]
    return cv2.multiply(canvas.img, cv2.merge(planes), dtype=cv2.CV_8U)


# ----------------------------------------------------------------------------------------------------------------
def region_masks(P: np.ndarray, size: int, dilation: float = 0.04) -> np.ndarray:
    """Per-AU region masks from projected points.

    Each AU's region is the union of the convex hulls of its point groups (``geometry.AU_REGION_GROUPS``: the
    landmarks it moves plus helper points around them), dilated by ``dilation * size`` pixels.

    Args:
        P: float ``[NUM_POINTS, 2]`` projected points (pixels, output resolution).
        size: image side.
        dilation: fraction of ``size``.

    Returns:
        bool ``[17, size, size]`` in model AU order.
    """
    masks = np.zeros((NUM_AUS, size, size), np.uint8)
    r = max(1.0, dilation * size)
    for k, name in enumerate(AU_NAMES):
        for group in G.AU_REGION_GROUPS[name]:
            h = _hull(P[group])
            out = h - h.mean(axis=0)                 # push every hull vertex r pixels away from the centroid
            out *= 1.0 + r / (np.sqrt((out * out).sum(axis=1, keepdims=True)) + 1e-6)
            cv2.fillPoly(masks[k], [_fx(out + h.mean(axis=0))], 255, cv2.LINE_8, SHIFT)
    return masks > 0


# ----------------------------------------------------------------------------------------------------------------
def _draw_occluder(img, occ, kind, P, p, rng, unit, down, right, lw) -> None:
    R = img.shape[0]
    if kind == "glasses":
        frame = rng.uniform(0, 90, 3) if rng.random() < 0.7 else rng.uniform(60, 220, 3)
        sun = rng.random() < 0.35
        thick = max(1, int(round(rng.uniform(0.6, 1.6) * R / 100)))
        shape = rng.random()
        centres = []
        for eye in (G.RIGHT_EYE, G.LEFT_EYE):
            e = P[eye]
            c = e.mean(0) - down * 0.015 * unit
            ew = np.linalg.norm(e[3] - e[0])
            ax = (ew * rng.uniform(0.68, 0.8), ew * rng.uniform(0.5, 0.62))
            ang = np.degrees(np.arctan2(right[1], right[0]))
            centres.append((c, ax))
            if shape < 0.5:
                pts = cv2.ellipse2Poly((0, 0), (100, 100), 0, 0, 360, 15).astype(np.float64) / 100.0
            else:
                t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
                pts = np.stack([np.sign(np.cos(t)) * np.abs(np.cos(t)) ** 0.45,
                                np.sign(np.sin(t)) * np.abs(np.sin(t)) ** 0.45], 1)
            lens = c + pts[:, :1] * ax[0] * right + pts[:, 1:] * ax[1] * down
            if sun:
                layer = img.copy()
                _poly(layer, lens, rng.uniform(10, 60, 3))
                m = np.zeros((R, R), np.uint8)
                _poly(m, lens, 255)
                alpha = (m.astype(np.float32) / 255.0 * 0.85)[..., None]
                img[:] = (layer * alpha + img * (1 - alpha)).astype(np.uint8)
                _poly(occ, lens, 255)
            cv2.polylines(img, [_fx(lens)], True, _col(frame), thick, AA, SHIFT)
            cv2.polylines(occ, [_fx(lens)], True, 255, thick, AA, SHIFT)
        (c0, a0), (c1, a1) = centres
        bridge = np.stack([c0 + right * a0[0] * 0.95, _lerp(c0, c1, 0.5) - down * 0.03 * unit,
                           c1 - right * a1[0] * 0.95])
        _line(img, smooth_open(bridge, 3), frame, thick)
        _line(occ, smooth_open(bridge, 3), 255, thick)
        for c, ax, ear, sgn in ((c0, a0, P[G.P_EAR[2]], -1.0), (c1, a1, P[G.P_EAR[10]], 1.0)):
            start = c + right * sgn * ax[0]
            _line(img, np.stack([start, ear]), frame, thick)
            _line(occ, np.stack([start, ear]), 255, thick)
    elif kind == "hand":
        tone = p.skin if rng.random() < 0.7 else G.SKIN_TONES[int(rng.integers(len(G.SKIN_TONES)))]
        base = rng.choice([8, 57, 4, 12, 30])
        c = P[base] + rng.normal(0, 0.12, 2) * unit
        size = unit * rng.uniform(0.45, 0.7)
        ang = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        layer = np.zeros((R, R), np.uint8)
        palm = cv2.ellipse2Poly((0, 0), (100, 120), 0, 0, 360, 20).astype(np.float64) / 100.0 * size * 0.55
        _poly(layer, c + palm @ rot.T, 255)
        fingers = []
        for j, fx in enumerate((-0.42, -0.14, 0.14, 0.42)):
            length = size * (0.95 + 0.25 * (1 - abs(fx) * 2)) * rng.uniform(0.9, 1.1)
            p0 = np.array([fx * size, -0.45 * size])
            p1 = p0 + np.array([fx * 0.2 * size, -length])
            fingers.append((c + p0 @ rot.T, c + p1 @ rot.T))
        thumb = (c + np.array([0.5 * size, 0.1 * size]) @ rot.T, c + np.array([1.05 * size, -0.35 * size]) @ rot.T)
        fingers.append(thumb)
        fw = max(1, int(round(size * 0.24)))
        for f0, f1 in fingers:
            cv2.line(layer, tuple(int(v) for v in _fx(f0)), tuple(int(v) for v in _fx(f1)), 255, fw, AA, SHIFT)
        m = layer.astype(np.float32)[..., None] / 255.0
        shade = np.linspace(1.05, 0.8, R, dtype=np.float32)[:, None, None]
        col = np.clip(tone[None, None, :] * shade, 0, 255)
        edge = cv2.morphologyEx(layer, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        edge = edge.astype(np.float32)[..., None] / 255.0
        hand = col * (1.0 - 0.35 * edge)
        img[:] = np.clip(hand * m + img * (1 - m), 0, 255).astype(np.uint8)
        np.maximum(occ, layer, out=occ)
    elif kind == "hair":
        colour = p.hair if rng.random() < 0.8 else rng.uniform(20, 200, 3)
        centre = P[0, 0] + rng.uniform(0.1, 0.9) * (P[16, 0] - P[0, 0])
        spread = rng.uniform(0.1, 0.45) * unit
        for _ in range(int(rng.integers(5, 15))):
            x0 = centre + rng.normal(0, 1) * spread
            pts = np.stack([np.array([x0 + rng.normal(0, 0.15) * unit, -2.0]),
                            np.array([x0 + rng.normal(0, 0.2) * unit, P[19, 1] + rng.normal(0, 0.1) * unit]),
                            np.array([x0 + rng.normal(0, 0.25) * unit, P[30, 1] + rng.uniform(-0.5, 0.4) * unit])])
            curve = smooth_open(pts, 6)
            th = max(1, int(round(rng.uniform(0.6, 2.2) * R / 128)))
            _line(img, curve, colour * rng.uniform(0.6, 1.25), th)
            _line(occ, curve, 255, th)
    elif kind == "mask":
        colour = [(170, 205, 225), (238, 238, 240), (35, 35, 40), (220, 175, 185), (90, 120, 160)][int(rng.integers(5))]
        colour = np.asarray(colour, np.float64) * rng.uniform(0.9, 1.05)
        top = np.stack([_lerp(P[1], P[29], 0.1), _lerp(P[29], P[28], 0.3) - down * 0.02 * unit,
                        _lerp(P[15], P[29], 0.1)])
        bottom = P[[13, 11, 10, 9, 8, 7, 6, 5, 3]] + down * 0.05 * unit
        poly = np.concatenate([smooth_open(top, 4), bottom])
        _poly(img, poly, colour)
        _poly(occ, poly, 255)
        for t in (0.3, 0.5, 0.7):
            l0 = _lerp(poly[0], P[3] + down * 0.05 * unit, t)
            l1 = _lerp(poly[len(smooth_open(top, 4)) - 1], P[13] + down * 0.05 * unit, t)
            _line(img, np.stack([l0, _lerp(l0, l1, 0.5) + down * 0.02 * unit, l1]), colour * 0.78, lw)
        for corner, ear in ((poly[0], P[G.P_EAR[1]]), (poly[len(smooth_open(top, 4)) - 1], P[G.P_EAR[9]])):
            _line(img, np.stack([corner, ear]), colour * 0.9, lw)
            _line(occ, np.stack([corner, ear]), 255, lw)
    else:
        raise ValueError("unknown occluder %r; valid ones are %s" % (kind, ", ".join(OCCLUDERS)))
