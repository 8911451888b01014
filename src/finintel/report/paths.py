"""Input file names as the report, summary.json and the dashboard show them: never absolute.

A report is shared beyond the machine that made it, so it names no folder of that machine. An
input file is shown, in this order of preference:

1. relative to the run folder, when the two share a folder below the file system's root
   (`../bank/customers.parquet` for a run in `out/run` reading `out/bank/`);
2. as the run's config wrote it, when that is a relative path (`base_dir` joined with the
   table's `path`, both as written in the config);
3. by its file name alone.

Example:
    >>> display_path("/data/x/out/bank/c.parquet", Path("/data/x/out/run"))
    '../bank/c.parquet'
    >>> display_path("/srv/in/c.csv", Path("/tmp/run"), ["../../in/c.csv"])
    '../../in/c.csv'
    >>> display_path("/srv/in/c.csv", Path("/tmp/run"))
    'c.csv'
    >>> display_path("data/c.csv", Path("/tmp/run"))
    'data/c.csv'
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any


def display_path(path: str, run_dir: Path, config_paths: Iterable[str] = ()) -> str:
    """`path` without any absolute folder of this machine (see the module docstring)."""
    if not path:
        return path
    candidate = PurePosixPath(path.replace(os.sep, "/"))
    if not candidate.is_absolute():
        return candidate.as_posix()
    root = Path(run_dir).resolve()
    common = os.path.commonpath([str(candidate), str(root)])
    if common not in ("", os.sep, "/"):
        return Path(os.path.relpath(str(candidate), str(root))).as_posix()
    for written in config_paths:
        tail = [p for p in PurePosixPath(written).parts if p not in ("..", ".")]
        if tail and candidate.parts[-len(tail) :] == tuple(tail):
            return written
    return candidate.name


def config_paths(config: Mapping[str, Any] | None) -> list[str]:
    """The relative input paths a run's config wrote (`base_dir` joined with each `path`).

    Example:
        >>> config_paths({"base_dir": "../data", "customers": {"path": "c.csv"},
        ...               "labels": {"path": "/abs/l.csv"}, "loans": None})
        ['../data/c.csv']
    """
    if not config:
        return []
    base = str(config.get("base_dir") or "")
    found: list[str] = []
    sections = [s for s in config.values() if isinstance(s, Mapping)]
    named = config.get("sources")  # named sources: {name: {"path": ...}}
    if isinstance(named, Mapping):
        sections += [s for s in named.values() if isinstance(s, Mapping)]
    for section in sections:
        path = section.get("path")
        if not isinstance(path, str) or not path:
            continue
        joined = posixpath.normpath(posixpath.join(base, path)) if base else path
        if not PurePosixPath(joined).is_absolute() and joined not in found:
            found.append(joined)
    return found
