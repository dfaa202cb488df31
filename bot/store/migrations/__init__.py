"""Alembic revisions of the store's schema, run from code by bot.store.migrate (no alembic.ini).

To add one after changing bot/store/schema.py, draft it against a database at head:

    from alembic import command
    from bot.store.migrate import alembic_config
    with engine.begin() as conn:
        command.revision(alembic_config(conn), "what changed", autogenerate=True, rev_id="0003")

then read it through, make it work on SQLite and PostgreSQL, and give every constraint its final
name with op.f(). tests/test_migrations.py fails while the revisions and schema.py disagree.
"""
