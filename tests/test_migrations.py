"""Schema migrations on real SQLite and real PostgreSQL: databases in the field keep their rows,
new and upgraded databases end up as bot/store/schema.py describes, workers starting together
migrate once."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from bot.domain.ticket import TicketState
from bot.store import outbox as outbox_queries
from bot.store import schema
from bot.store import tickets as ticket_queries
from bot.store.database import Store
from bot.store.migrate import (
    MigrationError,
    current_revision,
    downgrade,
    head_revision,
    is_current,
    upgrade,
)

baseline = importlib.import_module("bot.store.migrations.versions.0001_baseline")

T0 = datetime(2026, 11, 24, 2, 0)  # stored naive, in UTC, as the released bot did
SUGGESTIONS = ["运费多少？", "怎么退货"]
RECORD = {"action": "handoff", "reasons": ["转人工"], "scores": {"faq": 0.42}, "ticket_id": 2}
REASONS = {"reasons": ["customer asked"], "keywords": ["人工"]}


KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _engine(request: pytest.FixtureRequest, kind: str, path: Path) -> sa.Engine:
    """An empty database. PostgreSQL sessions run in Shanghai time, so a conversion that read the
    stored UTC times in the session's zone would show."""
    if kind == "sqlite":
        return Store(f"sqlite:///{path}").engine
    url = request.getfixturevalue("postgres_url")
    return sa.create_engine(url, connect_args={"options": "-c timezone=Asia/Shanghai"})


