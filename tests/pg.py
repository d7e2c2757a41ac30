"""A throwaway PostgreSQL server for the tests, started from the system's binaries.

One server per test session, in a temporary folder, stopped and deleted afterwards.
PostgreSQL refuses to run as root, so as root (CI, these machines) it runs as the
``postgres`` system user (``runuser``). A migrated template database is made once;
each test gets a copy of it (``CREATE DATABASE ... TEMPLATE``), dropped after the test.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE = "unprompt_template"
SERVER_OPTIONS = "-c max_connections=300 -c listen_addresses=127.0.0.1"
THROWAWAY = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"  # tests only


def find_binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (newest version first), or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                        key=lambda p: _version(p.parent.name), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _version(name: str) -> float:
    try:
        return float(name)
    except ValueError:
        return 0.0


def missing_reason() -> str:
    """Why the PostgreSQL variants cannot run here ('' when they can)."""
    if find_binaries() is None:
        return ("the PostgreSQL server binaries are not installed (initdb, pg_ctl, postgres; "
                "Debian: apt-get install postgresql, or run `make install`)")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _has_user("postgres")):
        return "running as root without a 'postgres' system user and runuser to start the server"
    return ""


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclass
class PostgresServer:
    bindir: Path
    folder: Path
    port: int = 0
    durable: bool = False  # fsync on, as a real server (the benchmark); tests skip it
    _names: itertools.count = field(default_factory=itertools.count)

    @classmethod
    def start(cls, durable: bool = False) -> PostgresServer:
        bindir = find_binaries()
        assert bindir is not None, missing_reason()
        folder = Path(tempfile.mkdtemp(prefix="unprompt-pg-"))
        server = cls(bindir, folder, _free_port(), durable)
        try:
            server._init_and_start()
        except BaseException:
            server.stop()
            raise
        return server

    def _init_and_start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        data = self.folder / "data"
        self._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-N",
                  "-E", "UTF8", "--locale=C")
        options = f"{SERVER_OPTIONS} -p {self.port} -k {self.folder}"
        if not self.durable:
            options = f"{options} {THROWAWAY}"
        self._run("pg_ctl", "-D", str(data), "-l", str(self.folder / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, statement: str) -> None:
        """One statement outside a transaction (CREATE / DROP DATABASE)."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(statement)

    def make_template(self) -> None:
        """A database migrated to head, copied for every test."""
        from storage.db import make_engine, upgrade_to_head

        self.execute(f"CREATE DATABASE {TEMPLATE}")
        engine = make_engine(self.url(TEMPLATE))
        try:
            upgrade_to_head(engine)
        finally:
            engine.dispose()

    def new_database(self, template: str | None = TEMPLATE) -> str:
        """A fresh database (a copy of the migrated template, or empty); its name."""
        name = f"test_{next(self._names)}"
        self.execute(f"CREATE DATABASE {name} TEMPLATE {template or 'template0'}")
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        data = self.folder / "data"
        try:
            if (data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
