"""Branches are compared by receptive field: a line joins one model's conv branches only, identity branches sit in
their own panel, a one-path block is a star of its own, never 'branch 0'."""

from __future__ import annotations

import pytest

from res2net.viz.branch_plots import BranchPoint, branch_kind, branch_rf_figure


def _points() -> list[BranchPoint]:
    return [
        BranchPoint("tiny_resnet26", "path", 11, 0.30, "branch 0"),
        BranchPoint("tiny_res2net26_4s", "conv", 11, 0.20, "branch 0"),
        BranchPoint("tiny_res2net26_4s", "conv", 27, 0.40, "branch 2"),  # given out of order: drawn by RF
        BranchPoint("tiny_res2net26_4s", "conv", 19, 0.35, "branch 1"),
        BranchPoint("tiny_res2net26_4s", "identity", 3, 0.05, "branch 3 (identity)"),
        BranchPoint("tiny_res2net26_2s", "conv", 11, 0.25, "branch 0", low=0.2, high=0.3),
        BranchPoint("tiny_res2net26_2s", "identity", 3, 0.10, "branch 1 (identity)", low=0.0, high=0.2),
    ]


def test_lines_join_only_one_models_conv_branches_in_order_of_receptive_field() -> None:
    fig = branch_rf_figure(_points(), title="t", value_title="v", rf_title="RF (px)")
    lines = [t for t in fig.data if "lines" in (t.mode or "")]
    assert [(t.name, list(t.x), list(t.y)) for t in lines] == [
        ("tiny_res2net26_4s", [11, 19, 27], [0.20, 0.35, 0.40]),
        ("tiny_res2net26_2s", [11], [0.25]),
    ]
    assert all(t.xaxis == "x" for t in lines)


def test_identity_branches_sit_apart_and_the_resnet_path_is_a_star_with_a_reference_level() -> None:
    fig = branch_rf_figure(_points(), title="t", value_title="v", rf_title="RF (px)")
    ident = [t for t in fig.data if t.name and t.name.endswith(": identity")]
    assert [(t.xaxis, list(t.x), list(t.y), t.mode) for t in ident] == [
        ("x2", ["tiny_res2net26_4s"], [0.05], "markers"), ("x2", ["tiny_res2net26_2s"], [0.10], "markers")]
    assert list(ident[1].error_y.array) == pytest.approx([0.1]) and list(ident[1].error_y.arrayminus) == [0.1]
    (star,) = [t for t in fig.data if t.marker.symbol == "star"]
    assert (star.name, list(star.x), list(star.y), star.mode) == ("tiny_resnet26: 3×3 path", [11], [0.30], "markers")
    levels = [s for s in fig.layout.shapes if s.type == "line" and s.y0 == s.y1]
    assert [s.y0 for s in levels] == [0.30]
    assert [a.text for a in fig.layout.annotations][:2] == ["conv branches by receptive field", "identity"]


def test_a_band_marks_no_meaningful_difference_and_one_panel_suffices_without_identity() -> None:
    pts = [p for p in _points() if p.kind != "identity"]
    fig = branch_rf_figure(pts, title="t", value_title="v", rf_title="RF", band=0.05, reference_level=False)
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(r.y0, r.y1) for r in rects] == [(-0.05, 0.05)]
    assert not [s for s in fig.layout.shapes if s.type == "line" and s.y0 == 0.30]  # no reference level asked for
    assert "xaxis2" not in fig.layout.to_plotly_json()


def test_branch_kinds_follow_the_code_order() -> None:
    assert [branch_kind(i, 4, True) for i in range(4)] == ["conv", "conv", "conv", "identity"]
    assert branch_kind(0, 1, False) == "path"
    assert branch_kind(0, 1, True) == "path"  # a Res2Net block of scale 1 is one 3×3 path too
    with pytest.raises(ValueError, match="kind"):
        BranchPoint("m", "branch", 3, 0.1, "x")


def test_a_resnet_bottleneck_is_named_its_3x3_path_not_branch_0() -> None:
    from res2net.models.taps import BlockInfo
    from res2net.viz.branch_plots import branch_title

    assert branch_title(BlockInfo("layer2.1", "normal", 1, "resnet"), 0) == "3×3 path"
    res2 = BlockInfo("layer2.1", "normal", 4, "res2net")
    assert [branch_title(res2, i) for i in range(4)] == ["branch 0", "branch 1", "branch 2", "branch 3 (identity)"]
    assert branch_title(BlockInfo("layer2.0", "stage", 4, "res2net"), 3) == "branch 3 (pool)"
