"""The report's plots, drawn with matplotlib's object API and saved as PNG under `RUN/plots/`.

Figures are created as `matplotlib.figure.Figure` objects rendered by the Agg canvas, never
through pyplot's global figure registry, and no `rcParams` are changed: drawing a report leaves
no global state behind (safe inside the dashboard) and every figure is released when its
function returns. Each persona keeps one colour in every plot (`segment_colors`, keyed by
segment id in id order); risk bands go from green (lowest) to red (highest).

What is drawn (`draw_plots` returns `{name: "plots/<name>.png"}` for the plots it drew):

| name | shows |
|---|---|
| k_selection | inertia (elbow marked), silhouette, Calinski-Harabasz, Davies-Bouldin and |
| | stability with its confidence band per k; the chosen k and the reason |
| segments_pca | customers in two principal components of the segmenter's space, by persona |
| segment_profile | each segmentation feature's centroid z per segment (heat map) |
| segment_sizes | customers per segment |
| risk_distribution | risk score histogram with the band cut points |
| risk_by_segment | risk score distribution per segment |
| risk_roc, risk_calibration | in-sample ROC and calibration curves (only when labels exist) |
| anomaly_distribution | anomaly score histogram with the threshold |
| anomaly_top | the highest-scoring flagged customers |
| data_quality_files | clean vs quarantined rows per table |
| data_quality_rules | quarantined rows per rule |

Every figure is drawn from the run summary alone (`summarize`: its sections and `plot_data`):
this module reads no run file, loads no model and imports no scikit-learn. Plots the data
cannot support are skipped; `summary["plots_skipped"]` says why.

Example:
    >>> from finintel.report.summary import load_summary
    >>> run = Path("out/run")  # doctest: +SKIP
    >>> drawn, skipped = draw_plots(run, load_summary(run))  # doctest: +SKIP
    >>> drawn["k_selection"]  # doctest: +SKIP
    'plots/k_selection.png'
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from finintel.errors import PlotUnavailableError
from finintel.report.shapes import KRow, PlotData, RiskBand, Summary
from finintel.report.summary import PLOT_NAMES, PLOTS_DIR, profile_features
from finintel.writers import atomic_path

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[str], None]
_T = TypeVar("_T")
_KMetric = Literal["inertia", "silhouette", "calinski_harabasz", "davies_bouldin", "stability"]

TOP_ANOMALIES = 20
DPI = 110
TITLE_SIZE = 13
TITLE_WRAP = 62  # characters a title line holds in the narrowest plot
LABEL_WRAP = 30  # characters a segment label line holds
LABEL_SIZE = 10
INK = "#1f2933"
GRID = "#d9dee3"
MUTED = "#7b8794"
ACCENT = "#c0392b"


def segment_colors(segment_ids: Sequence[int]) -> dict[int, str]:
    """One colour per segment id, assigned in id order (tab10, tab20 beyond ten segments)."""
    ids = sorted({int(i) for i in segment_ids})
    cmap = colormaps["tab10" if len(ids) <= 10 else "tab20"]
    return {sid: to_hex(cmap(j % cmap.N)) for j, sid in enumerate(ids)}


def band_colors(names: Sequence[str]) -> dict[str, str]:
    """Risk bands from lowest to highest: green through yellow to red."""
    cmap = colormaps["RdYlGn_r"]
    n = len(names)
    return {name: to_hex(cmap(0.1 + 0.8 * j / max(n - 1, 1))) for j, name in enumerate(names)}


def draw_plots(
    run_dir: Path, summary: Summary, progress: Progress | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Draw every plot the run supports into `run_dir/plots/`.

    Returns `(drawn, skipped)`: drawn plot names with their path relative to `run_dir`, and
    plots skipped while drawing (beyond `summary["plots_skipped"]`) with the reason. A stale
    PNG of a plot that is not drawn this time is removed.
    """
    run_dir = Path(run_dir)
    data = _View(summary)
    planned_skips = summary["plots_skipped"]
    drawn: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in PLOT_NAMES:
        target = run_dir / PLOTS_DIR / f"{name}.png"
        if name in planned_skips:
            target.unlink(missing_ok=True)
            continue
        if progress:
            progress(f"drawing {name.replace('_', ' ')}")
        try:
            figure = _DRAWERS[name](data)
        except PlotUnavailableError as exc:
            skipped[name] = str(exc)
            target.unlink(missing_ok=True)
            continue
        _save(figure, target)
        drawn[name] = f"{PLOTS_DIR}/{name}.png"
    return drawn, skipped


