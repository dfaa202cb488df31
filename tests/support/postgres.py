"""This run's own PostgreSQL database, on the server BOT_TEST_POSTGRES_URL names.

Each run (each pytest-xdist worker) creates a database with a random name, `bot_test_<hex>`,
and drops it at the end, so two runs on one machine never empty each other's tables. The
database named in the URL is only connected to, to create and drop the run's own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

SERVER_URL = os.environ.get(
    "BOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def shown(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def unreachable() -> str | None:
    """Why the server cannot be used, or None when it can."""
    try:
        engine = sa.create_engine(SERVER_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to reach the server
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def require_server() -> None:
    """Skip without PostgreSQL, except in CI (CI=true), where it must be there."""
    problem = unreachable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {shown(SERVER_URL)} is required in CI: {problem}")
        pytest.skip(f"no PostgreSQL at {shown(SERVER_URL)} ({problem}); set BOT_TEST_POSTGRES_URL")


def create_database() -> str:
    """A new, empty database for this run; its URL."""
    name = f"bot_test_{secrets.token_hex(6)}"
    engine = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the run's database, closing what is still connected to it (a killed worker's)."""
    name = sa.make_url(url).database
    engine = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def empty_postgres(engine: sa.Engine) -> None:
    """Drop everything the previous test left, `alembic_version` included."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))


def initdb() -> Path | None:
    """PostgreSQL's own initdb (Debian's /usr/lib/postgresql/N/bin), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1]
    on_path = shutil.which("initdb")
    return Path(on_path) if on_path else None


class PrivateCluster:
    """A PostgreSQL server of the test's own, in a temporary folder, that the test may stop,
    restart or kill without touching the machine's server (other tests use it). As root it runs
    as the `postgres` user, since initdb and the server refuse root."""

    def __init__(self, folder: Path, port: int) -> None:
        binary = initdb()
        assert binary is not None
        self.bin = binary.parent
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/bot"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.chown(folder, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=timeout, cwd=self.folder
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")

    def create(self) -> str:
        """initdb, start, and a database `bot`; its URL."""
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self.start()
        engine = sa.create_engine(
            self.url.replace("/bot", "/postgres"), isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE bot"))
        engine.dispose()
        return self.url

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-l",
            str(self.folder / "server.log"),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def require_initdb() -> None:
    """Skip without PostgreSQL's initdb, except in CI (CI=true), where it must be there."""
    if initdb() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's initdb is required in CI (apt install postgresql)")
        pytest.skip("no initdb: install PostgreSQL's server binaries to run a private cluster")
