"""Compare CAMs, drawn: one row per model (its main map, the other methods beside it, its top-5), then each model's
branches, the checks (faithfulness, sanity) and the Res2Net − ResNet difference. Sizes are chosen so that at a
1280 px window every map is drawn at least ``MIN_MAP_PX`` a side, its height set by the figure (so a colour bar,
as tall as its panel row, is as tall as the map)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st
from torch import nn

from dashboard import charts, placement, readable
from dashboard.services import model_store, one_tap
from res2net.analysis import gradient_free, similarity
from res2net.data import images
from res2net.viz import compare as compare_viz
from res2net.viz import plots

MAIN_PANE_PX = 800  # width of the main pane at a 1280 px window (the sidebar open)
COLUMN_GAP_PX = 16
COLORBAR_PX = 72  # a vertical colour bar with its ticks and title
MIN_MAP_PX = 96
TITLE_PX = 30  # a panel row's title and margins above the map
MAX_PANEL_PX = 240
WIDE_PANEL_PX = 120  # branches go on two rows when one row would draw them narrower than this
UNTRAINED_BADGE = ":orange-badge[untrained · random init]"
SANITY_NAME = "Model-randomisation sanity check (Adebayo et al., 2018)"


def panel_height(column_px: float, panels: int, aspect: float, *, colorbar: bool = True) -> int:
    """Height (px) of one panel row so that ``panels`` panels side by side in a ``column_px`` wide column show a
    photo window of ``aspect`` (height / width) height-limited: the drawn map is then as tall as the row."""
    width = (column_px - (COLORBAR_PX if colorbar else 0)) / panels - 6
    return int(max(min(width * aspect, MAX_PANEL_PX), MIN_MAP_PX))


def per_row_for(panels: int) -> int:
    """Panels a row: all in one row when each stays at least ``WIDE_PANEL_PX`` wide at 1280 px, else two rows."""
    return panels if (MAIN_PANE_PX - COLORBAR_PX) / panels >= WIDE_PANEL_PX else -(-panels // 2)


def row_units(n_extra: int) -> list[float]:
    """Column widths of a model's row: main map (with the photo when there is room), each other method, top-5."""
    return [2.0] + [1.0] * n_extra + [1.35]


def column_px(units: list[float], k: int) -> float:
    """Expected width (px) of column ``k`` of ``st.columns(units)`` in the main pane at a 1280 px window."""
    free = MAIN_PANE_PX - COLUMN_GAP_PX * (len(units) - 1)
    return free * units[k] / sum(units)


# The top-5 row a user ticked, kept outside the table's own state (which Streamlit drops on another page):
CLICKED = "compare_clicked"  # model -> (image digest, class ticked)
SEEN = "compare_clicked_seen"  # model -> (image digest, the table's ticked rows when last read)


def image_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def topk_key(n: str, data: bytes) -> str:
    """The key of model ``n``'s top-5 table for this image: a new image starts with nothing ticked."""
    return f"compare_topk_{n}_{image_digest(data)}"


def clicked_class(n: str, data: bytes) -> int | None:
    """The class of the top-5 row the user ticked for model ``n`` on this image, if any: a tick or untick since the
    last run updates it; a table not drawn yet (back from another page) leaves it as it was."""
    digest = image_digest(data)
    table = st.session_state.get(topk_key(n, data))
    shown_digest, top = st.session_state.get(f"compare_topk_classes_{n}") or ("", [])
    clicked = dict(st.session_state.get(CLICKED, {}))
    if table is not None and shown_digest == digest:
        rows = list((table.get("selection") or {}).get("rows") or [])
        seen = dict(st.session_state.get(SEEN, {}))
        if seen.get(n) != (digest, rows):
            seen[n] = (digest, rows)
            st.session_state[SEEN] = seen
            if rows and rows[0] < len(top):
                clicked[n] = (digest, int(top[rows[0]]))
            else:
                clicked.pop(n, None)
            st.session_state[CLICKED] = clicked
    kept_digest, cls = clicked.get(n, ("", None))
    return cls if kept_digest == digest else None


