"""A YAML mistake is reported where the admin made it, not where the parser gave up."""

from __future__ import annotations

from pathlib import Path

from bot.assembly import check
from bot.content.problems import Problem

NOTES = [
    f"# ({n}) ways customers complain, gathered from last month's transcripts" for n in range(19)
]
UNCLOSED_LIST = "\n".join(
    [
        "# Complaints go to the complaints queue.",
        "- name: complaint",
        "  action: handoff",
        "  queue: complaints",
        "  priority: high",
        "  examples: [我要投诉, 你们服务太差了",
        "",
        *NOTES,
        "",
        "- name: thanks2",
        "  action: reply",
        "  examples: [多谢啦, thanks a lot]",
        "  reply: {zh: 不客气, en: You're welcome}",
        "",
    ]
)


def _only_problem(shop: Path, folder: str, text: str) -> Problem:
    path = shop / folder / "zz.yaml"
    path.write_text(text, encoding="utf-8")
    [problem] = check(shop / "config.toml")
    assert problem.file == path
    return problem


def test_unclosed_bracket_is_reported_on_the_line_it_was_opened(shop: Path) -> None:
    assert UNCLOSED_LIST.splitlines()[5] == "  examples: [我要投诉, 你们服务太差了"
    assert UNCLOSED_LIST.splitlines()[27] == "- name: thanks2"  # where PyYAML notices
    problem = _only_problem(shop, "intents", UNCLOSED_LIST)
    assert problem.line == 6
    assert problem.message == (
        "invalid YAML: the `[` opened here is never closed (YAML noticed on line 28)"
    )
    assert problem.fix.startswith("end the list with `]` on this line")


def test_unclosed_brace_in_an_answer(shop: Path) -> None:
    text = "- id: gift-wrap\n  questions: [能包装吗]\n  answer: {zh: 可以, en: Yes\n  category: consult\n"
    problem = _only_problem(shop, "faq", text)
    assert problem.line == 3 and "the `{` opened here is never closed" in problem.message
    assert "`}`" in problem.fix


def test_unclosed_quote_is_reported_where_it_opened(shop: Path) -> None:
    text = (
        "- id: gift-wrap\n"
        "  questions: [能包装吗]\n"
        "  answer:\n"
        '    zh: "可以，下单时备注即可。\n'
        "    en: Yes, add a note to your order.\n"
        "\n"
        "- id: gift-card\n"
        "  questions: [有礼品卡吗]\n"
        "  answer: {zh: 有, en: Yes}\n"
    )
    problem = _only_problem(shop, "faq", text)
    assert problem.line == 4
    assert problem.message.startswith('invalid YAML: the `"` opened here is never closed')
    assert problem.fix == 'add the closing " at the end of the text'


def test_tab_indentation_names_the_line_and_says_spaces(shop: Path) -> None:
    text = "- id: gift-wrap\n  questions: [能包装吗]\n  answer:\n\tzh: 可以\n"
    problem = _only_problem(shop, "faq", text)
    assert problem.line == 4
    assert problem.message == "invalid YAML: a tab indents this line"
    assert problem.fix == "indent with spaces, not tabs"


def test_a_closed_list_with_a_bad_item_is_not_called_unclosed(shop: Path) -> None:
    text = '- id: gift-wrap\n  questions: [能包装吗, "礼品" 包装]\n  answer: {zh: 可以, en: Yes}\n'
    problem = _only_problem(shop, "faq", text)
    assert problem.line == 2 and "never closed" not in problem.message
    assert "in quotes" in problem.fix


def test_an_apostrophe_inside_an_item_is_not_a_quote(shop: Path) -> None:
    text = "- id: gift-wrap\n  questions: [can't wrap, 能包装吗\n  answer: {zh: 可以, en: Yes}\n"
    problem = _only_problem(shop, "faq", text)
    assert problem.line == 2 and "the `[` opened here is never closed" in problem.message
