"""Helpers of the sibling-model tests (``tests/test_<model>.py``): data beside the checkout, skip markers,
and a model's flags parsed the way ``train.py`` parses them."""
import importlib
from pathlib import Path

import pytest
from absl import flags

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CFP = SHARED / "data" / "cfp"
MNIST = SHARED / "data" / "digits" / "mnist.pkl.gz"

needs_cfp = pytest.mark.skipif(not CFP.is_dir(), reason="CFP data not found at ../shared/data/cfp beside the checkout")


def model_flags(name: str, *args: str, flagfile: str = None, model=False, known_only: bool = False):
    """A fresh ``FlagValues`` with the flags of registered model ``name``, parsed from ``args``.

    Args:
        name: the registry name; ``other_models.<name>`` is imported (which registers it).
        args: ``--flag=value`` arguments, after the flagfile.
        flagfile: file name under ``configs/`` read first (``"dagan_debug.cfg"``), or None.
        model: if not False, a ``--model`` flag with this default is defined too (flagfiles that name it).
        known_only: ignore flags the model does not define.

    Returns:
        The parsed ``FlagValues``.
    """
    from ganimation_tl import registry
    importlib.import_module("other_models." + name)
    fv = flags.FlagValues()
    registry.get(name).define_flags(fv)
    if model is not False:
        flags.DEFINE_string("model", model, "model name (train.py's flag)", flag_values=fv)
    head = ["--flagfile=%s" % (REPO / "configs" / flagfile)] if flagfile else []
    fv(["test"] + head + list(args), known_only=known_only)
    return fv
