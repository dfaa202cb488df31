"""`bot customers export|forget`: a customer gets everything stored about them, and erasing it
removes their conversations, messages, decisions, tickets with their history, and replies,
leaves every other customer alone, and records that it was done without keeping the id; on
SQLite and PostgreSQL, and while two workers take the same customer's messages."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.webhook import delivery_key
from bot.assembly import build_pipeline
from bot.cli.customers import customers_command
from bot.content.config import Config, StorageConfig
from bot.domain.clock import FixedClock
from bot.domain.messages import Inbound
from bot.pipeline.knowledge import Knowledge
from bot.pipeline.runner import Pipeline
from bot.store import customers
from bot.store.database import Store
from bot.store.schema import conversations, decisions, erasures, messages, outbox, tickets
from bot.understanding.encoders import MemoEncoder
from tests.support.harness import Outbox
from tests.support.service import bot_command
from tests.support.shop import at

#: the `bot` processes started here find the content encoded (conftest `shop`)
pytestmark = pytest.mark.warm_content


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bot.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


def _worker(config: Config, encoder: MemoEncoder, knowledge: Knowledge, url: str) -> Pipeline:
    return build_pipeline(
        config,
        FixedClock(at("2026-11-24 10:00")),
        Outbox(),
        store_url=url,
        encoder=encoder,
        knowledge=knowledge,
    )


def _say(pipeline: Pipeline, user: str, text: str, n: int) -> None:
    pipeline.handle(
        Inbound(
            channel="wechat",
            external_id=f"{user}-{n}",
            user_id=user,
            chat_id=user,
            text=text,
            at=pipeline.clock.now(),
        )
    )


def _count(store: Store, table: sa.Table, user: str) -> int:
    with store.engine.connect() as conn:
        if table is messages:
            where = messages.c.user_id == user
        else:
            ids = sa.select(conversations.c.id).where(conversations.c.user_id == user)
            where = (
                conversations.c.user_id == user
                if table is conversations
                else table.c.conversation_id.in_(ids)
            )
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
        )


TABLES = [conversations, messages, decisions, tickets, outbox]


def test_export_then_forget_one_customer(
    url: str, config: Config, encoder: MemoEncoder, shop_knowledge: Knowledge
) -> None:
    pipeline = _worker(config, encoder, shop_knowledge, url)
    _say(pipeline, "alice", "运费多少", 1)
    _say(pipeline, "alice", "我要投诉，你们太过分了，打我电话13812345678", 2)
    _say(pipeline, "bob", "运费多少", 1)
    store = pipeline.store
    with store.engine.connect() as conn:
        data = customers.export(conn, "wechat", "alice")
    assert data["customer"] == {"channel": "wechat", "id": "alice"}
    (conversation,) = data["conversations"]
    said = [m["text"] for m in conversation["messages"] if m["direction"] == "in"]
    assert said[0] == "运费多少" and "13812345678" not in json.dumps(data, ensure_ascii=False)
    assert len(conversation["decisions"]) == 2
    (ticket,) = conversation["tickets"]
    assert ticket["queue"] == "complaints" and ticket["events"]
    assert conversation["replies"] and "leased_by" not in conversation["replies"][0]
    json.dumps(data)  # every value is JSON

    bob_before = {table.name: _count(store, table, "bob") for table in TABLES}
    with store.customer_lock("wechat", "alice") as tx:
        counts = customers.forget(tx, "wechat", "alice", at("2026-11-25 09:00"), note="req-7")
    assert counts["conversations"] == 1 and counts["tickets"] == 1 and counts["messages"] >= 4
    assert all(_count(store, table, "alice") == 0 for table in TABLES)
    assert {table.name: _count(store, table, "bob") for table in TABLES} == bob_before
    with store.engine.connect() as conn:
        assert customers.export(conn, "wechat", "alice")["conversations"] == []
        (record,) = customers.erased(conn, "wechat", "alice")
        raw = json.dumps(
            [dict(r) for r in conn.execute(sa.select(erasures)).mappings()], default=str
        )
    assert record["counts"] == counts and record["note"] == "req-7"
    assert "alice" not in raw  # the record keeps a hash, not the id
    # the customer writes again: a new conversation, as for anyone new
    _say(pipeline, "alice", "运费多少", 3)
    assert _count(store, conversations, "alice") == 1
    store.close()


def test_export_gives_the_message_ids_the_platform_gave(
    url: str, config: Config, encoder: MemoEncoder, shop_knowledge: Knowledge
) -> None:
    """Issue 20's trial: a webhook message exported as "external_id": "alice\\u001fm1", the
    store's key that keeps an app's per-user numbering unique; the customer's id is "m1"."""
    pipeline = _worker(config, encoder, shop_knowledge, url)
    for n, text in enumerate(["运费多少", "人工客服"], start=1):
        pipeline.handle(
            Inbound(
                "webhook",
                delivery_key("alice", f"m{n}"),
                "alice",
                "alice",
                text,
                at("2026-11-24 10:00"),
            )
        )
    with pipeline.store.engine.connect() as conn:
        stored = (
            conn.execute(
                sa.select(messages.c.external_id).where(messages.c.external_id.is_not(None))
            )
            .scalars()
            .all()
        )
        data = customers.export(conn, "webhook", "alice")
    pipeline.store.close()
    assert "alice\x1fm1" in stored  # kept so in the store, where it must be unique
    (conversation,) = data["conversations"]
    given = [m["external_id"] for m in conversation["messages"] if m["direction"] == "in"]
    assert given == ["m1", "m2"]
    assert "\x1f" not in json.dumps(data, ensure_ascii=False)


