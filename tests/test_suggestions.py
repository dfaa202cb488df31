"""Picking a suggestion by number, in the ways customers write it."""

from __future__ import annotations

import pytest

from bot.understanding.suggestions import parse_pick


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("1", 0),
        ("2.", 1),
        ("#3", 2),
        ("选2", 1),
        ("2号", 1),
        ("第二个", 1),
        ("第2条", 1),
        ("选第二个吧", 1),
        ("第一个问题", 0),
        ("the second one", 1),
        ("option 2", 1),
        ("one", 0),
    ],
)
def test_picks(text: str, index: int) -> None:
    assert parse_pick(text, 3) == index


@pytest.mark.parametrize(
    "text", ["两个", "要两个", "第五个", "4", "hello", "12", "我要第二个和第三个"]
)
def test_not_picks(text: str) -> None:
    assert parse_pick(text, 3) is None
