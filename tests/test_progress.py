"""Start-up progress: a slow step shows its name on a terminal, a quick one shows nothing, and
nothing at all is written when the output is piped."""

from __future__ import annotations

import io
import os
import subprocess
import time
from pathlib import Path

import pytest

from bot.cli.progress import step
from tests.support.service import bot_command


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_slow_step_on_a_terminal_says_what_it_does_and_when_it_is_done() -> None:
    out = Terminal()
    with step("learning the content", out, after=0.05, every=0.01):
        time.sleep(0.3)
    text = out.getvalue()
    assert "learning the content…" in text  # the spinner while it ran
    last = text.rsplit("\r", 1)[-1]
    assert last.startswith("\x1b[2K✓ learning the content (") and last.endswith(" s)\n")


def test_a_quick_step_shows_nothing() -> None:
    out = Terminal()
    with step("loading the encoder", out, after=1.0):
        pass
    assert out.getvalue() == ""


def test_piped_output_gets_nothing_however_slow() -> None:
    out = io.StringIO()  # not a terminal
    with step("learning the content", out, after=0.0, every=0.01):
        time.sleep(0.1)
    assert out.getvalue() == ""


def test_a_failed_step_is_marked_and_the_error_goes_on() -> None:
    out = Terminal()
    with pytest.raises(RuntimeError), step("reading the FAQ", out, after=0.0, every=0.01):
        time.sleep(0.05)
        raise RuntimeError("broken file")
    assert out.getvalue().rsplit("\r", 1)[-1].startswith("\x1b[2K✗ reading the FAQ")


def _run_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run a command with a pseudo-terminal as its standard output and error; what it wrote."""
    primary, secondary = os.openpty()
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    process.wait(120)
    os.close(primary)
    return b"".join(chunks).decode("utf-8", "replace")


def test_bot_check_on_a_terminal_and_piped(shop: Path) -> None:
    env = {**os.environ, "BOT_PROGRESS_AFTER": "0"}
    command = [bot_command(), "--config", str(shop / "config.toml"), "check"]
    on_terminal = _run_on_a_terminal(command, env)
    assert "✓ reading the settings and content (" in on_terminal
    assert "config and content are valid" in on_terminal
    piped = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0
    assert "reading the settings" not in piped.stdout + piped.stderr
