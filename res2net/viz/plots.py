"""Figure builders for the analyses: plotly figures for the dashboard, a matplotlib PNG for downloads, exports.

Nothing here imports Streamlit. Every heatmap sets its colour scale and its zmin/zmax explicitly, so what a
colour means never depends on a template; models keep one colour everywhere (``model_color``). Maps drawn on a
picture must already have the picture's shape: where a tap's cells lie is geometry
(``res2net.geometry.registration.register``), not something a figure may guess by stretching a low-resolution map
over the image. The PNG is drawn with matplotlib's object API (``Figure`` + Agg canvas), never pyplot, so it is
safe in server threads.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "MODEL_COLORS", "PALETTE", "model_color", "branch_color", "overlay", "map_range", "cam_grid_figure",
    "branch_bars", "grouped_branch_bars", "erf_heatmap", "radial_mass_figure", "localisation_by_size_figure",
    "feature_maps_figure", "cam_panel_png", "PhotoMap", "maps_on_photo_figure", "png_data_uri",
    "COLORMAPS", "maps_to_npz_bytes", "rows_to_csv_bytes",
]

# Okabe-Ito and a few darker companions: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B", "#000000",
           "#7F7F7F", "#B8860B", "#1F4E79", "#A0522D")
MODEL_COLORS: dict[str, str] = {
    "tiny_resnet26": "#0072B2", "tiny_res2net26_2s": "#E69F00", "tiny_res2net26_4s": "#D55E00",
    "tiny_res2net26_8s": "#CC79A7",
    "resnet50": "#0072B2", "resnet101": "#1F4E79", "resnext50_32x4d": "#56B4E9",
    "res2net50_26w_4s": "#D55E00", "res2net50_48w_2s": "#E69F00", "res2net50_14w_8s": "#CC79A7",
    "res2net50_26w_6s": "#A0522D", "res2net50_26w_8s": "#8C564B", "res2net101_26w_4s": "#B8860B",
    "res2next50": "#009E73", "res2net50d": "#F0A0A0", "res2net101d": "#7F3F00",
}
CAM_COLORSCALE = "Jet"
MAP_COLORSCALE = "Viridis"
CHANCE_COLOR = "#555555"
IDENTITY_COLOR = "#9E9E9E"


def model_color(name: str) -> str:
    """The fixed colour of a model (a stable hash into the palette for names not in the table)."""
    return MODEL_COLORS.get(name) or PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def branch_color(index: int, n_branches: int, *, identity: bool = False) -> str:
    """Conv branches from small to large receptive field along viridis; the identity/pool branch grey."""
    if identity:
        return IDENTITY_COLOR
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    t = 0.1 + 0.75 * (index / max(n_branches - 1, 1))
    return to_hex(colormaps["viridis"](t))


def _is_identity(label: str) -> bool:
    low = str(label).lower()
    return "ident" in low or "pool" in low


# ----------------------------------------------------------------------------------------------- overlays
def map_range(maps: Sequence[np.ndarray], shared: bool = True) -> list[tuple[float, float]]:
    """(vmin, vmax) per map: one range for all when ``shared``, else each its own; vmin is 0 for non-negative maps."""
    def rng(arrs: Sequence[np.ndarray]) -> tuple[float, float]:
        vals = [np.asarray(a, dtype=np.float64) for a in arrs]
        finite = [v[np.isfinite(v)] for v in vals]
        finite = [f for f in finite if f.size]
        if not finite:
            return 0.0, 1.0
        lo = min(float(f.min()) for f in finite)
        hi = max(float(f.max()) for f in finite)
        lo = min(lo, 0.0)
        return (lo, hi) if hi > lo else (lo, lo + 1.0)

    if shared:
        r = rng(maps)
        return [r] * len(maps)
    return [rng([m]) for m in maps]


def overlay(
    image_uint8: np.ndarray,
    cam_2d: np.ndarray,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
    vmax: float | None = None,
    vmin: float | None = None,
) -> np.ndarray:
    """A heat map blended over an RGB uint8 photo; NaN leaves the photo bare.

    ``cam_2d`` must have the photo's (H, W): place a tap's map first (``registration.register`` onto the model
    input, ``registration.register_to_photo`` onto the photo), since stretching it would shift stride-S cells by
    (S - 1) / 2 px.
    ``vmax`` (and ``vmin``) fix the colour scale, so several overlays can share one; by default 0..max of this map.
    """
    from matplotlib import colormaps

    img = np.asarray(image_uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {img.shape} {img.dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    img = img[..., :3]
    cam = np.asarray(cam_2d, dtype=np.float64)
    if cam.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {cam.shape}")
    _check_placed(cam, img.shape[0], img.shape[1])
    (lo, hi), = map_range([cam])
    lo = lo if vmin is None else float(vmin)
    hi = hi if vmax is None else float(vmax)
    norm = np.clip((cam - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(cam)
    valid = np.isfinite(norm)
    colours = colormaps[cmap](np.where(valid, norm, 0.0))[..., :3] * 255.0
    a = np.where(valid, alpha, 0.0)[..., None]
    out = (1.0 - a) * img.astype(np.float64) + a * colours
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _check_placed(cam: np.ndarray, height: int, width: int) -> None:
    """Refuse a map that is not at the picture's (H, W): its cells' positions would be a guess."""
    if cam.shape != (height, width):
        raise ValueError(
            f"the map is {cam.shape[0]}x{cam.shape[1]} but the picture is {height}x{width}: place the map on the "
            "picture first (res2net.geometry.registration.register for the model input, register_to_photo for the "
            "photo)")


# --------------------------------------------------------------------------------------------- CAM grids
def _heatmap_on_image(cam: np.ndarray, height: int, width: int, **kw: object) -> go.Heatmap:
    """A picture-sized (registered) map as a heatmap, one cell per pixel with centres at integers like ``go.Image``."""
    _check_placed(cam, height, width)
    return go.Heatmap(z=cam, x0=0, dx=1, y0=0, dy=1, **kw)


def cam_grid_figure(
    images: Sequence[np.ndarray],
    maps: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    shared_scale: bool = True,
    box: Sequence[float] | Sequence[Sequence[float] | None] | None = None,
    alpha: float = 0.5,
    colorscale: str = CAM_COLORSCALE,
    height: int = 360,
) -> go.Figure:
    """Side-by-side CAMs: each photo with its map as a semi-transparent heatmap, and an optional box.

    Each map has its photo's (H, W), already placed (``registration.register``); pixel (y, x) of the map colours pixel
    (y, x) of the photo. ``shared_scale`` puts every map on one zmin/zmax (magnitudes comparable across
    models/branches); otherwise each panel has its own scale and colour bar. ``box`` = (x0, y0, x1, y1) in photo
    pixels, one for all panels or one per panel.
    """
    n = len(maps)
    if not (len(images) == n == len(titles)) or n == 0:
        raise ValueError(f"need as many images, maps and titles (got {len(images)}, {n}, {len(titles)})")
    boxes = _per_panel_boxes(box, n)
    ranges = map_range(maps, shared_scale)
    fig = make_subplots(rows=1, cols=n, subplot_titles=list(titles), horizontal_spacing=0.06 if shared_scale else 0.1)
    for i, (img, cam, (lo, hi)) in enumerate(zip(images, maps, ranges, strict=True)):
        img = np.asarray(img)
        cam = np.asarray(cam, dtype=np.float64)
        H, W = img.shape[:2]
        col = i + 1
        fig.add_trace(go.Image(z=img, hoverinfo="skip", name=f"{titles[i]} photo"), row=1, col=col)
        xaxis = fig.layout[f"xaxis{'' if col == 1 else col}"]
        show = (i == n - 1) if shared_scale else True
        cbar = dict(thickness=10, len=0.9, x=xaxis.domain[1] + 0.005, title=dict(text="CAM" if shared_scale else ""))
        fig.add_trace(_heatmap_on_image(
            cam, H, W, colorscale=colorscale, zmin=lo, zmax=hi, zauto=False, opacity=alpha, zsmooth="best",
            showscale=show, colorbar=cbar, name=titles[i],
            hovertemplate="x %{x:.0f}, y %{y:.0f}<br>value %{z:.4g}<extra>" + str(titles[i]) + "</extra>",
        ), row=1, col=col)
        if boxes[i] is not None:
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            fig.add_shape(type="rect", x0=x0 - 0.5, y0=y0 - 0.5, x1=x1 - 0.5, y1=y1 - 0.5, row=1, col=col,
                          line=dict(color="#00FF00", width=2))
        fig.update_xaxes(showticklabels=False, row=1, col=col, range=[-0.5, W - 0.5])
        fig.update_yaxes(showticklabels=False, row=1, col=col, range=[H - 0.5, -0.5], scaleanchor=f"x{col}")
    fig.update_layout(height=height, margin=dict(l=10, r=40, t=40, b=10), showlegend=False)
    return fig


def _per_panel_boxes(box, n: int) -> list:  # noqa: ANN001
    if box is None:
        return [None] * n
    if len(box) == 4 and all(np.isscalar(v) for v in box):
        return [box] * n
    if len(box) != n:
        raise ValueError(f"give one box for all panels or one per panel ({n}), got {len(box)}")
    return list(box)


# ----------------------------------------------------------------------------------------------- branches
def branch_bars(
    stats: Mapping[str, Mapping[str, float]],
    metric: str,
    *,
    title: str | None = None,
    model: str | None = None,
) -> go.Figure:
    """One bar per branch (in the order given, i.e. code order) for ``stats[branch][metric]``.

    Conv branches are coloured along viridis (small → large receptive field), the identity/pool branch grey.
    """
    labels = list(stats)
    missing = [b for b in labels if metric not in stats[b]]
    if missing:
        raise KeyError(f"metric {metric!r} missing for branches {missing}; have {sorted(stats[labels[0]])}")
    n_conv = sum(not _is_identity(b) for b in labels)
    colours, k = [], 0
    for b in labels:
        if _is_identity(b):
            colours.append(IDENTITY_COLOR)
        else:
            colours.append(branch_color(k, n_conv))
            k += 1
    values = [float(stats[b][metric]) for b in labels]
    fig = go.Figure(go.Bar(x=[str(b) for b in labels], y=values, marker=dict(color=colours),
                           name=model or metric, hovertemplate="%{x}: %{y:.4g}<extra></extra>"))
    fig.update_layout(title=dict(text=title or (f"{model}: {metric}" if model else metric)),
                      xaxis_title="branch (code order: 0 = smallest receptive field)", yaxis_title=metric,
                      height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def grouped_branch_bars(
    per_model: Mapping[str, Mapping[str, Mapping[str, float]]], metric: str, *, title: str | None = None,
    low: str | None = None, high: str | None = None,
) -> go.Figure:
    """Bars of ``metric`` per branch, one group per branch and one colour per model (a model and its baseline).

    ``low``/``high`` name the keys of an interval drawn as error bars (e.g. a bootstrap 95% interval).
    """
    fig = go.Figure()
    for model, stats in per_model.items():
        labels = list(stats)
        y = np.array([float(stats[b][metric]) for b in labels])
        err = None
        if low and high:
            lo = np.array([float(stats[b][low]) for b in labels])
            hi = np.array([float(stats[b][high]) for b in labels])
            err = dict(type="data", symmetric=False, array=hi - y, arrayminus=y - lo, thickness=1.5, width=4)
        fig.add_trace(go.Bar(x=[str(b) for b in labels], y=y, name=model, error_y=err,
                             marker=dict(color=model_color(model))))
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05, title=dict(text=title or metric),
                      yaxis_title=metric, xaxis_title="branch (code order)", height=380,
                      margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0))  # not a side column
    fig.update_xaxes(type="category")
    return fig


# ---------------------------------------------------------------------------------------------------- ERF
def erf_heatmap(
    erf_map: np.ndarray,
    *,
    log: bool = False,
    title: str = "effective receptive field",
    decades: float = 4.0,
    colorscale: str = MAP_COLORSCALE,
    centre: tuple[float, float] | None = None,
    rf_size: tuple[float, float] | None = None,
) -> go.Figure:
    """An ERF map (input-sized, non-negative) as a heatmap; ``log`` shows log10 over ``decades`` below the peak.

    ``centre`` = (y, x) input coordinates of the unit's receptive-field centre (``tap_rf_info(...).centre``)
    marks it with a cross; ``rf_size`` = (height, width) adds its theoretical receptive field as a dashed square.
    """
    z = np.asarray(erf_map, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"expected a 2-D ERF map, got shape {z.shape}")
    peak = float(np.nanmax(z)) if np.isfinite(z).any() else 0.0
    if log:
        hi = np.log10(peak) if peak > 0 else 0.0
        lo = hi - decades
        z = np.log10(np.maximum(z, 10.0 ** lo))
        ticks = np.arange(np.ceil(lo), np.floor(hi) + 1)
        cbar = dict(title=dict(text="contribution", side="right"), tickvals=list(ticks), thickness=10,
                    ticktext=[f"1e{int(t)}" for t in ticks])
    else:
        lo, hi = 0.0, (peak if peak > 0 else 1.0)
        cbar = dict(title=dict(text="contribution", side="right"), thickness=10)
    fig = go.Figure(go.Heatmap(z=z, colorscale=colorscale, zmin=lo, zmax=hi, zauto=False, colorbar=cbar,
                               hovertemplate="x %{x}, y %{y}<br>%{z:.3g}<extra></extra>"))
    h, w = z.shape
    if centre is not None:
        cy, cx = (float(v) for v in centre)
        fig.add_trace(go.Scatter(x=[cx], y=[cy], mode="markers", name="unit centre", showlegend=False,
                                 marker=dict(symbol="x-thin", size=12, line=dict(width=2, color="#FFFFFF")),
                                 hovertemplate="unit centre x %{x:.1f}, y %{y:.1f}<extra></extra>"))
        if rf_size is not None:
            sy, sx = (float(v) for v in rf_size)  # pixel centres at integers: the RF spans centre ± (size - 1) / 2
            fig.add_shape(type="rect", x0=cx - sx / 2, x1=cx + sx / 2, y0=cy - sy / 2, y1=cy + sy / 2,
                          line=dict(color="#FFFFFF", width=1, dash="dash"))
    fig.update_yaxes(range=[h - 0.5, -0.5], scaleanchor="x", constrain="domain")
    fig.update_xaxes(range=[-0.5, w - 0.5], constrain="domain")
    fig.update_layout(title=dict(text=title + (" (log10)" if log else "")), height=360,
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def radial_mass_figure(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str = "cumulative ERF mass within radius",
    marks: Sequence[float] = (0.5, 0.9, 0.99),
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Cumulative ERF mass against radius (input pixels), one line per label, with dotted 50/90/99% guides."""
    fig = go.Figure()
    for i, (label, (radii, cum)) in enumerate(curves.items()):
        colour = (colors or {}).get(label) or MODEL_COLORS.get(label) or PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=list(map(float, radii)), y=list(map(float, cum)), mode="lines", name=label,
                                 line=dict(color=colour, width=2)))
    for m in marks:
        fig.add_hline(y=m, line=dict(color=CHANCE_COLOR, dash="dot", width=1),
                      annotation_text=f"{m:.0%}", annotation_position="bottom right")
    fig.update_layout(title=dict(text=title), xaxis_title="radius (input pixels)", yaxis_title="fraction of mass",
                      yaxis=dict(range=[0, 1.02]), height=340, margin=dict(l=10, r=10, t=40, b=10))
    return fig


