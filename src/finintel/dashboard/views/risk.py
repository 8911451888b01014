"""Risk view: bands with their actions, the score distribution, the supervised model choice
(or the fallback to the composite), what drives the score, and the score per protected group."""

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
fallback = data.fallback_notice(risk)
if mode == "supervised":
    described = f" ({risk['model_description']})" if risk.get("model_description") else ""
    st.caption(
        f"Supervised {risk.get('model') or 'scorecard'}{described} fitted on recorded defaults."
    )
elif fallback:
    st.caption("Unsupervised score: a weighted composite of risk factors.")
    st.warning(fallback)
else:
    st.caption("Unsupervised score: a weighted composite of risk factors (no default labels).")

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

candidates = data.candidate_rows(risk)
if candidates:
    choice = risk.get("model_choice")
    st.subheader("Model choice")
    delivered = choice["delivered"] if choice else None
    st.caption(
        f"Delivered: {delivered}. {choice['reason'] or ''}"
        if choice and delivered
        else "No supervised model delivered: none passed the gate (see each one's verdict)."
    )
    ui.table(candidates)

if risk.get("scorecard"):
    st.subheader("Scorecard")
    st.caption("Points each bin of a variable adds to the score (WoE and IV as fitted).")
    ui.table(risk["scorecard"], column_order=SCORECARD_COLUMNS)
else:
    variables = data.model_variable_rows(risk)
    if variables:
        st.subheader(f"Variables of the {risk.get('model') or 'model'}")
        listed = risk.get("model_variables")
        measure = listed["measure"] if listed else None
        st.caption(
            "The variables the delivered model reads"
            + (f", strongest first by its {measure}." if measure else ".")
        )
        ui.table(variables)
dropped = data.dropped_variable_rows(risk)
if dropped:
    with st.expander(f"Variables the {risk.get('model') or 'model'} dropped ({len(dropped)})"):
        ui.table(dropped)
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

protected = risk.get("protected")
if protected:
    st.subheader("Protected groups")
    st.caption(protected.get("note") or "")
    for attribute in protected.get("columns") or []:
        where = "clean customers" if attribute.get("source") == "customers" else "features"
        st.markdown(f"**{attribute.get('attribute')}** · {where} · {attribute.get('grouping')}")
        ui.table(data.protected_group_rows(attribute))

top = risk.get("top_customers") or []
if top:
    st.subheader(f"Top {len(top)} customers by risk score")
    ui.table(top)