@pytest.fixture(params=KINDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    engine = _engine(request, request.param, tmp_path / "bot.sqlite3")
    yield engine
    engine.dispose()


def _insert(conn: sa.Connection, table: sa.Table, **values: Any) -> int:
    key = conn.execute(table.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _fill_released(conn: sa.Connection) -> dict[str, int]:
    """Rows as the released bot wrote them, with the duplicates its races could leave."""
    b, minute = baseline, timedelta(minutes=1)

    def conversation(channel: str, user: str, state: str, **more: Any) -> int:
        times = dict(opened_at=T0, last_at=T0) | more
        return _insert(
            conn, b.conversations, channel=channel, user_id=user, chat_id=user, state=state, **times
        )

    ids = dict(
        c_old=conversation("wechat", "u1", "bot", suggestions=SUGGESTIONS),
        c_new=conversation(  # the race's second open conversation of u1
            "wechat",
            "u1",
            "handoff",
            opened_at=T0 + minute,
            last_at=T0 + 2 * minute,
            notice_window="2026-11-24",
        ),
        c_closed=conversation("telegram", "u2", "closed"),
        c_other=conversation("telegram", "u2", "bot"),
    )
    message = dict(channel="wechat", user_id="u1", kind="text", at=T0)
    ids["m_in"] = _insert(
        conn,
        b.messages,
        conversation_id=ids["c_new"],
        external_id="e1",
        direction="in",
        text="转人工",
        handled=True,
        **message,
    )
    ids["m_out"] = _insert(
        conn,
        b.messages,
        conversation_id=ids["c_new"],
        direction="out",
        text="好的",
        handled=True,
        **message,
    )
    ids["m_new"] = _insert(  # accepted, not yet attached to a conversation
        conn, b.messages, external_id="e2", direction="in", text="在吗", **message
    )
    decision = dict(conversation_id=ids["c_new"], is_open=True, at=T0)
    ids["d_first"] = _insert(
        conn,
        b.decisions,
        message_id=ids["m_in"],
        action="handoff",
        intent="human_agent",
        record=RECORD,
        **decision,
    )
    ids["d_again"] = _insert(
        conn, b.decisions, message_id=ids["m_in"], action="answer", record={"again": 1}, **decision
    )
    ticket = dict(
        conversation_id=ids["c_new"],
        queue="general",
        priority="normal",
        priority_rank=2,
        category="consult",
        created_at=T0,
        available_at=T0,
        first_response_due=T0 + 2 * minute,
        transfer_due=T0 + 30 * minute,
        reasons=REASONS,
    )
    ids["t_old"] = _insert(conn, b.tickets, status="queued", **ticket)
    ids["t_new"] = _insert(conn, b.tickets, status="claimed", **ticket)
    ids["t_done"] = _insert(
        conn, b.tickets, **(ticket | dict(conversation_id=ids["c_old"])), status="resolved"
    )
    reply = dict(conversation_id=ids["c_new"], channel="wechat", chat_id="u1", text="好的")
    ids["o_pending"] = _insert(
        conn, b.outbox, reply_to=ids["m_in"], status="pending", created_at=T0, **reply
    )
    ids["o_sent"] = _insert(
        conn, b.outbox, status="sent", attempts=1, created_at=T0, sent_at=T0 + minute, **reply
    )
    ids["o_expired"] = _insert(conn, b.outbox, status="expired", created_at=T0 + minute, **reply)
    return ids


def _at_baseline_with_rows(engine: sa.Engine) -> dict[str, int]:
    assert upgrade(engine, baseline.revision) == baseline.revision
    with engine.begin() as conn:
        return _fill_released(conn)


def _assert_rows_kept_and_repaired(engine: sa.Engine, ids: dict[str, int]) -> None:
    utc = T0.replace(tzinfo=UTC)
    with engine.connect() as conn:
        conversations = {r.id: r for r in conn.execute(sa.select(schema.conversations)).mappings()}
        assert {i: r["state"] for i, r in conversations.items()} == {
            ids["c_old"]: "closed",  # the older of two open conversations of one customer
            ids["c_new"]: "handoff",
            ids["c_closed"]: "closed",
            ids["c_other"]: "bot",
        }
        old, new = conversations[ids["c_old"]], conversations[ids["c_new"]]
        assert old["suggestions"] == SUGGESTIONS and old["opened_at"] == utc
        assert new["last_at"] == utc + timedelta(minutes=2) and new["last_at"].tzinfo == UTC
        assert new["notice_window"] == "2026-11-24" and new["unreachable_reason"] is None

        messages = conn.execute(sa.select(schema.messages).order_by(schema.messages.c.id)).all()
        assert [(m.id, m.direction, m.text, m.at) for m in messages] == [
            (ids["m_in"], "in", "转人工", utc),
            (ids["m_out"], "out", "好的", utc),
            (ids["m_new"], "in", "在吗", utc),
        ]

        decisions = conn.execute(sa.select(schema.decisions)).all()
        assert [(d.id, d.record, d.at) for d in decisions] == [(ids["d_first"], RECORD, utc)]

        tickets = {t.id: t for t in conn.execute(sa.select(schema.tickets))}
        assert {i: t.status for i, t in tickets.items()} == {
            ids["t_old"]: "resolved",  # the older of two open tickets of one conversation
            ids["t_new"]: "assigned",
            ids["t_done"]: "resolved",
        }
        assert tickets[ids["t_new"]].reasons == REASONS
        assert tickets[ids["t_new"]].transfer_due == utc + timedelta(minutes=30)

        outbox = {o.id: o for o in conn.execute(sa.select(schema.outbox))}
        assert {i: (o.status, o.via, o.next_attempt_at) for i, o in outbox.items()} == {
            ids["o_pending"]: ("unsent", None, utc),
            ids["o_sent"]: ("sent", "api", utc),
            ids["o_expired"]: ("expired", None, utc + timedelta(minutes=1)),
        }
        assert outbox[ids["o_sent"]].sent_at == utc + timedelta(minutes=1)
        assert outbox[ids["o_pending"]].reply_to == ids["m_in"]


def _assert_invariants_enforced(engine: sa.Engine) -> None:
    """The new keys hold, and ids continue after the old rows."""
    now = datetime.now(UTC)
    row = dict(channel="telegram", chat_id="c9", opened_at=now, last_at=now)
    with engine.begin() as conn:
        before = conn.execute(sa.select(sa.func.max(schema.conversations.c.id))).scalar() or 0
        assert _insert(conn, schema.conversations, user_id="u9", state="bot", **row) > before
    with pytest.raises(IntegrityError), engine.begin() as conn:  # a second open conversation
        conn.execute(schema.conversations.insert().values(user_id="u9", state="handoff", **row))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # a state that does not exist
        conn.execute(schema.conversations.insert().values(user_id="u10", state="lost", **row))


def _shape(inspector: sa.Inspector, schema_name: str | None = None) -> dict[str, Any]:
    """What autogenerate does not compare: CHECKs, partial-index predicates, constraint names,
    defaults, PostgreSQL's id sequences."""
    named = inspector.dialect.name == "postgresql"  # SQLite keeps keys made by ALTER unnamed
    prefix = f"{schema_name}." if schema_name else ""
    shape: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names(schema_name)) - {"alembic_version"}):
        pk = inspector.get_pk_constraint(table, schema_name)
        shape[table] = dict(
            columns={
                c["name"]: (repr(c["type"]), c["nullable"], str(c["default"]).replace(prefix, ""))
                for c in inspector.get_columns(table, schema_name)
            },
            primary_key=(pk["name"] if named else None, pk["constrained_columns"]),
            foreign_keys=sorted(
                (fk["name"] if named else "", fk["constrained_columns"], fk["referred_table"])
                for fk in inspector.get_foreign_keys(table, schema_name)
            ),
            unique=sorted(
                (u["name"], u["column_names"])
                for u in inspector.get_unique_constraints(table, schema_name)
            ),
            indexes=sorted(
                (
                    i["name"],
                    i["column_names"],
                    bool(i["unique"]),
                    {k: str(v) for k, v in i.get("dialect_options", {}).items()},
                )
                for i in inspector.get_indexes(table, schema_name)
            ),
            checks=sorted(
                (c["name"], c["sqltext"])
                for c in inspector.get_check_constraints(table, schema_name)
            ),
        )
    return shape


