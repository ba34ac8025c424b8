"""Synthetic AU-labelled faces: a parametric 3D landmark head, 17 anatomical action units, OpenCV rendering.

The project's embedded default data set (GANimation trains on it when no data is given) and a source of exact
labels for sibling papers: AU intensities (continuous, [0, 1] = OpenFace / 5), 68 iBUG landmarks, head pose,
identity, occlusion masks and per-AU region masks. Pure NumPy + OpenCV (no TensorFlow); scikit-image and
scikit-learn are only used, lazily, for real background photos.

Modules: :mod:`.geometry` (head model, identities, AU deformations, pose), :mod:`.render` (drawing),
:mod:`.backgrounds`, :mod:`.dataset` (:class:`SyntheticFaces`, :func:`write_dataset`), :mod:`.contact_sheet`.
CLI: ``python -m ganimation_tl.synthetic --out DIR --count N``.

iBUG 68-point order: 0-16 jaw, 17-21 right brow, 22-26 left brow, 27-30 nose bridge, 31-35 nostrils, 36-41
right eye, 42-47 left eye, 48-59 outer lips, 60-67 inner lips ("right" = the subject's right = image left).
"""
from ganimation_tl.synthetic.dataset import (MAX_POSE, PROTOTYPES, Augmentations, FaceBatch, FaceSample,
                                             SyntheticFaces, au_occurrence, camera_effects, sample_aus,
                                             validate_image_size, write_dataset)
from ganimation_tl.synthetic.render import OCCLUDERS, Lighting

__all__ = ["Augmentations", "FaceBatch", "FaceSample", "Lighting", "MAX_POSE", "OCCLUDERS", "PROTOTYPES",
           "SyntheticFaces", "au_occurrence", "camera_effects", "sample_aus", "validate_image_size", "write_dataset"]