# ---------------------------------------------------------------------- data


class _View:
    """The summary with the segment colours and labels every plot uses."""

    def __init__(self, summary: Summary) -> None:
        self.summary = summary
        items = summary["segments"]["items"]
        self.segment_ids = [int(i["segment_id"]) for i in items]
        self.segment_names = {int(i["segment_id"]): str(i["segment_name"]) for i in items}
        self.colors = segment_colors(self.segment_ids)

    @property
    def plot_data(self) -> PlotData:
        """The summary's plot data (empty for a summary written before it had any)."""
        return self.summary.get("plot_data") or {}

    def label(self, segment_id: int) -> str:
        """The segment's id and name, wrapped so long names do not crowd the plot."""
        text = f"{segment_id} {self.segment_names.get(segment_id, '')}".strip()
        return textwrap.fill(text, LABEL_WRAP)


def _need(value: _T | None) -> _T:
    """A plot's data from the summary, or the reason it is missing."""
    if value is None:
        raise PlotUnavailableError(
            "the summary holds no data for this plot (rebuild it with finintel report)"
        )
    return value


# ---------------------------------------------------------------------- drawing helpers


def _figure(width: float = 9.0, height: float = 5.0) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _style(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    """Title (wrapped, so it is never cut at the figure's edge), labels, grid and spines."""
    ax.set_title(textwrap.fill(title, TITLE_WRAP), fontsize=TITLE_SIZE - 1, color=INK, loc="left")
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE, color=INK)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE, color=INK)
    ax.tick_params(labelsize=LABEL_SIZE - 1, colors=INK)
    ax.grid(True, color=GRID, linewidth=0.7)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _save(figure: Figure, target: Path) -> None:
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    figure.clear()


def _thousands(value: float) -> str:
    return f"{value:,.0f}"


# ---------------------------------------------------------------------- segments


