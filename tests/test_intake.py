"""What a customer's text becomes before the bot reads, stores or logs it (bot.pipeline.intake)."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest

from bot.content.config import load_config
from bot.pipeline.intake import Cleaned, clean, printable

ESC = "\x1b"


def test_plain_text_passes_untouched() -> None:
    text = "你好，我的订单 #A1024 还没发货？Thanks 🙏"
    assert clean(text, 2000) == Cleaned(text, False, len(text))


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (f"{ESC}[31mred{ESC}[0m text", "red text"),  # colour
        (f"{ESC}[1;31;48;5;200mbold{ESC}[m", "bold"),  # several parameters
        (f"{ESC}[2J{ESC}[Hcleared", "cleared"),  # erase screen, cursor home
        (f"a{ESC}[?25lb{ESC}[?1049h", "ab"),  # private modes: hide cursor, alternate screen
        (f"{ESC}]0;pwned title\x07hi", "hi"),  # window title ended by BEL
        (f"{ESC}]0;title{ESC}\\hi", "hi"),  # ... and by ST
        (f"{ESC}]8;;http://evil.example{ESC}\\click{ESC}]8;;{ESC}\\", "click"),  # hyperlink
        (f"{ESC}P1$r0m{ESC}\\ok", "ok"),  # device control string
        (f"{ESC}(Bx{ESC}7y{ESC}8", "xy"),  # charset, save and restore cursor
        (f"lone escape{ESC}", "lone escape"),
        (f"{ESC}好的", "好的"),  # ESC before what cannot end a sequence goes alone
        (f"\x9b31mc1{ESC}[0m", "c1"),  # the 8-bit CSI
        ("\x9d0;t\x9cz", "z"),  # the 8-bit OSC and ST
    ],
)
def test_terminal_escape_sequences_are_removed(raw: str, kept: str) -> None:
    assert clean(raw, 2000).text == kept


def test_unterminated_sequences_leave_no_escape_behind() -> None:
    for raw in (f"a{ESC}]0;title", f"a{ESC}[", f"a{ESC}[31", f"a{ESC}"):
        assert ESC not in clean(raw, 2000).text
        assert clean(raw, 2000).text.startswith("a")


def test_controls_go_newlines_stay_and_tabs_become_spaces() -> None:
    raw = "line1\r\nline2\rline3\nend\tcol\x00\x07\x08\x0b\x0c\x7f\x85\x9f!"
    assert clean(raw, 2000).text == "line1\nline2\nline3\nend col!"


def test_every_control_character_but_newline_is_gone() -> None:
    controls = "".join(chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)])
    kept = printable(f"a{controls}b")
    assert {c for c in kept if unicodedata.category(c) == "Cc"} == {"\n"}  # \r became \n too


@pytest.mark.parametrize(
    "invisible",
    [
        *("\u202a", "\u202b", "\u202c", "\u202d", "\u202e"),  # bidi embeddings, overrides
        *("\u2066", "\u2067", "\u2068", "\u2069"),  # bidi isolates
        *("\u200b", "\u200e", "\u200f", "\u2060", "\ufeff", "\u061c"),  # zero-width, marks
    ],
)
def test_characters_that_disguise_text_are_removed(invisible: str) -> None:
    assert clean(f"refund{invisible}123", 2000).text == "refund123"


def test_a_right_to_left_override_cannot_reverse_what_agents_read() -> None:
    # shows as "invoice_fdp.exe" reversed: "invoice_exe.pdf"
    assert clean("invoice_\u202efdp.exe", 2000).text == "invoice_fdp.exe"


def test_lone_surrogates_which_cannot_be_stored_are_removed() -> None:
    kept = clean("bad\ud83dhalf", 2000).text
    assert kept == "badhalf"
    kept.encode("utf-8")


@pytest.mark.parametrize(
    "text",
    [
        "请问我买的杯子什么时候到？",
        "注文した商品はいつ届きますか",  # Japanese
        "주문 언제 와요?",  # Korean
        "Ça coûte combien ? ñ ü ß",
        "e\u0301 a\u0308 n\u0303",  # combining accents
        "👍🏽 👨\u200d👩\u200d👧\u200d👦 🇨🇳 ❤\ufe0f 1\ufe0f\u20e3",  # modifiers, ZWJ, flag, keycap
        "क्षत्रिय مرحبا עברית",  # Devanagari, Arabic, Hebrew (no overrides)
        "\u200c\u200d inside text",  # ZWNJ and ZWJ carry meaning in Persian, Indic and emoji
    ],
)
def test_real_writing_survives(text: str) -> None:
    assert clean(text, 2000).text == text


def test_surrounding_whitespace_is_trimmed() -> None:
    assert clean(f"  {ESC}[0m\n 你好 \n\t", 2000).text == "你好"


def test_the_limit_counts_characters_not_bytes() -> None:
    chinese = "好" * 2000  # 6,000 bytes in UTF-8
    assert clean(chinese, 2000) == Cleaned(chinese, False, 2000)
    cut = clean(chinese + "多", 2000)
    assert cut == Cleaned(chinese, True, 2001)


def test_the_limit_applies_to_the_cleaned_text() -> None:
    coloured = f"{ESC}[31m" + "a" * 10 + f"{ESC}[0m"
    assert clean(coloured, 10) == Cleaned("a" * 10, False, len(coloured))


def test_a_long_message_is_cut_and_says_so() -> None:
    raw = "我想问一下退货的事情。" * 2000  # 22,000 characters
    result = clean(raw, 2000)
    assert result.truncated and result.original_length == 22_000
    assert len(result.text) == 2000 and raw.startswith(result.text)


@pytest.mark.parametrize(
    ("text", "limit", "kept"),
    [
        ("cafe\u0301s", 4, "caf"),  # never an e without its accent
        ("ok 👍🏽!", 4, "ok"),  # the thumb goes with its skin tone (trailing space trimmed)
        ("hi 👨\u200d👩\u200d👧 there", 6, "hi"),  # a ZWJ family is one character
        ("flags 🇨🇳🇯🇵", 9, "flags 🇨🇳"),  # a flag is two regional letters
        ("flags 🇨🇳🇯🇵", 8, "flags 🇨🇳"),
        ("flags 🇨🇳🇯🇵", 7, "flags"),
        ("key 1\ufe0f\u20e3", 6, "key"),
    ],
)
def test_a_cut_keeps_characters_whole(text: str, limit: int, kept: str) -> None:
    result = clean(text, limit)
    assert result.truncated and result.text == kept


def test_an_enormous_paste_costs_what_a_long_message_costs() -> None:
    raw = f"{ESC}[31m好{ESC}[0m" * 1_000_000  # 10 million characters
    started = time.perf_counter()
    result = clean(raw, 2000)
    assert time.perf_counter() - started < 0.5
    assert result.truncated and result.original_length == len(raw)
    assert result.text == "好" * len(result.text) and 0 < len(result.text) <= 2000


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        clean("x", 0)


def test_the_shipped_config_sets_the_limit_and_the_polite_text() -> None:
    config = load_config(Path(__file__).parent.parent / "config.toml")
    assert config.guard.max_message_chars == 2000
    assert "开头" in config.texts.too_long["zh"]
    assert "only the beginning" in config.texts.too_long["en"]


def test_an_older_config_without_the_keys_still_loads(shop: Path) -> None:
    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index("# Put before the reply when a message was longer")
    end = text.index("[texts.flood]")
    text = text[:start] + text[end:]
    path.write_text(text.replace("max_message_chars = 2000\n", ""), encoding="utf-8")
    config = load_config(path)
    assert config.guard.max_message_chars == 2000
    assert set(config.texts.too_long) == {"zh", "en"}


def test_the_limit_has_sensible_bounds(shop: Path) -> None:
    from bot.assembly import check

    path = shop / "config.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("max_message_chars = 2000", "max_message_chars = 5"), "utf-8")
    [problem] = check(path)
    assert problem.message == "guard.max_message_chars: bad value 5"
    assert problem.line == text.splitlines().index("max_message_chars = 2000") + 1
