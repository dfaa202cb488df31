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
"""

from __future__ import annotations

import gc


def freeze_startup() -> None:
    """Collect start-up's garbage, then keep what is left out of later collections."""
    gc.collect()
    gc.freeze()


def refreeze() -> None:
    """After a reload: let the collector see the old content once, then freeze what is alive."""
    gc.unfreeze()
    freeze_startup()
