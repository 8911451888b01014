"""Anomaly review queue: the flagged customers by score, with each one's transaction alerts."""

from __future__ import annotations

import streamlit as st

from finintel.dashboard import data, ui

run_dir, summary = ui.open_run()
anomalies = summary["anomalies"]

st.title("Anomaly review")
cols = st.columns(4)
cols[0].metric("Flagged customers", ui.count(anomalies.get("flagged")))
cols[1].metric("Threshold (anomaly score)", ui.score(anomalies.get("threshold")))
cols[2].metric("Expected rate", ui.share(anomalies.get("expected_rate")))
alerts_summary = anomalies.get("transaction_alerts") or {}
cols[3].metric("Transaction alerts", ui.count(alerts_summary.get("count")))
if anomalies.get("rule"):
    st.caption(
        f"Detectors combined by {anomalies['rule']}: {anomalies.get('rule_why') or ''} "
        f"Threshold from {anomalies.get('threshold_source') or '-'}."
    )

queue = anomalies.get("review_queue") or []
st.subheader("Review queue")
st.caption(f"The {ui.count(len(queue))} highest-scoring flagged customers; click a column to sort.")
if data.risk_off_note(summary):  # no risk score: no risk band column
    ui.table([{k: v for k, v in row.items() if k != "risk_band"} for row in queue])
else:
    ui.table(queue)

if queue:
    ids = [str(row["customer_id"]) for row in queue]
    picked = st.selectbox("Review customer", ids, key="review_customer")
    row = queue[ids.index(picked)]
    band = row.get("risk_band")
    st.markdown(
        f"**{picked}** · anomaly score {ui.score(row['anomaly_score'])} · "
        f"{row.get('segment_name')}" + (f" · risk band {band}" if band is not None else "")
    )
    ui.show_reasons(row.get("anomaly_reasons"), "no reason recorded")
    st.markdown("**Transaction alerts of this customer**")
    ui.show_customer_alerts(run_dir, picked)

top = alerts_summary.get("top") or []
if top:
    with st.expander(f"Top {len(top)} transaction alerts of the run"):
        ui.table(top)
ui.plot(run_dir, summary, "anomaly_distribution", "Anomaly scores of all customers")
detectors = anomalies.get("detectors")
if detectors:
    with st.expander("Detectors"):
        st.json(detectors)
