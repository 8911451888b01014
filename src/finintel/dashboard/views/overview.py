"""Overview page: the run's key numbers, data quality and the decisions at a glance."""

from __future__ import annotations

import streamlit as st

from finintel.dashboard import data, ui

run_dir, summary = ui.open_run()
overview = summary["overview"]

st.title("Overview")
st.caption(
    f"Run {run_dir.name} · data as of {overview.get('as_of') or '-'} · seed {overview.get('seed')} "
    f"· finintel {overview.get('finintel_version')}"
)

first = st.columns(3)
first[0].metric("Customers", ui.count(overview["customers"]))
first[1].metric("Transactions", ui.count(overview.get("transactions")))
first[2].metric("Segments", ui.count(overview.get("segments")))
second = st.columns(3)
second[0].metric("Anomalous customers", ui.count(overview.get("anomalies")))
second[1].metric("Transaction alerts", ui.count(overview.get("transaction_alerts")))
second[2].metric("Risk score", str(overview.get("risk_mode") or "-"))
risk_off = data.risk_off_note(summary)
if risk_off:
    st.info(risk_off)

st.subheader("Segments")
segment_rows = []
for item in summary["segments"]["items"]:
    row = {
        "segment": item["segment_name"],
        "customers": ui.count(item["size"]),
        "share": ui.share(item["share"]),
        "mean risk score": ui.score(item.get("mean_risk_score")),
        "anomalous customers": ui.count(item.get("anomalies")),
    }
    if risk_off:
        del row["mean risk score"]
    segment_rows.append(row)
ui.static_table(segment_rows)

if not risk_off:
    st.subheader("Risk bands")
    ui.static_table(
        [
            {
                "band": band["name"],
                "customers": ui.count(band["customers"]),
                "share": ui.share(band["share"]),
                "action": band.get("action") or "-",
            }
            for band in summary["risk"]["bands"]
        ]
    )

quality = summary.get("data_quality") or {}
st.subheader("Data quality")
st.write(
    f"{ui.count(quality.get('rows_in'))} rows read, {ui.count(quality.get('clean'))} clean, "
    f"{ui.count(quality.get('quarantined'))} quarantined."
)
if quality.get("tables"):
    ui.table(quality["tables"])
if quality.get("by_rule"):
    with st.expander("Quarantined rows by rule"):
        ui.table(quality["by_rule"])

created_from = overview.get("created_from") or []
if created_from:
    with st.expander("Input files"):
        ui.table(created_from)
