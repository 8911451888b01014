"""Customer lookup: every score, band, flag and reason of one customer, with their alerts."""

from __future__ import annotations

import math

import streamlit as st

from finintel.dashboard import data, ui

run_dir, summary = ui.open_run()

st.title("Customer lookup")
suggestions = [row["customer_id"] for row in summary["anomalies"].get("review_queue") or []]
suggestions += [row["customer_id"] for row in summary["risk"].get("top_customers") or []]
default = str(suggestions[0]) if suggestions else ""
customer_id = st.text_input("Customer id", value=default, key="customer_id").strip()
if not customer_id:
    ui.stop("enter a customer id")

record = data.customer_record(run_dir, customer_id)
if record is None:
    st.warning(f"customer {customer_id!r} is not in this run")
    st.stop()

st.subheader(f"Customer {record['customer_id']}")
risk_off = data.risk_off_note(summary)
cols = st.columns(2 if risk_off else 4)
if not risk_off:
    cols[0].metric("Risk score", ui.score(record["risk_score"]))
    cols[1].metric("Risk band", str(record["risk_band"]))
cols[-2].metric("Anomaly score", ui.score(record["anomaly_score"]))
cols[-1].metric("Segment", f"{record['segment_name']} ({record['segment_id']})")
pd_value = record.get("probability_of_default")
if pd_value is not None and not (isinstance(pd_value, float) and math.isnan(pd_value)):
    st.metric("Probability of default", ui.share(pd_value))

if risk_off:
    st.caption(risk_off)
else:
    st.markdown(f"**Risk action:** {record.get('risk_action') or '-'}")
    st.markdown("**Why this risk score**")
    ui.show_reasons(record.get("risk_reasons"), "no factor stands out")
flagged = bool(record.get("is_anomaly"))
st.markdown(f"**Anomaly:** {'flagged for review' if flagged else 'not flagged'}")
ui.show_reasons(record.get("anomaly_reasons"), "no unusual behaviour stands out")

st.subheader("Transaction alerts")
ui.show_customer_alerts(run_dir, customer_id)
