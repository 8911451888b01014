"""What the report reads from a run's model bundle, in one place.

`read_model` is the only code of the report that touches the bundle or a model class: it
verifies the bundle with `finintel.bundle.load_bundle` and rebuilds the segmenter with
`Segmenter.from_files` (nothing is unpickled, refitted or rescored). It returns plain data: the
manifest, each fitted segment's stored profile, the segmenter's metrics, and the segmenter's
space (columns, transform, centroids) for the PCA view. When the bundle is missing, refused
(changed, other library versions) or scikit-learn is not installed, it returns the manifest
as plain JSON (when there is one) and the reason, and the summary leaves out what needs more.

Example:
    >>> model = read_model(Path("out/run/model"))  # doctest: +SKIP
    >>> model.space.columns[:2]  # doctest: +SKIP
    ['age', 'annual_income']
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from finintel.errors import BundleError
from finintel.report.shapes import Manifest, RunRecord, SegmentMetrics, SegmentState
from finintel.run_layout import MANIFEST_JSON, RunLayout

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SegmentSpace:
    """The segmenter's own space: `transform` maps feature rows (columns in order) to it."""

    columns: list[str]
    transform: Callable[[FloatArray], FloatArray]
    centroids: FloatArray  # row j is the centre of segment id j + 1


@dataclass(frozen=True)
class ModelView:
    """The bundle as the report needs it; `space` is None when `missing` says why."""

    manifest: Manifest = field(default_factory=lambda: cast(Manifest, {}))
    segments: list[SegmentState] = field(default_factory=list)
    segment_metrics: SegmentMetrics = field(default_factory=lambda: cast(SegmentMetrics, {}))
    space: SegmentSpace | None = None
    missing: str | None = None


def model_dir_of(run_dir: Path, run_info: RunRecord | None = None) -> Path | None:
    """The bundle a run used: `run_dir/model`, or the bundle a `score` run names in run.json."""
    layout = RunLayout(Path(run_dir))
    if (layout.model_dir / MANIFEST_JSON).is_file():
        return layout.model_dir
    if run_info is None:
        run_info = cast(RunRecord, _read_json(layout.run_json))
    stored = (run_info.get("model") or {}).get("path")
    if stored and (Path(stored) / MANIFEST_JSON).is_file():
        return Path(stored)
    return None


def read_model(model_dir: Path | None) -> ModelView:
    """The manifest, segment profiles and segmenter space of the bundle in `model_dir`."""
    if model_dir is None:
        return ModelView(missing="the run has no model bundle to read the segmenter from")
    try:
        from finintel.bundle import load_bundle
        from finintel.models.segments import Segmenter

        bundle = load_bundle(model_dir)
        segmenter = Segmenter.from_files(bundle.parts["segments"])
    except ImportError as exc:
        reason = f"reading the segmenter needs the models extra (finintel[models]): {exc}"
    except BundleError as exc:
        reason = f"the model bundle cannot be loaded: {exc}"
    except (KeyError, ValueError) as exc:
        reason = f"the model bundle's segmenter cannot be read: {exc}"
    else:
        space = SegmentSpace(
            columns=[str(c) for c in segmenter.columns_],
            transform=segmenter.transform_.transform,
            centroids=np.asarray(segmenter.centroids_, dtype=np.float64),
        )
        return ModelView(
            manifest=cast(Manifest, bundle.manifest),
            segments=[cast(SegmentState, asdict(p)) for p in segmenter.segments_],
            segment_metrics=cast(SegmentMetrics, segmenter.metrics_ or {}),
            space=space,
        )
    manifest = cast(Manifest, _read_json(model_dir / MANIFEST_JSON))
    return ModelView(manifest=manifest, missing=reason)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