def _sequences(conn: sa.Connection, schema_name: str) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            "SELECT sequence_name, data_type FROM information_schema.sequences "
            "WHERE sequence_schema = :schema"
        ),
        {"schema": schema_name},
    )
    return {name: kind for name, kind in rows}


def _assert_matches_schema(engine: sa.Engine, tmp_path: Path) -> None:
    """The migrated database is what schema.py's create_all makes, on both engines."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, schema.metadata) == []
        migrated = _shape(sa.inspect(conn))
    if engine.dialect.name == "sqlite":
        expected_engine = sa.create_engine(f"sqlite:///{tmp_path}/expected.sqlite3")
        schema.metadata.create_all(expected_engine)
        with expected_engine.connect() as conn:
            assert migrated == _shape(sa.inspect(conn))
        expected_engine.dispose()
        return
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS expected CASCADE; CREATE SCHEMA expected"))
    with engine.begin() as conn:
        schema.metadata.create_all(conn.execution_options(schema_translate_map={None: "expected"}))
    with engine.begin() as conn:
        assert migrated == _shape(sa.inspect(conn), "expected")
        assert _sequences(conn, "public") == _sequences(conn, "expected")
        assert set(_sequences(conn, "public").values()) == {"bigint"}
        conn.execute(sa.text("DROP SCHEMA expected CASCADE"))


def test_a_released_database_keeps_its_rows_and_loses_its_duplicates(
    engine: sa.Engine, tmp_path: Path
) -> None:
    ids = _at_baseline_with_rows(engine)
    assert current_revision(engine) == baseline.revision and not is_current(engine)
    assert upgrade(engine) == head_revision()
    _assert_rows_kept_and_repaired(engine, ids)
    _assert_invariants_enforced(engine)
    _assert_matches_schema(engine, tmp_path)


def test_a_schema_version_database_is_adopted_and_upgraded(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """A database the released bot made: its create_all, then schema_version 1, no Alembic."""
    with engine.begin() as conn:
        baseline.metadata.create_all(conn)
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        conn.execute(sa.text("INSERT INTO schema_version (version) VALUES (1)"))
        ids = _fill_released(conn)
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    assert is_current(engine)
    assert not sa.inspect(engine).has_table("schema_version")
    _assert_rows_kept_and_repaired(engine, ids)
    _assert_matches_schema(engine, tmp_path)


def test_a_new_database_is_built_by_the_revisions(engine: sa.Engine, tmp_path: Path) -> None:
    assert current_revision(engine) is None and not is_current(engine)
    assert upgrade(engine) == head_revision() == current_revision(engine)
    _assert_matches_schema(engine, tmp_path)
    _assert_invariants_enforced(engine)


def test_upgrade_is_idempotent(engine: sa.Engine) -> None:
    assert upgrade(engine) == upgrade(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            (head_revision(),)
        ]


def test_downgrade_returns_to_the_released_schema(engine: sa.Engine, tmp_path: Path) -> None:
    ids = _at_baseline_with_rows(engine)
    upgrade(engine)
    assert downgrade(engine, baseline.revision) == baseline.revision
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, baseline.metadata) == []
        assert conn.execute(sa.select(baseline.decisions.c.record)).scalars().all() == [RECORD]
    assert upgrade(engine) == head_revision()
    _assert_rows_kept_and_repaired(engine, ids)
    _assert_matches_schema(engine, tmp_path)


#: tickets.status as revision 0005 stored it → as it reads after 0006
TICKET_WORDS = {
    "waiting": "queue_closed",
    "queued": "queued",
    "claimed": "assigned",
    "pending": "awaiting_customer",
    "resolved": "resolved",
    "closed": "closed",
}
#: outbox.status, likewise
OUTBOX_WORDS = {"pending": "unsent", "sent": "sent", "failed": "failed", "expired": "expired"}


def _fill(
    conn: sa.Connection,
    tables: dict[str, sa.Table],
    tickets: dict[str, str | None],
    outbox: list[str],
    assigned: str,
) -> dict[str, int]:
    """One conversation per ticket (only one may be open each), its ticket with the given state
    and time of assignment (column `assigned`), a `claimed` event, and the outbox rows."""
    utc, minute = T0.replace(tzinfo=UTC), timedelta(minutes=1)
    ids: dict[str, int] = {}
    for n, (status, at) in enumerate(tickets.items()):
        conversation = _insert(
            conn,
            tables["conversations"],
            channel="wechat",
            user_id=f"u{n}",
            chat_id=f"u{n}",
            state="handoff",
            opened_at=utc,
            last_at=utc,
        )
        ids[status] = _insert(
            conn,
            tables["tickets"],
            conversation_id=conversation,
            queue="general",
            priority="normal",
            priority_rank=2,
            category="consult",
            status=status,
            created_at=utc,
            available_at=utc,
            first_response_due=utc + 2 * minute,
            transfer_due=utc + 30 * minute,
            reasons=REASONS,
            updated_at=utc,
            **{assigned: None if at is None else utc + minute},
        )
        _insert(conn, tables["ticket_events"], ticket_id=ids[status], at=utc, kind="claimed")
    for status in outbox:
        ids[f"o_{status}"] = _insert(
            conn,
            tables["outbox"],
            conversation_id=conversation,
            channel="wechat",
            chat_id="u0",
            text="好的",
            status=status,
            created_at=utc,
            next_attempt_at=utc,
        )
    return ids


def _reflected(engine: sa.Engine) -> dict[str, sa.Table]:
    """The tables as the database has them now (an older revision's, for writing old rows)."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    return dict(metadata.tables)


def test_rows_stored_with_the_old_state_words_read_with_the_new_ones(engine: sa.Engine) -> None:
    assert upgrade(engine, "0005") == "0005"
    with engine.begin() as conn:
        assigned = {"waiting": None, "queued": None}
        tickets = {old: assigned.get(old, "yes") for old in TICKET_WORDS}
        ids = _fill(conn, _reflected(engine), tickets, list(OUTBOX_WORDS), "claimed_at")
    assert upgrade(engine) == head_revision()

    utc = T0.replace(tzinfo=UTC)
    with engine.connect() as conn:
        read = {
            t.id: t
            for t in map(
                ticket_queries.from_row, conn.execute(sa.select(schema.tickets)).mappings()
            )
        }
        assert {read[ids[old]].status: read[ids[old]].assigned_at for old in TICKET_WORDS} == {
            TicketState(new): None if old in ("waiting", "queued") else utc + timedelta(minutes=1)
            for old, new in TICKET_WORDS.items()
        }
        statuses = conn.execute(sa.select(schema.outbox.c.id, schema.outbox.c.status)).all()
        assert {status for _, status in statuses} == set(OUTBOX_WORDS.values())
        assert [row.id for row in outbox_queries.unsent(conn)] == [ids["o_pending"]]
        kinds = conn.execute(sa.select(schema.ticket_events.c.kind)).scalars().all()
        assert set(kinds) == {"claimed"}  # the act, not a state: kept
    with pytest.raises(IntegrityError), engine.begin() as conn:  # an old word is refused now
        conn.execute(
            schema.tickets.update()
            .where(schema.tickets.c.id == ids["resolved"])
            .values(status="waiting")
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:  # still one open ticket each
        row = (
            conn.execute(sa.select(schema.tickets).where(schema.tickets.c.id == ids["pending"]))
            .mappings()
            .one()
        )
        copy = {k: v for k, v in row.items() if k != "id"} | {"status": "queue_closed"}
        conn.execute(schema.tickets.insert().values(**copy))


def test_downgrade_gives_the_new_state_words_back_as_the_old(engine: sa.Engine) -> None:
    assert upgrade(engine) == head_revision()
    with engine.begin() as conn:
        tickets: dict[str, str | None] = {new: "yes" for new in TICKET_WORDS.values()}
        tables = {t.name: t for t in schema.metadata.sorted_tables}
        ids = _fill(conn, tables, tickets, list(OUTBOX_WORDS.values()), "assigned_at")
    assert downgrade(engine, "0005") == "0005"
    old = _reflected(engine)
    assert "claimed_at" in old["tickets"].c and "assigned_at" not in old["tickets"].c
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(old["tickets"].c.id, old["tickets"].c.status)).all())
        assert {stored[ids[new]]: new for new in TICKET_WORDS.values()} == {
            old_word: new for old_word, new in TICKET_WORDS.items()
        }
        claimed = conn.execute(sa.select(old["tickets"].c.claimed_at)).scalars().all()
        assert all(at is not None for at in claimed)
        outbox = conn.execute(sa.select(old["outbox"].c.status)).scalars().all()
        assert sorted(outbox) == sorted(OUTBOX_WORDS)
    with pytest.raises(IntegrityError), engine.begin() as conn:  # the old CHECK is back
        conn.execute(old["outbox"].update().values(status="unsent"))
    assert upgrade(engine) == head_revision()
    with engine.connect() as conn:
        statuses = set(conn.execute(sa.select(schema.tickets.c.status)).scalars())
        assert statuses == set(TICKET_WORDS.values())