# ------------------------------------------------------------------------------------------- localisation
def localisation_by_size_figure(
    rows: Sequence[Mapping[str, object]],
    *,
    metric: str = "energy inside the box",
    title: str | None = None,
    baselines: Mapping[str, Mapping[str, float | None]] | None = None,
) -> go.Figure:
    """Mean and 95% interval per object-size bucket per model, beside image-blind baselines.

    Each row: ``model``, ``bucket``, ``mean``, ``lo``, ``hi`` and optionally ``chance`` (uniform map) and ``n``.
    ``baselines``: name -> {bucket: value}, drawn as a tick per bucket (never a line joining buckets). Buckets
    keep their first-seen order.
    """
    if not rows:
        raise ValueError("no rows to plot")
    for key in ("model", "bucket", "mean", "lo", "hi"):
        if any(key not in r for r in rows):
            raise KeyError(f"every row needs {key!r}")
    buckets = list(dict.fromkeys(str(r["bucket"]) for r in rows))
    fig = go.Figure()
    for model in dict.fromkeys(str(r["model"]) for r in rows):
        mine = {str(r["bucket"]): r for r in rows if str(r["model"]) == model}
        xs = [b for b in buckets if b in mine]
        mean = np.array([float(mine[b]["mean"]) for b in xs])
        lo = np.array([float(mine[b]["lo"]) for b in xs])
        hi = np.array([float(mine[b]["hi"]) for b in xs])
        n = [mine[b].get("n", "") for b in xs]
        fig.add_trace(go.Scatter(
            x=xs, y=mean, mode="markers", name=model, marker=dict(color=model_color(model), size=10),
            error_y=dict(type="data", symmetric=False, array=hi - mean, arrayminus=mean - lo, thickness=1.5, width=6),
            customdata=np.stack([lo, hi, np.array(n, dtype=object)], axis=1),
            hovertemplate="%{x}: %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}] n=%{customdata[2]}"
                          f"<extra>{model}</extra>",
        ))
    chance = {}
    for b in buckets:
        vals = [float(r["chance"]) for r in rows if str(r["bucket"]) == b and r.get("chance") is not None]
        if vals:
            chance[b] = float(np.mean(vals))
    marks = dict(baselines or {})
    if chance:
        marks = {"chance (uniform map)": chance, **marks}
    for k, (label, values) in enumerate(marks.items()):
        xs = [b for b in buckets if values.get(b) is not None]
        colour = (CHANCE_COLOR, "#B8860B", "#6A3D9A")[k % 3]
        fig.add_trace(go.Scatter(x=xs, y=[float(values[b]) for b in xs], mode="markers", name=label,
                                 marker=dict(symbol="line-ew", size=26, color=colour, line=dict(width=3,
                                                                                               color=colour))))
    fig.update_layout(title=dict(text=title or f"{metric} by object size (mean, 95% CI)"), scattermode="group",
                      xaxis_title="object size (box area / image area)", yaxis_title=metric, height=380,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=buckets)
    return fig


