"""What a worker learnt at start-up, kept out of the garbage collector's sweeps.

A worker holds some 400,000 Python objects from start-up (the encoder's vocabulary, the FAQ,
intent and act models, the background set) that live as long as it does. Python's collector
walks every one of them in each full collection, and the garbage a message leaves behind starts
one every few hundred messages: at 100 concurrent customers that was a sixth of the worker's
CPU (bench/load.py: 0.7 s of collections in 3,200 messages, 0.1 s with these objects frozen).
`gc.freeze` moves them to a generation the collector skips; objects made later are collected as
before.

A reload replaces the FAQ and intent models: the old ones are unfrozen and collected once (so
nothing they held in a cycle is kept for ever), and what is alive then is frozen again.

Start-up also leaves the C heap full of freed blocks (the encoder's batches while the models
were fitted and calibrated) that glibc keeps for later; `give_back` returns their pages to the
operating system: about 6 MB of a worker's resident memory (bench/load.py's peak, 400 → 394 MB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from functools import cache
from typing import cast


def freeze_startup() -> None:
    """Collect start-up's garbage, then keep what is left out of later collections."""
    gc.collect()
    gc.freeze()
    give_back()


def refreeze() -> None:
    """After a reload: let the collector see the old content once, then freeze what is alive."""
    gc.unfreeze()
    freeze_startup()


def give_back() -> bool:
    """Return the C heap's free pages to the operating system; False where the C library has
    no `malloc_trim` (not glibc: macOS, musl), which keeps them as it always did."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast(Callable[[int], int], trim)
