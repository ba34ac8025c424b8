"""ML-ZSL: multi-label zero-shot action-unit recognition with a structured knowledge graph over AUs.

Paper: C.-W. Lee, W. Fang, C.-K. Yeh, Y.-C. F. Wang, "Multi-Label Zero-Shot Learning with Structured
Knowledge Graphs", CVPR 2018 (``../shared/docs/papers/batch2_*.md`` section 7; no official code exists,
so every detail below marked *inferred* is this project's reading of the paper).

Task here: recognise the occurrence (intensity >= 0.2 = OpenFace 1, FACS "A") of the 17 OpenFace action
units on a face, when some AUs (default AU02, AU07, AU15, AU26) have **no training labels at all**. The
unseen AUs join the label graph only at test time and are scored through their semantic embedding and the
messages of their seen neighbours.

Model (paper section 3, symbols of the paper):

* visual feature ``f(x)`` of the image (paper: VGG-16), here a TL MLP on the face's aligned landmarks;
* each label node ``v`` has a semantic vector ``w_v`` (paper: GloVe word vector), here the AU's FACS
  description as geometry (which of the 68 landmarks move and in which direction, from
  ``shared/docs/facs.md``; :func:`au_semantic_vectors`);
* node initialisation ``h_v^0 = F_I(f(x), w_v)`` (paper eq. 1), here
  ``tanh(f W_x + w_v W_w + (f U_x) * (w_v U_w) + b)`` (additive plus bilinear term, *inferred*);
* a knowledge graph with relation types ``r`` (paper: WordNet super-/sub-ordinate, positive and negative
  correlation), here R = 3 relations built from FACS knowledge only, never from training labels
  (:func:`au_knowledge_graph`): co-occurrence in the FACS emotion prototypes (positive correlation),
  facial-region adjacency (the two AUs move shared landmarks) and antagonism (opposite motion of shared
  landmarks: negative correlation);
* relation-specific propagation weights that are functions of the word vectors, so that unseen labels can
  join (paper eq. 2-3): ``a^r_{vu} = sigmoid(w_v . p_r + w_u . q_r + c_r)`` gates edge ``u -> v`` of
  relation ``r``; message ``m_v^t = sum_r mean_{u in N_r(v)} a^r_{vu} c_u^r`` with content
  ``c_u^r = h_u^{t-1} W_r`` (``--ml_zsl_message=state``, the paper's GGNN, default) or
  ``c_u^r = sigmoid(F_O(h_u^{t-1}, h_u^0)) e_r`` (``--ml_zsl_message=belief``: the neighbour's current label
  probability times a learned relation vector; an option, see below);
* GRU update ``h_v^t = GRU(m_v^t, h_v^{t-1})`` for ``t = 1..T`` (paper eq. 4-7, gated graph neural network of
  Li et al. 2016), weights shared over nodes and steps;
* output ``o_v = sigmoid(F_O(h_v^T, h_v^0))`` (paper eq. 8), a two-layer MLP on the concatenation;
* loss: binary cross-entropy over the **seen** labels only (paper eq. 9), mean over batch and labels.

The no-graph baseline of the evaluation is the same network with ``T = 0`` propagation steps
(``--ml_zsl_propagation_steps=0``): ``o_v = sigmoid(F_O(h_v^0, h_v^0))``, i.e. scoring each label from the
image feature and its semantic vector alone (the paper's "w/o propagation" ablation).

Deviations from the paper and why:

* **Visual feature**: no ImageNet-pretrained VGG-16 can be loaded offline and a CNN trained from scratch on
  the seen AUs alone would not keep what the unseen AUs need; the input is the face's 68 landmarks (exact,
  from the synthetic renderer), similarity-aligned (Procrustes) to a reference shape and standardised
  (136 numbers), encoded by a 2-layer TL MLP. So the "image" is its geometry.
* **Word vectors**: no GloVe offline. The semantic vector of an AU is its FACS geometry, hand-encoded from
  the table of ``shared/docs/facs.md`` (landmark displacement directions [68 x 2] and landmark involvement
  [68], each L2-normalised: 204 numbers).
* **Knowledge graph**: WordNet is replaced by the three FACS relations above. The co-occurrence relation
  uses the same FACS emotion prototypes that drive the project's synthetic AU sampler, so on synthetic data
  the graph's co-occurrence prior is exact (on real data it would be approximate).
* **Propagation gate**: the paper's relation weights are a function of the two word vectors; the exact form
  is not recoverable from the text we have, a single linear layer + sigmoid on ``[w_v, w_u]`` per relation
  is used and messages are averaged over neighbours (so a larger test graph does not change their scale).
* **Belief messages** (option ``--ml_zsl_message=belief``, not the default): a node sends its current label
  probability scaled by a learned per-relation vector instead of its state. Over 4 seeds it scored the held-out
  AUs worse than the paper's state messages (``docs/results/ml_zsl.md``), so the default is the paper's.
* **Graph scoring of the held-out AUs** (``--ml_zsl_unseen_scoring=graph``, the debug config's choice): at
  test time the unseen nodes' h^0 keeps only its semantic term (their visual terms are removed, exactly as
  node-evidence dropout removes them from seen nodes in training), so their score comes from their seen
  neighbours' messages. With the paper's scoring (``visual``: the image term for an unseen semantic vector,
  never trained on) propagation did not beat the no-graph baseline in our runs; see ``docs/results/ml_zsl.md``.
* **Relations**: the debug config uses the co-occurrence relation only (region adjacency and antagonism
  measured worse with graph scoring).
* **Node-evidence dropout** (``--ml_zsl_node_dropout``, 0.3): in each training step the visual terms of h^0 are
  removed for a random 30 % of (face, seen node) pairs, so the network must learn to infer a label from its
  graph neighbours; without it the seen labels are predicted from the image alone and the propagation weights
  get no reason to carry label correlations. Not in the paper.
* **Sizes**: node state 32, T = 1 in the debug config (T = 3 measured alike), feature MLP 136-256-128 (paper: 4096-d VGG feature and larger states).
* **Metrics**: the paper reports precision/recall/F1@K over hundreds of labels; with 17 AUs the check is the
  per-AU F1 at probability 0.5 on the held-out AUs, plus average precision (threshold-free).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import flags

from ganimation_tl import registry
from ganimation_tl.aus import AU_NAMES, NUM_AUS, au_index
from ganimation_tl.errors import InputError
from ganimation_tl.sibling import config_or_input_error, define_model_flags, run_trainer

__all__ = ["MLZSLConfig", "au_semantic_vectors", "au_knowledge_graph", "align_landmarks", "LandmarkFeatures",
           "ZSLData", "prepare_data", "GatedGraphPropagation", "MLZSLModel", "f1_scores", "evaluate", "fit",
           "define_flags", "train", "NUM_RELATIONS", "RELATIONS", "NUM_LANDMARKS", "SEMANTIC_DIM"]

NAME = "ml_zsl"
NUM_LANDMARKS = 68
RELATIONS = ("cooccurrence", "region", "antagonism")
NUM_RELATIONS = len(RELATIONS)
#: What a node sends its neighbours (see :class:`MLZSLConfig` ``ml_zsl_message``).
MESSAGES = ("belief", "state")
#: How the held-out nodes are scored at test time (see :class:`MLZSLConfig` ``ml_zsl_unseen_scoring``).
UNSEEN_SCORINGS = ("visual", "graph")
SEMANTIC_DIM = 3 * NUM_LANDMARKS  # 136 displacement (x, y) + 68 involvement

# ------------------------------------------------------------------------------------------------------------
# FACS knowledge (shared/docs/facs.md), as geometry in image coordinates: x to the image right, y down.
# "right" brow/eye/corner = subject's right = image left (smaller x). Each entry: (landmarks, dx, dy, weight).
_UP, _DOWN = (0.0, -1.0), (0.0, 1.0)
_FACS_MOTION: Dict[str, List[Tuple[Sequence[int], float, float]]] = {
    # inner brow corners rise, inner ends most
    "AU01": [((21, 22), 0.0, -1.0), ((20, 23), 0.0, -0.75), ((19, 24), 0.0, -0.5)],
    # outer brows rise, outer ends most
    "AU02": [((17, 26), 0.0, -1.0), ((18, 25), 0.0, -0.75), ((19, 24), 0.0, -0.5)],
    # brows down and together, upper lids slightly down
    "AU04": [(range(17, 27), 0.0, 1.0), ((21,), 0.5, 0.0), ((22,), -0.5, 0.0), ((37, 38, 43, 44), 0.0, 0.3)],
    # upper lids rise
    "AU05": [((37, 38, 43, 44), 0.0, -1.0)],
    # cheeks lift, lower lids pushed up
    "AU06": [((40, 41, 46, 47), 0.0, -1.0)],
    # lower lids rise, upper lids slightly down
    "AU07": [((40, 41, 46, 47), 0.0, -1.0), ((37, 38, 43, 44), 0.0, 0.3)],
    # nostrils up, nose bridge shortens, upper lip slightly up
    "AU09": [((31, 32, 33, 34, 35), 0.0, -1.0), ((29, 30), 0.0, -0.5), ((50, 51, 52), 0.0, -0.3)],
    # upper lip raised
    "AU10": [((49, 50, 51, 52, 53, 61, 62, 63), 0.0, -1.0)],
    # lip corners up and outward
    "AU12": [((48,), -1.0, -1.0), ((54,), 1.0, -1.0), ((60,), -0.5, -0.5), ((64,), 0.5, -0.5)],
    # lip corners inward
    "AU14": [((48,), 1.0, 0.0), ((54,), -1.0, 0.0)],
    # lip corners down, lower lip slightly down-outward
    "AU15": [((48, 54), 0.0, 1.0), ((55, 56), 0.3, 0.3), ((58, 59), -0.3, 0.3), ((57,), 0.0, 0.3)],
    # chin boss and lower lip up
    "AU17": [((56, 57, 58, 65, 66, 67), 0.0, -1.0), ((7, 8, 9), 0.0, -1.0)],
    # lip corners sideways (outward), not up
    "AU20": [((48,), -1.0, 0.0), ((54,), 1.0, 0.0)],
    # lips toward the mouth centre
    "AU23": [((48,), 0.5, 0.0), ((54,), -0.5, 0.0), ((49, 50, 51, 52, 53), 0.0, 0.5), ((55, 56, 57, 58, 59), 0.0, -0.5)],
    # inner lips apart
    "AU25": [((61, 62, 63), 0.0, -0.5), ((65, 66, 67), 0.0, 1.0)],
    # jaw lowered
    "AU26": [(range(5, 12), 0.0, 1.0), ((55, 56, 57, 58, 59, 65, 66, 67), 0.0, 1.0)],
    # upper lids meet lower lids
    "AU45": [((37, 38, 43, 44), 0.0, 1.0), ((40, 41, 46, 47), 0.0, -0.3)],
}
# FACS emotion prototypes (facs.md, "Typical combinations"; EMFACS), plus 25+26 (a jaw drop parts the lips).
_PROTOTYPES = ((6, 12, 25), (1, 4, 15), (1, 2, 5, 26), (1, 2, 4, 5, 7, 20, 26), (4, 5, 7, 23), (9, 10, 15),
               (25, 26))
#: Cosine of two AUs' displacement patterns below which they are antagonists (opposite motion).
ANTAGONISM_COSINE = -0.2


def au_semantic_vectors() -> np.ndarray:
    """The semantic ("word") vector of each AU: its FACS motion pattern as landmark geometry.

    Returns:
        float32 ``[17, 204]`` in model AU order: 136 numbers of displacement direction (68 landmarks x
        (dx, dy), image coordinates, y down) with unit L2 norm, then 68 numbers of landmark involvement
        (how much each landmark moves) with unit L2 norm.

    Source: ``shared/docs/facs.md`` table (landmarks that move and their direction). Replaces the paper's
    GloVe word vectors (deviation, see the module docstring).
    """
    out = np.zeros((NUM_AUS, SEMANTIC_DIM), np.float32)
    for name, moves in _FACS_MOTION.items():
        disp = np.zeros((NUM_LANDMARKS, 2), np.float64)
        for points, dx, dy in moves:
            for p in points:
                disp[p] += (dx, dy)
        involvement = np.linalg.norm(disp, axis=1)
        i = AU_NAMES.index(name)
        out[i, :2 * NUM_LANDMARKS] = disp.reshape(-1) / np.linalg.norm(disp)
        out[i, 2 * NUM_LANDMARKS:3 * NUM_LANDMARKS] = involvement / np.linalg.norm(involvement)
    return out


def au_knowledge_graph() -> np.ndarray:
    """The AU knowledge graph: one adjacency matrix per relation type, built from FACS knowledge only.

    Relations (``RELATIONS``): 0 co-occurrence (both AUs in one FACS emotion prototype, or 25+26),
    1 region adjacency (the AUs move at least one common landmark), 2 antagonism (cosine of their
    displacement patterns below :data:`ANTAGONISM_COSINE`). No self loops; symmetric.

    Returns:
        float32 ``[3, 17, 17]`` with ``A[r, v, u] = 1`` when ``u`` sends messages to ``v`` under relation ``r``.

    Source: paper section 3.1 (relation types super/sub-ordinate, positive, negative correlation from WordNet);
    here FACS (``shared/docs/facs.md``). Deviation: see the module docstring.
    """
    sem = au_semantic_vectors()
    disp = sem[:, :2 * NUM_LANDMARKS]
    inv = sem[:, 2 * NUM_LANDMARKS:]
    adj = np.zeros((NUM_RELATIONS, NUM_AUS, NUM_AUS), np.float32)
    for proto in _PROTOTYPES:
        idx = [au_index(str(c)) for c in proto]
        for a in idx:
            for b in idx:
                if a != b:
                    adj[0, a, b] = 1.0
    adj[1] = ((inv @ inv.T) > 1e-6).astype(np.float32)
    adj[2] = ((disp @ disp.T) < ANTAGONISM_COSINE).astype(np.float32)
    for r in range(NUM_RELATIONS):
        np.fill_diagonal(adj[r], 0.0)
    return adj


# ------------------------------------------------------------------------------------------------------------
def align_landmarks(landmarks: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Similarity-align (orthogonal Procrustes: translation, scale, rotation) each shape to ``reference``.

    Args:
        landmarks: float ``[N, 68, 2]`` (x, y) pixels.
        reference: float ``[68, 2]``, centred with unit RMS distance to its centroid.

    Returns:
        float32 ``[N, 68, 2]``: each shape centred, scaled to unit RMS radius and rotated to best match
        ``reference`` (least squares; no reflection).

    Raises:
        InputError: wrong shapes, non-finite values or a degenerate (zero-size) shape.
    """
    pts = np.asarray(landmarks, np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (NUM_LANDMARKS, 2) or not np.all(np.isfinite(pts)):
        raise InputError("landmarks must be finite [N, 68, 2], got shape %s" % (pts.shape,))
    pts = pts - pts.mean(axis=1, keepdims=True)
    scale = np.sqrt((pts ** 2).sum(axis=(1, 2)) / NUM_LANDMARKS)
    if np.any(scale < 1e-9):
        raise InputError("a landmark shape has zero size (all points equal)")
    pts = pts / scale[:, None, None]
    ref = np.asarray(reference, np.float64)
    m = np.einsum("nki,kj->nij", pts, ref)              # [N, 2, 2] cross-covariance
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.ones((len(pts), 2))
    fix[:, 1] = d
    rot = np.einsum("nij,nj,njk->nik", u, fix, vt)
    return np.einsum("nki,nij->nkj", pts, rot).astype(np.float32)


def _normalise_shape(shape: np.ndarray) -> np.ndarray:
    shape = np.asarray(shape, np.float64) - np.mean(shape, axis=0)
    return shape / np.sqrt((shape ** 2).sum() / NUM_LANDMARKS)


@dataclasses.dataclass
class LandmarkFeatures:
    """Landmark -> feature transform fitted on training shapes: Procrustes alignment to the training mean
    shape, then per-coordinate standardisation.

    Attributes:
        reference: float32 ``[68, 2]`` mean aligned shape (unit RMS radius).
        mean: float32 ``[136]`` and std: float32 ``[136]`` of the aligned training coordinates.
    """

    reference: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, landmarks: np.ndarray, iterations: int = 3) -> "LandmarkFeatures":
        """Generalised Procrustes on ``landmarks`` ``[N, 68, 2]`` (a few iterations), then statistics."""
        reference = _normalise_shape(np.asarray(landmarks, np.float64)[0])
        for _ in range(iterations):
            reference = _normalise_shape(align_landmarks(landmarks, reference).mean(axis=0))
        aligned = align_landmarks(landmarks, reference).reshape(len(landmarks), -1)
        return cls(reference.astype(np.float32), aligned.mean(0).astype(np.float32),
                   np.maximum(aligned.std(0), 1e-4).astype(np.float32))

    def __call__(self, landmarks: np.ndarray) -> np.ndarray:
        """float32 ``[N, 136]`` standardised aligned coordinates (x0, y0, x1, y1, ...)."""
        aligned = align_landmarks(landmarks, self.reference).reshape(len(landmarks), -1)
        return ((aligned - self.mean) / self.std).astype(np.float32)


