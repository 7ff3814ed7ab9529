"""Raw CAM values of every method against the papers' formulas, written out with plain loops on small explicit tensors.

Activations and gradients are (N=2, C=2, h=3, w=4) with mixed signs, so each ReLU, each spatial mean or sum and each
normalisation changes the answer: a map scaled by h*w (a sum where the mean belongs), a ReLU missing or in the wrong
place, or an activation normalisation left out fails on values, not on a correlation.
"""

from __future__ import annotations

import pytest
import torch

from res2net.analysis import cam

# ACT[n][k][i][j], GRAD[n][k][i][j]
ACT = [
    [[[1.0, 2.0, 0.0, 3.0], [0.0, 1.0, 4.0, 1.0], [2.0, 0.0, 1.0, 0.0]],
     [[0.0, 1.0, 1.0, 0.0], [3.0, 0.0, 0.0, -0.5], [1.0, 1.0, 0.0, -1.0]]],
    [[[0.5, 0.0, 2.0, 1.0], [1.0, 3.0, 0.0, 0.0], [0.0, 2.0, 1.0, 1.0]],
     [[2.0, 2.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], [4.0, 0.0, 0.5, 1.0]]],
]
GRAD = [
    [[[0.5, -1.0, 0.0, 2.0], [1.0, 0.0, -0.5, 1.0], [0.0, 0.25, 1.0, -2.0]],
     [[-1.0, 0.5, 2.0, 0.0], [0.0, -0.5, 1.0, 1.0], [0.5, 0.0, -1.0, 0.25]]],
    [[[-0.5, 1.0, 0.25, 0.0], [0.0, -1.0, 2.0, 0.5], [1.0, 0.0, -0.25, 0.0]],
     [[1.0, -2.0, 0.0, 0.5], [0.25, 0.0, 1.0, -1.0], [0.0, 0.5, 0.0, 2.0]]],
]
N, C, H, W = 2, 2, 3, 4
CELLS = [(i, j) for i in range(H) for j in range(W)]


def relu(v: float) -> float:
    return v if v > 0 else 0.0


def weighted_map(n: int, weights: list[float]) -> list[list[float]]:
    """relu(sum_k w_k A_k) at every cell of image n."""
    return [[relu(sum(weights[k] * ACT[n][k][i][j] for k in range(C))) for j in range(W)] for i in range(H)]


def ref_gradcam(n: int) -> list[list[float]]:
    """Selvaraju et al.: w_k = (1 / hw) sum_ij dy/dA_kij (the spatial mean)."""
    return weighted_map(n, [sum(GRAD[n][k][i][j] for i, j in CELLS) / (H * W) for k in range(C)])


def ref_gradcam_pp(n: int) -> list[list[float]]:
    """Chattopadhyay et al. eq. 19 with exp-score gradients: alpha = g^2 / (2 g^2 + sum_ab A_kab g^3), 0 where g = 0;
    w_k = sum_ij relu(g_kij) alpha_kij (eps 1e-6 in the denominator, as the grad-cam package)."""
    weights = []
    for k in range(C):
        s = sum(ACT[n][k][i][j] for i, j in CELLS)
        w = 0.0
        for i, j in CELLS:
            g = GRAD[n][k][i][j]
            alpha = 0.0 if g == 0 else g ** 2 / (2 * g ** 2 + s * g ** 3 + 1e-6)
            w += relu(g) * alpha
        weights.append(w)
    return weighted_map(n, weights)


def ref_xgradcam(n: int) -> list[list[float]]:
    """Fu et al.: w_k = sum_ij (A_kij / sum_ab A_kab) dy/dA_kij."""
    weights = []
    for k in range(C):
        s = sum(ACT[n][k][i][j] for i, j in CELLS)
        weights.append(sum(GRAD[n][k][i][j] * ACT[n][k][i][j] for i, j in CELLS) / (s + 1e-7))
    return weighted_map(n, weights)


