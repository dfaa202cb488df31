"""Logging for every `bot` command: one format, and a formatter that keeps credentials and
personal data out of every line, tracebacks included (docs/privacy.md: only masked text is
logged)."""

from __future__ import annotations

import logging
import sys

from bot.domain.privacy import safe_for_logs

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SafeFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return safe_for_logs(super().format(record))


def configure(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter(FORMAT))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    for chatty in ("apscheduler", "alembic", "faiss"):  # their INFO lines bury the bot's own
        logging.getLogger(chatty).setLevel(logging.WARNING)
