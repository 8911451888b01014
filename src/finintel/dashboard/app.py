"""The Streamlit script of `finintel dashboard`: navigation over the pages in `views/`.

The Risk page is left out for a run without a risk score (`[risk] enabled = false`, or no risk
factor applies); the other pages then show no risk values and say why once.

Run it through `finintel dashboard RUN` or `finintel.dashboard.launch`; by hand:

Example:
    $ python -m streamlit run src/finintel/dashboard/app.py -- --run-dir out/run
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from finintel.dashboard.data import shown_run_has_risk

VIEWS = Path(__file__).parent / "views"

st.set_page_config(page_title="finintel dashboard", layout="wide")

pages = [
    st.Page(VIEWS / "overview.py", title="Overview", url_path="overview", default=True),
    st.Page(VIEWS / "segments.py", title="Segment explorer", url_path="segments"),
    st.Page(VIEWS / "customer.py", title="Customer lookup", url_path="customer"),
    st.Page(VIEWS / "anomalies.py", title="Anomaly review", url_path="anomalies"),
]
if shown_run_has_risk():
    pages.append(st.Page(VIEWS / "risk.py", title="Risk", url_path="risk"))
navigation = st.navigation(pages)
navigation.run()