#: one worker: import, connect, wait at the barrier until all are ready, then migrate
WORKER = """
import sys, time
from pathlib import Path
from bot.store.database import Store
from bot.store.migrate import upgrade

url, barrier, workers = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
engine = Store(url).engine
engine.connect().close()
(barrier / str(time.monotonic_ns())).touch()
while len(list(barrier.iterdir())) < workers:
    time.sleep(0.01)
print(upgrade(engine))
"""


@pytest.mark.parametrize("kind", KINDS)
def test_workers_starting_together_migrate_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Separate processes, as workers are: the database's lock is what keeps them apart."""
    workers = 4
    engine = _engine(request, kind, tmp_path / "bot.sqlite3")
    url = engine.url.render_as_string(hide_password=False)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    started = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(barrier), str(workers)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    outcomes = [(*worker.communicate(timeout=120), worker.returncode) for worker in started]
    assert outcomes == [(f"{head_revision()}\n", "", 0)] * workers
    _assert_matches_schema(engine, tmp_path)
    engine.dispose()


def test_a_failed_upgrade_changes_nothing(engine: sa.Engine) -> None:
    """A state the new CHECK refuses: the error says what to fix, the database stays as it was."""
    ids = _at_baseline_with_rows(engine)
    with engine.begin() as conn:
        conn.execute(
            baseline.conversations.update()
            .where(baseline.conversations.c.id == ids["c_other"])
            .values(state="archived")
        )
    with pytest.raises(MigrationError, match=r"ck_conversations_state.*fix or delete those rows"):
        upgrade(engine)
    assert current_revision(engine) == baseline.revision
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, baseline.metadata) == []
        states = conn.execute(sa.select(baseline.conversations.c.state)).scalars().all()
        assert sorted(states) == ["archived", "bot", "closed", "handoff"]  # not repaired either


