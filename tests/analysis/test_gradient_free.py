"""Gradient-free CAMs against the grad-cam package's own output: our raw map, put through the package's
normalise-and-resize step, must equal what the package hands out for the same layer, input and target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import res2net
from res2net.analysis import gradient_free
from res2net.models.taps import get_tap


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return res2net.create_model("tiny_res2net26_4s", pretrained=True).eval()


@pytest.mark.parametrize("method", gradient_free.METHODS)
@pytest.mark.parametrize("tap", ["layer2.1", "layer2.1.branch1"])
def test_raw_map_matches_the_package(model: torch.nn.Module, method: str, tap: str) -> None:
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(1)
    x = torch.randn(1, 3, 64, 64)
    target = int(model(x).argmax())
    raw = gradient_free.gradient_free_cam(model, x, tap, target, method)
    assert raw.shape == (8, 8) and (raw >= 0).all()
    cls = gradient_free._cam_class(method)
    with cls(model=model, target_layers=[get_tap(model, tap)]) as cam:
        reference = cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0]
    ours = scale_cam_image(scale_cam_image(raw[None], (64, 64)))[0]  # the package rescales after joining layers
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_the_shared_model_is_left_untouched(model: torch.nn.Module) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules = [type(m) for m in model.modules()]
    gradient_free.gradient_free_cam(model, torch.randn(1, 3, 64, 64), "layer2.1", 0, "ablationcam")
    assert [type(m) for m in model.modules()] == modules
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules())


def test_bad_method_and_batch_are_refused(model: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="gradient-free method"):
        gradient_free.gradient_free_cam(model, torch.randn(1, 3, 64, 64), "layer2.1", 0, "gradcam")
    with pytest.raises(ValueError, match="one image"):
        gradient_free.gradient_free_cam(model, torch.randn(2, 3, 64, 64), "layer2.1", 0, "eigencam")
