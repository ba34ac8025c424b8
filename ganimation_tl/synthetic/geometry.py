"""3D landmark head model, identity parameters and anatomical action-unit deformations.

The face is a set of 3D points in *face units* (1 unit is about 70 mm, half the width of an adult face):
``x`` points to the image right (the subject's left), ``y`` down, ``z`` toward the camera; the origin sits
between the eyes on the line through the eye corners. The first 68 points are the iBUG 68 landmarks, in the
iBUG order:

* 0-16 jaw line (0 at the subject's right ear, i.e. image left, 8 at the chin),
* 17-21 right brow (17 outer end), 22-26 left brow (26 outer end),
* 27-30 nose bridge (27 at the nasion, 30 the tip), 31-35 nostrils (31 right ala, 33 subnasale),
* 36-41 right eye (36 outer corner, 37-38 upper lid, 39 inner corner, 40-41 lower lid),
* 42-47 left eye (42 inner corner, 43-44 upper lid, 45 outer corner, 46-47 lower lid),
* 48-59 outer lips (48 right corner, 51 top of the upper lip, 54 left corner, 57 bottom of the lower lip),
* 60-67 inner lips (60 right inner corner, 61-63 upper inner lip, 64 left inner corner, 65-67 lower inner lip).

"Right" is the subject's right, which is on the image's left. Further helper points (hairline, temples, cheek
surface, eyeballs, irises, boxes around the eyes, nasolabial folds, ears) follow the landmarks; see the ``P_*``
index constants.

Action units (AUs) act as continuous, additive displacements of these points, following the landmark
directions in ``shared/docs/facs.md`` (FACS, Ekman, Friesen and Hager 2002): intensity 0 is the neutral face
of the identity and 1 the maximal action (OpenFace intensity 5). The eyelids and lips are then passed through
anatomical constraints (an upper lid never below the lower lid, lips never cross), so any AU combination gives
a valid face. Head pose is a rotation about a pivot inside the head (yaw about the vertical axis, pitch about the
horizontal axis, roll in the image plane) followed by a weak perspective projection.

Pose conventions (degrees): positive yaw turns the face toward the image right (the nose tip moves right, the
subject looks to their left); positive pitch tilts the face down (the nose tip moves down); positive roll turns
the face clockwise as seen in the image.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence

import numpy as np

from ganimation_tl.aus import AU_NAMES, NUM_AUS

# ----------------------------------------------------------------------------------------------------------------
# iBUG 68 landmark groups.
JAW = np.arange(0, 17)
RIGHT_BROW = np.arange(17, 22)
LEFT_BROW = np.arange(22, 27)
NOSE_BRIDGE = np.arange(27, 31)
NOSTRILS = np.arange(31, 36)
RIGHT_EYE = np.arange(36, 42)
LEFT_EYE = np.arange(42, 48)
OUTER_LIPS = np.arange(48, 60)
INNER_LIPS = np.arange(60, 68)
NUM_LANDMARKS = 68

#: ``MIRROR[i]`` is the landmark that mirrors landmark ``i`` across the face's midline.
MIRROR = np.array(
    list(range(16, -1, -1))                     # jaw
    + list(range(26, 16, -1))                   # brows
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]      # nose
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]   # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]   # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65],         # inner lips
    dtype=np.int64)

# ----------------------------------------------------------------------------------------------------------------
# Helper points after the 68 landmarks (indices into the full point array).
P_HAIRLINE = np.arange(68, 77)        # 9 points, image left -> right, along the top of the forehead
P_TEMPLE = np.arange(77, 81)          # right low, right high, left low, left high
P_CHEEK = np.arange(81, 87)           # cheek surface (silhouette under yaw): 3 right, 3 left
P_CHEEK_APEX = np.array([87, 88])     # right, left: the cheek's highest point (moves with AU06 / AU12)
P_EYEBALL = np.array([89, 90])        # eyeball centres, right, left
P_IRIS = np.array([91, 92])           # iris centres on the eyeball surface
P_EYEBOX = np.arange(93, 101)         # per eye: above, below, outer, inner (right eye first); lid-independent
P_GLABELLA_TOP = 101                  # forehead point above the glabella
P_CHIN_BELOW = 102                    # below the chin (room for the jaw drop)
P_NASOLABIAL = np.arange(103, 109)    # per side: start at the ala, middle, end beyond the lip corner
P_FOREHEAD = np.arange(109, 115)      # forehead: right outer/inner, centre low/high, left inner/outer
P_EAR = np.arange(115, 131)           # 8 per ear, right first
P_PIVOT = 131                         # rotation pivot (inside the head)
P_ANCHOR = 132                        # crop centre (mid-face, on the surface)
P_JAW_BELOW = np.arange(133, 136)     # below the jaw line at points 4, 8, 12 (the chin's shadow on the neck)
NUM_POINTS = 136

#: Mirror of every point (landmarks and helpers) across the face's midline.
FULL_MIRROR = np.concatenate([
    MIRROR, np.arange(76, 67, -1), [79, 80, 77, 78], [84, 85, 86, 81, 82, 83], [88, 87], [90, 89], [92, 91],
    [97, 98, 99, 100, 93, 94, 95, 96], [101, 102], [106, 107, 108, 103, 104, 105],
    [114, 113, 111, 112, 110, 109], np.arange(123, 131), np.arange(115, 123), [131, 132], [135, 134, 133]]
).astype(np.int64)

_EAR_TEMPLATE = np.array([  # (dx outward, y, z) of an ear outline, before the identity's ear scale
    [0.02, -0.12, -0.62], [0.09, -0.15, -0.75], [0.13, -0.05, -0.86], [0.13, 0.12, -0.90],
    [0.11, 0.28, -0.86], [0.07, 0.42, -0.78], [0.03, 0.44, -0.70], [0.01, 0.30, -0.64]])

# ----------------------------------------------------------------------------------------------------------------
# Appearance palettes (RGB, 0..255).
SKIN_TONES = np.array([[246, 214, 193], [236, 188, 160], [222, 170, 135], [199, 146, 108], [172, 118, 82],
                       [140, 92, 62], [108, 70, 48], [78, 52, 38]], np.float32)
HAIR_COLOURS = np.array([[28, 22, 20], [52, 36, 28], [88, 60, 38], [128, 92, 58], [196, 160, 104],
                         [148, 72, 36], [150, 146, 142], [218, 214, 206]], np.float32)
HAIR_COLOUR_P = np.array([0.26, 0.24, 0.17, 0.1, 0.09, 0.05, 0.06, 0.03])
IRIS_COLOURS = np.array([[92, 56, 30], [56, 36, 22], [118, 94, 52], [86, 118, 78], [78, 118, 168],
                         [120, 130, 140]], np.float32)
IRIS_COLOUR_P = np.array([0.35, 0.25, 0.12, 0.08, 0.13, 0.07])

#: Hair styles (``IdentityParams.hair_style``).
HAIR_STYLES = ("bald", "short", "medium", "long", "bun", "fringe")
_HAIR_STYLE_P = np.array([0.05, 0.34, 0.2, 0.26, 0.08, 0.07])


@dataclasses.dataclass(frozen=True, eq=False)
class IdentityParams:
    """Shape and appearance of one synthetic person (everything that does not change with expression).

    Lengths are in face units (about 70 mm, see the module docstring); colours are RGB float32 in [0, 255].
    Build one with :func:`sample_identity`.
    """

    face_half_width: float
    jaw_top_y: float
    chin_y: float
    jaw_square: float        # superellipse exponent of the jaw line: 2 round, 3.2 square
    jaw_taper: float
    chin_z: float
    eye_half_spacing: float
    eye_width: float
    eye_height: float
    eye_tilt: float          # outer corner above the inner one
    brow_height: float
    brow_thickness: float
    brow_arch: float
    brow_inner_x: float
    nose_length: float
    nose_width: float
    nose_protrusion: float
    mouth_y: float
    mouth_half_width: float
    upper_lip: float
    lower_lip: float
    hairline_y: float
    ear_scale: float
    skin: np.ndarray         # [3]
    lip: np.ndarray          # [3]
    hair: np.ndarray         # [3]
    brow: np.ndarray         # [3]
    iris: np.ndarray         # [3]
    clothing: np.ndarray     # [3]
    hair_style: int
    hair_part: float
    hair_volume: float
    stubble: float
    age: float               # 0..1, strength of static wrinkles
    blush: float
    lash: float              # darkness of the lash line
    brow_density: float
    moles: np.ndarray        # [k, 2] local (x, y) on the face
    strand_seed: int


def _mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (np.asarray(a, np.float32) * (1.0 - t) + np.asarray(b, np.float32) * t).astype(np.float32)


def sample_identity(rng: np.random.Generator) -> IdentityParams:
    """Draw a random identity (face shape, feature sizes and spacing, skin, hair, eye colour, hair style).

    Args:
        rng: NumPy generator; the identity is a pure function of its state.

    Returns:
        IdentityParams.
    """
    u = rng.uniform
    tone = u(0.0, len(SKIN_TONES) - 1.0)
    lo = int(np.floor(tone))
    skin = _mix(SKIN_TONES[lo], SKIN_TONES[min(lo + 1, len(SKIN_TONES) - 1)], tone - lo)
    skin = np.clip(skin * rng.normal(1.0, 0.025, 3) + rng.normal(0, 4, 3), 30, 252).astype(np.float32)
    lip = np.clip(_mix(skin, [178, 76, 84], u(0.28, 0.5)) * u(0.78, 0.95), 20, 240).astype(np.float32)
    hair = HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=HAIR_COLOUR_P)]
    hair = np.clip(hair * rng.normal(1.0, 0.08, 3).astype(np.float32), 5, 245).astype(np.float32)
    brow_base = hair if hair.mean() < 160 else _mix(hair, [110, 90, 70], 0.6)
    brow = _mix(brow_base, skin, 0.0) * 0.85
    iris = np.clip(IRIS_COLOURS[rng.choice(len(IRIS_COLOURS), p=IRIS_COLOUR_P)] * rng.normal(1, 0.08, 3), 10, 230)
    clothing = rng.uniform(20, 235, 3).astype(np.float32)
    nose_length = u(0.58, 0.72)
    mouth_y = max(u(1.0, 1.12), nose_length + 0.15 + 0.2)
    moles = np.stack([u(-0.7, 0.7, 3), u(-0.5, 1.3, 3)], axis=1)[: int(rng.choice(4, p=[0.55, 0.3, 0.1, 0.05]))]
    return IdentityParams(
        face_half_width=u(0.93, 1.06), jaw_top_y=u(0.05, 0.2), chin_y=u(1.52, 1.72), jaw_square=u(2.1, 3.2),
        jaw_taper=u(0.0, 0.14), chin_z=u(0.03, 0.15), eye_half_spacing=u(0.42, 0.49), eye_width=u(0.38, 0.45),
        eye_height=u(0.115, 0.16), eye_tilt=u(-0.02, 0.04), brow_height=u(0.25, 0.33),
        brow_thickness=u(0.05, 0.085), brow_arch=u(0.5, 1.5), brow_inner_x=u(0.12, 0.18),
        nose_length=nose_length, nose_width=u(0.19, 0.26), nose_protrusion=u(0.85, 1.2), mouth_y=mouth_y,
        mouth_half_width=u(0.31, 0.4), upper_lip=u(0.06, 0.1), lower_lip=u(0.08, 0.125),
        hairline_y=u(-1.25, -0.95), ear_scale=u(0.9, 1.1), skin=skin, lip=lip, hair=hair,
        brow=brow.astype(np.float32), iris=iris.astype(np.float32), clothing=clothing,
        hair_style=int(rng.choice(len(HAIR_STYLES), p=_HAIR_STYLE_P)), hair_part=u(-0.5, 0.5),
        hair_volume=u(0.06, 0.2), stubble=float(u(0.25, 0.6) if rng.random() < 0.12 else 0.0), age=u(0.0, 1.0) ** 2,
        blush=u(0.0, 0.35), lash=u(0.55, 1.0), brow_density=u(0.6, 0.95), moles=moles.astype(np.float32),
        strand_seed=int(rng.integers(2 ** 31)))


def _sym(points: np.ndarray, right: Sequence[int], xyz: Sequence[Sequence[float]]) -> None:
    """Set the right-side points ``right`` to ``xyz`` and their mirror images on the left side."""
    right = np.asarray(right)
    xyz = np.asarray(xyz, np.float64)
    points[right] = xyz
    points[FULL_MIRROR[right]] = xyz * np.array([-1.0, 1.0, 1.0])


def neutral_points(p: IdentityParams) -> np.ndarray:
    """3D points of an identity's neutral face (all AUs 0), before any pose.

    Args:
        p: identity.

    Returns:
        float64 ``[NUM_POINTS, 3]`` in face units: the 68 iBUG landmarks (see the module docstring for the
        order) then the helper points ``P_*``.
    """
    pts = np.zeros((NUM_POINTS, 3))
    # Jaw: a superellipse from the right ear (0) through the chin (8) to the left ear (16).
    phi = np.linspace(0.0, np.pi, 17)
    c, s = np.cos(phi), np.sin(phi)
    e = 2.0 / p.jaw_square
    x = -p.face_half_width * np.sign(c) * np.abs(c) ** e * (1.0 - p.jaw_taper * s ** 2)
    y = p.jaw_top_y + (p.chin_y - p.jaw_top_y) * s ** e
    z = -0.72 * np.abs(c) ** 1.4 + p.chin_z * s ** 8
    pts[:17] = np.stack([x, y, z], 1)
    # Brows (17 outer .. 21 inner on the right side), above the eye line.
    es, ew, eh = p.eye_half_spacing, p.eye_width, p.eye_height
    t = np.linspace(0.0, 1.0, 5)
    bx = -(es + 0.5 * ew + 0.09) * (1 - t) + (-p.brow_inner_x) * t
    by = -p.brow_height + np.array([0.065, 0.0, -0.028, -0.022, 0.0]) * p.brow_arch
    bz = np.array([-0.3, -0.14, -0.02, 0.07, 0.11])
    _sym(pts, RIGHT_BROW, np.stack([bx, by, bz], 1))
    # Eyes (right eye; 36 outer corner, 39 inner corner).
    cx = -es
    _sym(pts, RIGHT_EYE, [
        [cx - ew / 2, -p.eye_tilt, -0.15], [cx - ew / 6, -eh * 0.5 - p.eye_tilt * 0.5, 0.0],
        [cx + ew / 6, -eh * 0.56, 0.0], [cx + ew / 2, 0.012, -0.06],
        [cx + ew / 6, eh * 0.44, -0.015], [cx - ew / 6, eh * 0.44 - p.eye_tilt * 0.3, -0.03]])
    # Nose.
    k = p.nose_protrusion
    nl = p.nose_length
    pts[27:31, 1] = [-0.07, nl * 0.3, nl * 0.64, nl]         # nasion .. tip, on the midline
    pts[27:31, 2] = np.array([0.07, 0.18, 0.29, 0.42]) * k
    nw = p.nose_width
    _sym(pts, [31, 32], [[-nw, nl + 0.09, 0.12 * k], [-nw * 0.5, nl + 0.13, 0.22 * k]])
    pts[33] = [0.0, nl + 0.15, 0.27 * k]
    # Lips.
    my, mw, ut, lt = p.mouth_y, p.mouth_half_width, p.upper_lip, p.lower_lip
    _sym(pts, [48, 49, 50], [[-mw, my + 0.005, 0.0], [-0.6 * mw, my - 0.72 * ut, 0.15],
                             [-0.24 * mw, my - 1.05 * ut, 0.23]])
    pts[51] = [0.0, my - 0.86 * ut, 0.25]
    _sym(pts, [59, 58], [[-0.6 * mw, my + 0.8 * lt, 0.15], [-0.26 * mw, my + 1.0 * lt, 0.21]])
    pts[57] = [0.0, my + 1.03 * lt, 0.22]
    _sym(pts, [60, 61], [[-0.86 * mw, my + 0.003, 0.03], [-0.38 * mw, my - 0.004, 0.19]])
    pts[62] = [0.0, my - 0.006, 0.22]
    _sym(pts, [67], [[-0.38 * mw, my - 0.004, 0.19]])
    pts[66] = [0.0, my - 0.006, 0.22]
    # Helpers: hairline, temples, cheeks.
    hx = np.linspace(-0.9, 0.9, 9) * p.face_half_width
    hy = p.hairline_y + 0.22 * (hx / 0.9) ** 2
    pts[P_HAIRLINE] = np.stack([hx, hy, -0.08 - 0.55 * hx ** 2], 1)
    w = p.face_half_width
    _sym(pts, [77, 78], [[-0.99 * w, -0.3, -0.55], [-0.97 * w, hy[0] * 0.5 - 0.35, -0.55]])
    _sym(pts, [81, 82, 83], [[-0.86 * w, -0.05, -0.2], [-0.86 * w, 0.42, -0.16], [-0.7 * w, 0.95, -0.08]])
    _sym(pts, [87], [[-0.52 * w, 0.42, 0.06]])
    _sym(pts, [89], [[cx, 0.02, -0.13]])
    _sym(pts, [91], [[cx, 0.02, 0.04]])
    for side, eye in ((0, RIGHT_EYE), (1, LEFT_EYE)):
        base = 93 + 4 * side
        sign = -1.0 if side == 0 else 1.0
        ecx = sign * es
        pts[base + 0] = [ecx, -0.16 - eh * 0.3, 0.0]
        pts[base + 1] = [ecx, eh * 0.5 + 0.12, -0.01]
        pts[base + 2] = [ecx + sign * (ew / 2 + 0.17), -0.02, -0.22]
        pts[base + 3] = [ecx - sign * (ew / 2 + 0.06), 0.0, -0.05]
    pts[P_GLABELLA_TOP] = [0.0, -p.brow_height - 0.22, 0.06]
    pts[P_CHIN_BELOW] = [0.0, p.chin_y + 0.12, p.chin_z - 0.1]
    _sym(pts, [109, 110], [[-0.62 * w, -p.brow_height - 0.3, -0.2], [-0.25 * w, -p.brow_height - 0.32, 0.02]])
    pts[111] = [0.0, -p.brow_height - 0.15, 0.06]
    pts[112] = [0.0, min(-p.brow_height - 0.55, p.hairline_y + 0.1), 0.0]
    for side in (0, 1):
        sign = -1.0 if side == 0 else 1.0
        ear = _EAR_TEMPLATE * p.ear_scale
        pts[P_EAR[8 * side: 8 * side + 8]] = np.stack(
            [sign * (p.face_half_width + ear[:, 0] - 0.02), 0.12 + (ear[:, 1] - 0.12), ear[:, 2]], 1)
    pts[P_PIVOT] = [0.0, 0.35, -1.1]
    pts[P_ANCHOR] = [0.0, 0.5, 0.0]
    pts[P_JAW_BELOW] = pts[[4, 8, 12]] + [0.0, 0.3, -0.1]
    _nasolabial(pts)
    return pts


def _nasolabial(pts: np.ndarray) -> None:
    """(Re)compute the nasolabial fold helpers from the ala (31/35) and lip-corner (48/54) landmarks."""
    for ala, corner, base in ((31, 48, 103), (35, 54, 106)):
        sign = np.sign(pts[corner, 0]) or 1.0
        a = pts[ala] + [sign * 0.06, -0.01, -0.05]
        c = pts[corner] + [sign * 0.07, 0.03, -0.04]
        m = 0.5 * (a + c) + [sign * 0.05, 0.0, -0.02]
        pts[base:base + 3] = [a, m, c]


# ----------------------------------------------------------------------------------------------------------------
# Action units.
_AU = {name: i for i, name in enumerate(AU_NAMES)}


def _add(d: np.ndarray, right: Sequence[int], vec: Sequence[float], weights=None) -> None:
    """Add displacement ``vec`` to the (right-side) points ``right`` and its mirror image to their mirrors.

    Points on the midline (their own mirror) get the displacement once.
    """
    right = np.asarray(right)
    vec = np.asarray(vec, np.float64)
    w = np.ones(len(right)) if weights is None else np.asarray(weights, np.float64)
    dv = w[:, None] * vec[None, :]
    d[right] += dv
    mirrored = FULL_MIRROR[right]
    keep = mirrored != right
    d[mirrored[keep]] += dv[keep] * np.array([-1.0, 1.0, 1.0])


_LID_OUTER = np.array([36, 36, 45, 45])
_LID_INNER = np.array([39, 39, 42, 42])
_LID_UPPER = np.array([37, 38, 44, 43])
_LID_LOWER = np.array([41, 40, 46, 47])


def au_basis(p: IdentityParams, neutral: np.ndarray) -> np.ndarray:
    """Per-AU displacement of every point at intensity 1 (the linear part of the AU model).

    Each AU moves the landmarks named in ``shared/docs/facs.md`` (FACS) in the direction given there; the
    displacement of a face is ``sum_k aus[k] * basis[k]`` before the eyelid and lip constraints of :func:`deform`.

    Args:
        p: identity (lip sizes scale some displacements).
        neutral: float64 ``[NUM_POINTS, 3]`` from :func:`neutral_points`.

    Returns:
        float64 ``[17, NUM_POINTS, 3]`` in model AU order, face units.
    """
    B = np.zeros((NUM_AUS, NUM_POINTS, 3))
    b = {name: B[i] for name, i in _AU.items()}
    R_BROW = [17, 18, 19, 20, 21]
    # AU01 inner brow raiser: 19-21 (22-24) up, inner ends most.
    _add(b["AU01"], R_BROW, [0, -0.13, 0], [0.08, 0.22, 0.52, 0.85, 1.0])
    _add(b["AU01"], [21], [0.012, 0, 0])
    # AU02 outer brow raiser: 17-19 (24-26) up, outer ends most.
    _add(b["AU02"], R_BROW, [0, -0.12, 0], [1.0, 0.95, 0.65, 0.25, 0.06])
    # AU04 brow lowerer: brows down, 21 and 22 toward each other (upper lids: see deform).
    _add(b["AU04"], R_BROW, [0, 0.085, 0], [0.45, 0.7, 0.9, 1.0, 1.0])
    _add(b["AU04"], R_BROW, [0.065, 0, 0], [0.0, 0.15, 0.4, 0.75, 1.0])
    # AU09 nose wrinkler: nostrils up, bridge shortens, upper lip slightly up, inner brows lowered.
    d = b["AU09"]
    _add(d, [31, 32], [0, -0.06, 0.01])
    _add(d, [31], [-0.015, 0, 0])
    d[33] += [0, -0.055, 0]
    d[[28, 29, 30]] += np.array([[0, -0.012, 0], [0, -0.028, 0], [0, -0.045, 0]])
    _add(d, [50, 49], [0, -0.035, 0], [1.0, 0.6])
    d[51] += [0, -0.04, 0]
    _add(d, [61], [0, -0.03, 0])
    d[62] += [0, -0.035, 0]
    _add(d, [20, 21], [0.02, 0.045, 0], [0.5, 1.0])
    # AU10 upper lip raiser: 49-53 and 61-63 up (centre most); alae up.
    d = b["AU10"]
    _add(d, [49, 50], [0, -0.085, 0.01], [0.6, 0.92])
    d[51] += [0, -0.09, 0.01]
    _add(d, [61], [0, -0.09, 0], [0.85])
    d[62] += [0, -0.1, 0]
    _add(d, [48, 60], [0, -0.025, 0])
    _add(d, [31, 32], [-0.012, -0.025, 0], [1.0, 0.6])
    d[33] += [0, -0.015, 0]
    # AU12 lip corner puller: 48/54 up and outward (and back); neighbours follow (cheeks: see deform).
    d = b["AU12"]
    _add(d, [48, 60, 49, 59, 61, 67, 50, 58], [-0.09, -0.13, -0.06], [1.0, 1.0, 0.55, 0.6, 0.45, 0.5, 0.18, 0.25])
    d[[51, 62]] += [0, -0.012, 0]
    _add(d, [87], [-0.02, 0.0, 0.02])
    # AU14 dimpler: corners inward and slightly back, no rise.
    d = b["AU14"]
    _add(d, [48, 60, 49, 59, 61, 67], [0.07, -0.008, -0.05], [1.0, 1.0, 0.45, 0.45, 0.3, 0.3])
    _add(d, [49, 50], [0, 0.15 * p.upper_lip, 0], [0.7, 1.0])
    d[51] += [0, 0.15 * p.upper_lip, 0]
    # AU15 lip corner depressor: corners down, lower lip slightly down-outward.
    d = b["AU15"]
    _add(d, [48, 60], [-0.015, 0.1, 0])
    _add(d, [49, 61, 67], [0, 0.045, 0], [1.0, 0.45, 0.5])
    _add(d, [59, 58], [-0.025, 0.06, 0], [1.0, 0.55])
    d[57] += [0, 0.025, 0]
    d[66] += [0, 0.01, 0]
    # AU17 chin raiser: lower lip and chin pushed up (and out).
    d = b["AU17"]
    _add(d, [58, 67, 59], [0, -0.065, 0.04], [0.85, 0.8, 0.45])
    d[57] += [0, -0.07, 0.05]
    d[66] += [0, -0.06, 0.03]
    _add(d, [7, 6], [0, -0.07, 0.03], [0.75, 0.4])
    d[8] += [0, -0.085, 0.04]
    d[P_CHIN_BELOW] += [0, -0.06, 0]
    _add(d, [48, 60], [0, 0.018, 0])
    # AU20 lip stretcher: corners sideways (not up), lips thin.
    d = b["AU20"]
    _add(d, [48, 60, 49, 59, 61, 67, 50, 58], [-0.14, 0.012, -0.04], [1.0, 1.0, 0.6, 0.6, 0.5, 0.5, 0.28, 0.28])
    _add(d, [49, 50], [0, 0.45 * p.upper_lip, 0], [0.6, 0.9])
    d[51] += [0, 0.4 * p.upper_lip, 0]
    _add(d, [59, 58], [0, -0.45 * p.lower_lip, 0], [0.6, 0.9])
    d[57] += [0, -0.45 * p.lower_lip, 0]
    # AU23 lip tightener: lips toward the mouth centre, thinner.
    d = b["AU23"]
    mx = 0.5 * (neutral[48, 0] + neutral[54, 0])
    d[OUTER_LIPS, 0] += -(neutral[OUTER_LIPS, 0] - mx) * 0.15
    d[INNER_LIPS, 0] += -(neutral[INNER_LIPS, 0] - mx) * 0.13
    _add(d, [49, 50], [0, 0.55 * p.upper_lip, -0.02], [0.7, 1.0])
    d[51] += [0, 0.55 * p.upper_lip, -0.02]
    _add(d, [59, 58], [0, -0.55 * p.lower_lip, -0.02], [0.7, 1.0])
    d[57] += [0, -0.55 * p.lower_lip, -0.02]
    # AU25 lips part: inner lips apart (lower lip mostly).
    d = b["AU25"]
    _add(d, [61, 49, 50], [0, -0.025, 0], [0.8, 0.5, 0.9])
    d[[62, 51]] += [0, -0.03, 0]
    _add(d, [67, 59, 58], [0, 0.075, 0], [0.8, 0.6, 0.85])
    d[[66, 57]] += [0, 0.085, 0]
    _add(d, [7], [0, 0.025, 0])
    d[8] += [0, 0.03, 0]
    # AU26 jaw drop: jaw 5-11, lower lips and chin down.
    d = b["AU26"]
    _add(d, np.arange(2, 9), [0.0, 0.3, -0.05], [0.05, 0.16, 0.36, 0.6, 0.83, 0.96, 1.0])
    _add(d, P_JAW_BELOW[:2], [0.0, 0.3, -0.05], [0.6, 1.0])
    _add(d, [59, 58, 67], [0.01, 0.28, -0.03], [0.8, 0.93, 0.92])
    d[[57, 66]] += [0, 0.3, -0.03]
    _add(d, [48, 60], [0.03, 0.07, 0])
    d[P_CHIN_BELOW] += [0, 0.3, -0.05]
    # AU05, AU06, AU07, AU45 act on the eyelids through the constraints in deform.
    return B


def deform(p: IdentityParams, neutral: np.ndarray, aus: np.ndarray, basis: np.ndarray = None) -> np.ndarray:
    """Apply the 17 AUs to an identity's neutral points.

    The brows, nose, lips and jaw move by ``sum_k aus[k] * basis[k]`` (:func:`au_basis`); the eyelids open or
    close by AU05 (upper lid up), AU04/AU07 (upper lid slightly down), AU06/AU07 (lower lid up), AU12 (lower lid
    up at high intensity) and AU45 (upper lid down onto the lower lid); the cheeks rise with AU06/AU12. Then the
    lids and lips are constrained so they never cross (FACS facts: ``shared/docs/facs.md``).

    Args:
        p: identity.
        neutral: float64 ``[NUM_POINTS, 3]`` from :func:`neutral_points`.
        aus: float ``[17]`` AU intensities in [0, 1] (model order, ``ganimation_tl.aus.AU_NAMES``); values are
            clipped to [0, 1].
        basis: optional precomputed :func:`au_basis` of this identity.

    Returns:
        float64 ``[NUM_POINTS, 3]`` deformed points (face units, before pose).
    """
    a = np.clip(np.asarray(aus, np.float64).reshape(NUM_AUS), 0.0, 1.0)
    if basis is None:
        basis = au_basis(p, neutral)
    A = {name: a[i] for name, i in _AU.items()}
    pts = neutral + np.tensordot(a, basis, axes=1)
    a12 = A["AU12"]
    cheek = 0.07 * A["AU06"] + 0.06 * a12 ** 1.5
    pts[P_CHEEK_APEX, 1] -= cheek
    # Eyelids: the opening of each lid relative to the line through the eye corners.
    upper_f = 1.0 + 0.7 * A["AU05"] - 0.28 * A["AU04"] - 0.25 * A["AU07"]
    lower_f = 1.0 - 0.6 * A["AU06"] - 0.65 * A["AU07"] - 0.3 * a12 ** 2
    upper_f, lower_f = max(upper_f, 0.05), max(lower_f, -0.15)
    blink = A["AU45"]
    # Pairs (upper lid point, lower lid point below it) with their eye's outer and inner corners.
    o, i, up, lo = _LID_OUTER, _LID_INNER, _LID_UPPER, _LID_LOWER
    tx = (pts[up, 0] - pts[o, 0]) / (pts[i, 0] - pts[o, 0])
    base = pts[o, 1] + tx * (pts[i, 1] - pts[o, 1])
    nbase = neutral[o, 1] + tx * (neutral[i, 1] - neutral[o, 1])
    nu, nl = neutral[up, 1] - nbase, neutral[lo, 1] - nbase
    y_lo = base + nl * lower_f
    y_up = np.minimum(base + nu * upper_f, y_lo - 0.004)
    y_up = y_up + (y_lo - 0.06 * nl - y_up) * blink        # AU45: the upper lid comes down onto the lower lid
    y_lo = y_lo - 0.08 * nl * blink
    pts[up, 1] = np.minimum(y_up, y_lo - 0.002 * (1.0 - blink))
    pts[lo, 1] = y_lo
    # Lips: the lower inner lip never above the upper inner lip; lips keep a minimum thickness.
    u_in, l_in = np.array([61, 62, 63]), np.array([67, 66, 65])
    cross = pts[l_in, 1] < pts[u_in, 1]
    mean = 0.5 * (pts[l_in, 1] + pts[u_in, 1])
    pts[u_in, 1] = np.where(cross, mean, pts[u_in, 1])
    pts[l_in, 1] = np.where(cross, mean, pts[l_in, 1])
    edge = np.array([0.6, 1.0, 1.0, 1.0, 0.6])
    ou, iu = np.array([49, 50, 51, 52, 53]), np.array([61, 61, 62, 63, 63])
    pts[ou, 1] = np.minimum(pts[ou, 1], pts[iu, 1] - 0.3 * p.upper_lip * edge)
    ol, il = np.array([59, 58, 57, 56, 55]), np.array([67, 67, 66, 65, 65])
    pts[ol, 1] = np.maximum(pts[ol, 1], pts[il, 1] + 0.3 * p.lower_lip * edge)
    _nasolabial(pts)
    return pts


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation for a head pose given in degrees (conventions in the module docstring).

    Returns:
        float64 ``[3, 3]``; apply as ``points @ R.T`` to ``[N, 3]`` points in face units (x right, y down,
        z toward the camera).
    """
    y, p, r = np.deg2rad([yaw, pitch, roll])
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


