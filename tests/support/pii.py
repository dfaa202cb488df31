"""A seeded corpus of made-up personal data for the privacy sweep (tests/test_privacy_sweep.py):
resident ID numbers with right and wrong checksums, bank cards that pass and fail Luhn, mainland
mobiles written every way people write them, e-mail addresses, street addresses and passwords.
Generated from a seed, never real: the area codes, names and domains are invented or reserved
(example.com), and the same seed gives the same corpus.

`find_raw` looks for a value in text as written and as digits only, so "138 1234 5678" is
found in "13812345678" and the other way round."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, timedelta

from bot.domain.privacy import id_number_valid, luhn_valid

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

#: kinds that must never be stored, logged or reported as written
NEVER_RAW = ("id_number", "id_number_bad_checksum", "card", "card_bad_luhn", "mobile", "password")
#: kinds an agent may need in the transcript (docs/privacy.md), masked where admins keep text
FOR_AGENTS = ("email", "address")


@dataclass(frozen=True)
class Seeded:
    kind: str
    #: the value as it is written in the message
    written: str
    #: the message that carries it (what the customer, or the agent, types)
    message: str

    @property
    def digits(self) -> str:
        return re.sub(r"\D", "", self.written)


def _id_number(rng: random.Random, valid: bool) -> str:
    area = f"{rng.randint(11, 65)}{rng.randint(1, 99):02d}{rng.randint(1, 99):02d}"
    born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 55))
    body = f"{area}{born:%Y%m%d}{rng.randint(0, 999):03d}"
    check = _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]
    if not valid:
        check = rng.choice([c for c in "0123456789X" if c != check])
    number = body + check
    assert id_number_valid(number) is valid
    return number


def _card(rng: random.Random, valid: bool) -> str:
    prefix = rng.choice(["6222", "6228", "6217", "4563", "5187"])
    length = rng.choice([16, 19])
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    for last in "0123456789":
        if luhn_valid(body + last) is valid:
            return body + last
    raise AssertionError("unreachable")


def _mobile(rng: random.Random) -> tuple[str, str]:
    """A mobile number as written, and its 11 digits."""
    number = f"1{rng.choice('3456789')}{rng.randint(0, 9)}{rng.randint(0, 99_999_999):08d}"
    a, b, c = number[:3], number[3:7], number[7:]
    written = rng.choice(
        [number, f"+86{number}", f"+86 {number}", f"{a} {b} {c}", f"{a}-{b}-{c}",
         f"+86 {a}-{b}-{c}", f"86-{a}-{b}-{c}", f"+86-{a} {b} {c}"]
    )  # fmt: skip
    return written, number


_SURNAMES = ["zhang", "wang", "li", "zhao", "chen", "liu", "yang", "huang"]
_ROADS = ["青木", "松柏", "明远", "望江", "枫林", "锦绣", "云栖", "清风"]
_ESTATES = ["阳光", "翠湖", "星河", "碧水", "金桂", "丽景"]
_STREETS = ["Maple", "Cedar", "Willow", "Harbour", "Orchard", "Juniper"]


def corpus(seed: int = 20261207) -> list[Seeded]:
    """31 made-up values (25 that must never appear raw), each in a message of the kind
    customers send."""
    rng = random.Random(seed)
    found: list[Seeded] = []
    for valid in (True, False):
        kind = "id_number" if valid else "id_number_bad_checksum"
        for template in ["我的身份证号是{v}，帮我查下实名", "身份证 {v} 登记错了",
                         "ID number {v} please update"]:  # fmt: skip
            number = _id_number(rng, valid)
            found.append(Seeded(kind, number, template.format(v=number)))
    for valid in (True, False):
        kind = "card" if valid else "card_bad_luhn"
        for template in ["退款到银行卡 {v} 可以吗", "卡号：{v}", "my card number is {v}",
                         "信用卡{v}被扣了两次"]:  # fmt: skip
            card = _card(rng, valid)
            if rng.random() < 0.5:
                card = " ".join(card[i : i + 4] for i in range(0, len(card), 4))
            found.append(Seeded(kind, card, template.format(v=card)))
    for template in ["我的手机号{v}，请回电", "电话 {v}", "call me on {v} please",
                     "换绑手机：{v}", "联系人{v}（白天）", "手机是 {v} 快递员联系不上"]:  # fmt: skip
        written, _ = _mobile(rng)
        found.append(Seeded("mobile", written, template.format(v=written)))
    for template in ["发票发到{v}吗", "my email is {v}", "邮箱：{v}"]:
        name = f"{rng.choice(_SURNAMES)}.{rng.choice(_SURNAMES)}{rng.randint(10, 99)}"
        email = f"{name}@{rng.choice(['example.com', 'mail.example.net', 'example.org'])}"
        found.append(Seeded("email", email, template.format(v=email)))
    for _ in range(2):
        road = f"{rng.choice(_ROADS)}路{rng.randint(1, 999)}号"
        estate = f"{rng.choice(_ESTATES)}小区{rng.randint(1, 30)}栋{rng.randint(1, 30)}01室"
        found.append(Seeded("address", road, f"寄到{road}{estate}，谢谢"))
    street = f"{rng.randint(10, 999)} {rng.choice(_STREETS)} Street"
    found.append(Seeded("address", street, f"ship to {street}, Apt 4 please"))
    for template in ["密码是{v}，帮我看看登录不了", "my password: {v}", "支付密码 {v} 对吗",
                     "password is {v} and it fails", "登录密码：{v}"]:  # fmt: skip
        secret = "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(8))
        secret = secret[:4] + str(rng.randint(0, 9)) + secret[5:]
        found.append(Seeded("password", secret, template.format(v=secret)))
    return found


def _digits_joined(text: str) -> str:
    """Runs of digits with the spaces and dashes between them removed."""
    return re.sub(r"(?<=\d)[\s\-]+(?=\d)", "", text)


def find_raw(value: Seeded, text: str) -> bool:
    """True when `text` holds the value as written, or (for numbers) its digits unbroken."""
    if value.written in text:
        return True
    if value.kind in ("password", "email", "address"):
        return False
    digits = value.digits[-11:] if value.kind == "mobile" else value.digits
    return digits in _digits_joined(text)
