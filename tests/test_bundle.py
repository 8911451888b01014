"""The model bundle: exact round trip, and refusal of changed, missing, extra or foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finintel.bundle import MANIFEST, load_bundle, save_bundle
from finintel.errors import BundleError

PARTS = {
    "risk": {"risk.json": b'{"mode": "unsupervised"}'},
    "anomaly": {"anomaly.json": b"{}", "forest.skops": b"\x00\x01binary"},
}


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    save_bundle(target, PARTS, {"feature_columns": ["tx_count", "age"]})
    return target


def test_round_trip_returns_every_file_and_the_manifest(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    assert bundle.parts == PARTS
    assert bundle.manifest["feature_columns"] == ["tx_count", "age"]
    assert set(bundle.manifest["files"]) == {
        "risk/risk.json",
        "anomaly/anomaly.json",
        "anomaly/forest.skops",
    }
    assert bundle.manifest["libraries"]["numpy"]


def test_a_changed_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "risk" / "risk.json").write_bytes(b'{"mode": "supervised"}')
    with pytest.raises(BundleError, match=r"risk/risk.json has been changed"):
        load_bundle(bundle_dir)


def test_a_missing_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "anomaly" / "forest.skops").unlink()
    with pytest.raises(
        BundleError, match=r"anomaly/forest.skops listed in the manifest is missing"
    ):
        load_bundle(bundle_dir)


def test_an_unlisted_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "risk" / "extra.pkl").write_bytes(b"cos\nsystem\n")
    with pytest.raises(BundleError, match=r"risk/extra.pkl is not listed"):
        load_bundle(bundle_dir)


def test_missing_or_broken_manifest_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a directory"):
        load_bundle(tmp_path / "nowhere")
    (bundle_dir / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle_dir)
    (bundle_dir / MANIFEST).unlink()
    with pytest.raises(BundleError, match=r"manifest\.json is missing"):
        load_bundle(bundle_dir)


def test_other_format_or_library_version_is_refused(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    manifest["libraries"]["scikit-learn"] = "0.1.0"
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"saved with scikit-learn 0.1.0"):
        load_bundle(bundle_dir)
    manifest["format"] = 99
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="bundle format 99"):
        load_bundle(bundle_dir)


def test_saving_replaces_an_old_bundle_completely(bundle_dir: Path) -> None:
    save_bundle(bundle_dir, {"risk": {"risk.json": b"{}"}}, {})
    assert sorted(p.name for p in bundle_dir.rglob("*") if p.is_file()) == [
        MANIFEST,
        "risk.json",
    ]
    assert not [p for p in bundle_dir.parent.iterdir() if p.name.startswith(".")]


def test_unsafe_file_names_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid bundle file name"):
        save_bundle(tmp_path / "m", {"risk": {"../escape.json": b"{}"}}, {})
    assert not (tmp_path / "m").exists()


def test_a_bundle_saved_before_the_model_contract_is_refused_naming_its_format(
    bundle_dir: Path,
) -> None:
    # bundles written before the one model contract (risk/risk_model.json, anomaly/anomaly.json,
    # ...) carry bundle format 1
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    manifest["format"] = 1
    (bundle_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"bundle format 1 is not the supported format 2; refit"):
        load_bundle(bundle_dir)