def test_a_database_of_unknown_version_is_left_alone(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        baseline.metadata.create_all(conn)
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        conn.execute(sa.text("INSERT INTO schema_version (version) VALUES (7)"))
    with pytest.raises(MigrationError, match=r"says \[7\].*restore a backup"):
        upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert "schema_version" in tables and "alembic_version" not in tables


def test_tables_without_any_version_are_refused(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        baseline.metadata.create_all(conn)
    with pytest.raises(MigrationError, match="point \\[storage\\] url at an empty database"):
        upgrade(engine)


def _bot() -> str:
    beside = Path(sys.executable).with_name("bot")
    return str(beside) if beside.is_file() else "bot"


def _run_bot(shop: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_bot(), "--config", str(shop / "config.toml"), "db", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bot_db_upgrade_and_current(shop: Path) -> None:
    """The operator's commands, through the installed console script, on the shop's SQLite."""
    head = head_revision()
    before = _run_bot(shop, "current")
    assert (before.returncode, before.stdout) == (
        1,
        f"none (not at head {head}: run `bot db upgrade`)\n",
    )
    upgraded = _run_bot(shop, "upgrade")
    assert (upgraded.returncode, upgraded.stdout, upgraded.stderr) == (0, f"{head} (head)\n", "")
    after = _run_bot(shop, "current")
    assert (after.returncode, after.stdout) == (0, f"{head} (head)\n")
    assert current_revision(Store(f"sqlite:///{shop}/var/bot.sqlite3").engine) == head


def test_bot_db_upgrade_names_the_fix_for_a_database_it_cannot_adopt(shop: Path) -> None:
    engine = Store(f"sqlite:///{shop}/var/bot.sqlite3").engine
    with engine.begin() as conn:
        baseline.metadata.create_all(conn)
    engine.dispose()
    result = _run_bot(shop, "upgrade")
    assert result.returncode == 2
    assert result.stderr.startswith("bot: cannot migrate the database: the database has")
    assert "point [storage] url at an empty database" in result.stderr


def _open_conversation(conn: sa.Connection, table: sa.Table, user: str, chat: str) -> int:
    utc = T0.replace(tzinfo=UTC)
    return _insert(
        conn,
        table,
        channel="telegram",
        user_id=user,
        chat_id=chat,
        state="bot",
        opened_at=utc,
        last_at=utc,
    )


def test_open_conversations_become_one_per_chat_and_back(engine: sa.Engine) -> None:
    """0009: a running shop's open conversations stay open; afterwards a customer may have one
    open conversation in each chat, still only one in a chat. Downgrading keeps the newest."""
    assert upgrade(engine, "0008") == "0008"
    with engine.begin() as conn:
        kept = _open_conversation(conn, _reflected(engine)["conversations"], "u1", "u1")
    with pytest.raises(IntegrityError), engine.begin() as conn:  # before: one per customer
        _open_conversation(conn, _reflected(engine)["conversations"], "u1", "-100200")
    assert upgrade(engine) == head_revision()
    with engine.begin() as conn:
        group = _open_conversation(conn, schema.conversations, "u1", "-100200")
        open_ones = conn.execute(
            sa.select(schema.conversations.c.id).where(schema.conversations.c.state != "closed")
        ).scalars()
        assert sorted(open_ones) == sorted([kept, group])
    with pytest.raises(IntegrityError), engine.begin() as conn:  # still one in each chat
        _open_conversation(conn, schema.conversations, "u1", "-100200")
    assert downgrade(engine, "0008") == "0008"
    with engine.connect() as conn:
        states = dict(
            conn.execute(sa.select(schema.conversations.c.id, schema.conversations.c.state)).all()
        )
    assert states == {kept: "closed", group: "bot"}
    assert upgrade(engine) == head_revision()
