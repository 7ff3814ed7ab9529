"""res2net: the Res2Net family and its ResNet baselines with per-branch taps, and analyses on them.

Usable from a notebook without Streamlit::

    import res2net
    model = res2net.create_model("res2net50_26w_4s", pretrained=True)
    res2net.tap_names(model)[:5]

The subpackages are the architecture; each may import only those before it:
``models`` → ``geometry`` → ``analysis``, ``metrics``, ``data`` → ``evaluation``, ``viz``.
This root only re-exports the public names for notebooks; no module inside the package imports it.
"""

from __future__ import annotations

from res2net.analysis.decompose import BlockDecomposition, Decomposition, decompose
from res2net.analysis.lesion import AblationError, ablate, branch_means
from res2net.models.complexity import count_macs, count_params
from res2net.models.factory import create_model, model_info
from res2net.models.taps import BlockInfo, TapError, block_infos, get_tap, tap_names
from res2net.models.zoo import MODELS, ModelSpec, get_spec, list_models

__all__ = [
    "create_model", "list_models", "model_info", "tap_names", "get_tap", "block_infos", "BlockInfo",
    "TapError", "ModelSpec", "get_spec", "MODELS", "count_params", "count_macs", "ablate", "branch_means",
    "AblationError", "decompose", "Decomposition", "BlockDecomposition",
]
__version__ = "0.1.0"