def _k_selection(data: _View) -> Figure:
    seg = data.summary["segments"]
    table = seg["k_table"]
    if not table:
        raise PlotUnavailableError("the run has no k-selection evidence")
    ks = np.array([r["k"] for r in table])
    chosen, elbow = seg.get("chosen_k"), seg.get("elbow_k")
    eligible = np.array([bool(r.get("eligible")) for r in table])
    unstable = seg.get("stable") is False
    chosen_label = f"k = {chosen} shown (not stable)" if unstable else f"chosen k = {chosen}"
    fig = _figure(12.5, 7.2)
    axes = fig.subplots(2, 3)
    panels: list[tuple[_KMetric, str, str]] = [
        ("inertia", "Inertia (within-segment spread)", "sum of squares, robust z² units"),
        ("silhouette", "Silhouette (higher = better separated)", "score, -1 to 1"),
        ("calinski_harabasz", "Calinski-Harabasz (higher = better)", "score (ratio)"),
        ("davies_bouldin", "Davies-Bouldin (lower = better)", "score (ratio)"),
        ("stability", "Bootstrap stability", "mean adjusted Rand index, 0 to 1"),
    ]
    for ax, (key, title, unit) in zip(axes.flat, panels, strict=False):
        values = np.array([_or_nan(r.get(key)) for r in table], dtype=float)
        ax.plot(ks, values, color=INK, linewidth=1.5, zorder=2)
        ax.scatter(ks[eligible], values[eligible], color=INK, s=36, zorder=3, label="eligible k")
        ax.scatter(
            ks[~eligible],
            values[~eligible],
            facecolor="white",
            edgecolor=INK,
            s=36,
            zorder=3,
            label="not eligible (unstable or tiny segment)",
        )
        if key == "stability":
            low, high, band_label = stability_band(table)
            ax.fill_between(ks, low, high, color=GRID, alpha=0.6, label=band_label)
            minimum = (data.summary["model_card"]["parameters"].get("segments") or {}).get(
                "min_stability"
            )
            if minimum is not None:
                ax.axhline(minimum, color=MUTED, linestyle=":", linewidth=1)
                ax.text(
                    0.99,
                    minimum,
                    f"minimum {minimum}",
                    ha="right",
                    va="bottom",
                    fontsize=8,
                    color=MUTED,
                    transform=ax.get_yaxis_transform(),
                )
        if key == "inertia" and elbow is not None and elbow in ks:
            y = values[list(ks).index(elbow)]
            ax.annotate(
                f"elbow k = {elbow}",
                xy=(elbow, y),
                xytext=(0.55, 0.75),
                textcoords="axes fraction",
                fontsize=9,
                arrowprops={"arrowstyle": "->", "color": INK},
            )
        if chosen is not None:
            ax.axvline(chosen, color=ACCENT, linestyle="--", linewidth=1.2, label=chosen_label)
        _style(ax, title, "number of segments k", unit)
        ax.set_xticks(ks)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    band_handles, band_labels = axes.flat[4].get_legend_handles_labels()
    extra = [
        (h, label)
        for h, label in zip(band_handles, band_labels, strict=True)
        if label not in labels
    ]
    text_ax = axes.flat[5]
    text_ax.axis("off")
    text_ax.legend(
        [*handles, *(h for h, _ in extra)],
        [*labels, *(label for _, label in extra)],
        loc="upper left",
        fontsize=8.5,
        frameon=False,
    )
    reason = seg.get("reason") or ""
    why = f"k = {chosen} shown, not stable" if unstable else f"Why k = {chosen}"
    text_ax.text(
        0.0,
        0.5,
        f"{why}:\n{textwrap.fill(reason, 44)}",
        va="top",
        fontsize=9,
        color=INK,
        transform=text_ax.transAxes,
    )
    fig.suptitle("Choosing the number of segments", fontsize=TITLE_SIZE + 1, color=INK)
    return fig


def stability_band(table: Sequence[KRow]) -> tuple[FloatArray, FloatArray, str]:
    """The band drawn around the stability per k: the segmenter's confidence bounds of the
    mean, or, for evidence from before it gave them, the mean ± one standard deviation.

    Example:
        >>> low, high, label = stability_band(
        ...     [{"k": 2, "stability": 0.8, "stability_low": 0.7, "stability_high": 0.9}]
        ... )
        >>> low.tolist(), high.tolist(), label
        ([0.7], [0.9], 'confidence band of the mean stability')
        >>> stability_band([{"k": 2, "stability": 0.95, "stability_sd": 0.1}])[1].tolist()
        [1.0]
    """
    mean = np.array([_or_nan(r.get("stability")) for r in table], dtype=float)
    if all(r.get("stability_low") is not None for r in table) and all(
        r.get("stability_high") is not None for r in table
    ):
        low = np.array([_or_nan(r.get("stability_low")) for r in table], dtype=float)
        high = np.array([_or_nan(r.get("stability_high")) for r in table], dtype=float)
        return low, high, "confidence band of the mean stability"
    sd = np.array([r.get("stability_sd") or 0.0 for r in table], dtype=float)
    return mean - sd, np.minimum(mean + sd, 1.0), "stability ± one standard deviation"


