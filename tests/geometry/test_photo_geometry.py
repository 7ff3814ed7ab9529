"""Where the model input lies on the photo (``CropBox``) under each preprocessing, and maps carried back onto it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from res2net.data.images import denormalize, preprocess
from res2net.geometry.registration import PREPROCESS_MODES, crop_box, map_to_image, resize_map


def _marker_centre(arr: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(arr[..., 0] > 128)
    return xs.mean() + 0.5, ys.mean() + 0.5  # pixel centres, edges at integers


@pytest.mark.parametrize("mode", PREPROCESS_MODES)
@pytest.mark.parametrize("size", [(500, 300), (300, 500), (1200, 200)])
def test_crop_box_maps_a_marker_to_where_it_appears(mode: str, size: tuple[int, int]) -> None:
    w, h = size
    im = Image.new("RGB", size, (0, 0, 0))
    box = (w // 2 + 20, h // 2 - 40, w // 2 + 60, h // 2 - 10)  # a red rectangle near the centre
    im.paste((255, 0, 0), box)
    cb = crop_box(size, "resnet50", mode)
    shown = denormalize(preprocess(im, "resnet50", mode=mode), "resnet50")
    u, v = _marker_centre(shown)
    eu, ev = cb.to_tensor((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    assert abs(u - eu) < 1.0 and abs(v - ev) < 1.0
    x0, y0, x1, y1 = cb.box_to_tensor(box)
    assert abs((x1 - x0) * (y1 - y0) - (shown[..., 0] > 128).sum()) <= 2 * ((x1 - x0) + (y1 - y0)) + 4
    x, y = cb.to_image(*cb.to_tensor(123.0, 45.0))
    assert abs(x - 123.0) < 1e-9 and abs(y - 45.0) < 1e-9


def test_crop_box_centre_crop_numbers() -> None:
    # 500x375 → Resize(256) gives 341x256 → crop 224 at (58, 16): in photo pixels x 500/341 and 375/256
    cb = crop_box((500, 375), "resnet50")
    np.testing.assert_allclose(cb.box, (58 * 500 / 341, 16 * 375 / 256, 282 * 500 / 341, 240 * 375 / 256))
    assert crop_box((64, 64), "tiny_resnet26").box == (0.0, 0.0, 64.0, 64.0)
    pad = crop_box((200, 100), "resnet50", "pad")
    np.testing.assert_allclose(pad.valid, (0.0, 56.0, 224.0, 168.0))


def test_resize_map_matches_torch_bilinear() -> None:
    m = np.random.default_rng(0).random((7, 9))
    ref = torch.nn.functional.interpolate(torch.from_numpy(m)[None, None], size=(50, 31), mode="bilinear",
                                          align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(resize_map(m, (50, 31)), ref, atol=1e-12)


@pytest.mark.parametrize("mode", PREPROCESS_MODES)
def test_map_to_image_puts_tensor_columns_where_they_belong(mode: str) -> None:
    cb = crop_box((500, 300), "resnet50", mode)
    ramp = np.tile(np.arange(224, dtype=float), (224, 1))  # value = tensor column index
    on_photo = map_to_image(ramp, cb)
    assert on_photo.shape == (300, 500)
    for x in (0, 100, 250, 420, 499):
        u, _ = cb.to_tensor(x + 0.5, 150.0)
        if 0 <= u <= 224:
            assert abs(on_photo[150, x] - np.clip(u - 0.5, 0, 223)) < 1e-9
        else:
            assert np.isnan(on_photo[150, x])
    if mode == "center_crop":
        assert np.isnan(on_photo[150, 0]) and np.isnan(on_photo[150, 499])  # cut off by the crop
    else:
        assert not np.isnan(on_photo).any()
    small = map_to_image(ramp, cb, out_size=(250, 150))
    assert small.shape == (150, 250)
