"""Read source files into the engine as raw relations, with a row number on every record.

CSV and whitespace-separated text are read as text (every column VARCHAR) so that a value that
does not parse can be quarantined with its raw text; Parquet keeps its types and is scanned in
place. Every relation gets `_row`, the 1-based record number in its file (header excluded), so a
rejected row can be found again. CSV lines with the wrong number of fields are returned as
`malformed` records instead of failing the read. Files that cannot be data at all (missing,
empty, binary, badly encoded, undetectable dialect) raise `InputFileError` naming the file.

Example:
    >>> from finintel.sql import connect
    >>> con = connect()
    >>> spec = SourceSpec(path="customers.csv")
    >>> src = read_source(con, spec, Path("."), "raw_c")  # doctest: +SKIP
    >>> src.n_rows, src.columns[:2]  # doctest: +SKIP
    (500, ['user_id', 'age'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from finintel.config import SourceSpec
from finintel.errors import InputFileError
from finintel.sql import first_line, quote_ident, quote_literal

SNIFF_BYTES = 64 * 1024
NATIVE_ENCODINGS = ("utf-8", "utf-16", "latin-1")
_EXTENSION_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}


@dataclass(frozen=True)
class MalformedRecord:
    """A CSV record that could not be split into the header's columns."""

    row: int
    text: str
    problem: str


@dataclass(frozen=True)
class RawSource:
    """A file loaded into the engine: the relation's name, its columns and its record count."""

    path: str
    relation: str
    columns: list[str]
    n_rows: int
    malformed: list[MalformedRecord] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        """Records in the file: the ones read plus the malformed ones."""
        return self.n_rows + len(self.malformed)


def detect_format(spec: SourceSpec) -> str:
    """The format to read a file with: the configured one, else guessed from the extension."""
    if spec.format != "auto":
        return spec.format
    return _EXTENSION_FORMATS.get(Path(spec.path).suffix.lower(), "csv")


