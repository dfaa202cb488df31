"""The web chat under many open panels: `bot run` workers holding visitors' live streams while
some of them chat; prints one JSON object.

    python bench/webchat_load.py [--visitors 1000] [--chatting 100] [--messages 5]
                                 [--workers 1,2] [--postgres URL] [--same-worker] [--quick]

Each setup starts `--workers` `bot run` processes with the web chat on (one on SQLite; more on
PostgreSQL, whose tables are dropped first) and plays `--visitors` visitors from this process:
each gets its signed id and opens its event stream (`GET /webchat/stream`), spread over the
workers. Then `--chatting` of them chat in a closed loop: send a FAQ question (`POST
/webchat/messages`, to the *next* worker, not the one holding its stream, when there are
several), wait for the answer to arrive on its stream, send the next. Each chatting visitor's
first message is not timed (it may also bring the after-hours notice, a second reply).

Reported per setup: the workers' resident memory with no stream open and with every stream
open (`rss_*_mib`), and the difference per stream (`kib_per_stream`); msgs/s; p50/p95/p99 from
sending a message to its answer arriving on the stream (the event received); messages with no
answer within 10 s; the workers' CPU per message. The rate limits are off (one loopback address
plays everybody) and the flood guard is raised: the figure is the service's, not the limits'.
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
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from http_load import _cpu_seconds, _set  # noqa: E402
from load import _bot, _empty, _port, _stop, _wait_ready  # noqa: E402

SECRET = "bench-webchat-secret-not-real-0123456789"
#: questions the shipped FAQ answers with one reply each (no handoff, no fallback streak)
QUESTIONS = ["运费多少", "多久能发货", "可以开发票吗", "怎么退货", "When will my order ship?"]
ANSWER_TIMEOUT = 10.0


def _shop(source: Path, folder: Path, url: str, port: int) -> Path:
    shop = folder / f"shop-{port}"
    shutil.copytree(source.parent, shop, ignore=shutil.ignore_patterns("var", ".venv", ".git"))
    cache = source.parent / "var" / "cache"
    if cache.is_dir():
        shutil.copytree(cache, shop / "var" / "cache", dirs_exist_ok=True)
    text = (shop / source.name).read_text(encoding="utf-8")
    text = _set(text, "storage", {"url": json.dumps(url)})
    text = _set(text, "service", {"public_url": json.dumps(f"http://127.0.0.1:{port}")})
    text = _set(text, "service", {"per_ip_per_minute": "0", "per_customer_per_minute": "0"})
    text = _set(text, "guard", {"flood_messages": "1000000"})
    text = _set(
        text,
        "channels.webchat",
        {
            "enabled": "true",
            "per_visitor_per_minute": "0",
            "per_ip_per_minute": "0",
            "streams_per_ip": "0",
        },
    )
    config = shop / source.name
    config.write_text(text, encoding="utf-8")
    return config


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


class Visitor:
    def __init__(self, token: str) -> None:
        self.token = token
        self.answers: asyncio.Queue[float] = asyncio.Queue()
        self.open = asyncio.Event()

    async def follow(self, http: aiohttp.ClientSession, base: str) -> None:
        """Hold the stream; every reply's arrival time goes to `answers`."""
        async with http.get(
            f"{base}/webchat/stream", params={"token": self.token}, timeout=None
        ) as response:
            assert response.status == 200, response.status
            self.open.set()
            event = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: ") and event == "line":
                    if json.loads(line[6:])["direction"] == "out":
                        self.answers.put_nowait(time.perf_counter())
                elif line.startswith("event: "):
                    event = line[7:]
                elif not line:
                    event = ""


