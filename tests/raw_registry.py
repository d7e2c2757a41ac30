"""The registry seen from outside the product, on either backend: what an attacker with write
access to the database does, and every byte it holds (to show a secret is not among them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text

from storage.db import make_engine


def registry_url(root: Path) -> str:
    """The URL ``Workspace.open(root)`` uses (UNPROMPT_DB_URL, else the workspace's file)."""
    return os.environ.get("UNPROMPT_DB_URL") or f"sqlite:///{root / 'registry.db'}"


def execute(root: Path, *statements: str | tuple[str, dict[str, Any]]) -> None:
    """Run statements in one transaction, bypassing the product's write lock."""
    engine = make_engine(registry_url(root))
    try:
        with engine.begin() as connection:
            for statement in statements:
                sql, params = statement if isinstance(statement, tuple) else (statement, {})
                connection.execute(text(sql), params)
    finally:
        engine.dispose()


def rows(root: Path, query: str) -> list[tuple]:
    engine = make_engine(registry_url(root))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def database_bytes(root: Path) -> bytes:
    """Everything the registry stores: the SQLite file, or every row of every table as text."""
    url = registry_url(root)
    if url.startswith("sqlite"):
        return (root / "registry.db").read_bytes()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            dump = [str(row[0]) for table in tables
                    for row in connection.execute(text(f"SELECT t::text FROM {table} t"))]
    finally:
        engine.dispose()
    return "\n".join(dump).encode()


def empty_registry(root: Path) -> str:
    """A registry with no schema at all (for migration tests); its URL."""
    url = registry_url(root)
    if url.startswith("sqlite"):
        root.mkdir(parents=True, exist_ok=True)
        return url
    execute(root, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    return url


def copy_rows(source_url: str, target_url: str) -> None:
    """Every row of a registry into a migrated, empty one (another backend, say), then the
    id sequences past the copied ids: a registry built once, reused on PostgreSQL."""
    from storage.models import Base

    source, target = make_engine(source_url), make_engine(target_url)
    try:
        with source.connect() as reading, target.begin() as writing:
            for table in Base.metadata.sorted_tables:
                rows = [dict(row._mapping) for row in reading.execute(
                    table.select().order_by(*table.primary_key.columns))]
                if rows:
                    writing.execute(table.insert(), rows)
                _restart_ids(writing, table)
    finally:
        source.dispose()
        target.dispose()


def _restart_ids(connection, table) -> None:  # noqa: ANN001
    if connection.dialect.name != "postgresql" or "id" not in table.c \
            or not table.c.id.autoincrement or table.c.id.type.python_type is not int:
        return
    connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"coalesce(max(id), 0) + 1, false) FROM {table.name}"))
