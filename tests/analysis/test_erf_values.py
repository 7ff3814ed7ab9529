"""ERF mass radii and radial profiles by value, on a non-square map with off-centre masses worked out by hand.

The map is 7 rows x 11 columns; centres are (y, x). Four equal masses sit at (2, 7), (2, 9), (5, 7) and (0, 3).
From the centre (2, 7) they lie at Chebyshev distances 0, 2, 3, 4 and Euclidean distances 0, 2, 3, sqrt(20).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from res2net.analysis.erf import mass_radius, radial_profile, radius_samples, touches_border

H, W = 7, 11
CELLS = [(2, 7), (2, 9), (5, 7), (0, 3)]
CENTRE = (2.0, 7.0)


def _map(weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)) -> np.ndarray:
    m = np.zeros((H, W))
    for (y, x), v in zip(CELLS, weights, strict=True):
        m[y, x] = v
    return m


# level -> radius from (2, 7); masses of 1/4 each reach 0.25, 0.5, 0.75, 1.0 at the four distances
SQUARE = {0.2: 0.0, 0.25: 0.0, 0.5: 2.0, 0.6: 3.0, 0.75: 3.0, 0.9: 4.0, 0.99: 4.0}
RADIAL = {0.2: 0.0, 0.25: 0.0, 0.5: 2.0, 0.6: 3.0, 0.75: 3.0, 0.9: math.sqrt(20), 0.99: math.sqrt(20)}


@pytest.mark.parametrize("level", list(SQUARE))
def test_square_radius_off_centre_on_a_non_square_map(level: float) -> None:
    assert mass_radius(_map(), CENTRE, level, "square") == pytest.approx(SQUARE[level])


@pytest.mark.parametrize("level", list(RADIAL))
def test_radial_radius_off_centre_on_a_non_square_map(level: float) -> None:
    assert mass_radius(_map(), CENTRE, level, "radial") == pytest.approx(RADIAL[level])


def test_a_level_reached_exactly_counts_as_held() -> None:
    """At 0.5 the mass within distance 2 is exactly half (2 of 4): the radius is 2 ("holds >= level"), not 3."""
    m = _map()
    assert m[:, :].sum() == 4.0 and m[2, 7] + m[2, 9] == 2.0  # exact in binary floating point
    assert mass_radius(m, CENTRE, 0.5, "square") == 2.0
    assert mass_radius(m, CENTRE, 0.5, "radial") == 2.0
    assert mass_radius(m, CENTRE, 0.75, "square") == 3.0
    # a hair above the boundary needs the next ring
    assert mass_radius(m, CENTRE, 0.5 + 1e-6, "square") == 3.0
    assert mass_radius(m / m.sum(), CENTRE, 0.5, "square") == 2.0  # a normalised map (as erf_map gives) alike


def test_swapped_centre_gives_other_radii() -> None:
    """(x, y) = (7, 2) read as (y, x) would put the centre at row 7, column 2: the masses then lie at Chebyshev
    distances 5, 7, 5, 7 and Euclidean sqrt(50), sqrt(74), sqrt(29), sqrt(50)."""
    m = _map()
    swapped = (7.0, 2.0)
    assert mass_radius(m, swapped, 0.5, "square") == 5.0
    assert mass_radius(m, swapped, 0.5, "radial") == pytest.approx(math.sqrt(50))  # sqrt(29), then sqrt(50) x2
    assert mass_radius(m, CENTRE, 0.5, "square") == 2.0  # the same map about the right centre


def test_unequal_masses_and_a_fractional_centre() -> None:
    """Weights 4, 2, 1, 1 (total 8) about (2.5, 7.5): Chebyshev distances 0.5, 1.5, 2.5, 4.5; Euclidean
    sqrt(0.5), sqrt(2.5), sqrt(6.5), sqrt(26.5)."""
    m = _map((4.0, 2.0, 1.0, 1.0))
    c = (2.5, 7.5)
    assert mass_radius(m, c, 0.5, "square") == pytest.approx(0.5)  # 4 of 8, exactly
    assert mass_radius(m, c, 0.6, "square") == pytest.approx(1.5)  # 6 of 8
    assert mass_radius(m, c, 0.8, "square") == pytest.approx(2.5)  # 7 of 8 >= 6.4
    assert mass_radius(m, c, 0.9, "square") == pytest.approx(4.5)
    assert mass_radius(m, c, 0.75, "radial") == pytest.approx(math.sqrt(2.5))  # 6 of 8, exactly
    assert mass_radius(m, c, 0.99, "radial") == pytest.approx(math.sqrt(26.5))


def test_empty_map_has_no_radius() -> None:
    assert math.isnan(mass_radius(np.zeros((H, W)), CENTRE, 0.5, "square"))


def test_radial_profile_by_hand() -> None:
    """Radii 0..9 (the farthest pixel, (6, 0), lies sqrt(65) = 8.06 from (2, 7)); mass within each radius,
    a pixel exactly at distance r counted at r."""
    radii, frac = radial_profile(_map(), CENTRE)
    np.testing.assert_array_equal(radii, np.arange(10.0))
    np.testing.assert_allclose(frac, [0.25, 0.25, 0.5, 0.75, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0], rtol=0, atol=1e-12)


def test_radial_profile_swapped_centre_differs() -> None:
    """About (7, 2) the farthest pixel is (0, 10) at sqrt(113) = 10.63 (radii 0..11); masses at sqrt(29) = 5.39,
    sqrt(50) = 7.07 (two) and sqrt(74) = 8.60."""
    radii, frac = radial_profile(_map(), (7.0, 2.0))
    np.testing.assert_array_equal(radii, np.arange(12.0))
    np.testing.assert_allclose(frac, [0, 0, 0, 0, 0, 0, 0.25, 0.25, 0.75, 1.0, 1.0, 1.0], rtol=0, atol=1e-12)


def test_radial_profile_agrees_with_the_radial_radius() -> None:
    """The smallest whole radius whose profile reaches a level bounds the radial mass radius from above."""
    m = _map((4.0, 2.0, 1.0, 1.0))
    radii, frac = radial_profile(m, CENTRE)
    for level in (0.5, 0.75, 0.9):
        r = mass_radius(m, CENTRE, level, "radial")
        first = radii[np.argmax(frac >= level)]
        assert r <= first < r + 1


# radius_samples: one input holds the masses at (2, 7) and (5, 7) (Chebyshev 0 and 3, Euclidean 0 and 3), the other
# those at (2, 9) and (0, 3) (Chebyshev 2 and 4, Euclidean 2 and sqrt(20)); each weight row is one resample.
def _inputs() -> np.ndarray:
    a, b = np.zeros((H, W)), np.zeros((H, W))
    a[2, 7] = a[5, 7] = 1.0
    b[2, 9] = b[0, 3] = 1.0
    return np.stack([a, b])


def test_radius_samples_by_hand() -> None:
    """Weights (1, 3) put masses 1, 3, 1, 3 (total 8) at Chebyshev 0, 2, 3, 4: 4 of 8 within 2 (exactly half),
    5 within 3, 8 within 4. A row of zeros has no mass and no radius."""
    rows = np.array([[1, 0], [0, 1], [1, 1], [2, 0], [1, 3], [0, 0]], dtype=np.float64)
    got = radius_samples(_inputs(), CENTRE, 0.5, rows)
    np.testing.assert_array_equal(got[:5], [0.0, 2.0, 2.0, 0.0, 2.0])  # a level reached exactly is held
    assert math.isnan(got[5])
    np.testing.assert_array_equal(radius_samples(_inputs(), CENTRE, 0.6, rows[:5]), [3.0, 4.0, 3.0, 3.0, 3.0])
    np.testing.assert_array_equal(radius_samples(_inputs(), CENTRE, 0.9, rows[:5]), [3.0, 4.0, 4.0, 3.0, 4.0])
    radial = radius_samples(_inputs(), CENTRE, 0.9, rows[:5], kind="radial")
    np.testing.assert_allclose(radial, [3.0, math.sqrt(20), math.sqrt(20), 3.0, math.sqrt(20)], rtol=0, atol=1e-12)


def test_radius_samples_beyond_the_mean_maps_radius_and_across_chunks() -> None:
    """A mass at (6, 0) lies at Chebyshev distance 7 from (2, 7). The mean of both inputs holds half its mass at
    radius 0, yet the resample that draws only the far input needs 7; 150 rows cross the 64-row chunks."""
    near, far = np.zeros((H, W)), np.zeros((H, W))
    near[2, 7], far[6, 0] = 1.0, 1.0
    rows = np.tile(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), (50, 1))
    got = radius_samples(np.stack([near, far]), CENTRE, 0.5, rows)
    np.testing.assert_array_equal(got, np.tile([0.0, 7.0, 0.0], 50))
    np.testing.assert_array_equal(radius_samples(np.stack([near, far]), CENTRE, 0.6, rows[:3]), [0.0, 7.0, 7.0])


def test_touches_border_by_hand() -> None:
    """About (2, 7) on the 7 x 11 map the nearest border is the top row, 2 px away. A square of radius 2 reaches
    it (row 0); one of radius 1 does not."""
    m = np.zeros((H, W))
    m[2, 7] = m[2, 9] = 1.0  # 99% of the mass needs Chebyshev radius 2
    assert touches_border(m, CENTRE)
    m = np.zeros((H, W))
    m[2, 7] = m[3, 8] = 1.0  # radius 1
    assert not touches_border(m, CENTRE)
    assert not touches_border(np.zeros((H, W)), CENTRE)
