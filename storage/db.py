"""Database engine, sessions and migrations, on SQLite (embedded) or PostgreSQL (a team's).

One engine per process (STYLE.md). Reads never block writers, and write units are serial
(docs/design.md section 12):

- a session from ``sessions()`` reads one snapshot and is never committed (it rolls back on
  close): a plain deferred ``BEGIN`` in SQLite's WAL mode, ``REPEATABLE READ`` on PostgreSQL;
- a write unit, ``sessions.begin()``, takes the registry's write lock before it reads
  anything: ``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock
  (``pg_advisory_xact_lock``) under ``READ COMMITTED`` on PostgreSQL, so every read after it
  sees what the writer before committed. Concurrent writers, in any process on any machine,
  queue instead of failing half-way, and each audit-log append reads the head it chains to
  under that lock (the chain never forks). Migrations write the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import WorkspaceError

MIGRATIONS = Path(__file__).with_name("migrations")
WRITE_OPTION = "unprompt_write"
WRITE_LOCK = 0x756E70726F6D7074  # 'unprompt': the advisory lock of the registry's writers
WAIT_S = 30  # how long a writer queues for the lock before it gives up (both backends)


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``; SQLite is tuned for a desktop workspace."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we ship
    if parsed.get_backend_name() == "postgresql":
        return _postgresql_engine(parsed)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    engine = create_engine(parsed, connect_args={"timeout": WAIT_S,
                                                 "check_same_thread": False})
    _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={WAIT_S * 1000}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _postgresql_engine(url) -> Engine:  # noqa: ANN001 - sqlalchemy.URL
    """A server that cannot be reached fails in seconds; a writer waits ``WAIT_S`` at most."""
    args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
    options = url.query.get("options", "")
    args["options"] = f"{options} -c lock_timeout={WAIT_S * 1000}".strip()
    engine = create_engine(url, pool_pre_ping=True, connect_args=args)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(WRITE_OPTION, False):
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    return engine


def hold_write_lock(session: Session) -> None:
    """Take the registry's write lock in ``session``'s transaction, where it is not held yet
    (a write unit already holds it; taking it again is harmless). On SQLite the first write
    takes the file's lock, and a transaction whose reads went stale meanwhile fails there."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})"))


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def writer(engine: Engine) -> Engine:
    """The engine whose transactions take the registry's write lock at BEGIN."""
    options = {WRITE_OPTION: True}
    if not is_sqlite(engine):
        options["isolation_level"] = "READ COMMITTED"  # each read after the lock is fresh
    return engine.execution_options(**options)


def reader(engine: Engine) -> Engine:
    """The engine whose transactions read one snapshot (SQLite's WAL gives it anyway)."""
    if is_sqlite(engine):
        return engine
    return engine.execution_options(isolation_level="REPEATABLE READ")


class Sessions(sessionmaker[Session]):
    """``sessions()`` for reading (one snapshot, never blocks a writer), ``sessions.begin()``
    for one write unit (takes the write lock, committed at the end of the block)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(bind=reader(engine), expire_on_commit=False)
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


def registry_name(engine: Engine) -> str:
    """The registry as an operator can find it: a file, or a server URL without password."""
    if is_sqlite(engine):
        return engine.url.database or "(in memory)"
    return engine.url.render_as_string(hide_password=True)


def check_reachable(engine: Engine) -> None:
    """Connect once to a server registry (a SQLite file needs its folder first)."""
    if not is_sqlite(engine):
        with engine.connect():
            pass


def upgrade_to_head(engine: Engine) -> None:
    """Apply every pending migration (an empty database gets the whole schema); refuse a
    registry that a newer version of Unprompt migrated further than this one knows."""
    config = alembic_config()
    with writer(engine).begin() as connection:
        _refuse_unknown_revision(connection, ScriptDirectory.from_config(config), engine)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _refuse_unknown_revision(connection: Connection, script: ScriptDirectory,
                             engine: Engine) -> None:
    known = {revision.revision for revision in script.walk_revisions()}
    found = MigrationContext.configure(connection).get_current_heads()
    unknown = [revision for revision in found if revision not in known]
    if unknown:
        raise WorkspaceError(
            f"the registry {registry_name(engine)} is at migration {', '.join(unknown)}, "
            f"which this version of Unprompt does not know (its newest is "
            f"{script.get_current_head()}): it was written by a newer version of Unprompt; "
            "open it with that version")


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()