def test_an_unknown_customer_is_not_erased_nor_exported_as_if_known(
    url: str,
    config: Config,
    encoder: MemoEncoder,
    shop_knowledge: Knowledge,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 20's trial: `forget webhook:nobody --yes` printed "erased (… all 0 …)", exited 0
    and recorded an erasure, so a mistyped id read as done."""
    pipeline = _worker(config, encoder, shop_knowledge, url)
    _say(pipeline, "alice", "运费多少", 1)
    pipeline.store.close()
    configured = config.model_copy(update={"storage": StorageConfig(url=url)})

    def run(
        action: str, customer: str, out: Path | None = None, yes: bool = False
    ) -> tuple[int, str, str]:
        code = customers_command(configured, action, customer, out=out, yes=yes)
        printed = capsys.readouterr()
        return code, printed.out, printed.err

    def recorded() -> int:
        store = Store(url)
        try:
            with store.engine.connect() as conn:
                return int(
                    conn.execute(sa.select(sa.func.count()).select_from(erasures)).scalar_one()
                )
        finally:
            store.close()

    code, out, err = run("forget", "wechat:nobody", yes=True)
    assert code == 1 and out == ""
    assert "nothing is stored about wechat:nobody" in err
    assert "no wechat customer has the id 'nobody'" in err
    assert "bot customers export" in err and "Nothing was erased" in err
    assert recorded() == 0
    # a channel nobody is on: the channels that have customers are named
    code, _, err = run("forget", "webhook:alice", yes=True)
    assert code == 1 and "channels with customers: wechat" in err
    assert recorded() == 0
    # export: no JSON, no file, a failure
    written = tmp_path / "nobody.json"
    code, out, err = run("export", "wechat:nobody", out=written)
    assert code == 1 and out == "" and not written.exists()
    assert "nothing is stored about wechat:nobody" in err and "Nothing was written" in err

    # a known customer is erased; erasing them again says it was done, and records nothing
    code, out, _ = run("forget", "wechat:alice", yes=True)
    assert code == 0 and "wechat:alice erased" in out and recorded() == 1
    code, out, _ = run("forget", "wechat:alice", yes=True)
    assert code == 0 and "Nothing erased now" in out
    assert re.search(r"it was erased on \d{4}-\d\d-\d\d", out)
    assert recorded() == 1
    # and their export is the erasure's record
    code, out, err = run("export", "wechat:alice")
    assert code == 0 and "it was erased on" in err
    data = json.loads(out)
    assert data["conversations"] == [] and len(data["erasures"]) == 1


@pytest.mark.postgres
def test_forget_while_two_workers_take_the_customers_messages(
    postgres_url: str,
    config: Config,
    encoder: MemoEncoder,
    shop_knowledge: Knowledge,
    caplog: pytest.LogCaptureFixture,
) -> None:
    workers = [_worker(config, encoder, shop_knowledge, postgres_url) for _ in range(2)]
    failures: list[BaseException] = []
    stop = threading.Event()

    def customer(index: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                _say(workers[index], "carol", "运费多少", n * 10 + index)
            except BaseException as exc:  # any failure fails the test below
                failures.append(exc)
                return

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    erased: list[dict[str, int]] = []
    store = Store(postgres_url)
    try:
        for _ in range(5):
            while _count(store, messages, "carol") < 2 and not failures:
                time.sleep(0.01)
            with store.customer_lock("wechat", "carol") as tx:
                erased.append(customers.forget(tx, "wechat", "carol", at("2026-11-24 10:00")))
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not failures, failures
    # a message erased between its arrival and its decision is simply not decided: no error
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(counts["messages"] >= 2 for counts in erased)
    with store.engine.connect() as conn:
        # what arrived after the last erasure is whole: each message in a conversation, decided
        loose = conn.execute(
            sa.select(sa.func.count())
            .select_from(messages.outerjoin(decisions, decisions.c.message_id == messages.c.id))
            .where(
                messages.c.user_id == "carol",
                messages.c.direction == "in",
                decisions.c.id.is_(None),
            )
        ).scalar_one()
        assert loose == 0
        assert len(customers.erased(conn, "wechat", "carol")) == 5
    store.close()
    for worker in workers:
        worker.store.close()


def test_the_commands(shop: Path) -> None:
    path = shop / "config.toml"

    def bot(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [bot_command(), "--config", str(path), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )

    chat = bot("chat", "--user", "dana", stdin="运费多少\n我要投诉，太过分了\n")
    assert chat.returncode == 0, chat.stderr
    exported = bot("customers", "export", "terminal:dana")
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert data["conversations"][0]["tickets"] and data["erasures"] == []
    wrong = bot("customers", "forget", "dana")
    assert wrong.returncode == 2 and "CHANNEL:ID" in wrong.stderr
    unasked = bot("customers", "forget", "terminal:dana")  # no terminal to ask on
    assert unasked.returncode == 2 and "--yes" in unasked.stderr
    assert json.loads(bot("customers", "export", "terminal:dana").stdout)["conversations"]
    done = bot("customers", "forget", "terminal:dana", "--yes", "--note", "ticket 88")
    assert done.returncode == 0, done.stderr
    assert "terminal:dana erased" in done.stdout
    after = bot("customers", "export", "terminal:dana")
    assert "nothing is stored about terminal:dana" in after.stderr
    data = json.loads(after.stdout)
    assert data["conversations"] == [] and data["erasures"][0]["note"] == "ticket 88"
