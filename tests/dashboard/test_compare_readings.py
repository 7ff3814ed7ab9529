"""Compare's readings and sizes as plain functions: faithfulness against random orders, the sanity check's line,
and the grid's panel sizes at a 1280 px window with four models."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from dashboard import readable
from dashboard.views import compare_grid as G


def test_versus_random_by_hand() -> None:
    rand = [0.70, 0.65, 0.72]  # deletion AUCs of three random orders (mean 0.69)
    assert readable.versus_random(0.20, rand, lower_is_better=True) == "better than random"
    assert readable.versus_random(0.68, rand, lower_is_better=True) == "within the random spread"
    assert readable.versus_random(0.091, [0.077], lower_is_better=True) == "worse than random"  # the case
    assert readable.versus_random(0.80, rand, lower_is_better=False) == "better than random"
    assert readable.versus_random(0.60, rand, lower_is_better=False) == "worse than random"


def test_faithfulness_reading_flags_a_map_worse_than_random() -> None:
    fr = np.linspace(0, 1, 3)
    f = SimpleNamespace(fractions=fr, deletion_auc=0.091, insertion_auc=0.9, random_deletion_auc=0.077,
                        random_insertion_auc=0.5, random_deletion=np.array([[0.1, 0.07, 0.06], [0.1, 0.08, 0.04]]),
                        random_insertion=np.array([[0.1, 0.5, 0.9], [0.1, 0.4, 0.9]]))
    text = readable.faithfulness_reading(f)
    deletion, insertion = text.split(" · ")
    # random deletion areas by trapezoids: (0.1+0.07)/4 + (0.07+0.06)/4 = 0.075, (0.1+0.08)/4 + (0.08+0.04)/4 = 0.075
    assert "random orders 0.075–0.075" in deletion and "worse than random" in deletion
    assert "better than random" in insertion  # 0.9 above 0.525 and 0.45


def test_sanity_reading() -> None:
    assert "survives randomisation" in readable.sanity_reading(0.8, 0.3)
    assert "passes" in readable.sanity_reading(0.1, 0.05)
    assert "partly" in readable.sanity_reading(0.3, 0.1)
    line = readable.sanity_reading(math.nan, math.nan)
    assert "Not measurable" in line and readable.NOT_MEASURABLE in line


def test_no_map_under_96_px_at_1280_with_extras_and_branches() -> None:
    for extras in range(4):
        units = G.row_units(extras)
        main = G.column_px(units, 0)
        with_photo = extras == 0
        width = (main - G.COLORBAR_PX) / (2 if with_photo else 1)
        assert width >= G.MIN_MAP_PX
        assert all(G.column_px(units, k) - 6 >= G.MIN_MAP_PX for k in range(1, extras + 1))  # bar below the map
    for branches in (2, 4, 6, 8):
        per_row = G.per_row_for(branches)
        assert (G.MAIN_PANE_PX - G.COLORBAR_PX) / per_row >= G.MIN_MAP_PX
    # a row is height-limited: the map is as tall as the row, never taller than its width allows
    assert G.panel_height(400, 2, 1.0) == int((400 - G.COLORBAR_PX) / 2 - 6)
    assert G.panel_height(4000, 1, 1.0) == G.MAX_PANEL_PX
