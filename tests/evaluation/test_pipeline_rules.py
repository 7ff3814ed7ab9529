"""Rules of the dataset pipeline written down first, then tested: the size buckets' edges."""

from __future__ import annotations

import numpy as np

from res2net.evaluation.summary import size_buckets
from res2net.metrics import boxes as L


def test_bucket_edges_small_below_a_quarter_large_from_sixty_percent() -> None:
    """Rule: an image whose boxes cover < 25% of it is small, >= 60% large, anything between medium; the edges
    belong to the upper bucket, and the per-image rule agrees with the per-box one."""
    area = np.array([0.0, 0.2499, 0.25, 0.5999, 0.60, 1.0])
    assert size_buckets(area).tolist() == ["small", "small", "medium", "medium", "large", "large"]
    # a 100 x 100 image: boxes of exactly 25% and 60% of it
    assert L.size_bucket((0, 0, 50, 50), 100) == "medium" and L.size_bucket((0, 0, 60, 100), 100) == "large"
    assert L.size_bucket((0, 0, 49, 50), 100) == "small" and L.size_bucket((0, 0, 59, 100), 100) == "medium"
