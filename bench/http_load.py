"""`bot run` over HTTP, the way the platforms drive it; prints one JSON object.

    python bench/http_load.py [--quick] [--routes webhook,telegram,wechat]
                              [--customers 1,10,100,500] [--workers 1,2,4] [--postgres URL]

Each setup starts `--workers` `bot run` processes (one on SQLite; more on PostgreSQL, whose
tables are dropped first) and one more process, the *platform*: it plays the other side of
every channel on loopback (the fake Telegram Bot API and api.weixin.qq.com of tests/support, and
the generic webhook's `deliver_url`) and is the load generator. Its customers each send a
message, wait for the reply to arrive, and send the next one (closed loop, like `bench/load.py`'s
in-process figure), five messages each (with one customer, ten customers one after another),
spread over the workers:

- `webhook`: POST /channels/webhook/messages (bearer secret); the reply is the dispatcher's POST
  to `deliver_url` that names the message (`reply_to`).
- `telegram`: Telegram-shaped updates POSTed to the webhook-mode route with the secret header;
  the reply is the `sendMessage` call quoting the message. Telegram's per-chat and overall send
  limits are raised for the run (one customer may not otherwise get more than one reply a
  second), so the figure is the service's, not Telegram's.
- `wechat`: encrypted 公众号 pushes (safe mode, signed and AES-encrypted by hand as WeChat does);
  the reply is the passive reply in the push's own response, or else the customer-service send.

Reported per route, setup and number of customers: msgs/s, p50/p95/p99 of the time from
sending a message to its reply arriving (`reply_*`) and to the HTTP answer (`ack_p99_ms`),
messages that got no reply within 5 s, and the workers' CPU seconds per message (user + system
from /proc). `inproc_100_msgs_per_s` is this checkout's in-process figure at 100 customers
(`bench/load.py`'s measure) from the same run, and each HTTP figure's `ratio_to_inproc` is its
msgs/s over it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from load import TEXTS, _bot, _empty, _port, _stop, _wait_ready, main_inproc  # noqa: E402

WEBHOOK_SECRET = "bench-secret-not-real"
TELEGRAM_SECRET = "bench-telegram-secret"
REPLY_TIMEOUT = 5.0
#: messages a customer sends before the next customer takes its place in the lane
PER_CUSTOMER = 5
TICKS = os.sysconf("SC_CLK_TCK")


# --- the orchestrator: workers, the platform process, the figures ---------------------------


def _set(text: str, table: str, values: dict[str, str]) -> str:
    """`text` (a config.toml) with these `key = value` lines in `[table]`, replacing any the
    table had: enough TOML editing for a benchmark's copy of the shipped file."""
    lines = text.splitlines()
    start = lines.index(f"[{table}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    kept = [line for line in lines[start + 1 : end] if line.split("=", 1)[0].strip() not in values]
    added = [f"{key} = {value}" for key, value in values.items()]
    return "\n".join([*lines[: start + 1], *added, *kept, *lines[end:]]) + "\n"


def _shop(
    source: Path, folder: Path, url: str, platform: dict[str, str], port: int, counted: bool
) -> Path:
    """A copy of the shop whose config points the channels at the platform process."""
    shop = folder / f"shop-{port}"
    shutil.copytree(source.parent, shop, ignore=shutil.ignore_patterns("var", ".venv", ".git"))
    cache = source.parent / "var" / "cache"
    if cache.is_dir():  # warm caches, as in bench/load.py
        shutil.copytree(cache, shop / "var" / "cache", dirs_exist_ok=True)
    text = (shop / source.name).read_text(encoding="utf-8")
    text = _set(text, "storage", {"url": json.dumps(url)})
    text = _set(text, "service", {"public_url": json.dumps(f"http://127.0.0.1:{port}")})
    # a customer of the benchmark writes as fast as the replies come: not a flood to silence
    text = _set(text, "guard", {"flood_messages": "1000000"})
    # every customer comes from loopback: the rates are still counted (their cost is measured)
    # but never reached
    limits = ("1000000000", "1000000") if counted else ("0", "0")  # 0: not counted at all
    text = _set(
        text, "service", {"per_ip_per_minute": limits[0], "per_customer_per_minute": limits[1]}
    )
    text = _set(
        text,
        "channels.webhook",
        {"enabled": "true", "deliver_url": json.dumps(platform["deliver_url"])},
    )
    text = _set(
        text,
        "channels.telegram",
        {
            "enabled": "true",
            "mode": '"webhook"',
            "api_base": json.dumps(platform["telegram_base"]),
            "per_chat_per_second": "10000",
            "per_group_per_minute": "600000",
            "overall_per_second": "100000",
        },
    )
    text = _set(
        text,
        "channels.wechat",
        {
            "enabled": "true",
            "app_id": json.dumps(platform["wechat_app_id"]),
            "api_base": json.dumps(platform["wechat_base"]),
        },
    )
    config = shop / source.name
    config.write_text(text, encoding="utf-8")
    return config


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


async def _setup(
    args: argparse.Namespace, folder: Path, workers: int, url: str
) -> list[dict[str, Any]]:
    """One setup: the platform process, `workers` `bot run`s, every route and customer count."""
    platform = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--platform",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert platform.stdin and platform.stdout

    async def ask(message: dict[str, Any]) -> dict[str, Any]:
        assert platform.stdin and platform.stdout
        platform.stdin.write((json.dumps(message) + "\n").encode())
        await platform.stdin.drain()
        line = await platform.stdout.readline()
        if not line:
            raise RuntimeError("the platform process stopped")
        return dict(json.loads(line))

    info = dict(json.loads(await platform.stdout.readline()))
    ports = [_port() for _ in range(workers)]
    env = {
        **os.environ,
        "BOT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TELEGRAM_BOT_TOKEN": info["telegram_token"],
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "WECHAT_TOKEN": info["wechat_token"],
        "WECHAT_AES_KEY": info["wechat_aes_key"],
        "WECHAT_APP_SECRET": info["wechat_app_secret"],
    }
    processes = []
    for port in ports:
        config = _shop(args.config.resolve(), folder, url, info, port, not args.no_rate_counts)
        processes.append(
            subprocess.Popen(
                [_bot(), "--config", str(config), "run", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    results = []
    try:
        await ask({"ready": ports})
        pids = [p.pid for p in processes]
        for route in args.routes:
            for customers in args.customers:
                messages = args.messages if customers > 1 else args.messages * 10
                before = _cpu_seconds(pids)
                figures = await ask(
                    {"route": route, "ports": ports, "customers": customers, "messages": messages}
                )
                cpu = _cpu_seconds(pids) - before
                figures["cpu_ms_per_msg"] = round(cpu * 1000 / max(figures["sent"], 1), 2)
                results.append(
                    {"route": route, "workers": workers, "customers": customers, **figures}
                )
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        _stop(processes)
        platform.stdin.close()
        await platform.wait()
    return results


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"quick": args.quick, "cores": os.cpu_count()}
    inproc = await main_inproc(args.config, args.quick, customers=(100,))
    base = inproc["inproc"]["100"]["msgs_per_s"]
    result["inproc_100_msgs_per_s"] = base
    runs = []
    with tempfile.TemporaryDirectory(prefix="bot-http-") as name:
        folder = Path(name)
        for workers in args.workers:
            if workers == 1:
                url = "sqlite:///var/bot.sqlite3"
            elif args.postgres:
                _empty(args.postgres)
                url = args.postgres
            else:
                continue
            runs += await _setup(args, folder / f"w{workers}", workers, url)
    for run in runs:
        run["ratio_to_inproc"] = round(run["msgs_per_s"] / base, 3) if base else None
    result["http"] = runs
    return result


# --- the platform process: the other side of every channel, and the customers ---------------


class Replies:
    """Replies as they reach the platform, keyed by (route, message): who is waiting for which."""

    def __init__(self) -> None:
        self.waiting: dict[tuple[str, str], asyncio.Future[float]] = {}

    def expect(self, route: str, message: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[(route, message)] = future
        return future

    def arrived(self, route: str, message: str) -> None:
        future = self.waiting.pop((route, message), None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())


async def platform() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from tests.support.fakes import telegram_api, wechat_api

    replies = Replies()

    class TelegramAPI(telegram_api.FakeBotAPI):
        def _answer(self, method: str, params: dict[str, Any]) -> Any:
            if method == "sendMessage":
                quoted = (params.get("reply_parameters") or {}).get("message_id")
                self.calls.clear()  # the run keeps no history
                replies.arrived("telegram", f"{params['chat_id']}:{quoted}")
            return super()._answer(method, params)

    class WechatAPI(wechat_api.FakeWechatAPI):
        async def send(self, request: web.Request) -> web.Response:
            response = await super().send(request)
            for sent in self.sends:
                replies.arrived("wechat", sent["touser"])
            self.sends.clear()
            return response

    async def deliver(request: web.Request) -> web.Response:
        body = await request.json()
        replies.arrived("webhook", f"{body['chat']}:{body.get('reply_to')}")
        return web.Response(text="ok")

    telegram = TelegramAPI()
    telegram_server = TestServer(telegram.app(), host="127.0.0.1")
    await telegram_server.start_server()
    wechat = WechatAPI()
    wechat_base = await wechat.start()
    sink_app = web.Application()
    sink_app.router.add_post("/deliver", deliver)
    sink = TestServer(sink_app, host="127.0.0.1")
    await sink.start_server()
    aes_key = wechat_api.random_aes_key()
    pusher = wechat_api.WechatServer(aes_key)
    _say(
        {
            "telegram_base": str(telegram_server.make_url("")).rstrip("/"),
            "telegram_token": telegram_api.TOKEN,
            "wechat_base": wechat_base,
            "wechat_app_id": wechat_api.APP_ID,
            "wechat_token": wechat_api.TOKEN,
            "wechat_aes_key": aes_key,
            "wechat_app_secret": wechat_api.APP_SECRET,
            "deliver_url": str(sink.make_url("/deliver")),
        }
    )
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        run = 0
        while line := await reader.readline():
            order = json.loads(line)
            if "ready" in order:
                for port in order["ready"]:
                    await _wait_ready(session, port, 180)
                _say({"ready": True})
                continue
            run += 1
            send = {"webhook": _webhook, "telegram": _telegram, "wechat": _wechat}[order["route"]]
            figures = await _customers(
                session, replies, send, pusher, order, tag=f"r{run}-{os.getpid()}"
            )
            _say(figures)
    await sink.close()
    await wechat.close()
    await telegram_server.close()


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


#: one message sent: (session, port, customer number, message number, text, tag, pusher,
#: replies) → the future its reply resolves and whether the HTTP answer already carried it
Send = Callable[..., Awaitable[tuple[asyncio.Future[float], bool]]]


async def _webhook(
    session: aiohttp.ClientSession,
    port: int,
    n: int,
    i: int,
    text: str,
    tag: str,
    pusher: Any,
    replies: Replies,
) -> tuple[asyncio.Future[float], bool]:
    user, message = f"{tag}-{n}", f"{tag}-{n}-{i}"
    future = replies.expect("webhook", f"{user}:{message}")
    body = {"id": message, "user": user, "text": text}
    headers = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}
    url = f"http://127.0.0.1:{port}/channels/webhook/messages"
    async with session.post(url, json=body, headers=headers) as response:
        await response.read()
        response.raise_for_status()
    return future, False


async def _telegram(
    session: aiohttp.ClientSession,
    port: int,
    n: int,
    i: int,
    text: str,
    tag: str,
    pusher: Any,
    replies: Replies,
) -> tuple[asyncio.Future[float], bool]:
    from tests.support.fakes import telegram_api

    # a chat per customer and run: the tag's run number and the customer, as a positive id
    chat = int(tag.split("-")[0][1:]) * 1_000_000 + n + 1
    future = replies.expect("telegram", f"{chat}:{i + 1}")
    update = {
        "update_id": chat * 1000 + i,
        "message": telegram_api.message(text, message_id=i + 1, chat_id=chat),
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    url = f"http://127.0.0.1:{port}/channels/telegram/webhook"
    async with session.post(url, json=update, headers=headers) as response:
        await response.read()
        response.raise_for_status()
    return future, False


async def _wechat(
    session: aiohttp.ClientSession,
    port: int,
    n: int,
    i: int,
    text: str,
    tag: str,
    pusher: Any,
    replies: Replies,
) -> tuple[asyncio.Future[float], bool]:
    from tests.support.fakes import wechat_api

    openid = f"o{tag}-{n}"
    future = replies.expect("wechat", openid)
    xml = wechat_api.text_xml(openid, f"{abs(hash(tag)) % 10**9}{n:04d}{i:04d}", text)
    query, body = pusher.encrypted_push(xml)
    url = f"http://127.0.0.1:{port}/channels/wechat"
    async with session.post(url, params=query, data=body.encode()) as response:
        answer = await response.text()
        response.raise_for_status()
    inline = answer.strip() not in ("", "success")
    if inline:
        replies.arrived("wechat", openid)
    return future, inline


async def _customers(
    session: aiohttp.ClientSession,
    replies: Replies,
    send: Send,
    pusher: Any,
    order: dict[str, Any],
    tag: str,
) -> dict[str, Any]:
    ports: list[int] = order["ports"]
    reply_times: list[float] = []
    ack_times: list[float] = []
    lost: dict[str, int] = defaultdict(int)

    lanes = order["customers"]

    async def customer(lane: int) -> None:
        for k in range(order["messages"]):
            # a lane is one customer at a time, a new one every PER_CUSTOMER messages: one
            # customer's 50th message in a row is not what a shop sees (the bot hands a long
            # run of small talk to a person, and is silent after)
            n, i = lane + (k // PER_CUSTOMER) * lanes, k % PER_CUSTOMER
            text = TEXTS[(n + i) % len(TEXTS)]
            port = ports[(n + i) % len(ports)]
            started = time.perf_counter()
            future, _ = await send(session, port, n, i, text, tag, pusher, replies)
            ack_times.append(time.perf_counter() - started)
            try:
                arrived = await asyncio.wait_for(future, REPLY_TIMEOUT)
            except TimeoutError:
                lost["no_reply"] += 1
                continue
            reply_times.append(arrived - started)

    started = time.perf_counter()
    await asyncio.gather(*(customer(n) for n in range(order["customers"])))
    elapsed = time.perf_counter() - started
    sent = order["customers"] * order["messages"]
    return {
        "sent": sent,
        "msgs_per_s": round(len(reply_times) / elapsed, 1),
        **{f"reply_{k}": v for k, v in _percentiles(reply_times).items()},
        "ack_p99_ms": _percentiles(ack_times)["p99_ms"],
        "no_reply": lost["no_reply"],
    }


def _percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.toml")
    parser.add_argument("--quick", action="store_true", help="fewer messages and customers")
    parser.add_argument("--routes", default="webhook,telegram,wechat")
    parser.add_argument("--customers", type=_numbers, default=None, help="1,10,100,500")
    parser.add_argument("--workers", type=_numbers, default=[1, 2, 4], help="1,2,4")
    parser.add_argument("--messages", type=int, default=None, help="per customer (5; quick 3)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BOT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="database of the 2- and 4-worker setups ('' skips them); its tables are dropped",
    )
    parser.add_argument(
        "--no-rate-counts",
        action="store_true",
        help="turn the per-address and per-customer rate limits off (to see what counting costs)",
    )
    parser.add_argument("--platform", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.platform:
        asyncio.run(platform())
        return
    args.routes = [r for r in args.routes.split(",") if r]
    if args.customers is None:
        args.customers = [1, 10, 100] if args.quick else [1, 10, 100, 500]
    if args.messages is None:
        args.messages = 3 if args.quick else 5
    print(json.dumps(asyncio.run(orchestrate(args))))


if __name__ == "__main__":
    main()
