"""FAQ entries written in a test, in both languages."""

from __future__ import annotations

from pathlib import Path

from bot.content.entries import FaqEntry
from bot.domain.messages import Category


def bilingual_entry(entry_id: str, questions: tuple[str, ...], zh: str, en: str) -> FaqEntry:
    """An entry with these phrasings and a Chinese and an English answer."""
    return FaqEntry(entry_id, questions, {"zh": zh, "en": en}, Category.CONSULT, Path("x"), 1)
