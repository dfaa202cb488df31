"""What a command is doing while it loads: on a terminal, a step that takes more than a second
shows a spinner with its name, then a line saying it is done and how long it took; piped or
redirected, nothing (scripts and logs read only the results).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: what `bot chat`, `bot run` and `bot eval` do before they can answer
LEARNING = "loading the sentence encoder and learning the FAQ and intents"


def _after() -> float:
    """Seconds before a step shows itself: 1, or BOT_PROGRESS_AFTER (0 shows every step)."""
    try:
        return max(0.0, float(os.environ.get("BOT_PROGRESS_AFTER", "1")))
    except ValueError:
        return 1.0


@contextmanager
def step(
    text: str, stream: TextIO, after: float | None = None, every: float = 0.1
) -> Iterator[None]:
    """Show `text` with a spinner on `stream` once the step has taken `after` seconds, if
    `stream` is a terminal; when it ends, replace the spinner with "✓ text (N.N s)" (or
    "✗ text" when it raised)."""
    after = _after() if after is None else after
    if not stream.isatty():
        yield
        return
    started = time.monotonic()
    done = threading.Event()
    shown = threading.Event()

    def spin() -> None:
        if done.wait(after):
            return
        shown.set()
        frame = 0
        while not done.is_set():
            stream.write(f"\r{FRAMES[frame % len(FRAMES)]} {text}…")
            stream.flush()
            frame += 1
            done.wait(every)

    spinner = threading.Thread(target=spin, name="progress", daemon=True)
    spinner.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        done.set()
        spinner.join()
        if shown.is_set():
            mark = "✓" if ok else "✗"
            stream.write(f"\r\x1b[2K{mark} {text} ({time.monotonic() - started:.1f} s)\n")
            stream.flush()
