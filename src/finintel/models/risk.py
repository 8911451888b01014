"""The risk score: one API over two modes, with bands, actions and plain-words reasons.

`fit_risk` builds an unsupervised composite of declared risk factors when there are no labels
(`finintel.models.composite`) and, when there are, the best of a WoE scorecard, a logistic
regression and monotone boosting with a calibrated probability of default
(`finintel.models.supervised`); both build on `finintel.models.risk_base`, and this front door
is the only module that knows both. When no supervised model passes the gate (it ranks no
better than chance), the composite is delivered instead and its metrics say why
(`supervised_fallback`), unless `[risk] require_supervised` makes that an error. Both modes
give the same outputs for every customer:

- `risk_score` 0-100, higher = riskier. In both modes it is the customer's mid-rank percentile
  of the model's raw risk (composite value, or probability of default) in the population the
  model was fitted on: a score of 90 means riskier than 90% of that population. Band cut points
  therefore mean the same in both modes (with the default bands, Critical = the riskiest 10%).
- `risk_band` and `risk_action` from `RiskSettings.bands`.
- `risk_reasons`: up to three factors that pushed the score up, e.g.
  "debt-to-income 0.82, above 95% of customers".
- `probability_of_default` (supervised mode; NaN in unsupervised mode).

Example:
    >>> import numpy as np
    >>> from finintel.models.frame import FeatureFrame
    >>> from finintel.settings.risk import RiskSettings
    >>> rng = np.random.default_rng(0)
    >>> frame = FeatureFrame(np.arange(200).astype(str).astype(object), ("debt_to_income",),
    ...                      rng.gamma(2.0, 0.3, (200, 1)))
    >>> model = fit_risk(frame, None, RiskSettings(), seed=0)
    >>> model.mode
    'unsupervised'
    >>> scores = model.predict(frame)
    >>> bool(load_risk(model.to_files()).predict(frame).risk_score.tolist()
    ...      == scores.risk_score.tolist())
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from finintel.errors import ConfigError, ModelStateError, NoSupervisedModelError
from finintel.models.base import read_state
from finintel.models.composite import CompositeRisk
from finintel.models.explain import ValueLabels
from finintel.models.frame import FeatureFrame
from finintel.models.risk_base import FloatArray, RiskModel
from finintel.models.supervised import SupervisedRisk
from finintel.settings.risk import RiskSettings

# ---------------------------------------------------------------------------- choosing a mode


def resolve_mode(labels: FloatArray | None, settings: RiskSettings) -> str:
    """ "supervised" or "unsupervised": `auto` is supervised exactly when labels are given."""
    if settings.mode == "supervised" and labels is None:
        raise ConfigError(
            "risk mode 'supervised' needs labels (a labels table with defaulted 0/1); "
            "none were given, and finintel never invents labels"
        )
    if settings.mode == "auto":
        return "supervised" if labels is not None else "unsupervised"
    return settings.mode


def fit_risk(
    frame: FeatureFrame,
    labels: FloatArray | None,
    settings: RiskSettings,
    seed: int,
    value_labels: ValueLabels | None = None,
    progress: Callable[[str], None] | None = None,
) -> RiskModel:
    """Fit the risk model: supervised with labels, else unsupervised composite.

    `labels` is aligned with the frame's rows: 1 = defaulted, 0 = did not, NaN = unlabelled.
    `value_labels` gives the source's words for coded columns, used in the reasons. A
    supervised fit that no model survives falls back to the composite (see the module).
    """
    mode = resolve_mode(labels, settings)
    if mode == "supervised":
        assert labels is not None
        try:
            return SupervisedRisk(settings, seed).fit(frame, labels, value_labels, progress)
        except NoSupervisedModelError as exc:
            if settings.require_supervised:
                raise NoSupervisedModelError(
                    f"{exc}; [risk] require_supervised = true, so the run stops",
                    exc.selection,
                ) from None
            fallback = CompositeRisk(settings, seed).fit(frame, value_labels)
            fallback.metrics_["supervised_fallback"] = {
                "reason": f"{exc}: the risk score is the unsupervised composite instead",
                **exc.selection,
            }
            return fallback
    model = CompositeRisk(settings, seed).fit(frame, value_labels)
    if labels is not None:
        model.metrics_["labels_ignored"] = "labels were given but the mode is unsupervised"
    return model


def load_risk(files: Mapping[str, bytes]) -> RiskModel:
    """Rebuild a fitted risk model from `to_files()` output, dispatching on the stored mode."""
    state = read_state(files, RiskModel.part)
    mode = state.get("mode")
    for model in (SupervisedRisk, CompositeRisk):
        if model.mode == mode:
            return model.from_state(state, files)
    raise ModelStateError(f"the risk model's state has an unknown mode {mode!r}")
