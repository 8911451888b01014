"""The typed shapes of the run summary and of the run files it is built from.

Every section of `summary.json` is a `TypedDict`: at run time it is a plain dict (so the JSON,
the Jinja template and the dashboard read it as before), while mypy checks every key the
summary, the plots and the HTML use. The shapes of the files a run writes (metrics.json,
run.json, validation.json, the bundle manifest and segment state) list the keys the summary
reads; they are `total=False` because older runs or other modes may lack a key.

`PlotData` holds what the plots draw beyond the other sections: binned, sampled or summarised
so that `summary.json` stays small (at most a few thousand points per plot), computed once by
`summarize`; the renderers only draw it.

Example:
    >>> band: RiskBand = {
    ...     "name": "Low", "min_score": 0.0, "action": "none", "customers": 10, "share": 1.0
    ... }
    >>> band["customers"]
    10
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# ---------------------------------------------------------------------- the summary


class InputFile(TypedDict):
    """One input file of the run, as run.json lists it."""

    path: str
    bytes: int
    sha256: str


class Overview(TypedDict):
    customers: int
    transactions: int
    anomalies: int
    transaction_alerts: int
    segments: int
    risk_mode: str
    as_of: str | None
    seed: int | None
    finintel_version: str
    command: str | None
    created_from: list[InputFile]


class TableQuality(TypedDict):
    table: str
    source: str | None
    rows_in: int
    clean: int
    quarantined: int
    nulled: int


class RuleCount(TypedDict):
    table: str
    rule: str
    rows: int


class NulledCount(TypedDict):
    table: str
    column_rule: str
    rows: int


class DataQuality(TypedDict):
    tables: list[TableQuality]
    by_rule: list[RuleCount]
    nulled_by_column: list[NulledCount]
    rows_in: int
    clean: int
    quarantined: int


class ProfileEntry(TypedDict):
    """A segmentation feature in one segment: median (original units) and centroid z."""

    value: float | None
    z: float | None


class SegmentItem(TypedDict):
    segment_id: int
    segment_name: str
    size: int
    share: float
    description: str
    actions: list[str]
    traits: list[str]
    profile: dict[str, ProfileEntry]
    mean_risk_score: float | None
    anomalies: int


class KRow(TypedDict, total=False):
    """The evidence for one number of segments k (metrics.json `k_selection.table`)."""

    k: int
    inertia: float | None
    explained_gain: float | None
    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    stability: float | None
    stability_sd: float | None
    # the confidence bounds of the mean, the resamples and restarts behind it, and the
    # segmenter's verdict (stable, unstable, borderline, undecided); absent in older runs
    stability_low: float | None
    stability_high: float | None
    rounds: int | None
    restarts: int | None
    verdict: str | None
    min_share: float | None
    eligible: bool


class KAttempt(TypedDict, total=False):
    """An extra step the k choice took for one k (metrics.json `k_selection.attempts`)."""

    k: int
    step: str
    rounds: int
    restarts: int
    stability: float | None
    stability_low: float | None
    stability_high: float | None
    verdict: str | None


class ColumnDecision(TypedDict):
    """One column offered to the segmenter: kept (with its weight) or dropped, and why.

    `reason` is "kept", "near-constant" or "redundant"; `detail` says it in words (for a kept
    column of a share block: the block and how much it weighs); a redundant column names the
    kept column it ranks customers like (`correlated_with`) and their Spearman correlation.
    """

    column: str
    label: str
    kept: bool
    reason: str
    detail: str | None
    correlated_with: str | None
    spearman: float | None
    weight: float | None


class FeatureSelection(TypedDict):
    """Which offered columns the segmenter kept, and the rule it followed."""

    mode: str | None  # "default" (planned from the data) or "configured" (used as given)
    rule: str | None
    kept: int
    dropped: int
    columns: list[ColumnDecision]


class Segments(TypedDict):
    chosen_k: int | None
    mode: str | None
    rule: str | None
    reason: str | None
    k_table: list[KRow]
    elbow_k: int | None
    silhouette: float | None
    stability: float | None
    stability_sd: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    columns: list[str]
    feature_labels: dict[str, str]
    items: list[SegmentItem]
    # the segmenter's own verdict (None for a run from before it gave one), its sentence for a
    # person, the extra steps of the k choice and the column decision (None before it existed)
    stable: NotRequired[bool | None]
    note: NotRequired[str | None]
    attempts: NotRequired[list[KAttempt]]
    feature_selection: NotRequired[FeatureSelection | None]


class RiskBand(TypedDict):
    """A risk band: its score cut point (a percentile of the fitted population), the fixed
    share of that population it holds (`fitted_share`; `top_share`: this band and those above),
    this run's customers in it and, for a supervised model, the lowest probability of default
    among them (`min_probability`)."""

    name: str
    min_score: float | None
    action: str | None
    customers: int
    share: float
    fitted_share: NotRequired[float | None]
    top_share: NotRequired[float | None]
    min_probability: NotRequired[float | None]


class RiskCustomer(TypedDict):
    customer_id: str
    risk_score: float | None
    risk_band: str
    risk_reasons: str
    segment_name: str


class ScorecardRow(TypedDict):
    variable: str | None
    label: str | None
    bin: str | None
    points: float | None
    woe: float | None
    iv: float | None


class Baseline(TypedDict):
    model: str | None
    roc_auc: float | None
    gini: float | None


class CrossValidation(TypedDict):
    roc_auc: float | None
    roc_auc_std: float | None
    gini: float | None
    ks: float | None
    folds: int | None
    repeats: int | None
    baseline: NotRequired[Baseline]


class CandidateRow(TypedDict):
    """One supervised model cross-validated on the run's folds: its honest accuracy, whether it
    passed the gate (`gate`: "passed" or why not) and whether it is the delivered one."""

    model: str
    description: str | None
    roc_auc: float | None
    roc_auc_std: float | None
    calibration_slope: float | None
    variables: float | None
    passed_gate: bool
    gate: str
    delivered: bool


class ModelChoice(TypedDict):
    """How the supervised model was chosen: what was asked for, what was delivered (None: no
    model passed the gate), the one sentence why, the gate and the candidates."""

    requested: str | None
    delivered: str | None
    reason: str | None
    tolerance: float | None
    min_cv_auc: float | None
    folds: int | None
    repeats: int | None
    candidates: list[CandidateRow]


class SupervisedFallback(TypedDict):
    """Labels were given but no supervised model passed the gate: the composite was delivered."""

    reason: str
    labelled: int | None
    bads: int | None
    goods: int | None
    bad_rate: float | None


class ModelVariable(TypedDict):
    """A variable the delivered model reads, with the model's own measure of its strength."""

    variable: str
    label: str
    value: float | None