@dataclass
class Grid:
    """Everything the drawing needs, computed once by the page."""

    source_data: bytes
    names: list[str]
    loaded: dict
    results: dict
    infos: dict
    crops: dict
    photo: np.ndarray
    photo_uri: tuple
    box: tuple | None
    method: str
    mode: str
    block: str
    tap_kind: str
    cells: bool
    centres: dict  # (model, tap) -> CellCentres where the maps are placed at their effective centres
    alpha: float
    cmap: str
    shared_range: tuple | None
    window: tuple | None
    tap_for: Callable[[str], str | None]
    why_missing: Callable[[str], str]
    target_for: Callable[[str], int | None]  # the class asked for (None: top-1), as the CAMs' cache keys hold it

    def untrained(self, n: str) -> bool:
        return self.loaded[n].untrained

    @property
    def aspect(self) -> float:
        if self.window is not None:
            left, top, right, bottom = self.window
            return (bottom - top) / (right - left)
        return self.photo.shape[0] / self.photo.shape[1]

    def figure(self, n: str, model: nn.Module, maps: dict, taps: list[str], titles: list[str], *, with_photo: bool,
               rng: tuple | None, key: str, per_row: int, height: int, untrained: bool,
               colorbar: str = "CAM", bar_below: bool = False) -> None:
        """Taps of one model on the photo, on one colour range (``rng`` None: these maps' own)."""
        lo, hi = rng or placement.colour_range([maps[t] for t in taps])
        pm = [placement.photo_map(model, t, maps[t], self.crops[n], title, cells=self.cells,
                                  centres=self.centres.get((n, t)))
              for t, title in zip(taps, titles, strict=True)]
        fig = plots.maps_on_photo_figure(self.photo, pm, vmin=lo, vmax=hi, with_photo=with_photo, cells=self.cells,
                                         alpha=self.alpha, colorscale=self.cmap, box=self.box,
                                         colorbar_title=colorbar, per_row=per_row, panel_height=height + TITLE_PX,
                                         photo_uri=self.photo_uri)
        compare_viz.zoom(fig, self.window)
        compare_viz.colorbar_below(fig) if bar_below else compare_viz.colorbars_as_tall_as_panels(fig)
        if untrained:
            compare_viz.mark_untrained(fig, panels=range(1 if with_photo else 0, len(pm) + with_photo),
                                       font_size=max(12, min(22, height // 8)))
        charts.plotly_chart(fig, key=key, width="stretch")


def badge(g: Grid, n: str) -> str:
    lm = g.loaded[n]
    return (UNTRAINED_BADGE if g.untrained(n) else f":violet-badge[{lm.label}]" if lm.file is not None
            else ":green-badge[trained]")


def model_rows(g: Grid, extra: dict, more_methods: list[str], localisation: Callable[[str], str | None]
               ) -> None:
    """One row per model: main map (and the photo), the other methods at the same tap, the top-5 table."""
    units = row_units(len(more_methods))
    with_photo = not more_methods
    main_px = column_px(units, 0)
    main_h = panel_height(main_px, 2 if with_photo else 1, g.aspect)
    for n in g.names:
        lm, r = g.loaded[n], g.results[n]
        classes = model_store.class_names(n)
        st.markdown(f"##### {n} &nbsp; {badge(g, n)}")
        cols = st.columns(units, vertical_alignment="top")
        tap = g.tap_for(n)
        with cols[0]:
            if tap is None:
                st.info(g.why_missing(n))
            else:
                g.figure(n, lm.model, r.maps, [tap], [f"{tap} · {g.method}"], with_photo=with_photo,
                         rng=None if g.untrained(n) else g.shared_range, key=f"compare_main_{n}", per_row=2,
                         height=main_h, untrained=g.untrained(n))
                target = (f"target: {classes[r.target]}" if g.untrained(n) else
                          f"target: {classes[r.target]} (p = {float(r.probs[r.target]):.3f})")
                st.caption(f"{placement.grid_text(lm.model, tap, r.maps[tap], g.crops[n])} · {target}")
                if (line := localisation(n)) is not None:
                    st.caption(line)
        for k, m in enumerate(more_methods, start=1):
            with cols[k]:
                if tap is not None:
                    other_method(g, n, m, tap, extra, column_px(units, k))
        with cols[-1]:
            if g.untrained(n):
                st.caption("Untrained: its outputs are noise, so no class probabilities are shown; the target is the "
                           "chosen class or its highest logit.")
            else:
                top = [int(k) for k in np.argsort(r.probs)[::-1][:5]]
                st.session_state[f"compare_topk_classes_{n}"] = (image_digest(g.source_data), top)
                clicked = clicked_class(n, g.source_data)
                st.dataframe({"class": [classes[k] for k in top],
                              "probability": [f"{float(r.probs[k]):.3f}" for k in top]},
                             hide_index=True, width="stretch", on_select="rerun",
                             selection_mode="single-row",
                             selection_default={"selection": {"rows": [top.index(clicked)]}} if clicked in top
                             else None,
                             key=topk_key(n, g.source_data), column_config={"class": st.column_config.TextColumn(
                                 "class", help="Tick a row's box to explain that class.", width="medium"),
                                 "probability": st.column_config.TextColumn("p", width="small")})


def other_method(g: Grid, n: str, m: str, tap: str, extra: dict, width_px: float) -> None:
    """Method ``m``'s map of ``tap`` in its own cell of the grid (its own units, so its own colour scale)."""
    lm, r = g.loaded[n], g.results[n]
    h = panel_height(width_px, 1, g.aspect, colorbar=False)
    title = f"{gradient_free.LABELS.get(m, m)} · {tap}"
    if m in gradient_free.METHODS:
        key = (g.source_data, n, lm.weights, m, tap, r.target, g.mode)
        done = st.session_state.setdefault("compare_gradient_free_done", set())
        if m != "eigencam" and key not in done:
            if not st.button(f"Compute {gradient_free.LABELS[m]}", key=f"compare_gf_{m}_{n}",
                             help=f"At `{tap}`: one forward pass per channel of this tap; seconds for the embedded "
                                  "models, minutes for deep taps of ImageNet models on a CPU."):
                return
            done.add(key)
        raw = one_tap.gradient_free_map(g.source_data, n, lm.device, lm.weights, m, tap, r.target, g.mode)
        g.figure(n, lm.model, {tap: raw}, [tap], [title], with_photo=False, rng=None, key=f"compare_{m}_{n}",
                 per_row=1, height=h, untrained=g.untrained(n), bar_below=True)
        return
    rng = None
    if st.session_state.get("compare_scale") == "shared" and not g.untrained(n):
        rng = placement.colour_range([extra[(k, m)].maps[t] for k in g.names if not g.untrained(k)
                                      for t in [g.tap_for(k)] if t])
    g.figure(n, lm.model, extra[(n, m)].maps, [tap], [title], with_photo=False, rng=rng, key=f"compare_{m}_{n}",
             per_row=1, height=h, untrained=g.untrained(n), bar_below=True)


def branch_rows(g: Grid) -> None:
    """Each model's branches of the block, one row per model, on one colour scale per model (or the page's)."""
    with_branches = [n for n in g.names if g.block in g.infos[n] and g.infos[n][g.block].num_branches > 1]
    if not with_branches:
        return
    st.markdown(f"#### Branches of `{g.block}`", help=readable.BRANCH_HELP)
    for n in with_branches:
        info, lm, r = g.infos[n][g.block], g.loaded[n], g.results[n]
        per_row = per_row_for(info.num_branches)
        h = panel_height(MAIN_PANE_PX, per_row, g.aspect)
        rng = g.shared_range if st.session_state.get("compare_scale") == "shared" and not g.untrained(n) else None
        st.markdown(f"**{n}** · {info.stype} block &nbsp; {badge(g, n)}")
        g.figure(n, lm.model, r.maps, info.branch_taps, [info.branch_label(i) for i in range(info.num_branches)],
                 with_photo=False, rng=rng, key=f"compare_branches_{n}", per_row=per_row, height=h,
                 untrained=g.untrained(n))


def faithfulness_section(g: Grid) -> None:
    """Deletion/insertion curves of each trained model's main map beside the random-order band, with a flag."""
    st.markdown("#### Faithfulness (deletion / insertion)", help=readable.FAITHFULNESS_HELP)
    trained = [n for n in g.names if not g.untrained(n) and g.tap_for(n)]
    hidden = [n for n in g.names if g.untrained(n)]
    if hidden:
        st.caption("Not shown for untrained models (" + ", ".join(f"`{n}`" for n in hidden) + "): their "
                   "probabilities are noise, so a curve would only measure a random function.")
    cols = st.columns(2)
    for k, n in enumerate(trained):
        lm = g.loaded[n]
        f = one_tap.map_faithfulness(g.source_data, n, lm.device, lm.weights, g.method, g.tap_for(n),
                                     g.target_for(n), g.mode)
        with cols[k % 2]:
            fig = compare_viz.faithfulness_figure(f.fractions, f.deletion, f.insertion, f.random_deletion,
                                                  f.random_insertion, title=f"{n} · {g.tap_for(n)}",
                                                  color=plots.model_color(n))
            charts.plotly_chart(fig, key=f"compare_faith_{n}", width="stretch")
            st.markdown(readable.faithfulness_reading(f))


def sanity_section(g: Grid, randomised: dict, random_models: dict) -> None:
    """Each trained model's map beside the same architecture's untrained map, scored by rank correlation and SSIM."""
    st.markdown(f"#### {SANITY_NAME}", help=readable.SANITY_HELP)
    for n, rr in randomised.items():
        tap = g.tap_for(n)
        if tap is None:
            continue
        trained, random = g.results[n].maps[tap], rr.maps[tap]
        rho = similarity.spearman(trained, random)
        score = similarity.ssim(similarity.unit_range(trained), similarity.unit_range(random)) \
            if min(trained.shape) >= 2 else float("nan")
        cols = st.columns([2, 1.35])
        with cols[0]:
            model = g.loaded[n].model
            pm = [placement.photo_map(model, tap, similarity.unit_range(trained), g.crops[n], f"trained · {tap}",
                                      cells=g.cells),
                  placement.photo_map(random_models[n], tap, similarity.unit_range(random), g.crops[n],
                                      f"random weights · {tap}", cells=g.cells)]
            h = panel_height(column_px([2, 1.35], 0), 2, g.aspect)
            fig = plots.maps_on_photo_figure(g.photo, pm, vmin=0.0, vmax=1.0, with_photo=False, cells=g.cells,
                                             alpha=g.alpha, colorscale=g.cmap, box=g.box, per_row=2,
                                             colorbar_title="of own max", panel_height=h + TITLE_PX,
                                             photo_uri=g.photo_uri)
            compare_viz.zoom(fig, g.window)
            compare_viz.colorbars_as_tall_as_panels(fig)
            compare_viz.mark_untrained(fig, panels=[1], font_size=max(12, min(22, h // 8)))
            charts.plotly_chart(fig, key=f"compare_random_{n}", width="stretch")
        with cols[1]:
            st.markdown(f"**{n}**")
            st.markdown(readable.sanity_reading(rho, score))


def difference_section(g: Grid, rf_px: Callable[[str, str], int]) -> None:
    """Res2Net minus ResNet on one shared scale: the whole block, then each Res2Net conv branch (by receptive field)
    minus the ResNet's 3×3 path. Each map is first scaled by its own largest value."""
    kinds = {n: g.infos[n][g.block].kind for n in g.names if g.block in g.infos[n]}
    r2 = next((n for n, k in kinds.items() if k == "res2net"), None)
    rn = next((n for n, k in kinds.items() if k == "resnet"), None)
    st.markdown("#### Difference: Res2Net − ResNet", help=readable.DIFFERENCE_HELP)
    if r2 is None or rn is None:
        st.caption("Needs a Res2Net and a ResNet among the models, both with block "
                   f"`{g.block}`.")
        return
    info2, info1 = g.infos[r2][g.block], g.infos[rn][g.block]
    w, h = g.photo.shape[1], g.photo.shape[0]
    side = 160

    def on_photo(n: str, tap: str) -> plots.PhotoMap:
        return placement.photo_map(g.loaded[n].model, tap, g.results[n].maps[tap], g.crops[n], tap, cells=False,
                                   display_side=side)

    conv = list(range(info2.num_branches - 1))  # the last branch is the identity (or pool): set apart, not drawn
    pairs = [(g.block, g.block, "block output")]
    base_rf = rf_px(rn, info1.branch_taps[0])
    pairs += [(info2.branch_taps[i], info1.branch_taps[0], f"branch {i} · RF {rf_px(r2, info2.branch_taps[i])} px")
              for i in conv]
    maps = []
    for t2, t1, title in pairs:
        a, b = on_photo(r2, t2), on_photo(rn, t1)
        maps.append(plots.PhotoMap(compare_viz.normalised_difference(a.grid, b.grid), a.x0, a.dx, a.y0, a.dy, title))
    per_row = per_row_for(len(maps))
    fig = plots.maps_on_photo_figure(g.photo, maps, vmin=-1.0, vmax=1.0, with_photo=False, cells=False,
                                     alpha=max(g.alpha, 0.7), colorscale="RdBu_r", box=g.box, per_row=per_row,
                                     colorbar_title="difference",
                                     panel_height=panel_height(MAIN_PANE_PX, per_row, g.aspect) + TITLE_PX,
                                     photo_uri=g.photo_uri)
    compare_viz.zoom(fig, g.window)
    compare_viz.colorbars_as_tall_as_panels(fig)
    marked = [k for k, _ in enumerate(maps) if g.untrained(r2) or g.untrained(rn)]
    if marked:
        compare_viz.mark_untrained(fig, panels=marked)
    charts.plotly_chart(fig, key="compare_difference", width="stretch")
    st.caption(f"`{r2}` − `{rn}` at `{g.block}`. Red: {r2} puts more of its map there, blue: {rn} does (each map "
               "scaled by its own largest value, so every panel runs from −1 to 1). Branch panels: that Res2Net branch "
               f"minus the ResNet's 3×3 path (RF {base_rf} px), ordered by receptive field; the identity branch has no "
               f"3×3 conv and is left out. Sampled on the photo ({w}×{h} px) at most {side} px a side.")


def photo_notes(g: Grid, image: images.LoadedImage) -> list[str]:
    """How the photo reached each model, said once per distinct way; a shrunk photo says so."""
    out = []
    ow, oh = image.original_size if image.original_size != (0, 0) else image.size
    W, H = image.size
    shrunk = (W, H) != (ow, oh) and max(W, H) < max(ow, oh)
    size = f"{ow}×{oh} px, kept at {W}×{H} px" if shrunk else f"{W}×{H} px"
    verb = {"center_crop": "resized and centre-cropped", "resize": "resized (squeezed)", "pad": "padded and resized"}
    for crop_size, how in sorted({(g.crops[n].size, g.crops[n].mode) for n in g.names}):
        who = ", ".join(f"`{n}`" for n in g.names if g.crops[n].size == crop_size)
        out.append(f"Your photo ({size}) was {verb.get(how, how)} to the model's {crop_size}×{crop_size} px input "
                   f"for {who}; maps are computed there and drawn back in the photo's own pixel frame.")
    if g.window is not None:
        out.append("The photo is very elongated: the maps show the part the models saw, widened to at most "
                   f"{compare_viz.MAX_VIEW_ASPECT:g}:1.")
    return out
