"""Where a view's image comes from: upload, demo photo, a Tiny-ImageNet-100 val image, or another view's pick.

Every source ends as raw bytes, which key the caches. A bad upload, an index out of range or an upload the
server no longer holds stops the page with a message that says what to do, so no earlier result stays on show.
The last upload is kept in the session, so it survives visits to other pages.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard.services import image_inputs, study_data
from dashboard.state import KEEP, PERSIST, settle
from res2net.data import images

PICKED = "picked_image"  # session-state key: (label, bytes, box | None), set by galleries or tests
UPLOADED = "uploaded_image"  # session-state key: (file name, bytes) of the session's last upload, or None
UPLOAD_LABEL = "Upload an image (PNG, JPEG, WebP, GIF, BMP, TIFF)"


@dataclass
class Source:
    """Image bytes with a label, and the object box when known (x0, y0, x1, y1 in 64 px val coordinates, exclusive
    ends as ``res2net.data.tiny_imagenet`` hands them out)."""

    label: str
    data: bytes
    box: tuple[int, int, int, int] | None = None


def demo_photos() -> dict[str, bytes]:
    """Offline demo photos from the package (name -> encoded bytes)."""
    return {name: path.read_bytes() for name, path in images.demo_images().items()}


def val_choice(key: str) -> Source | None:
    """A val image chosen by class and index, with its box."""
    split = study_data.val_split()
    if split is None:
        st.info("The Tiny-ImageNet-100 data folder is not present; use an upload or a demo photo.")
        return None
    c1, c2 = st.columns([3, 1])
    cls = c1.selectbox("Class", range(len(split.classes)), format_func=lambda k: split.classes[k], key=f"{key}_cls",
                         **PERSIST)
    idx = [i for i in range(len(split)) if int(split.data.labels[i]) == cls]
    k = c2.number_input("Image", value=0, step=1, key=f"{key}_idx", help=f"0 to {len(idx) - 1}", **KEEP)
    if not 0 <= int(k) < len(idx):
        st.error(f"There is no image {int(k)} in class {split.classes[cls]}: its images are numbered 0 to "
                 f"{len(idx) - 1}. Type a number in that range.")
        return None
    item = split[idx[int(k)]]
    box = item["box"] if min(item["box"]) >= 0 else None
    return Source(f"val/{item['file']} ({item['class_name']})", image_inputs.png_bytes(item["image"].numpy()), box)


def pick_image(key: str) -> Source | None:
    """The source widgets; returns the chosen image's bytes (or None when nothing is chosen yet)."""
    options = ["Demo photo", "Upload", "Tiny-ImageNet-100 val"]
    picked = st.session_state.get(PICKED)
    if picked is not None:
        options.insert(0, "Picked image")
        if st.session_state.get(f"{key}_picked_seen") != picked[0]:  # a new pick opens in every view once
            st.session_state[f"{key}_picked_seen"] = picked[0]
            st.session_state[f"{key}_source"] = "Picked image"
    settle(f"{key}_source", options, options[0])
    kind = st.radio("Image", options, horizontal=True, key=f"{key}_source", **KEEP)
    if kind == "Picked image":
        label, data, box = picked
        return Source(label, data, box)
    if kind == "Upload":
        return uploaded(key)
    if kind == "Tiny-ImageNet-100 val":
        return val_choice(key)
    photos = demo_photos()
    if not photos:
        st.info("No demo photos are available in this installation; upload an image instead.")
        return None
    settle(f"{key}_demo", list(photos), next(iter(photos)))
    name = st.selectbox("Demo photo", list(photos), key=f"{key}_demo", **KEEP)
    return Source(name, photos[name])


def _keep_upload(widget_key: str) -> None:
    """The uploader changed (a new file, or the file removed): remember it for the session, or forget it."""
    up = st.session_state.get(widget_key)
    st.session_state[UPLOADED] = None if up is None else (up.name, up.getvalue())


def uploaded(key: str) -> Source | None:
    """The uploader; its file, or this session's earlier upload when the page was left and opened again.

    Every file reaches our own checks (no type filter in the browser), so a rejected file gets its specific
    message and clears the results instead of leaving the previous file's on the page.
    """
    widget = f"{key}_upload"
    up = st.file_uploader(UPLOAD_LABEL, key=widget, on_change=_keep_upload, args=(widget,),
                          help="Any file can be chosen: one that is not a usable image is refused with the reason.")
    if up is not None:
        return Source(up.name, up.getvalue())
    kept = st.session_state.get(UPLOADED)
    if kept is not None:
        st.caption(f"Showing **{kept[0]}**, uploaded earlier in this session; upload another file to replace it.")
        return Source(*kept)
    st.info("Upload an image to analyse it. If the box above still lists a file, the server has restarted since "
            "and no longer holds it: upload the file again.")
    return None


def validated(source: Source | None) -> images.LoadedImage | None:
    """Decode ``source``; a bad image shows its specific message and stops the page (no traceback)."""
    if source is None:
        return None
    try:
        loaded = image_inputs.decode_image(source.data)
    except images.ImageError as exc:
        st.error(f"**{source.label}** cannot be used: {exc.message.strip().rstrip('.')}. Choose another file; the "
                 "results of the previous image are no longer shown.")
        if exc.detail:
            with st.expander("Details"):
                st.code(exc.detail, language="text")
        st.stop()
    for w in loaded.warnings:
        st.warning(w)
    return loaded
