"""`bot db`: the database schema, for operators who migrate before starting the workers (the
workers also migrate at start-up, under a lock, so this is optional), and its backups."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.content.config import Config


def db(config: Config, action: str, path: Path | None = None) -> int:
    """`upgrade`: migrate now and print the revision. `current`: print the database's revision
    and whether it is the head; exit 1 when it is not, so scripts can tell."""
    if action in ("backup", "restore"):
        assert path is not None
        return _backup(config, action, path)
    from bot.store.database import Store
    from bot.store.migrate import MigrationError, current_revision, head_revision, upgrade

    engine = Store(config.storage_url).engine
    try:
        if action == "upgrade":
            print(f"{upgrade(engine)} (head)")
            return 0
        current, head = current_revision(engine), head_revision()
        if current == head:
            print(f"{current} (head)")
            return 0
        print(f"{current or 'none'} (not at head {head}: run `bot db upgrade`)")
        return 1
    except MigrationError as exc:
        print(f"bot: cannot migrate the database: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def _backup(config: Config, action: str, path: Path) -> int:
    from bot.store.backup import BackupError, backup, restore

    try:
        if action == "backup":
            summary = backup(config.storage_url, path)
            size = path.stat().st_size
            print(f"backed up to {path} ({size:,} bytes), {summary}")
            return 0
        summary, saved = restore(config.storage_url, path)
    except BackupError as exc:
        print(f"bot db {action}: {exc}", file=sys.stderr)
        return 1
    if saved:
        print(f"the database's previous content is saved in {saved}")
    print(f"restored {path}: {summary}")
    return 0