# ------------------------------------------------------------------------------------------- feature maps
FEATURE_SCALES = ("local", "branch", "global")


def feature_maps_figure(
    channels_maps: Mapping[str, np.ndarray | Sequence[np.ndarray]],
    *,
    scale: str = "local",
    channel_labels: Mapping[str, Sequence[object]] | None = None,
    colorscale: str = MAP_COLORSCALE,
    title: str | None = None,
) -> go.Figure:
    """A grid of feature maps: one row per branch, one column per channel (e.g. the top channels by energy).

    Every map has a colour bar. ``scale``: 'local' = each map stretched over its own range, (v - vmin) / (vmax - vmin)
    with vmin, vmax from ``map_range``, under one 'own min → own max' bar (raw values on hover); 'branch' = one
    range and bar per row; 'global' = one for all. The ranges are always set explicitly on every heatmap.
    """
    if scale not in FEATURE_SCALES:
        raise ValueError(f"scale must be one of {FEATURE_SCALES}, got {scale!r}")
    rows = {str(b): [np.asarray(m, dtype=np.float64) for m in maps] for b, maps in channels_maps.items()}
    if not rows or not any(rows.values()):
        raise ValueError("no feature maps to plot")
    n_rows, n_cols = len(rows), max(len(v) for v in rows.values())
    labels = channel_labels or {}
    sub_titles = []
    for b, maps in rows.items():
        ch = list(labels.get(b, range(len(maps))))
        sub_titles += [f"ch {ch[j]}" if j < len(maps) else "" for j in range(n_cols)]  # the row says the branch
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=sub_titles, horizontal_spacing=0.02,
                        vertical_spacing=0.08 if n_rows > 1 else 0.0)
    all_maps = [m for maps in rows.values() for m in maps]
    global_range = map_range(all_maps, True)[0]
    for r, (b, maps) in enumerate(rows.items(), start=1):
        row_range = map_range(maps, True)[0]
        for c, m in enumerate(maps, start=1):
            z, lo, hi, bar = m, *({"global": global_range, "branch": row_range}.get(scale) or (0.0, 1.0)), {}
            if scale == "local":
                own_lo, own_hi = map_range([m], False)[0]
                z = (m - own_lo) / (own_hi - own_lo)
                bar = dict(tickvals=[0, 0.5, 1], ticktext=["min", "half", "max"],
                           title=dict(text="of each map's own range", side="bottom"))
            show = (scale in ("global", "local") and r == 1 and c == 1) or (scale == "branch" and c == 1)
            yaxis = fig.layout[f"yaxis{'' if (r - 1) * n_cols + c == 1 else (r - 1) * n_cols + c}"]
            if scale == "branch":  # beside its row
                cbar = dict(thickness=10, len=yaxis.domain[1] - yaxis.domain[0], yanchor="middle",
                            y=(yaxis.domain[0] + yaxis.domain[1]) / 2)
            else:  # one bar under the grid: it takes no width from the maps
                cbar = dict(thickness=10, len=0.9, orientation="h", x=0.5, xanchor="center", y=0.0, yanchor="top",
                            ypad=4, **bar)
            fig.add_trace(go.Heatmap(z=z, customdata=m, colorscale=colorscale, zmin=lo, zmax=hi, zauto=False,
                                     showscale=show, colorbar=cbar, name=f"{b} ch {c - 1}",
                                     hovertemplate="x %{x}, y %{y}: %{customdata:.4g}<extra></extra>"), row=r, col=c)
    fig.update_xaxes(showticklabels=False, ticks="", constrain="domain")
    fig.update_yaxes(showticklabels=False, ticks="", autorange="reversed", constrain="domain")
    for i in range(1, n_rows * n_cols + 1):
        fig.layout[f"yaxis{'' if i == 1 else i}"].scaleanchor = f"x{'' if i == 1 else i}"
    for r, b in enumerate(rows, start=1):  # the branch names the row, once, on its left
        fig.update_yaxes(title=dict(text=b, font=dict(size=11)), row=r, col=1)
    fig.update_annotations(font_size=11)
    fig.update_layout(title=dict(text=title or f"feature maps ({scale} colour scale)"),
                      height=max(260, 190 * n_rows + 80) + (0 if scale == "branch" else 70),
                      margin=dict(l=30, r=10, t=60, b=10 if scale == "branch" else 80))
    return fig


