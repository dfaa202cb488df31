"""The in-process workload of `bench/load.py`, also run on an earlier commit's code by
`bench/compare.py` so that both sides of an A/B meet the same traffic.

`customers` conversations go on at once (closed loop: each sends its next message as soon as
the last one is decided). A customer sends `PER_VISIT` messages, then leaves and a new customer
takes the slot: a pace below the flood guard (8 messages in 30 s by default), so that what is
measured is the answering path, not the path that silences a flooding customer, and new
conversations keep arriving as they do in real traffic. Latency is from hand-over to the
decision written; CPU is the whole process's, every thread, per message.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.domain.messages import Inbound

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
#: messages one customer sends before another takes the slot (below the flood guard's 8)
PER_VISIT = 5
#: messages each slot sends, by concurrent customers: about two seconds of work at each level
MESSAGES = {1: 300, 10: 100, 100: 40}
QUICK_MESSAGES = {1: 60, 10: 20, 100: 10}


class Handles(Protocol):
    async def handle(self, inbound: Inbound) -> Any: ...


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99)}


async def closed_loop(service: Handles, customers: int, messages: int, tag: str) -> dict[str, Any]:
    """`customers` slots sending `messages` each; msgs/s, latency percentiles, CPU ms/msg."""
    latencies: list[float] = []

    async def slot(n: int) -> None:
        for i in range(messages):
            visitor = f"{tag}-{n}-{i // PER_VISIT}"
            text = TEXTS[(n + i) % len(TEXTS)]
            inbound = Inbound("bench", f"{visitor}-{i}", visitor, visitor, text, datetime.now(UTC))
            started = time.perf_counter()
            await service.handle(inbound)
            latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(slot(n) for n in range(customers)))
    elapsed = time.perf_counter() - started
    # CPU of the whole process (every thread) per message: steadier than msgs/s on a busy
    # machine, where waiting for a core shows in the rate but not here
    cpu_ms = (time.process_time() - cpu) * 1000 / max(len(latencies), 1)
    return {
        "msgs_per_s": round(len(latencies) / elapsed, 1),
        **percentiles(latencies),
        "cpu_ms_per_msg": round(cpu_ms, 3),
    }