def _segments_pca(data: _View) -> Figure:
    view = _need(data.plot_data.get("segments_pca"))
    explained = view["explained_variance_ratio"]
    fig = _figure(9.5, 6.5)
    ax = fig.subplots()
    for group in view["segments"]:
        sid = group["segment_id"]
        ax.scatter(
            np.asarray(group["x"], dtype=np.float64),
            np.asarray(group["y"], dtype=np.float64),
            s=6,
            alpha=0.45,
            color=data.colors[sid],
            linewidths=0,
            label=data.label(sid),
        )
    for centre in view["centroids"]:
        sid, x, y = centre["segment_id"], centre["x"], centre["y"]
        ax.scatter(x, y, s=160, marker="X", color=data.colors.get(sid, INK), edgecolor="white")
        ax.annotate(
            data.label(sid),
            (x, y),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=9,
            fontweight="bold",
            color=INK,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    n, drawn = view["customers"], view["shown"]
    shown = f"{drawn:,} of {n:,} customers" if n > drawn else f"{n:,} customers"
    _style(
        ax,
        f"Segments in the model's space (PCA; {shown})",
        f"principal component 1 ({explained[0]:.0%} of variance, robust z units)",
        f"principal component 2 ({explained[1]:.0%} of variance, robust z units)",
    )
    ax.legend(fontsize=8.5, markerscale=3, frameon=False, loc="best")
    return fig


def _segment_profile(data: _View) -> Figure:
    segments = data.summary["segments"]
    items = segments["items"]
    features = profile_features(segments)
    if not features:
        raise PlotUnavailableError("the segment profiles have no z values")
    grid = np.array(
        [[float(item["profile"][f]["z"] or 0.0) for f in features] for item in items],
        dtype=float,
    )
    labels = segments.get("feature_labels") or {}
    limit = max(float(np.abs(grid).max()), 0.5)
    fig = _figure(max(8.0, 0.62 * len(features) + 3.5), 1.0 + 0.55 * len(items) + 1.8)
    ax = fig.subplots()
    image = ax.imshow(
        grid,
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit),
        aspect="auto",
    )
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            value = grid[i, j]
            ax.text(
                j,
                i,
                f"{value:+.1f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if abs(value) > 0.6 * limit else INK,
            )
    ax.set_xticks(range(len(features)))
    ax.set_xticklabels([labels.get(f, f) for f in features], rotation=40, ha="right")
    ax.set_yticks(range(len(items)))
    ax.set_yticklabels([data.label(int(i["segment_id"])) for i in items])
    for tick, item in zip(ax.get_yticklabels(), items, strict=True):
        tick.set_color(data.colors[int(item["segment_id"])])
        tick.set_fontweight("bold")
    ax.tick_params(labelsize=LABEL_SIZE - 1)
    ax.set_title(
        "Segment profiles: centroid distance from the average customer",
        fontsize=TITLE_SIZE - 1,
        color=INK,
        loc="left",
    )
    bar = fig.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label("robust z (0 = population average)", fontsize=LABEL_SIZE)
    return fig


def _segment_sizes(data: _View) -> Figure:
    items = data.summary["segments"]["items"]
    fig = _figure(9.0, 1.2 + 0.5 * len(items))
    ax = fig.subplots()
    labels = [data.label(int(i["segment_id"])) for i in items][::-1]
    sizes = [int(i["size"]) for i in items][::-1]
    colors = [data.colors[int(i["segment_id"])] for i in items][::-1]
    ax.barh(labels, sizes, color=colors)
    top = max(sizes) if sizes else 1
    for y, item in enumerate(items[::-1]):
        ax.text(
            int(item["size"]) + top * 0.01,
            y,
            f"{int(item['size']):,} ({float(item['share']):.1%})",
            va="center",
            fontsize=9,
            color=INK,
        )
    ax.set_xlim(0, top * 1.2)
    _style(ax, "Customers per segment", "customers (count)", "")
    return fig


# ---------------------------------------------------------------------- risk


def _band_edges(data: _View, probability: bool = False) -> list[tuple[str, float]]:
    """Each band's lower edge: its score cut point, or the lowest probability of default among
    its customers (bands without customers have none and are left out)."""
    bands = data.summary["risk"]["bands"]
    if not probability:
        return [(b["name"], float(b["min_score"] or 0.0)) for b in bands]
    edges = [(b["name"], b.get("min_probability")) for b in bands]
    return [(name, float(lo)) for name, lo in edges if lo is not None]


