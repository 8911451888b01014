"""Shared test helpers: write small input files and run validation on them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pytest

from finintel.config import FinintelConfig
from finintel.readers import connect
from finintel.validate import ValidationResult, validate

TODAY = date(2026, 11, 21)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write text to a file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def run_validate(
    cfg: FinintelConfig, base: Path
) -> tuple[duckdb.DuckDBPyConnection, ValidationResult]:
    con = connect()
    return con, validate(con, cfg, base, today=TODAY)


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return list(con.execute(sql).fetchall())