async def _setup(args: argparse.Namespace, folder: Path, workers: int, url: str) -> dict[str, Any]:
    ports = [_port() for _ in range(workers)]
    env = {**os.environ, "BOT_WEBCHAT_SECRET": SECRET}
    processes = [
        subprocess.Popen(
            [
                _bot(),
                "--config",
                str(_shop(args.config.resolve(), folder, url, port)),
                "run",
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    pids = [p.pid for p in processes]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            for port in ports:
                await _wait_ready(http, port, 180)
            await asyncio.sleep(1.0)
            rss_before = _rss_mib(pids)

            async def visitor(n: int) -> Visitor:
                async with http.post(f"{bases[n % workers]}/webchat/visitor", json={}) as r:
                    return Visitor((await r.json())["token"])

            visitors = [await visitor(n) for n in range(args.visitors)]
            streams = [
                asyncio.create_task(v.follow(http, bases[n % workers]))
                for n, v in enumerate(visitors)
            ]
            await asyncio.wait_for(asyncio.gather(*(v.open.wait() for v in visitors)), 120)
            await asyncio.sleep(2.0)
            rss_open = _rss_mib(pids)

            latencies: list[float] = []
            missed = 0

            async def chat(n: int, who: Visitor) -> None:
                nonlocal missed
                # another worker than the stream's, unless --same-worker
                base = bases[(n + (0 if args.same_worker else 1)) % workers]
                for k in range(args.messages + 1):
                    while not who.answers.empty():
                        who.answers.get_nowait()
                    sent = time.perf_counter()
                    async with http.post(
                        f"{base}/webchat/messages",
                        json={"id": f"b{k}", "text": QUESTIONS[(n + k) % len(QUESTIONS)]},
                        headers={"X-Webchat-Token": who.token},
                    ) as response:
                        assert response.status == 202, await response.text()
                    try:
                        arrived = await asyncio.wait_for(who.answers.get(), ANSWER_TIMEOUT)
                    except TimeoutError:
                        missed += 1
                        continue
                    if k == 0:
                        await asyncio.sleep(0.5)  # the after-hours notice, if any, arrives too
                        continue
                    latencies.append(arrived - sent)

            cpu_before = _cpu_seconds(pids)
            started = time.perf_counter()
            await asyncio.gather(*(chat(n, visitors[n]) for n in range(args.chatting)))
            elapsed = time.perf_counter() - started
            cpu = _cpu_seconds(pids) - cpu_before
            for task in streams:
                task.cancel()
            await asyncio.gather(*streams, return_exceptions=True)
    finally:
        _stop(processes)
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000, 1)

    sent = args.chatting * (args.messages + 1)
    return {
        "workers": workers,
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "visitors": args.visitors,
        "chatting": args.chatting,
        "same_worker": args.same_worker,
        "rss_idle_mib": round(rss_before, 1),
        "rss_streams_open_mib": round(rss_open, 1),
        "kib_per_stream": round((rss_open - rss_before) * 1024 / args.visitors, 1),
        "timed": len(latencies),
        "msgs_per_s": round(sent / elapsed, 1),
        "answer_p50_ms": pct(0.50),
        "answer_p95_ms": pct(0.95),
        "answer_p99_ms": pct(0.99),
        "no_answer": missed,
        "cpu_ms_per_msg": round(cpu * 1000 / sent, 2),
    }


def _fresh_postgres(url: str) -> None:
    """The benchmark's own database, made if missing and emptied."""
    target = sa.make_url(url)
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
            {"name": target.database},
        ).first()
        if exists is None:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()
    _empty(url)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for workers in args.workers:
            if workers == 1:
                url = f"sqlite:///{folder}/bench-webchat.sqlite3"
            else:
                _fresh_postgres(args.postgres)
                url = args.postgres
            result = await _setup(args, folder, workers, url)
            print(json.dumps(result), file=sys.stderr, flush=True)
            results.append(result)
    return {"bench": "webchat_load", "results": results}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.toml")
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--chatting", type=int, default=100)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BOT_BENCH_WEBCHAT_POSTGRES_URL",
            "postgresql+psycopg://postgres@127.0.0.1:5432/bench_webchat",
        ),
        help="the database several workers share (made if missing; its tables are dropped first)",
    )
    parser.add_argument(
        "--same-worker",
        action="store_true",
        help="send each message to the worker holding the visitor's stream",
    )
    parser.add_argument("--quick", action="store_true", help="100 visitors, 20 chatting")
    args = parser.parse_args()
    if args.quick:
        args.visitors, args.chatting, args.messages = 100, 20, 3
    return args


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(_arguments())), indent=2))
