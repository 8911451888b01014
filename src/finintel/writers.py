"""Write results atomically: to a temporary file beside the target, then rename over it.

A crash mid-write leaves at most a `.tmp-*` file, never a complete-looking result.

Example:
    >>> import tempfile, json
    >>> out = Path(tempfile.mkdtemp()) / "a.json"
    >>> write_json(out, {"rows": 3})
    >>> json.loads(out.read_text())["rows"]
    3
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import duckdb

from finintel.sql import quote_literal


def _file_mode() -> int:
    """Permissions of a normal new file under the current umask (e.g. 0o644)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; it replaces `target` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{target.name}-", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(_FILE_MODE)  # mkstemp makes files private; results are ordinary files
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(target: Path, data: Any) -> None:
    """Write `data` as indented, key-sorted JSON."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_query(
    con: duckdb.DuckDBPyConnection,
    query: str,
    target: Path,
    fmt: Literal["csv", "parquet"],
) -> None:
    """Write the result of `query` to `target` as CSV (with header) or Parquet (zstd)."""
    options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet, COMPRESSION zstd"
    with atomic_path(target) as tmp:
        con.execute(f"COPY ({query}) TO {quote_literal(str(tmp))} ({options})")
