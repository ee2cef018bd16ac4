"""Multi-row writes (the tracking ingest, the outbox): one statement per table and batch.

* SQLite: ``executemany`` of a one-row statement, or one multi-row ``VALUES`` statement per
  500 rows when rows must come back (``RETURNING``).
* PostgreSQL: ``INSERT ... SELECT ... FROM unnest(%b, ...)`` with one binary array per column,
  so the statement text (and the driver's parsing of it) does not grow with the batch and no
  value is escaped into text.

Values go through the columns' own SQLAlchemy bind processors (``UTCDateTime``, ``JSON``), so
the stored values are exactly what a Core or ORM insert would write.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, Connection, Integer, Table
from sqlalchemy.types import TypeDecorator

_Processor = Callable[[Any], Any] | None
_processors: dict[tuple[str, str, str], _Processor] = {}
_SQLITE_CHUNK = 500


def _processor(dialect: Any, table: Table, column: Column[Any]) -> _Processor:
    key = (dialect.name, table.name, column.name)
    if key not in _processors:
        # the dialect's implementation of the type (as Core uses it), e.g. SQLite's DATETIME
        # storage format under UTCDateTime
        _processors[key] = column.type.dialect_impl(dialect).bind_processor(dialect)
    return _processors[key]


def _pg_type(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, JSON):
        return "text"  # serialised by the JSON processor, cast back to json in the SELECT
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, BigInteger | Integer):
        return "bigint"
    if kind.__class__.__name__ in ("DateTime", "DATETIME", "TIMESTAMP"):
        return "timestamptz" if getattr(kind, "timezone", False) else "timestamp"
    return "text"


def processed(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    serialized: Collection[str] = (),
) -> list[tuple[Any, ...]]:
    """Rows (tuples in ``columns`` order) converted by the columns' bind processors (JSON
    columns named in ``serialized`` hold JSON text already). Values of scalar columns repeat
    within a batch (one receive time, close event times), so each distinct one is converted
    once."""
    todo: list[tuple[int, Callable[[Any], Any], dict[Any, Any] | None]] = []
    for i, name in enumerate(columns):
        if name in serialized:
            continue
        column = table.c[name]
        proc = _processor(conn.dialect, table, column)
        if proc is not None:
            todo.append((i, proc, None if _is_json(column) else {}))
    if not todo:
        return [tuple(row) for row in rows]
    out = []
    for row in rows:
        values = list(row)
        for i, proc, memo in todo:
            value = values[i]
            if value is None:
                continue
            if memo is None:
                values[i] = proc(value)
                continue
            done = memo.get(value)
            if done is None:
                done = memo[value] = proc(value)
            values[i] = done
        out.append(tuple(values))
    return out


def insert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    conflict: Sequence[str] | None = None,
    returning: str | None = None,
    serialized: Collection[str] = (),
) -> list[Any]:
    """Insert ``rows`` (tuples in ``columns`` order) in one statement per batch; with
    ``conflict``, rows that clash with that unique key are skipped (``ON CONFLICT DO
    NOTHING``). ``serialized``: JSON columns given as JSON text (serialised before the
    transaction). Returns the ``returning`` column of the inserted rows (else ``[]``)."""
    if not rows:
        return []
    values = processed(conn, table, columns, rows, serialized)
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    tail = ""
    if conflict:
        tail += f" ON CONFLICT ({', '.join(quote(c) for c in conflict)}) DO NOTHING"
    if returning:
        tail += f" RETURNING {quote(returning)}"
    target = quote(table.name)
    if conn.dialect.name == "postgresql":
        cols = [table.c[c] for c in columns]
        arrays = ", ".join(f"%b::{_pg_type(c)}[]" for c in cols)
        exprs = ", ".join(
            f"u.{quote(c.name)}::json" if _is_json(c) else f"u.{quote(c.name)}" for c in cols
        )
        sql = f"INSERT INTO {target} ({names}) SELECT {exprs} FROM unnest({arrays}) AS u({names})"
        params = tuple([row[i] for row in values] for i in range(len(columns)))
        result = conn.exec_driver_sql(sql + tail, params)
        return [r[0] for r in result.fetchall()] if returning else []
    one = "(" + ", ".join("?" * len(columns)) + ")"
    if not returning:
        conn.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES {one}{tail}", values)
        return []
    out: list[Any] = []
    for start in range(0, len(values), _SQLITE_CHUNK):
        chunk = values[start : start + _SQLITE_CHUNK]
        sql = f"INSERT INTO {target} ({names}) VALUES {', '.join([one] * len(chunk))}{tail}"
        flat = tuple(v for row in chunk for v in row)
        out.extend(r[0] for r in conn.exec_driver_sql(sql, flat).fetchall())
    return out


def _is_json(column: Column[Any]) -> bool:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    return isinstance(kind, JSON)
