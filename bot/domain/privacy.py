"""Masking of personal data before anything is stored or logged.

Covers mainland resident ID numbers (18 digits, checksum verified, or with a plausible birth
date right after an ID keyword), bank cards (13–19 digits, Luhn verified, or any long digit run
right after a card keyword), phone numbers (mainland
mobiles and +country numbers) and passwords written after a password keyword. Order numbers and
other long digit runs that fail these checks stay readable for agents.

What admins keep in files (`bot faq gaps`, faq/drafts.yaml, the weekly report) goes through
`for_admins`, which masks more: there an order number is of no use, so an 18-character number
shaped like an ID number (a plausible birth date in it) is masked whatever its checksum, and
e-mail addresses and street addresses are masked too; and a customer's text is cut at
MAX_SHARED characters. Transcripts keep these readable: an agent needs the order number and the
delivery address to help.
"""

from __future__ import annotations

import re

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_ID_NUMBER = re.compile(r"(?<!\d)(\d{6}\s?\d{4}\s?\d{4}\s?\d{3}[\dXx])(?![\dXx])")
_CARD = re.compile(r"(?<![\d])(\d{4}(?:[ -]?\d{1,4}){2,4})(?![\d])")
_CARD_KEYWORD = re.compile(
    r"(卡号|银行卡|信用卡|储蓄卡|card(?:\s*(?:number|no\.?|#))?)\s*(?:[:：是为]|is|was)?\s*[:：]?\s*$",
    re.I,
)
# "身份证号是…", "ID number is …": a number said to be an ID number is one, whatever its checksum
_ID_KEYWORD = re.compile(
    r"(身份证(?:号码?)?|证件号码?|\bID(?:\s*(?:card|number|no\.?|#))*)"
    r"\s*(?:[:：是为]|is|was)?\s*[:：]?\s*$",
    re.I,
)
#: how far before a number its keyword may start ("my card number is: ")
_KEYWORD_WINDOW = 24
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
_INTL_PHONE = re.compile(r"(?<![\w+])\+(\d[\d -]{6,16}\d)(?!\d)")
_SECRET_WORD = (
    r"((?:登录|登陆|支付|交易|银行卡|账户|账号)?密码|口令|验证码|\b(?:pass(?:word|code)|pwd|pin)\b)"
)
_VALUE = r"[^\s，。,;；!！?？]+"
# "密码是abc123", "password is: hunter2", "pwd=x1": a value after an explicit separator ...
_SECRET_SAID = re.compile(
    _SECRET_WORD
    + r"(\s*(?:(?:是|为|is|was)\s*[:：]?|[:：=])\s*)"
    + r"([^\s，。,;；!！?？]*[A-Za-z0-9][^\s，。,;；!！?？]*)",
    re.I,
)
# ... or right after the word when it has a digit ("PIN 1234", "支付密码 123456"), so that
# questions such as "忘记密码了" or "验证码收不到" stay readable.
_SECRET_BARE = re.compile(_SECRET_WORD + r"(\s*)((?=[^\s，。,;；!！?？]*\d)" + _VALUE + ")", re.I)
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９Ｘｘ＋", "0123456789Xx+")