# --------------------------------------------------------------------------------------- matplotlib PNG
def cam_panel_png(
    images: Sequence[np.ndarray],
    maps: Sequence[np.ndarray] | Sequence[Sequence[np.ndarray]],
    titles: Sequence[str],
    *,
    row_labels: Sequence[str] | None = None,
    shared_scale: bool = True,
    alpha: float = 0.5,
    cmap: str = "jet",
    box: Sequence[float] | Sequence[Sequence[float] | None] | None = None,
    suptitle: str | None = None,
    dpi: int = 150,
) -> bytes:
    """A publication PNG of side-by-side overlays: one column per model, one row per map kind (block, branches).

    ``maps`` is one map per column, or a list of rows each with one map per column (``None`` leaves a panel
    empty, marked n/a), each at its column's image shape (placed with ``registration.register``). A shared scale gets
    one colour bar; per-map scales get one each. ``box``: one (x0, y0, x1, y1) for all columns or one per column.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    n_cols = len(images)
    if n_cols == 0 or len(titles) != n_cols:
        raise ValueError(f"need one title per image (got {len(titles)} titles, {n_cols} images)")
    grid = [list(r) for r in maps] if maps and isinstance(maps[0], (list, tuple)) else [list(maps)]
    if any(len(r) != n_cols for r in grid):
        raise ValueError(f"every row of maps needs {n_cols} entries")
    boxes = _per_panel_boxes(box, n_cols)
    flat = [m for r in grid for m in r if m is not None]
    shared = map_range(flat, True)[0] if flat else (0.0, 1.0)
    n_rows = len(grid)
    fig = Figure(figsize=(3.0 * n_cols + (0.6 if shared_scale else 0), 3.0 * n_rows + (0.4 if suptitle else 0)),
                 dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(grid):
        for c, cam in enumerate(row):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            img = np.asarray(images[c])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
            if row_labels is not None and c == 0:  # before a possible n/a panel, so every row keeps its label
                ax.set_ylabel(row_labels[r], fontsize=9)
            if cam is None:  # e.g. a ResNet baseline has no branch to show in a branch row
                for spine in ax.spines.values():
                    spine.set_visible(False)
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes, color="#777777")
                continue
            lo, hi = shared if shared_scale else map_range([cam], False)[0]
            ax.imshow(overlay(img, cam, alpha=alpha, cmap=cmap, vmin=lo, vmax=hi))
            if boxes[c] is not None:
                x0, y0, x1, y1 = boxes[c]
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="lime", lw=1.5))
            if not shared_scale:
                fig.colorbar(ScalarMappable(Normalize(lo, hi), cmap), ax=ax, fraction=0.046, pad=0.02)
    if shared_scale:
        fig.colorbar(ScalarMappable(Normalize(*shared), cmap), ax=axes.ravel().tolist(), fraction=0.03, pad=0.02,
                     label="CAM (shared scale)")
    if suptitle:
        fig.suptitle(suptitle)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ exports
def maps_to_npz_bytes(arrays: Mapping[str, object]) -> bytes:
    """Compressed ``.npz`` bytes of named arrays (tensors are moved to CPU); load with ``np.load(io.BytesIO(b))``."""
    out = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"array names must be non-empty strings, got {key!r}")
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        out[key] = np.asarray(value)
    buf = io.BytesIO()
    np.savez_compressed(buf, **out)
    return buf.getvalue()


def rows_to_csv_bytes(rows: Sequence[Mapping[str, object]]) -> bytes:
    """UTF-8 CSV of dict rows; the header is the union of keys in first-seen order, missing cells empty."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    if not fields:
        return b""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _csv_cell(v) for k, v in r.items()})
    return buf.getvalue().encode("utf-8")


