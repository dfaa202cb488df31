"""`bot chat` as a user runs it: the installed command, scripted input on stdin."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.store.schema import messages, outbox, tickets
from tests.support.service import bot_command

#: the `bot` processes started here find the content encoded (conftest `shop`)
pytestmark = pytest.mark.warm_content


def test_scripted_chat_answers_and_explains(shop: Path) -> None:
    result = subprocess.run(
        [bot_command(), "chat", "--at", "2026-11-24 23:00"],
        cwd=shop,
        input="你好\n多久发货\n/quit\n不会读到这里\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    notice, *lines = result.stdout.splitlines()
    assert notice.startswith("(pretend clock 2026-11-24 23:00 Asia/Shanghai: ")
    assert "scratch database" in notice
    assert lines[0] == "you> 你好"
    assert lines[1].startswith("bot> 您好，很高兴为您服务")
    assert any("非工作时间" in line for line in lines)
    assert "bot> 订单一般在付款后 48 小时内发货。" in lines
    why = [line.strip() for line in lines if line.strip().startswith("·")]
    assert (
        why[0].startswith("· reply · intent greeting") and "closed · after-hours notice" in why[0]
    )
    assert why[1].startswith("· answer · intent faq") and "faq shipping-time" in why[1]
    assert "不会读到这里" not in result.stdout
    assert "\x1b[" not in result.stdout  # no colour codes when not on a terminal
    assert not (shop / "var" / "bot.sqlite3").exists()  # a pretend clock: a scratch store


def test_new_customer_command(shop: Path) -> None:
    result = subprocess.run(
        [bot_command(), "chat", "--no-why"],
        cwd=shop,
        input="我要投诉\n在吗\n/new\n运费多少\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout
    stored = str(shop / "var" / "bot.sqlite3")
    assert out.startswith(f"(this chat is stored in sqlite:///{stored} (storage.url)")
    assert (shop / "var" / "bot.sqlite3").is_file()  # the data folder is created on demand
    assert "您的问题已登记" in out  # no agent is online in `bot chat`: said so
    assert "(now chatting as a new customer: you-" in out
    assert "满 99 元包邮" in out
    assert "·" not in out


@pytest.mark.slow
def test_each_session_is_a_new_customer_unless_told(shop: Path) -> None:
    """After a handoff, the next `bot chat` must not meet a silent bot."""

    def chat(text: str, *options: str) -> str:
        return subprocess.run(
            [bot_command(), "chat", *options],
            cwd=shop,
            input=text,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout

    first = chat("我要投诉\n")
    assert "您的问题已登记" in first
    second = chat("运费多少\n")
    assert "满 99 元包邮" in second
    again = chat("我要投诉\n", "--user", "alice")
    assert "您的问题已登记" in again
    still = chat("在吗\n", "--user", "alice")
    assert "a human owns this conversation" in still


def test_output_piped_into_a_reader_that_stops_early(shop: Path) -> None:
    """`bot chat | head -1`: no traceback when the reader goes away."""
    process = subprocess.Popen(
        [bot_command(), "chat"],
        cwd=shop,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("你好\n" * 5)
    process.stdin.close()
    assert process.stdout.readline().startswith("(this chat is stored in ")
    assert process.stdout.readline().startswith("you> 你好")
    process.stdout.close()
    assert process.stderr is not None
    err = process.stderr.read()
    assert process.wait(timeout=120) == 0 and "Traceback" not in err


def test_escape_sequences_never_reach_the_terminal(shop: Path) -> None:
    """Typed or pasted escapes (colour, window title) and escapes in an answer are not echoed."""
    (shop / "faq" / "zz-escapes.yaml").write_text(
        "- id: gift-wrap\n"
        "  questions: [可以礼品包装吗]\n"
        '  answer: {zh: "可以\\e[31m，下单时备注\\e]0;owned\\a即可。", en: "Yes."}\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [bot_command(), "chat", "--user", "eve\x1b[2J"],
        cwd=shop,
        input="\x1b[31m你好\x1b]0;title\x07\n可以礼品包装吗\x1b[0m\r\n/new\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for raw in ("\x1b[31m", "\x1b]0;title\x07", "\x1b]0;owned", "\x1b[2J", "\x07", "\r"):
        assert raw not in result.stdout
    assert "\x1b" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[1] == "you> 你好"
    assert "you> 可以礼品包装吗" in lines
    assert "bot> 可以，下单时备注即可。" in lines
    assert "(now chatting as a new customer: eve-2)" in lines


def test_a_chat_on_a_pretend_clock_leaves_the_store_alone(shop: Path) -> None:
    """Tickets from `--at` would sit in the agents' queue, the metrics and the reports, dated
    in the future or the past, and their replies would wait in the outbox for ever."""

    def chat(*options: str) -> str:
        result = subprocess.run(
            [bot_command(), "chat", "--no-why", *options],
            cwd=shop,
            input="我要投诉\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def stored() -> dict[str, int]:
        engine = sa.create_engine(f"sqlite:///{shop / 'var' / 'bot.sqlite3'}")
        try:
            with engine.connect() as conn:
                return {
                    table.name: conn.execute(
                        sa.select(sa.func.count()).select_from(table)
                    ).scalar_one()
                    for table in (messages, tickets, outbox)
                }
        finally:
            engine.dispose()

    assert "您的问题已登记" in chat()  # the real clock: a real ticket in the configured store
    before = stored()
    assert before["tickets"] == 1
    assert "您的问题已登记" in chat("--at", "2027-01-20 23:00")  # after hours: one line
    assert stored() == before


def test_a_pretend_moment_with_an_offset_is_said_in_the_schedules_zone(shop: Path) -> None:
    result = subprocess.run(
        [bot_command(), "chat", "--at", "2026-11-24T02:00+00:00"],
        cwd=shop,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("(pretend clock 2026-11-24 10:00 Asia/Shanghai")
