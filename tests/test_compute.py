"""Numeric calls run on the thread that makes them (bot.understanding.compute): in `bot run`'s
reading and store pools, and in the thread that builds the pipeline (`bot chat`, `bot eval`).
On small matrices BLAS and OpenMP threads cost more CPU than they save (docs/measurements.md)."""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import faiss
from threadpoolctl import threadpool_info

from bot.assembly import build_pipeline
from bot.content.config import Config
from bot.domain.clock import SystemClock
from bot.pipeline.knowledge import Knowledge
from bot.understanding.compute import one_thread
from bot.web.app import SERVICE, Parts, make_app


def _threads_here() -> tuple[int, list[int]]:
    """faiss's OpenMP threads for this thread, and each BLAS/OpenMP library's threads."""
    return faiss.omp_get_max_threads(), [lib["num_threads"] for lib in threadpool_info()]


def _threads_in(executor: Executor) -> tuple[int, list[int]]:
    return executor.submit(_threads_here).result()


def test_one_thread_limits_blas_and_the_calling_threads_openmp() -> None:
    with ThreadPoolExecutor(1, initializer=one_thread) as pool:
        openmp, libraries = _threads_in(pool)
    assert openmp == 1
    assert libraries and set(libraries) == {1}


def test_the_service_pools_and_the_building_thread_read_on_one_thread(
    config: Config, shop_knowledge: Knowledge, tmp_path: Path
) -> None:
    built: list[tuple[int, list[int]]] = []

    def build() -> None:
        pipeline = build_pipeline(
            config,
            SystemClock(),
            store_url=f"sqlite:///{tmp_path}/compute.sqlite3",
            knowledge=shop_knowledge,
        )
        built.append(_threads_here())
        service = make_app(Parts(pipeline, [], run_scheduler=False))[SERVICE]
        built.append(_threads_in(service.store_executor))
        built.append(_threads_in(service.reading_batch.executor))
        pipeline.store.close()

    # a new thread, so this test does not depend on what other tests did to the main thread
    with ThreadPoolExecutor(1) as fresh:
        fresh.submit(build).result()
    assert len(built) == 3
    for openmp, libraries in built:
        assert openmp == 1
        assert set(libraries) == {1}