def id_number_valid(number: str) -> bool:
    """Checksum (ISO 7064 MOD 11-2) and a plausible birth date, so order numbers stay readable."""
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if not (1900 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    body, check = number[:17], number[17].upper()
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == check


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_ids(text: str) -> str:
    """ID numbers with a valid checksum, and any ID-shaped number with a plausible birth date
    right after an ID keyword (a mistyped ID number is still one; an order number is not said
    to be an ID)."""

    def replace(match: re.Match[str]) -> str:
        number = re.sub(r"\s", "", match.group(1))
        before = text[max(0, match.start() - _KEYWORD_WINDOW) : match.start()]
        if id_number_valid(number) or (_ID_KEYWORD.search(before) and _birth_date(number)):
            return number[:3] + "*" * 11 + number[-4:]
        return match.group(1)

    return _ID_NUMBER.sub(replace, text)


def _birth_date(number: str) -> bool:
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    return 1900 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31


def _mask_card(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        raw = match.group(1)
        digits = re.sub(r"[ -]", "", raw)
        before = text[max(0, match.start() - _KEYWORD_WINDOW) : match.start()]
        after_keyword = bool(_CARD_KEYWORD.search(before))
        if 13 <= len(digits) <= 19 and (luhn_valid(digits) or after_keyword):
            return "*" * (len(digits) - 4) + digits[-4:]
        return raw

    return _CARD.sub(replace, text)


def mask(text: str) -> str:
    """The text with personal data masked; safe to store and to log."""
    text = text.translate(_FULL_WIDTH_DIGITS)
    text = _SECRET_SAID.sub(lambda m: f"{m.group(1)}{m.group(2)}******", text)
    text = _SECRET_BARE.sub(lambda m: f"{m.group(1)}{m.group(2)}******", text)
    text = _mask_ids(text)
    text = _mask_card(text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _INTL_PHONE.sub(lambda m: "+" + re.sub(r"\d(?=[\d -]{4,}$)", "*", m.group(1)), text)
    return text


#: the longest customer text copied into what admins keep (as a phrasing's MAX_QUESTION)
MAX_SHARED = 200

_ID_SHAPED = re.compile(r"(?<![\dA-Za-z*])(\d{6}\s?\d{4}\s?\d{4}\s?\d{3}[\dXx])(?![\dA-Za-z])")
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)
_HAN = "\u3400-\u9fff"
# a place name before 路/街/道…: a few characters that are not the words around an address
# ("我家地址是…", "寄到…"); `知道`, `渠道` and the like are words, not roads
_PLACE = (
    rf"(?:(?![是在的住到寄往址我])[{_HAN}A-Za-z0-9]){{0,8}}?"
    rf"(?![是在的住到寄往址我知难味频渠通报管轨跑车])[{_HAN}]"
)
_ROAD = rf"{_PLACE}(?:大道|大街|路|街|道|巷|弄|胡同|里)\s*\d+(?:-\d+)?\s*[号號](?:院|楼)?"
_ESTATE = rf"{_PLACE}(?:小区|花园|公寓|大厦|家园|新村|社区)"
_UNIT = r"\d+[A-Za-z]?\s*(?:栋|幢|号楼|座|单元|室|层|户)"
_CN_ADDRESS = re.compile(
    rf"(?:(?:{_ROAD}|{_ESTATE})(?:\s*(?:[{_HAN}A-Za-z]{{0,8}}?\s*{_UNIT}|{_ESTATE}))*"
    rf"|{_UNIT}(?:\s*{_UNIT})+)"
)
_STREET_WORDS = (
    "street|st|road|rd|avenue|ave|boulevard|blvd|lane|ln|drive|court|ct|terrace|crescent|"
    "close|place|square|highway|hwy"
)
_EN_ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Za-z][A-Za-z'.-]*\s+){1,3}"
    rf"(?:{_STREET_WORDS})\b\.?"
    r"(?:,?\s*(?:apt|apartment|unit|suite|flat|#)\.?\s*#?[\w-]+)?",
    re.I,
)


def _mask_id_shaped(match: re.Match[str]) -> str:
    number = re.sub(r"\s", "", match.group(1))
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if not (1900 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31):
        return match.group(1)  # not a birth date: an order or tracking number
    return number[:3] + "*" * 11 + number[-4:]


def search_forms(text: str) -> tuple[str, ...]:
    """The forms in which what an agent types may have been stored: masked as every text is,
    and, when it holds an ID-shaped number with a birth date that is no valid ID number, also
    with that number masked, as it is when a customer said it was one ("身份证号 1101…": see
    `_mask_ids`). An order number of that shape is stored as typed and found by the first."""
    masked = mask(text)
    as_id = _ID_SHAPED.sub(_mask_id_shaped, masked)
    return (masked,) if as_id == masked else (masked, as_id)


def mask_addresses(text: str) -> str:
    """Street addresses replaced by [地址] / [address]: a road and its number (建国路88号), a
    housing estate (阳光小区), building, unit and room (3栋2单元1501室), "221B Baker Street"."""
    text = _CN_ADDRESS.sub("[地址]", text)
    return _EN_ADDRESS.sub("[address]", text)


def for_admins(text: str) -> str:
    """A customer's text as admins may keep it in files they commit (faq/drafts.yaml) and in
    reports: masked like stored text, and more (see the module's docstring), at most
    MAX_SHARED characters."""
    text = mask(text)
    text = _ID_SHAPED.sub(_mask_id_shaped, text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = mask_addresses(text)
    return text if len(text) <= MAX_SHARED else text[: MAX_SHARED - 1] + "…"


#: credentials that HTTP clients put in URLs (WeChat's `secret`, WeCom's `corpsecret`, every
#: API call's `access_token`) and so into their error messages
_CREDENTIAL_IN_URL = re.compile(
    r"(?i)\b(secret|corpsecret|appsecret|access_token|token|key)=([^&\s'\"<>]+)"
)


def redact_secrets(text: str) -> str:
    """The text with credentials in URLs replaced by …, for logs and stored errors."""
    return _CREDENTIAL_IN_URL.sub(r"\1=…", text)


def safe_for_logs(text: str) -> str:
    """What a log line may hold: no credentials, and personal data masked (a last wall: the
    pipeline logs masked texts already, but a library's error may quote a request)."""
    return mask(redact_secrets(text))