#: Focal length of the weak-perspective camera, in face units from the rotation pivot (about 1 m).
FOCAL = 14.0


def pose_points(points: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotate face points about the pivot ``points[P_PIVOT]`` and return camera-space points (pivot at 0)."""
    R = rotation_matrix(yaw, pitch, roll)
    return (points - points[P_PIVOT]) @ R.T


def project(cam: np.ndarray, centre: np.ndarray, half_size: float, size: int) -> np.ndarray:
    """Perspective-project camera-space points into a square image.

    Args:
        cam: float ``[N, 3]`` camera-space points (pivot at the origin, z toward the camera).
        centre: float ``[2]`` crop centre in the (perspective-scaled) camera plane.
        half_size: half the crop side, face units.
        size: image side in pixels.

    Returns:
        float64 ``[N, 2]`` (x, y) pixel coordinates (0.5 = centre of the first pixel's left edge + half).
    """
    s = FOCAL / (FOCAL - cam[:, 2])
    xy = cam[:, :2] * s[:, None]
    return (xy - centre[None, :]) * (size / (2.0 * half_size)) + size / 2.0


def perspective_xy(cam: np.ndarray) -> np.ndarray:
    """Camera-plane (x, y) of camera-space points after the perspective division, face units."""
    s = FOCAL / (FOCAL - cam[..., 2])
    return cam[..., :2] * s[..., None]


# ----------------------------------------------------------------------------------------------------------------
# AU regions: groups of point indices whose (dilated) convex hulls cover where each AU changes the face.
_R_EYEBOX, _L_EYEBOX = [93, 94, 95, 96], [97, 98, 99, 100]
AU_REGION_GROUPS: Dict[str, List[List[int]]] = {
    "AU01": [list(range(17, 27)) + [110, 111, 112, 113, 37, 38, 43, 44, 27, 71, 72, 73]],
    "AU02": [[17, 18, 19, 20, 109, 110, 36, 37, 38, 93, 95, 68, 69, 70, 71, 78],
             [26, 25, 24, 23, 114, 113, 45, 44, 43, 97, 99, 76, 75, 74, 73, 80]],
    "AU04": [list(range(17, 27)) + [27, 28, 101, 37, 38, 43, 44, 93, 97, 110, 113]],
    "AU05": [list(range(36, 42)) + _R_EYEBOX, list(range(42, 48)) + _L_EYEBOX],
    "AU06": [[36, 39, 40, 41, 94, 95, 87, 81, 82, 31, 104], [45, 42, 46, 47, 98, 99, 88, 84, 85, 35, 107]],
    "AU07": [list(range(36, 42)) + _R_EYEBOX, list(range(42, 48)) + _L_EYEBOX],
    "AU09": [list(range(27, 36)) + list(range(48, 55)) + list(range(103, 109)) + [20, 21, 22, 23, 39, 42]],
    "AU10": [list(range(31, 36)) + list(range(48, 55)) + list(range(60, 65)) + [29] + list(range(103, 109))],
    "AU12": [list(range(48, 68)) + list(range(103, 109)) + [87, 88, 82, 85, 31, 35],
             [36, 39, 40, 41, 94], [42, 45, 46, 47, 98]],
    "AU14": [list(range(48, 68)) + [104, 105, 107, 108, 7, 8, 9]],
    "AU15": [list(range(48, 68)) + [5, 6, 7, 8, 9, 10, 11, 105, 108]],
    "AU17": [list(range(48, 68)) + [5, 6, 7, 8, 9, 10, 11, P_CHIN_BELOW, 133, 134, 135]],
    "AU20": [list(range(48, 68)) + [105, 108, 104, 107, 5, 7, 8, 9, 11]],
    "AU23": [list(range(48, 68)) + [33, 104, 107, 7, 8, 9]],
    "AU25": [list(range(48, 68)) + [6, 7, 8, 9, 10, 134]],
    "AU26": [list(range(2, 15)) + list(range(48, 68)) + [P_CHIN_BELOW, 31, 35, 104, 107, 133, 134, 135]],
    "AU45": [list(range(36, 42)) + _R_EYEBOX, list(range(42, 48)) + _L_EYEBOX],
}
