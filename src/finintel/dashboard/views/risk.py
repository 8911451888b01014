"""Risk view: bands with their actions, the score distribution, what drives the score."""

from __future__ import annotations

import streamlit as st

from finintel.dashboard import data, ui

SCORECARD_COLUMNS = ("label", "variable", "bin", "points", "woe", "iv")

run_dir, summary = ui.open_run()
risk = summary["risk"]

st.title("Risk")
risk_off = data.risk_off_note(summary)
if risk_off:  # the page is not in the navigation then, but an old link may lead here
    st.info(risk_off)
    st.stop()
mode = risk.get("mode")
st.caption(
    "Supervised scorecard fitted on recorded defaults."
    if mode == "supervised"
    else "Unsupervised score: a weighted composite of risk factors (no default labels)."
)

st.subheader("Bands")
ui.table(
    [
        {
            "band": band["name"],
            "from score": band.get("min_score"),
            "customers": band["customers"],
            "share": ui.share(band["share"]),
            "action": band.get("action"),
        }
        for band in risk["bands"]
    ]
)

st.subheader("Distribution")
st.caption(f"Customers per {data.RISK_BIN_WIDTH}-point risk-score bin.")
st.bar_chart(data.risk_histogram(run_dir), x="risk score", y="customers")

quantiles = risk.get("score_quantiles") or {}
if quantiles:
    st.caption(
        f"Mean score {ui.score(risk.get('mean_score'))}; "
        + ", ".join(f"{name} {ui.score(value)}" for name, value in quantiles.items())
    )
ui.plot(run_dir, summary, "risk_by_segment", "Risk score by segment")

if risk.get("scorecard"):
    st.subheader("Scorecard")
    st.caption("Points each bin of a variable adds to the score (WoE and IV as fitted).")
    ui.table(risk["scorecard"], column_order=SCORECARD_COLUMNS)
derived = data.derived_variable_rows(risk)
if derived:
    st.subheader("Candidate variables computed from several columns")
    st.caption(
        "Ratios and aggregates of the risk factor library and of the declared roles, offered "
        "to the scorecard besides every feature column."
    )
    ui.table(derived)
factors = data.factor_rows(risk)
if factors:
    st.subheader("Factors")
    st.caption(
        "What the score combines: each factor's source (built-in, settings or role), the role "
        "it stands for, the columns it reads, its weight and typical values."
    )
    ui.table(factors)
roles = data.role_rows(risk)
if roles:
    st.subheader("Columns by role")
    st.caption("Declared in [risk.roles], or a canonical column standing in for a ratio part.")
    ui.table(roles)

unavailable = data.unavailable_factor_rows(risk)
if unavailable:
    with st.expander(f"Factors left out ({len(unavailable)}) and what would enable them"):
        ui.table(unavailable)

cv = risk.get("cv")
if cv:
    st.subheader("Cross-validation")
    numbers = {
        key: value
        for key, value in cv.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    cols = st.columns(max(1, min(4, len(numbers))))
    for index, (key, value) in enumerate(numbers.items()):
        shown = ui.count(value) if isinstance(value, int) else f"{value:.3f}"
        cols[index % len(cols)].metric(key.replace("_", " "), shown)
    others = {key: value for key, value in cv.items() if key not in numbers}
    if others:
        with st.expander("Cross-validation details"):
            st.json(others)
labels = risk.get("labels")
if labels:
    st.caption(
        f"{ui.count(labels.get('labelled'))} customers with a recorded outcome, "
        f"{ui.count(labels.get('bads'))} defaults ({ui.share(labels.get('bad_rate'))})."
    )

ui.plot(run_dir, summary, "risk_roc", "ROC curve against recorded defaults")
ui.plot(run_dir, summary, "risk_calibration", "Predicted and observed default rates")

top = risk.get("top_customers") or []
if top:
    st.subheader(f"Top {len(top)} customers by risk score")
    ui.table(top)
