"""How much a reader must read on the Claims page: the words shown outside folds (expanders, popovers) and tables,
counted as a reader counts them (link targets, hover titles and icon codes are not words on the screen)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
SHIPPED = REPO / "assets" / "results" / "tiny_imagenet_100.json"
LIMIT = 450

TEXT_ELEMENTS = {"title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"}
FOLDS = {"expander", "popover", "tab"}  # a tab's words count once the tab is chosen; none on this page
TABLES = {"table", "dataframe", "arrow_data_frame"}
LINK = re.compile(r"\]\([^\s()]*(?:\s+\"[^\"]*\")?\)")  # ](target "hover title") of a markdown link


def visible_words(text: str) -> list[str]:
    """The words a reader sees in a markdown string."""
    text = re.sub(r":material/[a-z_0-9]+:", " ", text)
    text = LINK.sub("] ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return [w for w in text.split() if re.search(r"[^\W_]", w)]


def _texts(node: object, out: list[str]) -> None:
    kind = str(getattr(node, "type", "")).lower()
    if kind in FOLDS or kind in TABLES:
        return
    if kind in TEXT_ELEMENTS:
        out.append(str(node.value))
    elif kind == "metric":
        out += [str(node.label), str(node.value)]
    for child in getattr(node, "children", {}).values():
        _texts(child, out)


def unfolded_words(at: AppTest) -> list[str]:
    """Every word of the main pane outside expanders, popovers and tables (the sidebar is not counted)."""
    texts: list[str] = []
    _texts(at.main, texts)
    return [w for t in texts for w in visible_words(t)]


def test_the_counter_counts_only_unfolded_text_outside_tables() -> None:
    def page() -> None:
        import streamlit as st

        st.title("Two words")
        st.markdown("**Three** [linked](#glossary \"a hover title (not shown) of nine words\") words.")
        st.caption(":material/help: four words in caption")
        with st.expander("A fold's label"):
            st.markdown(" ".join(["folded"] * 500))
        st.table([{"column": " ".join(["tabled"] * 300)}])
        with st.popover("Pop"):
            st.markdown(" ".join(["popped"] * 100))
        st.info("an info box here")
        st.metric("metric label", 3)

    at = AppTest.from_function(page).run()
    words = unfolded_words(at)
    assert words == ["Two", "words", "**Three**", "[linked]", "words.", "four", "words", "in", "caption", "an",
                     "info", "box", "here", "metric", "label", "3"]
    assert len(words) == 16


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped results file")
def test_claims_shows_at_most_450_words_outside_folds_and_tables() -> None:
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["device"] = "cpu"
    at.run()
    at.switch_page("views/claims.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.get("plotly_chart"), "the page did not draw"
    words = unfolded_words(at)
    assert 50 < len(words) <= LIMIT, (len(words), " ".join(words))
