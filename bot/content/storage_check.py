"""Whether `storage.url` names a place the bot can keep its database, asked before start-up.

The store itself finds out only when it opens the database, deep inside start-up, and then the
operator sees a long SQLAlchemy traceback instead of the key, the line and the fix. `bot check`
and every command that opens the configured store ask here first.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from bot.content.config import Config
from bot.content.problems import Problem, line_of_key, shown

KEY = "storage.url"
SQLITE_HEADER = b"SQLite format 3\x00"
#: how long `bot check` and start-up wait for a database server before calling it unreachable
CONNECT_TIMEOUT_SECONDS = 3


def storage_problems(config: Config) -> list[Problem]:
    """What stops the bot from opening or writing its database, each with the key, line and fix.

    SQLite: the file's folder must exist or be creatable, and be writable (SQLite writes its
    journal beside the file); the path must not be a folder; an existing file must be readable,
    writable and an SQLite database. A server (PostgreSQL) must answer within a few seconds.
    Nothing is created: start-up makes the folder and the database.
    """
    url = sa.engine.make_url(config.storage_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return []
        typed = config.storage.url.rstrip("/")
        return [_problem(config, *found) for found in _sqlite_problems(Path(database), typed)]
    if url.get_backend_name() == "postgresql":
        return [_problem(config, *found) for found in _server_problems(url)]
    return []


def _problem(config: Config, message: str, fix: str) -> Problem:
    return Problem(config.path, line_of_key(config.path, KEY), f"{KEY}: {message}", fix)


def _sqlite_problems(path: Path, typed: str) -> list[tuple[str, str]]:
    """`typed` is the URL as written in config.toml, for fixes the reader can paste."""
    where = shown(path)
    try:
        exists = path.exists()
        is_folder = path.is_dir()
    except OSError as exc:
        return [(f"cannot look at {where} ({exc.strerror})", _writable_fix())]
    if is_folder:
        return [
            (
                f"{where} is a folder, not a database file",
                f'name a file inside it, e.g. url = "{typed}/bot.sqlite3"',
            )
        ]
    if not exists:
        return _creatable(path)
    folder = path.parent
    if not os.access(path, os.R_OK | os.W_OK):
        return [(f"{where} cannot be read and written by this user", _writable_fix())]
    if not os.access(folder, os.W_OK | os.X_OK):
        return [
            (
                f"the folder {shown(folder)} is not writable by this user, and SQLite writes its "
                "journal beside the database",
                _writable_fix(),
            )
        ]
    return _is_sqlite(path)


def _creatable(path: Path) -> list[tuple[str, str]]:
    """A database that does not exist yet: its nearest existing folder must take new files."""
    ancestor = path.parent
    try:
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        is_folder = ancestor.is_dir()
    except OSError as exc:
        return [(f"cannot look at {shown(ancestor)} ({exc.strerror})", _writable_fix())]
    if not is_folder:
        return [
            (
                f"cannot create {shown(path)}: {shown(ancestor)} is a file, not a folder",
                'use a path inside a folder, e.g. url = "sqlite:///var/bot.sqlite3"',
            )
        ]
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return [
            (
                f"cannot create {shown(path)}: the folder {shown(ancestor)} is not writable by "
                "this user",
                _writable_fix(),
            )
        ]
    return []


def _is_sqlite(path: Path) -> list[tuple[str, str]]:
    """An existing file must be an SQLite database (an empty file is one still to be made)."""
    fix = (
        "move that file away (the bot creates its own database), or name another file, "
        'e.g. url = "sqlite:///var/bot.sqlite3"'
    )
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        return [(f"cannot read {shown(path)} ({exc.strerror})", _writable_fix())]
    if header and header != SQLITE_HEADER:
        return [(f"{shown(path)} is not an SQLite database", fix)]
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=1)
        try:
            connection.execute("PRAGMA schema_version").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return [(f"cannot open {shown(path)} as an SQLite database ({exc})", fix)]
    return []


def _writable_fix() -> str:
    return (
        "let the user running the bot write there (chown or chmod), or point it at a folder "
        'it can write, e.g. url = "sqlite:///var/bot.sqlite3"'
    )


def _server_problems(url: sa.engine.URL) -> list[tuple[str, str]]:
    shown_url = url.render_as_string(hide_password=True)
    # libpq's own timeout; other drivers name theirs differently and get their default
    libpq = url.get_driver_name() in ("psycopg", "psycopg2")
    engine = sa.create_engine(
        url,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS} if libpq else {},
        poolclass=sa.pool.NullPool,
    )
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return [
            (
                f"cannot connect to the database server at {shown_url} ({reason})",
                "start the server, or correct the host, port, user, password and database "
                f"name in the URL (the check waits {CONNECT_TIMEOUT_SECONDS} s for an answer)",
            )
        ]
    finally:
        engine.dispose()
    return []
