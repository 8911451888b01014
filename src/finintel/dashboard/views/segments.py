"""Segment explorer: one segment's profile, playbook and members, how k was chosen, which
columns the segmenter kept, and a warning when the segments are not a stable structure."""

from __future__ import annotations

import streamlit as st

from finintel.dashboard import data, ui
from finintel.models.explain import feature_label, format_value

run_dir, summary = ui.open_run()
segments = summary["segments"]
items = segments["items"]

st.title("Segment explorer")
if not items:
    ui.stop("this run has no segments")
unstable = data.segments_warning(summary)
if unstable:
    st.warning(f"**These segments are not a stable structure.** {unstable}")

by_label = {f"{item['segment_name']} (segment {item['segment_id']})": item for item in items}
chosen = by_label[st.selectbox("Segment", list(by_label), key="segment")]

risk_off = data.risk_off_note(summary)
cols = st.columns(3 if risk_off else 4)
cols[0].metric("Customers", ui.count(chosen["size"]))
cols[1].metric("Share of customers", ui.share(chosen["share"]))
cols[-1].metric("Anomalous customers", ui.count(chosen.get("anomalies")))
if not risk_off:
    cols[2].metric("Mean risk score", ui.score(chosen.get("mean_risk_score")))

if chosen.get("description"):
    st.write(chosen["description"])
if chosen.get("traits"):
    st.caption("Traits: " + "; ".join(str(trait) for trait in chosen["traits"]))
if chosen.get("actions"):
    st.markdown("**Actions**\n\n" + "\n".join(f"- {action}" for action in chosen["actions"]))

profile = chosen.get("profile") or {}
if profile:
    st.subheader("Profile")
    st.caption("Typical value in the segment, and how far it sits from all customers (z).")
    ui.table(
        [
            {
                "feature": feature_label(name),
                "column": name,
                "value": format_value(name, entry.get("value")),
                "z": entry.get("z"),
            }
            for name, entry in profile.items()
        ]
    )

st.subheader("Members")
members = data.segment_members(run_dir, int(chosen["segment_id"]))
st.caption(
    f"{ui.count(len(members))} of {ui.count(chosen['size'])} customers, "
    f"{'most unusual' if risk_off else 'riskiest'} first "
    f"(at most {ui.count(data.MEMBERS_LIMIT)} shown; look one up on the Customer lookup page)."
)
ui.table(members)

st.subheader("How many segments")
shown = f"{segments.get('chosen_k')} segments" + (", not stable" if unstable else "")
st.write(
    f"{shown}. {segments.get('reason') or ''} "
    f"Silhouette {ui.score(segments.get('silhouette'))}, "
    f"stability {ui.score(segments.get('stability'))}."
)
if not unstable and segments.get("note"):
    st.caption(str(segments["note"]))
ui.plot(run_dir, summary, "segments_pca", "Customers in the model's space, by segment")
with st.expander("Evidence for each k"):
    if segments.get("rule"):
        st.caption(segments["rule"])
    ui.table(segments.get("k_table") or [])

columns = data.segment_column_rows(segments)
if columns:
    kept = sum(row["used"] == "kept" for row in columns)
    with st.expander(f"Columns used ({kept} of {len(columns)} kept)"):
        selection = segments.get("feature_selection")
        if selection and selection.get("rule"):
            st.caption(str(selection["rule"]))
        ui.table(columns)
