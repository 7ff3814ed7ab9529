"""Serving many sessions from one process: the byte-bounded shared cache, the admission gate for heavy work,
and per-session weights files. No Streamlit page code here."""