class DroppedVariable(TypedDict):
    variable: str
    label: str
    why: str


class ModelVariables(TypedDict):
    """The delivered model's variables (strongest first when `measure` names a measure, e.g.
    "information value", "importance") and the candidates it dropped, each with why."""

    measure: str | None
    rows: list[ModelVariable]
    dropped: list[DroppedVariable]


class GroupBand(TypedDict):
    name: str
    customers: int
    share: float


class ProtectedGroup(TypedDict):
    """The customers of one protected group: how many, their risk scores and band shares (in
    the order of `Risk.bands`) and the share flagged anomalous."""

    group: str
    customers: int
    share: float
    mean_score: float | None
    median_score: float | None
    anomaly_share: float
    bands: list[GroupBand]


class ProtectedAttribute(TypedDict):
    """One protected attribute found as a column of the run: where (`source`: "customers" for
    the clean customers table, "features" for the scored features), how it is grouped
    (`grouping`: "age bands" or "values") and its groups, missing values as a group."""

    attribute: str
    column: str
    source: str
    grouping: str
    groups: list[ProtectedGroup]


class Protected(TypedDict):
    """The protected attributes configured, allowed and left out of the model, one sentence
    saying what the model did with them, and the score per group of each one found."""

    attributes: list[str]
    allowed: list[str]
    left_out: list[str]
    note: str
    columns: list[ProtectedAttribute]


class LabelCounts(TypedDict):
    labelled: int | None
    unlabelled: int | None
    bads: int | None
    goods: int | None
    bad_rate: float | None


class RiskFactor(TypedDict):
    """One factor of the unsupervised composite: where it comes from (`source`: built-in,
    settings or role), the role it stands for (`"bill / limit"` for a ratio; None for a
    factor that is not a role's) and the feature columns it reads."""

    name: str | None
    label: str | None
    source: str | None
    role: str | None
    columns: list[str]
    weight: float | None
    weight_share: float | None
    direction: str | None
    median: float | None
    p95: float | None