def _risk_distribution(data: _View) -> Figure:
    histogram = _need(data.plot_data.get("risk_distribution"))
    probability = histogram.get("scale") == "probability_of_default"
    bands = _band_edges(data, probability)
    colors = band_colors([b["name"] for b in data.summary["risk"]["bands"]])
    right = float(histogram["edges"][-1]) if probability else 100.0
    fig = _figure()
    ax = fig.subplots()
    edges = [lo for _, lo in bands] + [right]
    for (name, lo), hi in zip(bands, edges[1:], strict=False):
        ax.axvspan(lo, hi, color=colors[name], alpha=0.12, linewidth=0)
    _hist(ax, histogram["edges"], histogram["counts"], color=INK, alpha=0.8)
    top = ax.get_ylim()[1] * 1.35
    ax.set_ylim(0, top)
    previous = -math.inf
    for index, (name, lo) in enumerate(bands):
        if lo > 0:
            ax.axvline(lo, color=colors[name], linestyle="--", linewidth=1.5)
        count = _band(data.summary["risk"]["bands"], name)["customers"]
        edge = f"{lo:.1%}" if probability else f"{lo:g}"
        # a label closer than a tenth of the axis to the one before goes one step lower
        lower = index > 0 and lo - previous < right * 0.1
        height = top * (0.72 if lower else 0.97)
        previous = -math.inf if lower else lo
        ax.text(lo + right * 0.008, height, f"{name}\n≥ {edge}\n{count:,}", va="top", fontsize=8.5)
    ax.set_xlim(0, right)
    if probability:
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        width = (histogram["edges"][1] - histogram["edges"][0]) * 100
        _style(
            ax,
            "Probability of default, with the band cut points",
            "probability of default (the bands start at their customers' lowest)",
            f"customers (count per {width:.1f}-point bin)",
        )
    else:
        _style(
            ax,
            "Risk score (percentile) with band cut points",
            "risk score (0-100, percentile of the population the model was fitted on)",
            "customers (count per 2-point bin)",
        )
    return fig


def _risk_by_segment(data: _View) -> Figure:
    boxes = _need(data.plot_data.get("risk_by_segment"))
    present = [b["segment_id"] for b in boxes]
    fig = _figure(9.5, 1.3 + 0.55 * max(len(present), 1) + 1.0)
    ax = fig.subplots()
    # the statistics and styles `Axes.boxplot` would use, drawn from the summary's numbers
    box = ax.bxp(
        [
            {
                "med": b["med"],
                "q1": b["q1"],
                "q3": b["q3"],
                "whislo": b["whislo"],
                "whishi": b["whishi"],
                "mean": b["mean"],
            }
            for b in boxes[::-1]
        ],
        orientation="horizontal",
        widths=0.6,
        patch_artist=True,
        shownotches=False,
        showmeans=False,
        showcaps=True,
        showbox=True,
        showfliers=False,
        boxprops={"linestyle": "solid"},
        flierprops={},
        medianprops={"color": INK},
        meanprops={},
        meanline=False,
        capprops={},
        whiskerprops={},
        manage_ticks=True,
    )
    for patch, sid in zip(box["boxes"], present[::-1], strict=True):
        patch.set_facecolor(data.colors[sid])
        patch.set_alpha(0.75)
    means = [b["mean"] for b in boxes[::-1]]
    ax.scatter(
        means,
        range(1, len(boxes) + 1),
        marker="D",
        color="white",
        edgecolor=INK,
        s=30,
        zorder=3,
        label="mean",
    )
    ax.set_yticks(range(1, len(present) + 1))
    ax.set_yticklabels([data.label(sid) for sid in present[::-1]])
    for name, lo in _band_edges(data):
        if lo > 0:
            ax.axvline(lo, color=MUTED, linestyle=":", linewidth=1)
            ax.text(lo, len(present) + 0.45, f" {name} ≥ {lo:g}", fontsize=8, color=MUTED)
    ax.set_ylim(0.4, len(present) + 0.8)
    ax.set_xlim(0, 100)
    ax.legend(fontsize=8.5, frameon=False, loc="lower right")
    _style(
        ax,
        "Risk score by segment (box: middle half; whiskers: 1.5 IQR)",
        "risk score (0-100)",
        "",
    )
    return fig


