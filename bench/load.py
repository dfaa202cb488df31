"""Throughput and latency of the service under concurrent customers; prints one JSON object.

    python bench/load.py [--quick] [--config config.toml] [--postgres URL]

- `inproc`: one worker in this process (the real MessageService: accept, micro-batched
  understanding, the locked decision, the outbox write, on SQLite in a temporary folder),
  1, 10 and 100 concurrent customers, each sending its next message as soon as the last one is
  decided (closed loop). Latency is from hand-over to the decision written.
- `encoder_batched_per_s`: the encoder alone on the same texts in batches of 64, same run;
  `pipeline_to_encoder_ratio` is the 100-customer throughput over it.
- `lone_message_ms`: p50 of one message at a time through `Pipeline.handle` (the path `bot chat`
  takes), to compare with the 1-customer figure.
- `workers_pg`: 4 `bot run` processes on PostgreSQL, 100 customers over HTTP (webhook channel).
- `cold_start_s`: `bot run` started with warm caches until its first answer over HTTP.
- `peak_rss_mb`: this process (one in-process worker with the default encoder).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from bot.assembly import build_pipeline, content_encoder
from bot.content.config import load_config
from bot.domain.clock import SystemClock
from bot.domain.messages import Inbound
from bot.web.service import MessageService

TEXTS = [
    "运费多少",
    "多久能发货",
    "可以开发票吗",
    "怎么退货",
    "When will my order ship?",
    "你好",
    "今天天气怎么样",
    "退款多久到账",
    "有没有优惠券",
    "谢谢",
]
SECRET = "bench-secret"


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99)}


async def _inproc(
    service: MessageService, customers: int, messages: int, tag: str
) -> dict[str, Any]:
    latencies: list[float] = []

    async def customer(n: int) -> None:
        for i in range(messages):
            text = TEXTS[(n + i) % len(TEXTS)]
            inbound = Inbound(
                "bench", f"{tag}-{n}-{i}", f"{tag}-{n}", f"{tag}-{n}", text, datetime.now(UTC)
            )
            started = time.perf_counter()
            await service.handle(inbound)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(customer(n) for n in range(customers)))
    elapsed = time.perf_counter() - started
    return {"msgs_per_s": round(len(latencies) / elapsed, 1), **_percentiles(latencies)}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bot() -> str:
    return str(Path(sys.executable).with_name("bot"))


async def _wait_ready(session: aiohttp.ClientSession, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"worker on {port} did not become ready")


def _service_config(source: Path, folder: Path, url: str) -> Path:
    shop = folder / "shop"
    shutil.copytree(source.parent, shop, ignore=shutil.ignore_patterns("var", ".venv", ".git"))
    config = shop / source.name
    text = config.read_text(encoding="utf-8").replace(
        'url = "sqlite:///var/bot.sqlite3"', f'url = "{url}"'
    )
    text = text.replace("[channels.webhook]\n", "[channels.webhook]\nenabled = true\n", 1).replace(
        "\nenabled = false\n", "\n", 1
    )
    config.write_text(text, encoding="utf-8")
    # warm caches: reuse the project's embedding and model cache
    cache = source.parent / "var" / "cache"
    if cache.is_dir():
        shutil.copytree(cache, shop / "var" / "cache", dirs_exist_ok=True)
    return config


async def _http_load(ports: list[int], customers: int, messages: int) -> dict[str, Any]:
    latencies: list[float] = []
    auth = {"Authorization": f"Bearer {SECRET}"}
    async with aiohttp.ClientSession() as session:
        for port in ports:
            await _wait_ready(session, port, 120)

        async def customer(n: int) -> None:
            for i in range(messages):
                port = ports[(n + i) % len(ports)]
                body = {"id": f"h{n}-{i}", "user": f"h{n}", "text": TEXTS[(n + i) % len(TEXTS)]}
                started = time.perf_counter()
                async with session.post(
                    f"http://127.0.0.1:{port}/channels/webhook/messages", json=body, headers=auth
                ) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(customer(n) for n in range(customers)))
        elapsed = time.perf_counter() - started
    figures = _percentiles(latencies)
    return {
        "workers": len(ports),
        "msgs_per_s": round(len(latencies) / elapsed, 1),
        "p99_ms": figures["p99_ms"],
    }


def _start(config: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BOT_WEBHOOK_SECRET": SECRET}
    return subprocess.Popen(
        [_bot(), "--config", str(config), "run", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


async def _cold_start(config: Path) -> float:
    port = _port()
    started = time.perf_counter()
    process = _start(config, port)
    try:
        async with aiohttp.ClientSession() as session:
            await _wait_ready(session, port, 120)
            async with session.post(
                f"http://127.0.0.1:{port}/channels/webhook/messages",
                json={"id": "cold", "user": "cold", "text": "运费多少", "wait": True},
                headers={"Authorization": f"Bearer {SECRET}"},
            ) as response:
                assert (await response.json())["action"] == "answer"
        return round(time.perf_counter() - started, 2)
    finally:
        _stop([process])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config.toml"))
    parser.add_argument("--quick", action="store_true", help="fewer messages (under a minute)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BOT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="database for the 4-worker run ('' skips it); its tables are dropped first",
    )
    args = parser.parse_args()
    per_customer = 3 if args.quick else 10
    config = load_config(args.config)
    result: dict[str, Any] = {"quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="bot-load-") as folder:
        encoder = content_encoder(config)
        pipeline = build_pipeline(
            config, SystemClock(), store_url=f"sqlite:///{folder}/load.sqlite3", encoder=encoder
        )
        # a lone message the way `bot chat` takes it
        lone = []
        for n in range(30 if args.quick else 100):
            started = time.perf_counter()
            pipeline.handle(
                Inbound("bench", f"lone-{n}", f"lone-{n}", "c", TEXTS[n % 10], datetime.now(UTC))
            )
            lone.append(time.perf_counter() - started)
        result["lone_message_ms"] = round(statistics.median(lone) * 1000, 2)

        texts = [f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(640 if args.quick else 2560)]
        started = time.perf_counter()
        for first in range(0, len(texts), 64):
            encoder.inner.encode(texts[first : first + 64])
        result["encoder_batched_per_s"] = round(len(texts) / (time.perf_counter() - started), 1)

        with (
            ThreadPoolExecutor(config.service.threads) as store_pool,
            ThreadPoolExecutor(1) as reading,
        ):
            service = MessageService(
                pipeline, store_pool, reading, batch_max=config.service.batch_max
            )
            result["inproc"] = {}
            for customers in (1, 10, 100):
                messages = per_customer * (10 if customers == 1 else 1)
                result["inproc"][str(customers)] = await _inproc(
                    service, customers, messages, f"c{customers}"
                )
            sizes = service.batcher.sizes
            result["mean_batch"] = round(sum(sizes) / max(len(sizes), 1), 1)
        result["pipeline_to_encoder_ratio"] = round(
            result["inproc"]["100"]["msgs_per_s"] / result["encoder_batched_per_s"], 3
        )
        pipeline.store.engine.dispose()

        sqlite_config = _service_config(
            args.config.resolve(), Path(folder) / "cold", "sqlite:///var/bot.sqlite3"
        )
        result["cold_start_s"] = await _cold_start(sqlite_config)

        if args.postgres:
            engine = sa.create_engine(args.postgres)
            with engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()
            pg_config = _service_config(args.config.resolve(), Path(folder) / "pg", args.postgres)
            ports = [_port() for _ in range(4)]
            processes = [_start(pg_config, port) for port in ports]
            try:
                result["workers_pg"] = await _http_load(ports, 100, per_customer)
            finally:
                _stop(processes)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
