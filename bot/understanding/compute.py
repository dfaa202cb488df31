"""One thread per numeric call.

Reading a message multiplies small matrices: a few texts against a few hundred FAQ phrasings,
background examples and answers. NumPy's OpenBLAS and faiss's OpenMP would split each product
across every core, and on matrices this small the threads spend more time waking and spinning
than multiplying: on 2 cores a worker used about twice the CPU per message (bench/load.py, 100
customers: 2.7 against 1.4 ms). A worker gets its parallelism from messages instead (the
reading thread, the store pool, more workers), so each call runs on the thread that makes it.

OpenBLAS's limit holds for the whole process; OpenMP's is kept per thread, so every thread that
reads (the main thread of `bot chat` and `bot eval`, and each pool thread of `bot run`) calls
`one_thread` itself: pools take it as their `initializer`.
"""

from __future__ import annotations

import faiss
from threadpoolctl import threadpool_limits


def one_thread() -> None:
    """Run this thread's numeric calls (NumPy's BLAS, faiss) on this thread alone."""
    threadpool_limits(limits=1)
    faiss.omp_set_num_threads(1)