# ------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MLZSLConfig:
    """ML-ZSL hyper-parameters; field names are the flag names.

    Attributes:
        batch_size: faces per step. epochs: passes over the training faces. seed: data and init seed.
        ml_zsl_unseen: comma-separated AUs held out of training (zero-shot labels), e.g. ``AU02,AU26``.
        ml_zsl_train_faces / ml_zsl_test_faces: synthetic faces for training / testing (test faces show
            held-out identities).
        ml_zsl_identities: synthetic identities; 20 % are test-only.
        ml_zsl_propagation_steps: T, GRU propagation steps (0 = no-graph baseline).
        ml_zsl_state_dim: node state size H. ml_zsl_feature_dim: visual feature size.
        ml_zsl_learning_rate: Adam step size. ml_zsl_occurrence_threshold: intensity (model units, [0, 1])
            from which an AU counts as present (0.2 = OpenFace 1).
        ml_zsl_node_dropout: probability, per face and seen node and training step, of removing the node's
            visual evidence from h^0 so it must be inferred from its graph neighbours (node-evidence dropout;
            not in the paper, see the module docstring).
        ml_zsl_relations: relation types of :func:`au_knowledge_graph` in use (comma-separated).
        ml_zsl_message: what a node sends its neighbours: ``state`` (its state times a relation matrix, the
            paper's GGNN; default) or ``belief`` (its current probability times a learned relation vector).
        ml_zsl_unseen_scoring: how the held-out nodes are scored at test time: ``visual`` (the paper: their
            h^0 holds the image term F_I(f(x), w_v) like every node) or ``graph`` (their h^0 keeps only the
            semantic term, so their score comes from their seen neighbours' messages: the condition node-evidence
            dropout trains the seen nodes in; a deviation, needs T >= 1 and node dropout > 0).
    """

    batch_size: int = 64
    epochs: int = 30
    seed: int = 0
    ml_zsl_unseen: str = "AU02,AU07,AU15,AU26"
    ml_zsl_train_faces: int = 4000
    ml_zsl_test_faces: int = 1000
    ml_zsl_identities: int = 500
    ml_zsl_propagation_steps: int = 3
    ml_zsl_state_dim: int = 32
    ml_zsl_feature_dim: int = 128
    ml_zsl_learning_rate: float = 1e-3
    ml_zsl_occurrence_threshold: float = 0.2
    ml_zsl_node_dropout: float = 0.3
    ml_zsl_message: str = "state"
    ml_zsl_relations: str = "cooccurrence,region,antagonism"
    ml_zsl_unseen_scoring: str = "visual"

    def __post_init__(self):
        for name in ("batch_size", "epochs", "ml_zsl_train_faces", "ml_zsl_test_faces", "ml_zsl_state_dim",
                     "ml_zsl_feature_dim"):
            if int(getattr(self, name)) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if self.ml_zsl_identities < 2:
            raise ValueError("ml_zsl_identities must be >= 2 (some are held out for testing), got %r"
                             % self.ml_zsl_identities)
        if self.seed < 0:
            raise ValueError("seed must be >= 0, got %r" % self.seed)
        if self.ml_zsl_propagation_steps < 0:
            raise ValueError("ml_zsl_propagation_steps must be >= 0, got %r" % self.ml_zsl_propagation_steps)
        if not (self.ml_zsl_learning_rate > 0 and math.isfinite(self.ml_zsl_learning_rate)):
            raise ValueError("ml_zsl_learning_rate must be positive, got %r" % self.ml_zsl_learning_rate)
        if self.ml_zsl_message not in MESSAGES:
            raise ValueError("ml_zsl_message must be one of %s, got %r" % (", ".join(MESSAGES), self.ml_zsl_message))
        self.relation_mask()  # validates the relation list
        if self.ml_zsl_unseen_scoring not in UNSEEN_SCORINGS:
            raise ValueError("ml_zsl_unseen_scoring must be one of %s, got %r"
                             % (", ".join(UNSEEN_SCORINGS), self.ml_zsl_unseen_scoring))
        if self.ml_zsl_unseen_scoring == "graph" and (self.ml_zsl_propagation_steps == 0
                                                      or self.ml_zsl_node_dropout == 0):
            raise ValueError("ml_zsl_unseen_scoring=graph scores the held-out AUs from their neighbours' messages: it "
                             "needs ml_zsl_propagation_steps >= 1 and ml_zsl_node_dropout > 0 (got %r and %r)"
                             % (self.ml_zsl_propagation_steps, self.ml_zsl_node_dropout))
        if not 0.0 <= self.ml_zsl_node_dropout < 1.0:
            raise ValueError("ml_zsl_node_dropout must be in [0, 1), got %r" % self.ml_zsl_node_dropout)
        if not 0.0 < self.ml_zsl_occurrence_threshold <= 1.0:
            raise ValueError("ml_zsl_occurrence_threshold must be in (0, 1], got %r"
                             % self.ml_zsl_occurrence_threshold)
        self.unseen_indices()  # validates the AU list

    def unseen_indices(self) -> Tuple[int, ...]:
        """Model indices of the held-out AUs (sorted).

        Raises:
            ValueError: empty list, unknown AU name, duplicates, or every AU held out.
        """
        names = [n.strip() for n in str(self.ml_zsl_unseen).split(",") if n.strip()]
        if not names:
            raise ValueError("ml_zsl_unseen must name at least one AU, e.g. AU02,AU26")
        try:
            idx = sorted(au_index(n) for n in names)
        except InputError as error:
            raise ValueError("ml_zsl_unseen: %s" % error) from None
        if len(set(idx)) != len(idx):
            raise ValueError("ml_zsl_unseen names an AU twice: %r" % self.ml_zsl_unseen)
        if len(idx) >= NUM_AUS - 1:
            raise ValueError("ml_zsl_unseen must leave at least 2 seen AUs, got %r" % self.ml_zsl_unseen)
        return tuple(idx)

    def relation_mask(self) -> np.ndarray:
        """float32 ``[R]``: 1 for the relation types of ``ml_zsl_relations`` in use, else 0.

        Raises:
            ValueError: an unknown or no relation name.
        """
        names = [n.strip() for n in str(self.ml_zsl_relations).split(",") if n.strip()]
        bad = [n for n in names if n not in RELATIONS]
        if bad or not names:
            raise ValueError("ml_zsl_relations must name some of %s, got %r" % (", ".join(RELATIONS),
                                                                              self.ml_zsl_relations))
        return np.asarray([1.0 if r in names else 0.0 for r in RELATIONS], np.float32)

    def seen_indices(self) -> Tuple[int, ...]:
        unseen = set(self.unseen_indices())
        return tuple(i for i in range(NUM_AUS) if i not in unseen)


