"""Runs the revisions on the connection bot.store.migrate hands over in
`config.attributes["connection"]`; that caller holds the lock and the transaction."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from bot.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "bot's migrations run from code with a connection, not from the alembic command: "
        "use `bot db upgrade` or bot.store.migrate.upgrade(engine)"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER constraints: drafts use batch mode (copy the table) there
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
