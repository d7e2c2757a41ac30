"""Database engine, sessions and migrations.

One engine per process (STYLE.md). SQLite gets WAL, foreign keys and a busy timeout
through a ``connect`` event. Reads never block writers: a session from ``sessions()`` starts a
plain (deferred) ``BEGIN``, which in WAL mode reads a snapshot without taking the write lock
and is never committed (it rolls back on close). A write unit, ``sessions.begin()``, starts
with ``BEGIN IMMEDIATE``: it takes the write lock before it reads anything, so concurrent
writers queue (busy timeout) instead of failing half-way, and each audit-log append reads the
head it chains to under that lock (the chain stays serial). Migrations write the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``; SQLite is tuned for a desktop workspace."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # noqa: ANN001
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


WRITE_OPTION = "unprompt_write"


def writer(engine: Engine) -> Engine:
    """The engine whose transactions take the write lock at BEGIN (SQLite)."""
    return engine.execution_options(**{WRITE_OPTION: True})


class Sessions(sessionmaker[Session]):
    """``sessions()`` for reading (deferred BEGIN, never blocks a writer), ``sessions.begin()``
    for one write unit (BEGIN IMMEDIATE, committed at the end of the block)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(bind=engine, expire_on_commit=False)
        self._writer = writer(engine)

    @contextmanager
    def begin(self) -> Iterator[Session]:  # type: ignore[override]
        with self(bind=self._writer) as session, session.begin():
            yield session


def make_sessionmaker(engine: Engine) -> Sessions:
    return Sessions(engine)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Apply every pending migration (an empty database gets the whole schema)."""
    config = alembic_config()
    with writer(engine).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()
