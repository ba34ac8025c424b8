"""ganimation-tl: GANimation (Pumarola et al., ECCV 2018) in TensorFlow 2 + TensorLayer 2.

Importing the package is cheap: TensorFlow and TensorLayer are imported by the submodules that need
them (``layers``, ``networks``, ``losses``, ``model``, ``trainer``, ...), not here.
"""
__version__ = "0.1.0"