class DerivedVariable(TypedDict):
    """A scorecard candidate computed from several columns (a ratio, a role's columns
    aggregated), with where it comes from and whether it entered the scorecard."""

    name: str | None
    label: str | None
    source: str | None
    role: str | None
    columns: list[str]
    used: bool


class RoleColumns(TypedDict):
    """The columns read for one role: declared in `[risk.roles]`, or a canonical column
    standing in for an undeclared part of a ratio (`declared` False)."""

    role: str
    meaning: str | None
    columns: list[str]
    declared: bool


class Risk(TypedDict):
    mode: str  # "supervised", "unsupervised", or "off" (the run has no risk score)
    bands: list[RiskBand]
    score_quantiles: dict[str, float] | None
    mean_score: float | None
    top_customers: list[RiskCustomer]
    cv: CrossValidation | None
    # supervised runs: the delivered model ("scorecard", "logistic", "boosting"), its
    # variables, and the points table when the scorecard was delivered
    model: NotRequired[str | None]
    model_description: NotRequired[str | None]
    model_variables: NotRequired[ModelVariables]
    scorecard: NotRequired[list[ScorecardRow]]
    labels: NotRequired[LabelCounts]
    mean_probability_of_default: NotRequired[float | None]
    calibration: NotRequired[dict[str, Any] | None]
    derived_variables: NotRequired[list[DerivedVariable]]
    # unsupervised (composite) runs
    factors: NotRequired[list[RiskFactor]]
    # labels given but no supervised model passed the gate (an unsupervised run then)
    fallback: NotRequired[SupervisedFallback | None]
    # the candidates of a supervised run or of a fallback (None when no labels were given)
    model_choice: NotRequired[ModelChoice | None]
    # the score per protected group (None when no protected column exists)
    protected: NotRequired[Protected | None]
    # both modes: the factors left out, each with what would enable it, and the columns
    # read per role (empty without roles and canonical ratio parts)
    unavailable_factors: NotRequired[dict[str, str]]
    roles: NotRequired[list[RoleColumns]]
    # runs without a risk score (mode "off"): one sentence why, and how to silence the warning
    # of an automatic skip (None when risk scoring was switched off in the config)
    off_note: NotRequired[str]
    off_hint: NotRequired[str | None]


class ReviewRow(TypedDict):
    customer_id: str
    anomaly_score: float | None
    segment_name: str
    risk_band: str | None
    anomaly_reasons: str


class TransactionAlerts(TypedDict):
    count: int
    transactions: int | None
    note: str | None
    top: list[dict[str, str | float | int | None]]


class Anomalies(TypedDict):
    threshold: float | None
    threshold_source: str | None
    rule: str | None
    rule_why: str | None
    expected_rate: float | None
    alert_budget: int | None
    flagged: int
    features: list[str]
    detectors: dict[str, Any]
    review_queue: list[ReviewRow]
    transaction_alerts: TransactionAlerts


class Parameters(TypedDict):
    seed: int | None
    risk: dict[str, Any] | None
    anomaly: dict[str, Any] | None
    segments: dict[str, Any] | None
    features: dict[str, Any] | None


class KSelectionEvidence(TypedDict):
    chosen_k: int | None
    elbow_k: int | None
    rule: str | None
    reason: str | None
    table: list[KRow]
    stable: NotRequired[bool | None]
    attempts: NotRequired[list[KAttempt]]


class Separation(TypedDict):
    stability: float | None
    stability_sd: float | None
    stability_low: NotRequired[float | None]
    stability_high: NotRequired[float | None]
    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None


class ModelCard(TypedDict):
    versions: dict[str, str | None]
    parameters: Parameters
    k_selection_evidence: KSelectionEvidence
    stability: Separation
    timings_seconds: dict[str, float]
    limitations: list[str]


# ---------------------------------------------------------------------- plot data


class PcaSegment(TypedDict):
    """The shown customers of one segment in the two principal components."""

    segment_id: int
    x: list[float]
    y: list[float]


class PcaCentroid(TypedDict):
    segment_id: int
    x: float
    y: float