def _csv_cell(v: object) -> object:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return " ".join(str(_csv_cell(x)) for x in np.asarray(v).ravel().tolist())
    return v


# ------------------------------------------------------------------------------------ a map on the user's photo
COLORMAPS = ("Jet", "Viridis", "Inferno", "Turbo", "RdBu_r", "Greys")


def png_data_uri(image_uint8: np.ndarray, max_side: int | None = None, *, jpeg_quality: int | None = 85
                 ) -> tuple[str, tuple[int, int]]:
    """An RGB uint8 picture as an image data URI (downscaled so its longer side is at most ``max_side``), and the
    (width, height) it was encoded at: a photo travels to the browser as tens of kB, not as a JSON array.
    JPEG at ``jpeg_quality`` (a photo under a map needs no more); None keeps it lossless (PNG)."""
    import base64

    from PIL import Image

    im = Image.fromarray(np.asarray(image_uint8)[..., :3].astype(np.uint8))
    if max_side and max(im.size) > max_side:
        f = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    fmt = "png" if jpeg_quality is None else "jpeg"
    im.save(buf, format=fmt, **({} if jpeg_quality is None else {"quality": int(jpeg_quality)}))
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii"), im.size


@dataclass(frozen=True)
class PhotoMap:
    """A map to draw on the photo: cell (i, j) of ``grid`` centred at photo point (x0 + dx·j, y0 + dy·i) (pixel
    centres at integers), each cell dx × dy photo pixels, and the panel's title. ``seen``: the part of the photo the
    model input showed; the outer cells are stretched or cut to its edges, as registration extends edge values."""

    grid: np.ndarray
    x0: float
    dx: float
    y0: float
    dy: float
    title: str
    seen: tuple[float, float, float, float] | None = None  # (left, top, right, bottom) the model saw, photo px