def ref_hirescam(n: int) -> list[list[float]]:
    """Draelos & Carin: relu(sum_k g_kij A_kij), the gradient kept per location."""
    return [[relu(sum(GRAD[n][k][i][j] * ACT[n][k][i][j] for k in range(C))) for j in range(W)] for i in range(H)]


def ref_layercam(n: int) -> list[list[float]]:
    """Jiang et al.: relu(sum_k relu(g_kij) A_kij)."""
    return [[relu(sum(relu(GRAD[n][k][i][j]) * ACT[n][k][i][j] for k in range(C))) for j in range(W)]
            for i in range(H)]


def ref_gradcam_elementwise(n: int) -> list[list[float]]:
    """The grad-cam package's GradCAMElementWise: sum_k relu(g_kij A_kij), the ReLU before the channel sum."""
    return [[sum(relu(GRAD[n][k][i][j] * ACT[n][k][i][j]) for k in range(C)) for j in range(W)] for i in range(H)]


REFERENCES = {
    "gradcam": ref_gradcam,
    "gradcam++": ref_gradcam_pp,
    "hirescam": ref_hirescam,
    "xgradcam": ref_xgradcam,
    "layercam": ref_layercam,
    "gradcam-elementwise": ref_gradcam_elementwise,
}


def _expected(method: str) -> torch.Tensor:
    return torch.tensor([REFERENCES[method](n) for n in range(N)], dtype=torch.float32)


def test_every_method_has_a_reference() -> None:
    assert set(REFERENCES) == set(cam.CAM_METHODS)


@pytest.mark.parametrize("method", list(REFERENCES))
def test_raw_map_equals_the_hand_computation(method: str) -> None:
    a, g = torch.tensor(ACT), torch.tensor(GRAD)
    assert a.shape == (N, C, H, W) and g.shape == (N, C, H, W)
    expected = _expected(method)
    assert (expected > 0).any() and (expected == 0).any(), "the data must give both clipped and positive cells"
    got = cam.cam_from(a, g, method)
    assert got.shape == (N, H, W) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cam.CAM_METHODS[method](a, g), expected, rtol=1e-5, atol=1e-6)


def test_gradcam_known_cells() -> None:
    """Cells worked out on paper: image 0's gradient means are w = (2.25 / 12, 2.75 / 12) = (0.1875, 0.2291...)."""
    got = cam.cam_from(torch.tensor(ACT), torch.tensor(GRAD), "gradcam")
    w0, w1 = 2.25 / 12, 2.75 / 12
    assert got[0, 1, 2].item() == pytest.approx(w0 * 4 + w1 * 0)  # 0.75; a spatial sum would give 12 x that
    assert got[0, 0, 3].item() == pytest.approx(w0 * 3 + w1 * 0)
    assert got[0, 1, 0].item() == pytest.approx(w0 * 0 + w1 * 3)
    assert got[0, 2, 3].item() == 0.0  # w0 * 0 + w1 * (-1) < 0, clipped


def test_layercam_and_elementwise_differ_where_a_negative_activation_meets_a_positive_gradient() -> None:
    """Image 0, cell (1, 3): terms g * A are 1 * 1 and 1 * (-0.5). LayerCAM sums before its ReLU (0.5); the
    element-wise variant clips each term first (1.0)."""
    a, g = torch.tensor(ACT), torch.tensor(GRAD)
    assert cam.cam_from(a, g, "layercam")[0, 1, 3].item() == pytest.approx(0.5)
    assert cam.cam_from(a, g, "gradcam-elementwise")[0, 1, 3].item() == pytest.approx(1.0)
    assert cam.cam_from(a, g, "hirescam")[0, 1, 3].item() == pytest.approx(0.5)


def test_the_methods_disagree_on_this_data() -> None:
    """The data separate the methods: no two give the same map (a method wired to another's formula shows)."""
    maps = {m: _expected(m) for m in REFERENCES}
    names = list(maps)
    for x in range(len(names)):
        for y in range(x + 1, len(names)):
            assert not torch.allclose(maps[names[x]], maps[names[y]], rtol=1e-4, atol=1e-4), (names[x], names[y])