class PcaView(TypedDict):
    """Customers in two principal components of the segmenter's transformed space."""

    customers: int  # customers in the run
    fitted_on: int  # customers the components were fitted on (seeded sample)
    shown: int  # customers drawn (seeded sample of those)
    explained_variance_ratio: list[float]
    segments: list[PcaSegment]
    centroids: list[PcaCentroid]


class Histogram(TypedDict):
    """Counts per bin; `edges` has one more entry than `counts`.

    The risk histogram says what it counts (`scale`): "probability_of_default" (a supervised
    model's calibrated probability) or "percentile" (the 0-100 risk score, when the run's files
    hold no raw risk value).
    """

    edges: list[float]
    counts: list[int]
    scale: NotRequired[str]


class ThresholdHistogram(TypedDict):
    """Counts per bin below and at or above a threshold (all in `below` without one)."""

    edges: list[float]
    threshold: float | None
    below: list[int]
    at_or_above: list[int]


class BoxStats(TypedDict):
    """One segment's score distribution as a box plot draws it (whiskers at 1.5 IQR)."""

    segment_id: int
    customers: int
    mean: float
    q1: float
    med: float
    q3: float
    whislo: float
    whishi: float


class RocCurve(TypedDict):
    """In-sample ROC curve of the probability of default on the labelled customers."""

    fpr: list[float]
    tpr: list[float]
    roc_auc: float
    labelled: int
    defaults: int


class CalibrationCurve(TypedDict):
    """Mean predicted PD and observed default rate in groups of equal size."""

    predicted: list[float]
    observed: list[float]
    bins: int
    labelled: int


class PlotData(TypedDict, total=False):
    """What the plots draw that the other sections do not hold, keyed by plot name."""

    segments_pca: PcaView
    risk_distribution: Histogram
    risk_by_segment: list[BoxStats]
    risk_roc: RocCurve
    risk_calibration: CalibrationCurve
    anomaly_distribution: ThresholdHistogram


class Summary(TypedDict):
    overview: Overview
    data_quality: DataQuality
    segments: Segments
    risk: Risk
    anomalies: Anomalies
    model_card: ModelCard
    plot_data: PlotData
    plots: dict[str, str]
    plots_skipped: dict[str, str]


# ---------------------------------------------------------------------- the run files read


class KSelection(TypedDict, total=False):
    chosen_k: int
    mode: str
    stable: bool
    rule: str
    reason: str
    attempts: list[KAttempt]
    table: list[KRow]


# metrics.json `segments.feature_selection.dropped` (`with` is a Python keyword, hence this form)
DroppedColumnMetrics = TypedDict(
    "DroppedColumnMetrics",
    {"column": str, "reason": str, "detail": str, "with": str, "spearman": float},
    total=False,
)


class MixBlockMetrics(TypedDict, total=False):
    """A share block (channel or category mix) whose kept columns share one weight."""

    name: str
    columns: list[str]
    counts_as: float
    column_weight: float


class FeatureSelectionMetrics(TypedDict, total=False):
    mode: str
    rule: str
    candidates: list[str]
    kept: list[str]
    dropped: list[DroppedColumnMetrics]
    weights: dict[str, float]
    blocks: list[MixBlockMetrics]


class SegmentMetrics(TypedDict, total=False):
    k: int
    k_selection: KSelection
    stable: bool
    note: str
    feature_selection: FeatureSelectionMetrics
    silhouette: float
    stability: float
    stability_sd: float
    stability_low: float
    calinski_harabasz: float
    davies_bouldin: float
    columns: list[str]
    constant_columns: list[str]


class FactorMetrics(TypedDict, total=False):
    name: str
    label: str
    sql: str
    source: str
    role: str | None
    columns: list[str]
    weight: float
    weight_share: float
    direction: str
    median: float
    p95: float


class DerivedVariableMetrics(TypedDict, total=False):
    name: str
    label: str
    sql: str
    source: str
    role: str | None
    columns: list[str]
    used: bool


class RolesMetrics(TypedDict, total=False):
    """metrics.json `risk.roles`: declared roles, columns read per role, the canonical
    columns used as ratio parts, and the roles nothing was declared for."""

    declared: dict[str, str]
    columns_by_role: dict[str, list[str]]
    canonical_parts: dict[str, str]
    not_declared: list[str]