def _risk_roc(data: _View) -> Figure:
    roc = _need(data.plot_data.get("risk_roc"))
    fpr = np.asarray(roc["fpr"], dtype=np.float64)
    tpr = np.asarray(roc["tpr"], dtype=np.float64)
    auc = roc["roc_auc"]
    cv = data.summary["risk"]["cv"]
    fig = _figure(6.8, 6.0)
    ax = fig.subplots()
    ax.plot(fpr, tpr, color=ACCENT, linewidth=2, label=f"in-sample ROC-AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], color=MUTED, linestyle="--", linewidth=1, label="random ranking")
    if cv and cv["roc_auc"] is not None:
        ax.plot([], [], " ", label=f"cross-validated ROC-AUC {float(cv['roc_auc']):.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(fontsize=9, frameon=False, loc="lower right")
    _style(
        ax,
        f"ROC curve ({roc['defaults']:,} defaults among {roc['labelled']:,} labelled customers)",
        "false positive rate (share of non-defaults flagged)",
        "true positive rate (share of defaults caught)",
    )
    return fig


def _risk_calibration(data: _View) -> Figure:
    curve = _need(data.plot_data.get("risk_calibration"))
    observed = np.asarray(curve["observed"], dtype=np.float64)
    predicted = np.asarray(curve["predicted"], dtype=np.float64)
    fig = _figure(6.8, 6.0)
    ax = fig.subplots()
    top = float(max(observed.max(), predicted.max(), 0.05)) * 1.1
    ax.plot(
        [0, top], [0, top], color=MUTED, linestyle="--", linewidth=1, label="perfect calibration"
    )
    ax.plot(predicted, observed, marker="o", color=ACCENT, linewidth=2, label="this model")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.legend(fontsize=9, frameon=False, loc="upper left")
    _style(
        ax,
        f"Calibration (in-sample, {len(predicted)} groups of equal size)",
        "mean predicted probability of default",
        "observed default rate",
    )
    return fig


# ---------------------------------------------------------------------- anomalies


def _anomaly_distribution(data: _View) -> Figure:
    histogram = _need(data.plot_data.get("anomaly_distribution"))
    anomalies = data.summary["anomalies"]
    threshold = histogram["threshold"]
    edges = histogram["edges"]
    fig = _figure()
    ax = fig.subplots()
    if threshold is not None:
        _hist(ax, edges, histogram["below"], color=INK, alpha=0.8, label="not flagged")
        _hist(ax, edges, histogram["at_or_above"], color=ACCENT, label="flagged")
        ax.axvline(float(threshold), color=ACCENT, linestyle="--", linewidth=1.5)
        ax.text(
            float(threshold),
            ax.get_ylim()[1] * 0.95,
            f"threshold {float(threshold):.2f}  \n{anomalies['flagged']:,} flagged  ",
            ha="right",
            va="top",
            fontsize=9,
            color=ACCENT,
        )
        ax.legend(fontsize=9, frameon=False, loc="upper left")
    else:
        _hist(ax, edges, histogram["below"], color=INK, alpha=0.8)
    ax.set_yscale("log")
    ax.set_xlim(0, 100)
    _style(
        ax,
        "Customer anomaly score distribution",
        "anomaly score (0-100, combined detector percentile)",
        "customers (count per 2-point bin, log scale)",
    )
    return fig


def _anomaly_top(data: _View) -> Figure:
    queue = data.summary["anomalies"]["review_queue"][:TOP_ANOMALIES]
    if not queue:
        raise PlotUnavailableError("no customer was flagged as anomalous")
    rows = queue[::-1]
    fig = _figure(9.0, 1.2 + 0.32 * len(rows))
    ax = fig.subplots()
    ids = [str(r["customer_id"]) for r in rows]
    scores = [_or_nan(r["anomaly_score"]) for r in rows]
    names = {v: k for k, v in data.segment_names.items()}
    colors = [data.colors.get(names.get(str(r["segment_name"]), -1), MUTED) for r in rows]
    ax.barh(ids, scores, color=colors)
    low = min(scores)
    threshold = data.summary["anomalies"]["threshold"]
    floor = min(low, float(threshold) if threshold is not None else low)
    ax.set_xlim(max(0.0, floor - 2.0), 100.5)
    if threshold is not None:
        ax.axvline(float(threshold), color=ACCENT, linestyle="--", linewidth=1.2)
    shown = sorted({names.get(str(r["segment_name"]), -1) for r in rows})
    handles = [
        Patch(color=data.colors.get(sid, MUTED), label=data.label(sid) if sid >= 0 else "other")
        for sid in shown
    ]
    ax.legend(
        handles=handles,
        title="segment",
        fontsize=7.5,
        title_fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    _style(
        ax,
        f"Top {len(rows)} flagged customers (reasons in the review queue table)",
        "anomaly score (0-100)",
        "customer id",
    )
    ax.tick_params(axis="y", labelsize=7.5)
    return fig


# ---------------------------------------------------------------------- data quality


def _data_quality_files(data: _View) -> Figure:
    tables = data.summary["data_quality"]["tables"]
    if not tables:
        raise PlotUnavailableError("the run has no validation report")
    fig = _figure(11.0, 1.6 + 0.55 * len(tables))
    left, right = fig.subplots(1, 2, sharey=True)
    names = [t["table"] for t in tables][::-1]
    clean = [int(t["clean"]) for t in tables][::-1]
    bad = [int(t["quarantined"]) for t in tables][::-1]
    left.barh(names, clean, color="#2e7d5b")
    right.barh(names, bad, color=ACCENT)
    for ax, values in ((left, clean), (right, bad)):
        top = max(max(values), 1)
        ax.set_xlim(0, top * 1.3)
        for y, (value, rows_in) in enumerate(
            zip(values, [int(t["rows_in"]) for t in tables][::-1], strict=True)
        ):
            share = f" ({value / rows_in:.2%})" if rows_in else ""
            ax.text(value + top * 0.01, y, f"{value:,}{share}", va="center", fontsize=8.5)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _style(left, "Clean rows per table", "rows (count)", "")
    _style(right, "Quarantined rows per table", "rows (count)", "")
    return fig


def _data_quality_rules(data: _View) -> Figure:
    rules = data.summary["data_quality"]["by_rule"]
    if not rules:
        raise PlotUnavailableError("no row was quarantined")
    fig = _figure(9.0, 1.3 + 0.4 * len(rules))
    ax = fig.subplots()
    labels = [f"{r['table']}: {str(r['rule']).replace('_', ' ')}" for r in rules][::-1]
    rows = [int(r["rows"]) for r in rules][::-1]
    ax.barh(labels, rows, color=ACCENT)
    top = max(rows)
    for y, value in enumerate(rows):
        ax.text(value + top * 0.01, y, f"{value:,}", va="center", fontsize=8.5)
    ax.set_xlim(0, top * 1.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _style(ax, "Quarantined rows per rule (first broken rule per row)", "rows (count)", "")
    return fig


# ---------------------------------------------------------------------- helpers


def _hist(
    ax: Axes,
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    color: str,
    alpha: float | None = None,
    label: str | None = None,
) -> None:
    """Bars of binned counts, drawn exactly as `ax.hist` draws the values they count."""
    ax.hist(
        edges[:-1], bins=list(edges), weights=list(counts), color=color, alpha=alpha, label=label
    )


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _band(bands: Sequence[RiskBand], name: str) -> RiskBand:
    return next(b for b in bands if b["name"] == name)


_DRAWERS: dict[str, Callable[[_View], Figure]] = {
    "k_selection": _k_selection,
    "segments_pca": _segments_pca,
    "segment_profile": _segment_profile,
    "segment_sizes": _segment_sizes,
    "risk_distribution": _risk_distribution,
    "risk_by_segment": _risk_by_segment,
    "risk_roc": _risk_roc,
    "risk_calibration": _risk_calibration,
    "anomaly_distribution": _anomaly_distribution,
    "anomaly_top": _anomaly_top,
    "data_quality_files": _data_quality_files,
    "data_quality_rules": _data_quality_rules,
}
assert set(_DRAWERS) == set(PLOT_NAMES)