def maps_on_photo_figure(
    photo: np.ndarray,
    maps: Sequence[PhotoMap],
    *,
    vmin: float,
    vmax: float,
    with_photo: bool = True,
    photo_title: str = "photo",
    cells: bool = True,
    alpha: float = 0.5,
    colorscale: str = CAM_COLORSCALE,
    box: Sequence[float] | None = None,
    colorbar_title: str = "CAM",
    per_row: int = 4,
    max_side: int = 512,
    panel_height: int = 300,
    photo_uri: tuple[str, tuple[int, int]] | None = None,
) -> go.Figure:
    """Maps on the photo, one panel each (optionally after the untouched photo), on one colour scale with its
    colour bar, values on hover.

    Where each cell lies comes from the caller (receptive-field centres carried through the preprocessing), never
    from stretching a grid over the picture. ``cells`` shows each cell as a flat square; otherwise plotly
    interpolates between the cell centres. ``box`` = (x0, y0, x1, y1) in photo pixels, exclusive ends.
    ``photo_uri``: ``png_data_uri(photo, max_side)`` when the caller already has it (redraws stay cheap). The figure
    is built as one dict (plotly's per-trace subplot helpers cost tens of ms a figure).
    """
    img = np.asarray(photo)
    if img.ndim != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 photo, got {img.shape} {img.dtype}")
    if not maps:
        raise ValueError("no maps to draw")
    if not vmax > vmin:
        raise ValueError(f"need vmin < vmax, got {vmin}, {vmax}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    H, W = img.shape[:2]
    uri, (ew, eh) = photo_uri or png_data_uri(img, max_side)
    panels: list[PhotoMap | None] = ([None] if with_photo else []) + list(maps)
    cols = min(per_row, len(panels))
    rows = -(-len(panels) // cols)
    hgap, vgap = 0.03, (0.12 / rows if rows > 1 else 0.0)
    width, height = (1 - hgap * (cols - 1)) / cols, (1 - vgap * (rows - 1)) / rows
    data: list[dict] = []
    layout: dict = {"height": panel_height * rows + 10, "margin": dict(l=4, r=4, t=28, b=4), "showlegend": False,
                    "annotations": [], "shapes": []}
    for k, p in enumerate(panels):
        r, c = divmod(k, cols)
        ax = "" if k == 0 else str(k + 1)
        x_dom = [c * (width + hgap), c * (width + hgap) + width]
        y_dom = [1 - r * (height + vgap) - height, 1 - r * (height + vgap)]
        # autorange off explicitly: a template that turns it on would stretch the axes to the cells that overhang
        # the photo's edge (a cell is centred on its receptive field, so the outer cells reach past the picture)
        layout[f"xaxis{ax}"] = dict(domain=x_dom, range=[-0.5, W - 0.5], autorange=False, showticklabels=False,
                                    showgrid=False, zeroline=False, constrain="domain", anchor=f"y{ax}")
        layout[f"yaxis{ax}"] = dict(domain=y_dom, range=[H - 0.5, -0.5], autorange=False, showticklabels=False,
                                    showgrid=False, zeroline=False, constrain="domain", anchor=f"x{ax}",
                                    scaleanchor=f"x{ax}")
        title = photo_title if p is None else p.title
        layout["annotations"].append(dict(text=title, x=sum(x_dom) / 2, y=y_dom[1], xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=12)))
        data.append(dict(type="image", source=uri, x0=-0.5 + 0.5 * W / ew, dx=W / ew, y0=-0.5 + 0.5 * H / eh,
                         dy=H / eh, hoverinfo="skip", name="photo", xaxis=f"x{ax}", yaxis=f"y{ax}"))
        if p is not None:
            z = np.asarray(p.grid, dtype=np.float64)
            if z.ndim != 2:
                raise ValueError(f"expected a 2-D map, got shape {z.shape}")
            # cell edges, the outer ones clipped to the photo: a cell centred on its receptive field reaches past
            # the picture's edge, and not every plotly.js build clips a heatmap to a shrunk (constrained) axis
            xe = p.x0 + p.dx * (np.arange(z.shape[1] + 1) - 0.5)
            ye = p.y0 + p.dy * (np.arange(z.shape[0] + 1) - 0.5)
            if p.seen is not None:
                xe[0], ye[0], xe[-1], ye[-1] = p.seen
            xe, ye = np.clip(xe, -0.5, W - 0.5), np.clip(ye, -0.5, H - 0.5)
            data.append(dict(
                type="heatmap", z=z, x=xe, y=ye, zmin=vmin, zmax=vmax, zauto=False,
                colorscale=colorscale, opacity=alpha, zsmooth=False if cells else "best",
                showscale=k == len(panels) - 1, name=p.title, xaxis=f"x{ax}", yaxis=f"y{ax}",
                colorbar=dict(thickness=12, len=min(0.9, 1.2 / rows), title=dict(text=colorbar_title, side="right")),
                hovertemplate="value %{z:.4g}<extra>" + p.title + "</extra>"))
        if box is not None:
            bx0, by0, bx1, by1 = (float(v) for v in box)
            layout["shapes"].append(dict(type="rect", x0=bx0 - 0.5, y0=by0 - 0.5, x1=bx1 - 0.5, y1=by1 - 0.5,
                                         xref=f"x{ax}", yref=f"y{ax}", line=dict(color="#00FF00", width=2)))
    return go.Figure(dict(data=data, layout=layout))