class CrossValidationMetrics(TypedDict, total=False):
    roc_auc: float
    roc_auc_std: float
    gini: float
    ks: float
    folds: int
    repeats: int
    baseline: dict[str, Any]


class CandidateMetrics(TypedDict, total=False):
    model: str
    description: str
    roc_auc: float
    roc_auc_std: float
    roc_auc_by_fold: list[float]
    calibration_slope: float
    mean_variables: float
    fit_seconds: float
    passed_gate: bool
    gate: str
    delivered: bool


class ModelSelectionMetrics(TypedDict, total=False):
    requested: str
    delivered: str | None
    reason: str
    tolerance: float
    min_cv_auc: float
    folds: int
    repeats: int
    seed: int
    candidates: list[CandidateMetrics]


class FallbackMetrics(TypedDict, total=False):
    reason: str
    model_selection: ModelSelectionMetrics
    labelled: int
    bads: int
    goods: int
    bad_rate: float


class ProtectedMetrics(TypedDict, total=False):
    attributes: list[str]
    allowed: list[str]
    left_out: list[str]


class RiskMetrics(TypedDict, total=False):
    mode: str
    model: str
    model_description: str
    model_selection: ModelSelectionMetrics
    learner: dict[str, Any]
    protected: ProtectedMetrics
    supervised_fallback: FallbackMetrics
    # a run without a risk score records only why (`finintel.scoring.RiskOff.to_dict`)
    enabled: bool
    source: str
    reason: str
    note: str
    how_to_silence: str
    score_quantiles: dict[str, float]
    scorecard: list[dict[str, Any]]
    cross_validation: CrossValidationMetrics
    labelled: int
    unlabelled: int
    bads: int
    goods: int
    bad_rate: float
    mean_probability_of_default: float
    calibration: dict[str, Any]
    factor_source: str
    factors: list[FactorMetrics]
    derived_variables: list[DerivedVariableMetrics]
    unavailable_factors: dict[str, str]
    roles: RolesMetrics


class ThresholdMetrics(TypedDict, total=False):
    anomaly_score: float
    source: str
    expected_rate: float
    alert_budget: int


class CombinationMetrics(TypedDict, total=False):
    rule: str
    why: str


class AnomalyMetrics(TypedDict, total=False):
    threshold: ThresholdMetrics
    combination: CombinationMetrics
    features: list[str]
    detectors: dict[str, Any]


class TransactionAlertMetrics(TypedDict, total=False):
    transactions: int
    note: str


class RunMetrics(TypedDict, total=False):
    """metrics.json: the measures of the fitted (or applied) models."""

    segments: SegmentMetrics
    risk: RiskMetrics
    anomalies: AnomalyMetrics
    transaction_alerts: TransactionAlertMetrics


class RunConfig(TypedDict, total=False):
    risk: dict[str, Any]
    anomaly: dict[str, Any]
    segments: dict[str, Any]
    features: dict[str, Any]


class ModelRef(TypedDict, total=False):
    path: str


class RunRecord(TypedDict, total=False):
    """run.json: what the run did, with which settings, inputs and versions."""

    command: str
    seed: int
    finintel_version: str
    inputs: list[InputFile]
    model: ModelRef
    config: RunConfig
    libraries: dict[str, str | None]
    timings_seconds: dict[str, float]


class TableReport(TypedDict, total=False):
    source: str
    rows_in: int
    clean: int
    quarantined: int
    by_rule: dict[str, int]
    nulled: dict[str, int]


class ValidationReport(TypedDict, total=False):
    """validation.json: rows in, clean and quarantined per table."""

    tables: dict[str, TableReport]
    rows_in: int
    clean: int
    quarantined: int


class FeaturePlanInfo(TypedDict, total=False):
    as_of: str


class FeaturesInfo(TypedDict, total=False):
    plan: FeaturePlanInfo


class Manifest(TypedDict, total=False):
    """The bundle manifest's keys the summary reads."""

    seed: int
    finintel_version: str
    config: RunConfig
    libraries: dict[str, str | None]
    segment_columns: list[str]


class SegmentState(TypedDict, total=False):
    """One fitted segment as the segmenter stores it."""

    id: int
    name: str
    description: str
    actions: list[str]
    traits: list[str]
    profile: dict[str, ProfileEntry]