def resolve(path: str, base: Path) -> Path:
    """A config path made absolute against the config's base directory."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def read_source(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, base: Path, relation: str
) -> RawSource:
    """Load one file as relation `relation` (a table, or a view for Parquet) with `_row`."""
    path = resolve(spec.path, base)
    fmt = detect_format(spec)
    _check_file(path, fmt, spec.encoding)
    try:
        if fmt == "parquet":
            return _read_parquet(con, path, relation)
        if fmt == "json":
            return _read_json(con, path, relation)
        if fmt == "whitespace":
            return _read_whitespace(con, path, relation, spec)
        return _read_csv(con, path, relation, spec)
    except duckdb.Error as exc:
        raise InputFileError(path, f"cannot be read as {fmt}: {first_line(exc)}") from None


def _check_file(path: Path, fmt: str, encoding: str) -> None:
    if not path.exists():
        raise InputFileError(path, "file not found")
    if not path.is_file():
        raise InputFileError(path, "is not a regular file")
    if path.stat().st_size == 0:
        raise InputFileError(path, "the file is empty (0 bytes)")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if fmt == "parquet":
        if not head.startswith(b"PAR1"):
            raise InputFileError(path, "is not a Parquet file (no PAR1 magic bytes at the start)")
        return
    if encoding.lower() not in NATIVE_ENCODINGS:
        raise InputFileError(
            path, f"encoding {encoding!r} is not supported; use one of {list(NATIVE_ENCODINGS)}"
        )
    if encoding.lower() == "utf-16":
        return
    if b"\x00" in head:
        raise InputFileError(
            path,
            f"looks like a binary file, not {fmt} text (it contains NUL bytes near the start); "
            "check that the path points at the data file",
        )
    if encoding.lower() == "utf-8":
        _check_utf8(path, head)


def _check_utf8(path: Path, head: bytes) -> None:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a character cut by the sniff window
            return
        line = head[: exc.start].count(b"\n") + 1
        raise InputFileError(
            path,
            f"is not valid UTF-8 (line {line}, byte {exc.start}); if the file uses another "
            'encoding, set encoding = "latin-1" (or "utf-16") for it in the config',
        ) from None


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, relation: str) -> RawSource:
    scan = f"read_parquet({quote_literal(str(path))}, file_row_number = true)"
    con.execute(
        f"CREATE OR REPLACE VIEW {quote_ident(relation)} AS "
        f"SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS _row FROM {scan}"
    )
    return _describe(con, path, relation)


def _read_json(con: duckdb.DuckDBPyConnection, path: Path, relation: str) -> RawSource:
    con.execute(
        f"CREATE OR REPLACE TABLE {quote_ident(relation + '__data')} AS "
        f"SELECT * FROM read_json_auto({quote_literal(str(path))})"
    )
    _numbered_view(con, relation, shift_table=None)
    return _describe(con, path, relation)


def _read_csv(
    con: duckdb.DuckDBPyConnection, path: Path, relation: str, spec: SourceSpec
) -> RawSource:
    rejects = f"{relation}__rejects"
    options = [
        "all_varchar = true",
        f"header = {str(spec.header).lower()}",
        "store_rejects = true",
        f"rejects_table = {quote_literal(rejects)}",
        f"rejects_scan = {quote_literal(rejects + '_scan')}",
        f"encoding = {quote_literal(spec.encoding.lower())}",
    ]
    if spec.delimiter is not None:
        options.append(f"delim = {quote_literal(spec.delimiter)}")
    if spec.quote is not None:
        options.append(f"quote = {quote_literal(spec.quote)}")
    con.execute(
        f"CREATE OR REPLACE TABLE {quote_ident(relation + '__data')} AS "
        f"SELECT * FROM read_csv({quote_literal(str(path))}, {', '.join(options)})"
    )
    header_lines = 1 if spec.header else 0
    errors = con.execute(
        f"SELECT line, error_type, csv_line, error_message FROM {quote_ident(rejects)} "
        "ORDER BY line"
    ).fetchall()
    bad_encoding = [e for e in errors if e[1] == "INVALID ENCODING"]
    if bad_encoding:
        raise InputFileError(
            path,
            f"line {bad_encoding[0][0]} is not valid {spec.encoding}; if the file uses another "
            'encoding, set encoding = "latin-1" (or "utf-16") for it in the config',
        )
    malformed = [
        MalformedRecord(int(line) - header_lines, str(text), str(message))
        for line, _kind, text, message in errors
    ]
    shift_table = None
    if malformed:
        shift_table = f"{relation}__shift"
        # g = good records before the k-th malformed one; good record r comes after it if g <= r.
        con.execute(
            f"CREATE OR REPLACE TABLE {quote_ident(shift_table)} AS "
            "SELECT row - k - 1 AS good_before, max(k + 1) AS shift FROM "
            "(SELECT unnest($rows) AS row, generate_subscripts($rows, 1) - 1 AS k) "
            "GROUP BY good_before",
            {"rows": [m.row for m in malformed]},
        )
    _numbered_view(con, relation, shift_table)
    return _describe(con, path, relation, malformed)


def _read_whitespace(
    con: duckdb.DuckDBPyConnection, path: Path, relation: str, spec: SourceSpec
) -> RawSource:
    lines = f"{relation}__lines"
    con.execute(
        f"CREATE OR REPLACE TABLE {quote_ident(lines)} AS SELECT "
        "regexp_split_to_array(trim(line), '\\s+') AS fields FROM "
        f"read_csv({quote_literal(str(path))}, columns = {{'line': 'VARCHAR'}}, "
        "delim = '\\x1f', header = false, quote = '', escape = '', "
        f"encoding = {quote_literal(spec.encoding.lower())}) WHERE trim(line) <> ''"
    )
    found = con.execute(f"SELECT fields FROM {quote_ident(lines)} LIMIT 1").fetchall()
    first = found[0] if found else None
    if first is None:
        raise InputFileError(path, "the file has no lines")
    if spec.header:
        names = [str(n) for n in first[0]]
        skip = "OFFSET 1"
    else:
        names = [f"column{i}" for i in range(len(first[0]))]
        skip = ""
    width = len(names)
    picks = ", ".join(f"fields[{i + 1}] AS {quote_ident(n)}" for i, n in enumerate(names))
    con.execute(
        f"CREATE OR REPLACE TABLE {quote_ident(relation + '__data')} AS "
        f"SELECT {picks}, len(fields) AS __width FROM "
        f"(SELECT fields FROM {quote_ident(lines)} {skip})"
    )
    bad = con.execute(
        f"SELECT rowid + 1, __width FROM {quote_ident(relation + '__data')} "
        f"WHERE __width <> {width} ORDER BY rowid"
    ).fetchall()
    if bad:
        raise InputFileError(
            path,
            f"record {bad[0][0]} has {bad[0][1]} fields but the header has {width}; "
            "whitespace-separated files need the same number of fields on every line",
        )
    con.execute(f"ALTER TABLE {quote_ident(relation + '__data')} DROP COLUMN __width")
    _numbered_view(con, relation, shift_table=None)
    return _describe(con, path, relation)


def _numbered_view(con: duckdb.DuckDBPyConnection, relation: str, shift_table: str | None) -> None:
    data = quote_ident(relation + "__data")
    if shift_table is None:
        body = f"SELECT *, rowid + 1 AS _row FROM {data}"
    else:
        body = (
            f"SELECT d.* EXCLUDE (__r), d.__r + 1 + coalesce(s.shift, 0) AS _row "
            f"FROM (SELECT *, rowid AS __r FROM {data}) d "
            f"ASOF LEFT JOIN {quote_ident(shift_table)} s ON d.__r >= s.good_before"
        )
    con.execute(f"CREATE OR REPLACE VIEW {quote_ident(relation)} AS {body}")


def _describe(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    relation: str,
    malformed: list[MalformedRecord] | None = None,
) -> RawSource:
    columns = [str(row[0]) for row in con.execute(f"DESCRIBE {quote_ident(relation)}").fetchall()]
    columns = [c for c in columns if c != "_row"]
    count = con.execute(f"SELECT count(*) FROM {quote_ident(relation)}").fetchall()[0]
    n_rows = int(count[0]) if count else 0
    malformed = malformed or []
    if n_rows and len(malformed) > n_rows:
        raise InputFileError(
            path,
            f"{len(malformed)} of {n_rows + len(malformed)} records do not have the header's "
            f"{len(columns)} fields (first: record {malformed[0].row}: {malformed[0].problem}); "
            "the delimiter or quote character is probably wrong",
        )
    return RawSource(str(path), relation, columns, n_rows, malformed)