@dataclasses.dataclass
class ZSLData:
    """Features and AU occurrence labels.

    Attributes:
        x_train / x_test: float32 ``[N, 136]`` standardised aligned landmarks.
        y_train / y_test: float32 ``[N, 17]`` AU occurrence in {0, 1}, model order. Only the seen columns of
            ``y_train`` are ever given to the model.
        aus_test: float32 ``[N, 17]`` intensities in [0, 1].
        features: the fitted :class:`LandmarkFeatures`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    aus_test: np.ndarray
    features: LandmarkFeatures


def synthetic_landmarks(faces, index: int) -> Tuple[np.ndarray, np.ndarray]:
    """Landmarks and AUs of synthetic face ``index`` without rendering the image (about 100x faster).

    The AUs are ``faces.aus_of(index)`` (the project's AU sampler); the 3D points are the identity's neutral
    head deformed by them (:func:`ganimation_tl.synthetic.geometry.deform`), turned by a head pose drawn per
    index from the same triangular ranges as :class:`SyntheticFaces` (yaw/pitch/roll up to 30/15/15 degrees)
    and perspective-projected (:func:`~ganimation_tl.synthetic.geometry.perspective_xy`). The crop (a
    similarity transform) is left out: :func:`align_landmarks` removes it anyway.

    Returns:
        (float32 ``[68, 2]`` camera-plane (x, y) in face units, y down; float32 ``[17]`` AUs in [0, 1]).
    """
    from ganimation_tl.synthetic import geometry
    identity = faces.identity_of(index)
    cache = faces.__dict__.setdefault("_ml_zsl_identity_cache", {})
    if identity not in cache:
        params = faces.identity_params(identity)
        neutral = geometry.neutral_points(params)
        cache[identity] = (params, neutral, geometry.au_basis(params, neutral))
    params, neutral, basis = cache[identity]
    aus = faces.aus_of(index)
    rng = np.random.default_rng([faces.seed, int(index), 0x25A])
    yaw, pitch, roll = (rng.triangular(-m, 0.0, m) for m in (faces.max_yaw, faces.max_pitch, faces.max_roll))
    cam = geometry.pose_points(geometry.deform(params, neutral, aus, basis), yaw, pitch, roll)
    return geometry.perspective_xy(cam[:NUM_LANDMARKS]).astype(np.float32), aus


def _synthetic_split(config: MLZSLConfig):
    from ganimation_tl.synthetic import SyntheticFaces
    faces = SyntheticFaces(image_size=64, seed=int(config.seed), num_identities=int(config.ml_zsl_identities))
    test_ids = set(faces.test_identities(0.2).tolist())

    def collect(count, want_test, start):
        lms, aus, i = [], [], start
        while len(lms) < count:
            if (i % faces.num_identities in test_ids) == want_test:
                lm, au = synthetic_landmarks(faces, i)
                lms.append(lm)
                aus.append(au)
            i += 1
        return np.stack(lms).astype(np.float32), np.stack(aus).astype(np.float32)

    train = collect(int(config.ml_zsl_train_faces), False, 0)
    test = collect(int(config.ml_zsl_test_faces), True, 10_000_000)
    return train, test


def prepare_data(config: MLZSLConfig) -> ZSLData:
    """Generate synthetic faces (train: training identities; test: held-out identities; landmarks by
    :func:`synthetic_landmarks`, no rendering) and turn their exact landmarks into features and their AU intensities into occurrence labels.

    Returns:
        :class:`ZSLData`.
    """
    from ganimation_tl.synthetic import au_occurrence
    (lm_train, aus_train), (lm_test, aus_test) = _synthetic_split(config)
    features = LandmarkFeatures.fit(lm_train)
    thr = float(config.ml_zsl_occurrence_threshold)
    return ZSLData(features(lm_train), au_occurrence(aus_train, thr).astype(np.float32), features(lm_test),
                   au_occurrence(aus_test, thr).astype(np.float32), aus_test, features)


# ------------------------------------------------------------------------------------------------------------
def _tl():
    import tensorflow as tf
    import tensorlayer as tl
    return tf, tl


def _make_layer_classes():
    tf, tl = _tl()

    class GatedGraphPropagation(tl.layers.Layer):
        """Node initialisation, relation-gated message passing with a GRU update, and the output MLP.

        Call with ``[features, semantic, adjacency]``:

        * features: float32 ``[B, F]`` visual features f(x);
        * semantic: float32 ``[V, Dw]`` semantic vectors of the V label nodes in the graph;
        * adjacency: float32 ``[R, V, V]``, ``A[r, v, u] = 1`` for an edge ``u -> v`` of relation ``r``.

        Returns float32 logits ``[B, V]`` (``o_v = sigmoid(logit)``). V may differ between calls (the
        test graph adds the unseen nodes). Source: paper eq. 1-8 (see the module docstring).
        """

        def __init__(self, feature_dim, semantic_dim, state_dim, num_relations, steps, message="state", name=None):
            super().__init__(name)
            if message not in MESSAGES:
                raise ValueError("message must be one of %s, got %r" % (MESSAGES, message))
            self.message = message
            self.feature_dim, self.semantic_dim = int(feature_dim), int(semantic_dim)
            self.state_dim, self.num_relations, self.steps = int(state_dim), int(num_relations), int(steps)
            self.build(None)
            self._built = True

        def __repr__(self):
            return "GatedGraphPropagation(F=%d, Dw=%d, H=%d, R=%d, T=%d, name=%r)" % (
                self.feature_dim, self.semantic_dim, self.state_dim, self.num_relations, self.steps, self.name)

        def build(self, inputs_shape):
            F, D, H, R = self.feature_dim, self.semantic_dim, self.state_dim, self.num_relations
            g = tl.initializers.truncated_normal(stddev=0.05)
            gw = lambda fan_in: tl.initializers.truncated_normal(stddev=1.0 / math.sqrt(fan_in))  # noqa: E731
            z = tl.initializers.zeros()
            self.w_x = self._get_weights("init_wx", (F, H), init=gw(F))
            self.w_w = self._get_weights("init_ww", (D, H), init=gw(D))
            self.u_x = self._get_weights("init_ux", (F, H), init=gw(F))
            self.u_w = self._get_weights("init_uw", (D, H), init=gw(D))
            self.b_0 = self._get_weights("init_b", (H,), init=z)
            self.gate_p = self._get_weights("gate_p", (R, D), init=g)     # target node v
            self.gate_q = self._get_weights("gate_q", (R, D), init=g)     # source node u
            self.gate_c = self._get_weights("gate_c", (R,), init=z)
            if self.message == "state":
                self.w_rel = self._get_weights("relation_w", (R, H, H), init=gw(H))
            else:
                self.rel_embed = self._get_weights("relation_embed", (R, H), init=gw(1))
            self.gru_w = self._get_weights("gru_w", (H, 3 * H), init=gw(H))   # from messages: z, r, candidate
            self.gru_u = self._get_weights("gru_u", (H, 3 * H), init=gw(H))   # from the state
            self.gru_b = self._get_weights("gru_b", (3 * H,), init=z)
            self.out_w1 = self._get_weights("out_w1", (2 * H, H), init=gw(2 * H))
            self.out_b1 = self._get_weights("out_b1", (H,), init=z)
            self.out_w2 = self._get_weights("out_w2", (H, 1), init=gw(H))
            self.out_b2 = self._get_weights("out_b2", (1,), init=z)

        def initial_states(self, features, semantic, evidence_mask=None):
            """h^0 ``[B, V, H]`` = tanh(m * (f W_x + (f U_x) * (w U_w)) + w W_w + b) (paper eq. 1, inferred form).

            ``evidence_mask`` m: optional float ``[B, V]`` in {0, 1}; 0 removes the visual evidence of that node
            (node-evidence dropout, training only; default all ones).
            """
            fx = tf.matmul(features, self.w_x)[:, None, :]
            ww = tf.matmul(semantic, self.w_w)[None, :, :]
            inter = tf.matmul(features, self.u_x)[:, None, :] * tf.matmul(semantic, self.u_w)[None, :, :]
            visual = fx + inter
            if evidence_mask is not None:
                visual = visual * evidence_mask[:, :, None]
            return tf.tanh(visual + ww + self.b_0)

        def edge_weights(self, semantic, adjacency):
            """Row-normalised gated adjacency ``[R, V, V]``: ``A[r,v,u] a^r_vu / max(1, deg_r(v))`` (eq. 2-3)."""
            pv = tf.matmul(self.gate_p, semantic, transpose_b=True)     # [R, V]
            qu = tf.matmul(self.gate_q, semantic, transpose_b=True)     # [R, V]
            gate = tf.sigmoid(pv[:, :, None] + qu[:, None, :] + self.gate_c[:, None, None])
            degree = tf.maximum(tf.reduce_sum(adjacency, axis=2, keepdims=True), 1.0)
            return adjacency * gate / degree

        def readout(self, h, h0):
            """Logits ``[B, V]`` = F_O(h, h^0): Dense(H, ReLU) then Dense(1) on the concatenation (eq. 8)."""
            hidden = tf.nn.relu(tf.einsum("bvk,kh->bvh", tf.concat([h, h0], axis=-1), self.out_w1) + self.out_b1)
            return tf.einsum("bvh,ho->bvo", hidden, self.out_w2)[..., 0] + self.out_b2[0]

        def messages(self, h, h0, weights):
            """``m_v = sum_r sum_u weights[r, v, u] * content_u^r`` ``[B, V, H]``. Content: ``h_u W_r`` (state
            messages, the paper's GGNN) or ``sigmoid(F_O(h_u, h_u^0)) e_r`` (belief messages: the neighbour's current
            probability times a learned relation vector)."""
            if self.message == "state":
                return tf.einsum("rvu,buh,rhk->bvk", weights, h, self.w_rel)
            belief = tf.sigmoid(self.readout(h, h0))                       # [B, V]
            return tf.einsum("rvu,bu,rk->bvk", weights, belief, self.rel_embed)

        def propagate(self, h, h0, weights):
            """One GRU step of message passing (eq. 4-7); h ``[B, V, H]`` -> ``[B, V, H]``."""
            H = self.state_dim
            messages = self.messages(h, h0, weights)
            gm = tf.einsum("bvh,hk->bvk", messages, self.gru_w) + self.gru_b
            gh = tf.einsum("bvh,hk->bvk", h, self.gru_u)
            z = tf.sigmoid(gm[..., :H] + gh[..., :H])
            r = tf.sigmoid(gm[..., H:2 * H] + gh[..., H:2 * H])
            candidate = tf.tanh(gm[..., 2 * H:] + tf.einsum("bvh,hk->bvk", r * h, self.gru_u[:, 2 * H:]))
            return (1.0 - z) * h + z * candidate

        def forward(self, inputs):
            features, semantic, adjacency = inputs[:3]
            h0 = self.initial_states(features, semantic, inputs[3] if len(inputs) > 3 else None)
            h = h0
            if self.steps > 0:
                weights = self.edge_weights(semantic, adjacency)
                for _ in range(self.steps):
                    h = self.propagate(h, h0, weights)
            return self.readout(h, h0)

    class MLZSLNet(tl.models.Model):
        """Visual MLP f (``[B, 136] -> [B, F]``) followed by :class:`GatedGraphPropagation`.

        Call with ``[landmark_features [B, 136], semantic [V, Dw], adjacency [R, V, V]]``; returns logits
        ``[B, V]``.
        """

        def __init__(self, config: MLZSLConfig, name: str):
            super().__init__(name=name)
            F = int(config.ml_zsl_feature_dim)
            self.fc1 = tl.layers.Dense(256, act=tf.nn.relu, in_channels=2 * NUM_LANDMARKS, name="ml_zsl_f1",
                                       W_init=tl.initializers.truncated_normal(stddev=math.sqrt(2.0 / (2 * NUM_LANDMARKS))))
            self.fc2 = tl.layers.Dense(F, act=tf.nn.relu, in_channels=256, name="ml_zsl_f2",
                                       W_init=tl.initializers.truncated_normal(stddev=math.sqrt(2.0 / 256)))
            self.graph = GatedGraphPropagation(F, SEMANTIC_DIM, config.ml_zsl_state_dim, NUM_RELATIONS,
                                               config.ml_zsl_propagation_steps, config.ml_zsl_message,
                                               name="ml_zsl_ggnn")

        def forward(self, inputs):
            x = inputs[0]
            return self.graph([self.fc2(self.fc1(x))] + list(inputs[1:]))

    return GatedGraphPropagation, MLZSLNet


_CLASSES = None


def _classes():
    global _CLASSES
    if _CLASSES is None:
        _CLASSES = _make_layer_classes()
    return _CLASSES


def GatedGraphPropagation(*args, **kwargs):  # noqa: N802 (a class factory: TensorFlow is imported lazily)
    """Build the gated graph propagation TL layer (see ``_make_layer_classes``); args
    ``(feature_dim, semantic_dim, state_dim, num_relations, steps, name=None)``."""
    return _classes()[0](*args, **kwargs)


# ------------------------------------------------------------------------------------------------------------
class MLZSLModel:
    """ML-ZSL with the trainer interface. Trains on the seen-label subgraph; scores any node set.

    Args:
        config: :class:`MLZSLConfig`.
        features: the :class:`LandmarkFeatures` fitted on the training shapes (stored in checkpoints as
            variables so a restored model featurises identically).
    """

    sample_grid_tag = "ml_zsl/none"

    def __init__(self, config: MLZSLConfig, features: Optional[LandmarkFeatures] = None):
        tf, tl = _tl()
        from ganimation_tl.networks import unique_model_name
        self.config = config
        tf.random.set_seed(int(config.seed))
        self.net = _classes()[1](config, unique_model_name("ml_zsl"))
        self.net.train()
        self.semantic = au_semantic_vectors()
        self.adjacency = au_knowledge_graph() * config.relation_mask()[:, None, None]
        self.seen = np.asarray(config.seen_indices(), np.int64)
        self.unseen = np.asarray(config.unseen_indices(), np.int64)
        self.seen_semantic = tf.constant(self.semantic[self.seen])
        self.seen_adjacency = tf.constant(self.adjacency[:, self.seen][:, :, self.seen])
        self.optimizer = tf.keras.optimizers.Adam(float(config.ml_zsl_learning_rate))
        self.optimizer.build(self.net.trainable_weights)
        feats = features or LandmarkFeatures(np.zeros((NUM_LANDMARKS, 2), np.float32),
                                             np.zeros(2 * NUM_LANDMARKS, np.float32),
                                             np.ones(2 * NUM_LANDMARKS, np.float32))
        self.reference = tf.Variable(feats.reference, trainable=False, name="ml_zsl_reference")
        self.feature_mean = tf.Variable(feats.mean, trainable=False, name="ml_zsl_feature_mean")
        self.feature_std = tf.Variable(feats.std, trainable=False, name="ml_zsl_feature_std")
        self._step = tf.function(self._train_step_impl, autograph=False)

    def landmark_features(self) -> LandmarkFeatures:
        """The featuriser stored in the model (restored with the checkpoint)."""
        return LandmarkFeatures(self.reference.numpy(), self.feature_mean.numpy(), self.feature_std.numpy())

    def trackables(self):
        return {"ml_zsl_weights": list(self.net.all_weights), "ml_zsl_optimizer": self.optimizer,
                "ml_zsl_featuriser": [self.reference, self.feature_mean, self.feature_std]}

    def _train_step_impl(self, x, y_seen):
        tf, _ = _tl()
        keep = tf.cast(tf.random.uniform(tf.shape(y_seen)) >= self.config.ml_zsl_node_dropout, tf.float32)
        with tf.GradientTape() as tape:
            logits = self.net([x, self.seen_semantic, self.seen_adjacency, keep])
            loss = bce_loss(y_seen, logits)
        grads = tape.gradient(loss, self.net.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.net.trainable_weights))
        return loss

    def train_step(self, batch, step):
        """batch: ``(x [B, 136], y [B, 17])``; only the seen columns of y are used. Returns ``{"ml_zsl/bce"}``."""
        x, y = batch
        y_seen = np.asarray(y, np.float32)[:, self.seen]
        return {"ml_zsl/bce": self._step(np.asarray(x, np.float32), y_seen)}

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        return {"ml_zsl/learning_rate": float(self.config.ml_zsl_learning_rate)}

    def sample_grid(self, batch):
        return None

    def predict(self, x: np.ndarray, nodes: Optional[Sequence[int]] = None, batch_size: int = 512,
                graph_only: Optional[Sequence[int]] = None) -> np.ndarray:
        """AU occurrence probabilities on the graph of ``nodes`` (default: all 17 AUs, seen and unseen).

        Args:
            x: float32 ``[N, 136]`` features from :meth:`landmark_features`.
            nodes: model AU indices forming the test graph.
            graph_only: AU indices (among ``nodes``) scored without their visual evidence, from the graph
                (their semantic vector and their neighbours' messages) alone.

        Returns:
            float32 ``[N, len(nodes)]`` probabilities in [0, 1].
        """
        tf, _ = _tl()
        nodes = np.arange(NUM_AUS) if nodes is None else np.asarray(nodes, np.int64)
        sem = tf.constant(self.semantic[nodes])
        adj = tf.constant(self.adjacency[:, nodes][:, :, nodes])
        extra = []
        if graph_only is not None:
            keep = np.ones((1, len(nodes)), np.float32)
            keep[0, [list(nodes).index(v) for v in graph_only]] = 0.0
            extra = [keep]
        self.net.eval()
        out = [tf.sigmoid(self.net([tf.constant(x[i:i + batch_size], tf.float32), sem, adj]
                                   + [tf.constant(np.repeat(e, min(batch_size, len(x) - i), 0)) for e in extra])).numpy()
               for i in range(0, len(x), batch_size)]
        self.net.train()
        return np.concatenate(out, axis=0) if out else np.zeros((0, len(nodes)), np.float32)


def bce_loss(labels, logits):
    """Binary cross-entropy with logits (paper eq. 9), mean over batch and labels.

    Args:
        labels: float ``[B, V]`` in {0, 1}. logits: float ``[B, V]``.

    Returns:
        scalar float32.
    """
    tf, _ = _tl()
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, logits.dtype),
                                                                   logits=logits))


def f1_scores(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-label F1 of binary predictions (0 where a label has no positive and no predicted positive).

    Args:
        y_true, y_pred: ``[N, L]`` in {0, 1}.

    Returns:
        float64 ``[L]``.
    """
    from sklearn.metrics import f1_score
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    return np.asarray(f1_score(y_true, y_pred, average=None, zero_division=0.0), np.float64)


def evaluate(model: MLZSLModel, data: ZSLData, scoring: Optional[str] = None) -> Dict[str, object]:
    """Zero-shot scores on the test faces, all 17 nodes in the graph.

    Args:
        model: a trained :class:`MLZSLModel`. data: its :class:`ZSLData`.
        scoring: ``visual`` or ``graph`` (see :class:`MLZSLConfig` ``ml_zsl_unseen_scoring``); None = the
            model's configured one.

    Raises:
        ValueError: an unknown ``scoring``, or ``graph`` for a model without propagation (T = 0).

    Returns:
        dict: per-unseen-AU F1 at probability 0.5 (``unseen_f1``), their mean (``unseen_mean_f1``), the
        chance baselines ``chance_all_positive_f1`` (predict every face positive: 2p/(1+p), the best
        label-agnostic constant) and ``chance_random_f1`` (random at the prevalence p: F1 = p), average
        precision (``unseen_ap``, chance = p) and the seen-AU mean F1.
    """
    from sklearn.metrics import average_precision_score
    scoring = model.config.ml_zsl_unseen_scoring if scoring is None else scoring
    if scoring not in UNSEEN_SCORINGS:
        raise ValueError("scoring must be one of %s, got %r" % (", ".join(UNSEEN_SCORINGS), scoring))
    if scoring == "graph" and model.config.ml_zsl_propagation_steps == 0:
        raise ValueError("graph scoring needs a model with propagation steps (T >= 1); this one has T = 0")
    probs = model.predict(data.x_test, graph_only=list(model.unseen) if scoring == "graph" else None)
    pred = probs >= 0.5
    f1 = f1_scores(data.y_test, pred)
    unseen, seen = model.unseen, model.seen
    prevalence = data.y_test.mean(axis=0)
    ap = [float(average_precision_score(data.y_test[:, i], probs[:, i])) if data.y_test[:, i].any() else 0.0
          for i in range(NUM_AUS)]
    names = [AU_NAMES[i] for i in unseen]
    return {
        "scoring": scoring,
        "unseen_aus": names,
        "unseen_f1": {n: float(f1[i]) for n, i in zip(names, unseen)},
        "unseen_mean_f1": float(np.mean(f1[unseen])),
        "unseen_ap": {n: ap[i] for n, i in zip(names, unseen)},
        "unseen_mean_ap": float(np.mean([ap[i] for i in unseen])),
        "unseen_prevalence": {n: float(prevalence[i]) for n, i in zip(names, unseen)},
        "chance_all_positive_f1": float(np.mean([2 * prevalence[i] / (1 + prevalence[i]) for i in unseen])),
        "chance_random_f1": float(np.mean(prevalence[unseen])),
        "seen_mean_f1": float(np.mean(f1[seen])),
    }


# ------------------------------------------------------------------------------------------------------------
def _batches(x, y, batch_size, seed, epoch, skip):
    order = np.random.default_rng([seed, epoch]).permutation(len(x))
    for b in range(skip, len(x) // batch_size):
        idx = order[b * batch_size:(b + 1) * batch_size]
        yield x[idx], y[idx]


def fit(config: MLZSLConfig, data: ZSLData, flag_values) -> Tuple[MLZSLModel, Dict[str, float]]:
    """Train :class:`MLZSLModel` on ``data`` through the shared trainer (resumes from ``--workdir``).

    Returns:
        (the trained model, the trainer's last metrics).
    """
    model = MLZSLModel(config, data.features)
    steps = len(data.x_train) // int(config.batch_size)
    seen_names = [AU_NAMES[i] for i in model.seen]
    metrics = run_trainer(NAME, model, lambda epoch, skip: _batches(data.x_train, data.y_train, config.batch_size,
                                                                      config.seed, epoch, skip),
                          steps_per_epoch=steps, epochs=int(config.epochs), flag_values=flag_values, config=config,
                          data_description="%d synthetic faces (aligned 68 landmarks), seen AUs %s, unseen %s"
                          % (len(data.x_train), ",".join(seen_names), config.ml_zsl_unseen),
                          extra={"unseen_aus": [AU_NAMES[i] for i in model.unseen]})
    return model, metrics


_FLAG_HELP = {
    "ml_zsl_unseen": ("string", "Comma-separated AUs held out of training (zero-shot labels)."),
    "ml_zsl_train_faces": ("integer", "Synthetic training faces."),
    "ml_zsl_test_faces": ("integer", "Synthetic test faces (held-out identities)."),
    "ml_zsl_identities": ("integer", "Synthetic identities (20% held out for testing)."),
    "ml_zsl_propagation_steps": ("integer", "T, graph propagation steps (0: the no-graph baseline)."),
    "ml_zsl_state_dim": ("integer", "Node state size H."),
    "ml_zsl_feature_dim": ("integer", "Visual feature size."),
    "ml_zsl_learning_rate": ("float", "Adam learning rate."),
    "ml_zsl_node_dropout": ("float", "Probability of removing a seen node's visual evidence in a training step."),
    "ml_zsl_message": ("string", "Messages: belief (neighbour probability x relation vector) or state (GGNN)."),
    "ml_zsl_unseen_scoring": ("string", "Held-out AUs at test time: visual (image term in h^0, the paper) or graph "
                                        "(scored from their seen neighbours' messages only)."),
    "ml_zsl_relations": ("string", "Comma-separated relation types of the knowledge graph to use: "
                                   "cooccurrence, region, antagonism."),
    "ml_zsl_occurrence_threshold": ("float", "AU intensity in [0, 1] from which an AU is present (0.2 = OpenFace 1)."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define the common flags and ML-ZSL's ``--ml_zsl_*`` flags (default None = config default); idempotent."""
    define_model_flags(_FLAG_HELP, flag_values)


def config_from(flag_values) -> MLZSLConfig:
    """The :class:`MLZSLConfig` from parsed flags. Raises InputError naming the bad setting."""
    try:
        return config_or_input_error(MLZSLConfig, flag_values)
    except InputError as error:
        if "ml_zsl_unseen" in str(error):
            raise InputError("--ml_zsl_unseen=%r is invalid: %s" % (flag_values["ml_zsl_unseen"].value, error))
        raise


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """``train.py --model=ml_zsl``: render data, train, print the zero-shot F1 on the test faces."""
    from absl import logging
    config = config_from(flag_values)
    data = prepare_data(config)
    model, metrics = fit(config, data, flag_values)
    result = evaluate(model, data)
    logging.info("ml_zsl: unseen-AU F1 (%s scoring) %s (mean %.3f; chance all-positive %.3f); seen mean F1 %.3f",
                 result["scoring"], result["unseen_f1"], result["unseen_mean_f1"], result["chance_all_positive_f1"],
                 result["seen_mean_f1"])
    metrics = dict(metrics)
    metrics["ml_zsl/unseen_mean_f1"] = result["unseen_mean_f1"]
    metrics["ml_zsl/seen_mean_f1"] = result["seen_mean_f1"]
    return metrics


registry.register(registry.ModelEntry(
    name=NAME, summary="ML-ZSL (Lee et al. CVPR 2018): zero-shot AU recognition by gated propagation over a FACS "
                       "knowledge graph", define_flags=define_flags, train=train))
