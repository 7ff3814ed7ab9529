"""The Streamlit dashboard of res2scope: ``streamlit run dashboard/app.py``. All analysis lives in ``res2net``."""
