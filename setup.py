"""Install ganimation-tl.

Default TensorFlow on Linux is the CPU build (``tensorflow-cpu``). For an NVIDIA GPU, install with
``GANIMATION_TL_TF='tensorflow[and-cuda]==2.21.*' pip install -e .`` (see README, "GPU").
"""
import os
import platform

from setuptools import find_packages, setup

DEFAULT_TF = "tensorflow-cpu==2.21.*" if platform.system() == "Linux" else "tensorflow==2.21.*"
TF_REQUIREMENT = os.environ.get("GANIMATION_TL_TF", DEFAULT_TF)

setup(
    name="ganimation-tl",
    version="0.1.0",
    description="GANimation (anatomically-aware facial expression editing) in TensorFlow 2 + TensorLayer 2",
    long_description=open(os.path.join(os.path.dirname(__file__), "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9,<3.13",  # TensorLayer 2.2.5 imports distutils
    packages=find_packages(include=["ganimation_tl", "ganimation_tl.*", "other_models", "other_models.*"]),
    py_modules=["train", "infer"],
    install_requires=[
        TF_REQUIREMENT,
        "tensorlayer==2.2.5",
        "matplotlib==3.11.2",        # `import tensorlayer` needs it
        "numpy==2.4.6",
        "opencv-python-headless==5.0.0.93",   # same cv2 as opencv-python, without GUI libraries
        "pillow==13.0.0",
        "absl-py==2.5.1",
        "tensorboard==2.21.0",       # tf.summary needs it (tensorflow-cpu 2.21 does not pull it)
        "mtcnn==1.0.0",              # face detector with 5 landmarks; weights ship in the wheel
        "scikit-image==0.26.0",      # real background photos for the synthetic faces (no download)
        "scipy==1.17.1",             # ndimage / spatial / optimize in sibling models (also a scikit-image dependency)
    ],
    extras_require={
        "test": ["pytest==9.0.3", "hypothesis==6.155.2"],
    },
    entry_points={
        "console_scripts": [
            "ganimation-train=train:run",
            "ganimation-infer=infer:run",
            "ganimation-export=ganimation_tl.export:run",
        ],
    },
)
