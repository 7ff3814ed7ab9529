"""Where a view's image comes from: upload, demo photo, a Tiny-ImageNet-100 val image, or another view's pick.

Every source ends as raw bytes, which key the caches; a bad upload stops the page with its specific message.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard import cached
from dashboard.state import UPLOAD_TYPES, user_message
from res2net import images

PICKED = "picked_image"  # session-state key: (label, bytes, box | None), set by galleries or tests


@dataclass
class Source:
    """Image bytes with a label, and the object box when known (x0, y0, x1, y1 in 64 px val coordinates, exclusive
    ends as ``res2net.data`` hands them out)."""

    label: str
    data: bytes
    box: tuple[int, int, int, int] | None = None


def demo_photos() -> dict[str, bytes]:
    """Offline demo photos from the package (name -> encoded bytes)."""
    return {name: path.read_bytes() for name, path in images.demo_images().items()}


def val_choice(key: str) -> Source | None:
    """A val image chosen by class and index, with its box."""
    split = cached.val_split()
    if split is None:
        st.info("The Tiny-ImageNet-100 data folder is not present; use an upload or a demo photo.")
        return None
    c1, c2 = st.columns([3, 1])
    cls = c1.selectbox("Class", range(len(split.classes)), format_func=lambda k: split.classes[k], key=f"{key}_cls")
    idx = [i for i in range(len(split)) if int(split.data.labels[i]) == cls]
    k = c2.number_input("Image", 0, len(idx) - 1, 0, key=f"{key}_idx")
    item = split[idx[int(k)]]
    box = item["box"] if min(item["box"]) >= 0 else None
    return Source(f"val/{item['file']} ({item['class_name']})", cached.png_bytes(item["image"].numpy()), box)


def pick_image(key: str) -> Source | None:
    """The source widgets; returns the chosen image's bytes (or None when nothing is chosen yet)."""
    options = ["Demo photo", "Upload", "Tiny-ImageNet-100 val"]
    picked = st.session_state.get(PICKED)
    if picked is not None:
        options.insert(0, "Picked image")
    kind = st.radio("Image", options, horizontal=True, key=f"{key}_source")
    if kind == "Picked image":
        label, data, box = picked
        return Source(label, data, box)
    if kind == "Upload":
        up = st.file_uploader("Upload an image (PNG, JPEG, WebP, BMP, TIFF)", type=UPLOAD_TYPES, key=f"{key}_upload")
        return None if up is None else Source(up.name, up.getvalue())
    if kind == "Tiny-ImageNet-100 val":
        return val_choice(key)
    photos = demo_photos()
    if not photos:
        st.info("No demo photos are available in this installation; upload an image instead.")
        return None
    name = st.selectbox("Demo photo", list(photos), key=f"{key}_demo")
    return Source(name, photos[name])


def validated(source: Source | None):  # noqa: ANN201  (LoadedImage | None)
    """Decode ``source``; a bad image shows its specific message and stops the page (no traceback)."""
    if source is None:
        return None
    try:
        loaded = cached.decode_image(source.data)
    except images.ImageError as exc:
        st.error(f"**{source.label}** cannot be used: {user_message(exc)}")
        st.stop()
    for w in loaded.warnings:
        st.warning(w)
    return loaded
