"""Backups of the database and restoring one: `bot db backup PATH`, `bot db restore PATH`.

SQLite: SQLite's online backup API, which copies a consistent snapshot while workers keep
writing (readers never block writers in WAL mode); the copy is one self-contained file, checked
with `PRAGMA integrity_check` before it takes its name. PostgreSQL: `pg_dump --format=custom`
and `pg_restore`, PostgreSQL's own tools, which must be installed on the machine that runs the
command (Debian: postgresql-client, the server's major version or newer).

A restore replaces everything in the configured database. It refuses while a worker is running
(a scheduler lease that has not run out), and first saves what it replaces next to the backup, so
a restore of the wrong file loses nothing.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bot.store.migrate import current_revision, head_revision, known_revisions, upgrade
from bot.store.schema import conversations, leases, messages, outbox, tickets

#: what a summary counts, as a team reads it
COUNTED = {
    "conversations": conversations,
    "messages": messages,
    "tickets": tickets,
    "outbox": outbox,
}


class BackupError(Exception):
    """Why a backup or restore was not done; the database and the files are as they were."""


@dataclass(frozen=True)
class Summary:
    """What a database (or a backup of one) holds: its schema revision and row counts."""

    revision: str | None
    counts: dict[str, int]

    def __str__(self) -> str:
        rows = ", ".join(f"{name} {n:,}" for name, n in self.counts.items())
        return f"revision {self.revision or 'none'}: {rows}"


def summarise(engine: sa.Engine) -> Summary:
    with engine.connect() as conn:
        counts = _counts(conn)
    return Summary(current_revision(engine), counts)


def _counts(conn: sa.Connection) -> dict[str, int]:
    return {
        name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        for name, table in COUNTED.items()
    }


def backup(url: str, target: Path) -> Summary:
    """Write a backup of the database at `url` to `target` (which must not exist yet), and
    return what the backup holds: on SQLite counted in the copy, on PostgreSQL in the snapshot
    that pg_dump copies."""
    if target.exists():
        raise BackupError(f"{target} exists; name a new file (a backup never replaces one)")
    try:  # a nightly job's first run: the backups' folder is made as `mkdir -p` would
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot make the folder {target.parent}: {exc.strerror or exc}") from exc
    partial = target.with_name(f".{target.name}.partial")
    try:
        if _is_sqlite(url):
            summary = _backup_sqlite(_sqlite_path(url), partial)
        else:
            summary = _backup_postgres(url, partial)
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    return summary


def restore(url: str, source: Path, now: datetime | None = None) -> tuple[Summary, Path | None]:
    """Replace the database at `url` with the backup in `source`; returns what the database
    now holds and where its previous content was saved (None when it was empty or missing)."""
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    engine = sa.create_engine(url)
    try:
        _refuse_while_running(engine, now or datetime.now(UTC))
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
        if _is_sqlite(url):
            _check_sqlite_backup(source)
            saved = _save_current_sqlite(_sqlite_path(url), source, stamp)
            _restore_sqlite(source, _sqlite_path(url))
        else:
            saved = _save_current_postgres(url, engine, source, stamp)
            engine.dispose()  # pg_restore drops tables: no connection of ours may hold them
            _run(["pg_restore", "--list", str(source)], url, "is not a pg_dump archive")
            _run(
                [
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--no-privileges",
                    "--single-transaction",
                    "--exit-on-error",
                    "--dbname",
                    _libpq_url(url),
                    str(source),
                ],
                url,
                "could not be restored",
            )
        engine.dispose()
        upgrade(engine)  # a backup of an older release: to this release's schema
        with engine.begin() as conn:
            # who led the scheduler when the backup was taken: nobody runs on it now
            conn.execute(leases.delete())
        return summarise(engine), saved
    finally:
        engine.dispose()


# SQLite


def _is_sqlite(url: str) -> bool:
    return sa.make_url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str) -> Path:
    database = sa.make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up")
    return Path(database)


def _backup_sqlite(path: Path, target: Path) -> Summary:
    if not path.is_file():
        raise BackupError(f"no database at {path}")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # one step: a consistent snapshot, writers carry on (WAL)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        problem = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if problem != "ok":
            raise BackupError(f"the copy failed SQLite's integrity check: {problem}")
    finally:
        copy.close()
        source.close()
    engine = sa.create_engine(f"sqlite:///{target}")
    try:
        return summarise(engine)
    finally:
        engine.dispose()


def _check_sqlite_backup(source: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            problem = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            revision = (
                conn.execute("SELECT version_num FROM alembic_version").fetchone()
                if "alembic_version" in tables
                else None
            )
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} is not a SQLite backup of the bot ({exc})") from None
    if problem != "ok":
        raise BackupError(f"{source} failed SQLite's integrity check: {problem}")
    if revision is None or "messages" not in tables:
        raise BackupError(f"{source} is not a backup of the bot's database (no schema revision)")
    if revision[0] not in known_revisions():
        raise BackupError(
            f"{source} was made by a newer release (schema {revision[0]}, this release knows "
            f"up to {head_revision()}); install that release to restore it"
        )


def _save_current_sqlite(path: Path, source: Path, stamp: str) -> Path | None:
    if not path.is_file():
        return None
    saved = _unused_name(source, stamp, ".sqlite3")
    backup(f"sqlite:///{path}", saved)
    return saved


def _restore_sqlite(source: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    backup_conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    live = sqlite3.connect(path, timeout=30)
    try:
        backup_conn.backup(live)  # replaces every page, under SQLite's own lock
    finally:
        live.close()
        backup_conn.close()


# PostgreSQL


def _libpq_url(url: str) -> str:
    """The URL as libpq's tools take it: no SQLAlchemy driver, no password (that goes in the
    environment, not on a command line others can read)."""
    parsed = sa.make_url(url).set(drivername="postgresql", password=None)
    return parsed.render_as_string(hide_password=False)


def _run(command: list[str], url: str, failure: str) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(
            f"{command[0]} not found: install PostgreSQL's client tools (Debian: "
            "postgresql-client, the server's major version or newer)"
        )
    env = dict(os.environ)
    password = sa.make_url(url).password
    if password:
        env["PGPASSWORD"] = str(password)
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no detail"])[-1]
        raise BackupError(f"{command[0]}: the database {failure}: {detail}")


def _backup_postgres(url: str, target: Path) -> Summary:
    """pg_dump of one snapshot, exported by a transaction that counts the rows in it and stays
    open until the dump is written: the counts are those of the backup, not of a moment
    before or after it."""
    engine = sa.create_engine(url)
    try:
        revision = current_revision(engine)
        isolated = engine.execution_options(isolation_level="REPEATABLE READ")
        with isolated.begin() as conn:
            snapshot = str(conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one())
            counts = _counts(conn)
            _run(
                [
                    "pg_dump",
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    "--file",
                    str(target),
                    _libpq_url(url),
                ],
                url,
                "could not be dumped",
            )
    finally:
        engine.dispose()
    return Summary(revision, counts)


def _save_current_postgres(url: str, engine: sa.Engine, source: Path, stamp: str) -> Path | None:
    if current_revision(engine) is None:
        return None
    saved = _unused_name(source, stamp, ".dump")
    backup(url, saved)
    return saved


# both


def _unused_name(source: Path, stamp: str, suffix: str) -> Path:
    """Where a restore saves what it replaces: next to the backup, named by the time, and never
    a file that exists. Undoing a restore within the same second restores from a file of exactly
    the name the undo would otherwise save to."""
    candidate = source.with_name(f"before-restore-{stamp}{suffix}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = source.with_name(f"before-restore-{stamp}-{n}{suffix}")
    return candidate


def _refuse_while_running(engine: sa.Engine, now: datetime) -> None:
    try:
        with engine.connect() as conn:
            held = conn.execute(
                sa.select(leases.c.holder, leases.c.expires_at).where(leases.c.expires_at > now)
            ).first()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return  # no database or no schema yet: nothing is running on it
    if held is not None:
        raise BackupError(
            f"a worker is running on this database ({held.holder}); stop every `bot run` "
            f"first, then restore (a worker that was killed holds its lease until "
            f"{held.expires_at:%H:%M:%S} UTC)"
        )
