"""Rules of the Claims page, written down first and then tested on a constructed results file: the by-size chart
opens on the stage the verdicts use."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("claims_page_cases", Path(__file__).with_name("test_claims_page.py"))
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)


def _title(at: object) -> str:
    fig = next(json.loads(e.proto.spec) for e in at.get("plotly_chart") if e.proto.id.endswith("claims_loc"))
    return fig["layout"]["title"]["text"]


@pytest.mark.parametrize("layer", ["layer3", "layer2"])
def test_by_size_chart_opens_on_the_verdict_stage(layer: str, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    """Rule: the localisation-by-size chart opens on the stage the verdicts were judged at (the file's
    ``verdict_layer``: layer3 in this project's protocol), not on the first stage of the list; the others stay
    a click away."""
    res = cases.constructed()
    res["verdict_layer"] = layer
    at = cases._page(monkeypatch, tmp_path, res)
    box = at.selectbox(key="claims_stage")
    assert box.value == layer and box.options[0] == "layer1" and len(box.options) == 4
    assert f"· {layer} output ·" in _title(at)


def test_a_claim_holm_never_reached_shows_no_judged_interval_and_no_level() -> None:
    """Rule: a confirmatory claim Holm stopped before has no judged interval, so its cell says 'not judged' and
    gives the 95% interval instead; it never reads 'at 99.x%' (a level it was not judged at)."""
    from dashboard.claims_text import judged_cell
    from res2net.evaluation.results import load_results

    res = load_results(Path(__file__).parents[2] / "assets" / "results" / "tiny_imagenet_100.json")
    seen = {True: 0, False: 0}
    for c in res.claims:
        if c.family != "confirmatory":
            continue
        cell = judged_cell(c, 3)
        tested = c.verdict != "not tested"
        seen[tested] += 1
        if tested:
            assert cell == f"{c.estimate:.3f} [{c.low:.3f}, {c.high:.3f}] at {100 * c.level:.1f}%"
        else:
            assert "not judged" in cell and " at " not in cell and f"95% [{c.low95:.3f}, {c.high95:.3f}]" in cell
    assert seen[True] and seen[False]  # the shipped family has both kinds
