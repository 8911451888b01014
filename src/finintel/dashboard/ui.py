"""Small presentation helpers shared by the dashboard pages (numbers written one way).

Example:
    >>> count(3000), share(0.25), score(71.234)
    ('3,000', '25.0%', '71.23')
    >>> reasons("high debt-to-income; overdrawn 30 days")
    ['high debt-to-income', 'overdrawn 30 days']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import streamlit as st

from finintel.dashboard.data import current_run_dir, customer_alerts, run_summary
from finintel.errors import FinintelError

if TYPE_CHECKING:
    from finintel.report.shapes import Summary


def count(value: Any) -> str:
    """A whole number with thousands separators ("-" when missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{int(value):,}"


def share(value: Any) -> str:
    """A fraction written as a percentage with one decimal ("-" when missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.1%}"


def score(value: Any) -> str:
    """A score with two decimals, as in the summary ("-" when missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.2f}"


def reasons(text: Any) -> list[str]:
    """The separate reasons of a "; "-joined reason string (none when empty)."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    return [part.strip() for part in str(text).split(";") if part.strip()]


def show_reasons(text: Any, empty: str) -> None:
    """Reasons as a bulleted list, or `empty` in grey when there are none."""
    items = reasons(text)
    if items:
        st.markdown("\n".join(f"- {item}" for item in items))
    else:
        st.caption(empty)


def table(rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> None:
    """A sortable, scrollable table without the row index."""
    st.dataframe(rows, hide_index=True, width="stretch", **kwargs)


def static_table(rows: Sequence[Mapping[str, Any]]) -> None:
    """A small table rendered as plain HTML (readable by screen readers and text search)."""
    st.table(rows, hide_index=True)


def plot(run_dir: Path, summary: Summary, name: str, caption: str) -> None:
    """The report's plot `name` when the report has drawn it for this run (else nothing)."""
    relative = (summary.get("plots") or {}).get(name)
    if relative and (run_dir / relative).is_file():
        st.image(str(run_dir / relative), caption=caption)


def open_run() -> tuple[Path, Summary]:
    """The shown run and its summary; stops the page with the error when there is none."""
    try:
        run_dir = current_run_dir()
        return run_dir, run_summary(run_dir)
    except FinintelError as exc:
        stop(str(exc))
    except ImportError as exc:
        stop(f"the run summary needs the report module: {exc}")


def stop(message: str) -> NoReturn:
    """Show `message` as an error and end this page's run."""
    st.error(message)
    st.stop()
    raise AssertionError("st.stop() returned")  # pragma: no cover


def show_customer_alerts(run_dir: Path, customer_id: str) -> None:
    """The transaction alerts of one customer, or a note that there are none."""
    alerts = customer_alerts(run_dir, customer_id)
    if not alerts:
        st.caption("no transaction of this customer raised an alert")
    else:
        table(alerts)
