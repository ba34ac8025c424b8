"""Real data sets used by the sibling-paper models (``other_models/``).

Each loader takes an explicit path (the data is research data the package does not ship; the
configs point at ``../shared/data/...``) and raises :class:`ganimation_tl.errors.InputError`
naming the missing or malformed file.

* :mod:`ganimation_tl.datasets.cfp`: Celebrities in Frontal-Profile faces with fiducial points.
* :mod:`ganimation_tl.datasets.digits`: MNIST (pickle), scikit-learn's 8x8 digits, Digits-M.
"""
