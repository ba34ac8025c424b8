"""Shared test fixtures: quiet TensorFlow, the ../shared reference data, small model configs."""
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_data():
    """Path to ../shared/data (reference data beside the checkout); skips when absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    return path


@pytest.fixture
def small_config():
    """A tiny GANimation config (32 px, 8-channel networks) for fast step tests."""
    from ganimation_tl.model import GANimationConfig
    return GANimationConfig(image_size=32, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=4,
                            batch_size=4, epochs=2, decay_epochs=1)
