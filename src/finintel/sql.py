"""The SQL toolbox every step shares: the engine connection, quoting and error text.

Example:
    >>> con = connect()
    >>> text, column = quote_literal("it's"), quote_ident("a b")
    >>> con.sql(f"SELECT {text} AS {column}").fetchall()
    [("it's",)]
"""

from __future__ import annotations

import duckdb


def connect(
    threads: int | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory engine connection with insertion order preserved.

    The engine's own progress bar is off: the command line shows its own progress, and `-q`
    must mean silence.

    Example:
        >>> connect().execute("select 1").fetchone()
        (1,)
    """
    con = duckdb.connect(":memory:")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
    return con


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL: `quote_ident('a"b')` gives `"a""b"`."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string literal for SQL: `quote_literal("it's")` gives `'it''s'`."""
    return "'" + value.replace("'", "''") + "'"


def first_line(exc: BaseException) -> str:
    """The first line of an engine error, without its category prefix."""
    text = str(exc).strip()
    for prefix in ("Invalid Input Error: ", "IO Error: ", "Binder Error: ", "Conversion Error: "):
        text = text.removeprefix(prefix)
    return text.splitlines()[0] if text else type(exc).__name__
