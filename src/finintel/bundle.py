"""The model bundle: fitted state as plain files, a manifest, and checks before anything loads.

A bundle is a directory:

```
model/
  manifest.json          format, versions, feature plan and columns, training statistics,
                         and the SHA-256 and size of every other file
  risk/...  anomaly/...  segments/...  transaction_alerts/...   each model's own files
```

A run without a risk score has no `risk/` part; its manifest says why (`risk_off`), and
loading such a bundle scores without risk (`finintel.scoring.FittedModels.from_parts`).

Models hand over their state as `{file name: bytes}` (JSON, or skops for fitted scikit-learn
objects loaded with an explicit list of trusted types), so loading never unpickles anything and
never runs code from the bundle. `load_bundle` refuses a bundle whose manifest is missing or
unreadable, whose format or library versions do not match, with a file that is missing, changed
(checksum) or not listed. The checksums catch corruption and edits; they are not a signature.

The bundle is written to a temporary directory beside the target and renamed into place only
when complete, so a crash never leaves a half-written bundle that looks complete.

Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "model"
    >>> save_bundle(target, {"risk": {"risk.json": b"{}"}}, {"feature_columns": ["x"]})
    >>> load_bundle(target).parts["risk"]["risk.json"]
    b'{}'
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finintel import __version__
from finintel.errors import BundleError

BUNDLE_FORMAT = 2
MANIFEST = "manifest.json"
# Libraries whose version must match between saving and loading: their objects or numbers are
# in the bundle, and a different version may read or compute them differently.
PINNED_LIBRARIES = ("scikit-learn", "numpy")
RECORDED_LIBRARIES = ("scikit-learn", "numpy", "scipy", "skops", "optbinning", "duckdb")


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: the manifest and each part's files."""

    path: Path
    manifest: dict[str, Any]
    parts: dict[str, dict[str, bytes]]


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries a bundle depends on (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in RECORDED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def save_bundle(
    target: Path, parts: Mapping[str, Mapping[str, bytes]], info: Mapping[str, Any]
) -> None:
    """Write `parts` ({part: {file name: bytes}}) and a manifest with `info` to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        files: dict[str, dict[str, Any]] = {}
        for part, part_files in sorted(parts.items()):
            for name, data in sorted(part_files.items()):
                _check_name(part)
                _check_name(name)
                path = tmp / part / name
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(data)
                files[f"{part}/{name}"] = {"sha256": _sha256(data), "bytes": len(data)}
        manifest = {
            **info,
            "format": BUNDLE_FORMAT,
            "finintel_version": __version__,
            "libraries": library_versions(),
            "parts": sorted(parts),
            "files": files,
        }
        text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
        (tmp / MANIFEST).write_text(text, encoding="utf-8")
        _replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_bundle(path: Path) -> Bundle:
    """Read and verify a bundle; raise `BundleError` naming the first problem found."""
    if not path.is_dir():
        raise BundleError(path, "not a directory (give the model/ directory of a run)")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(path, f"{MANIFEST} is missing: this is not a finintel model bundle")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(path, f"{MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BundleError(path, f"{MANIFEST} does not describe a bundle")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            path,
            f"bundle format {manifest.get('format')!r} is not the supported format "
            f"{BUNDLE_FORMAT}; refit the model with this finintel version",
        )
    _check_versions(path, manifest)
    listed: dict[str, dict[str, Any]] = manifest["files"]
    present = {
        p.relative_to(path).as_posix()
        for p in path.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise BundleError(path, f"file {unlisted[0]} is not listed in the manifest")
    parts: dict[str, dict[str, bytes]] = {}
    for rel, meta in sorted(listed.items()):
        file = path / rel
        if not file.is_file():
            raise BundleError(path, f"file {rel} listed in the manifest is missing")
        data = file.read_bytes()
        if _sha256(data) != meta.get("sha256"):
            raise BundleError(
                path, f"file {rel} has been changed since the model was saved (checksum mismatch)"
            )
        part, _, name = rel.partition("/")
        parts.setdefault(part, {})[name] = data
    return Bundle(path, manifest, parts)


def _check_versions(path: Path, manifest: Mapping[str, Any]) -> None:
    saved = manifest.get("libraries") or {}
    installed = library_versions()
    for name in PINNED_LIBRARIES:
        if saved.get(name) and installed.get(name) and saved[name] != installed[name]:
            raise BundleError(
                path,
                f"saved with {name} {saved[name]} but {installed[name]} is installed; install "
                f"{name}=={saved[name]} or refit the model",
            )


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith(".") or name == MANIFEST:
        raise ValueError(f"invalid bundle file name {name!r}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished `tmp` directory to `target`, replacing an older bundle."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{tmp.name}")
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
