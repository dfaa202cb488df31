"""What a WeChat Official Account push says, and the passive reply's XML.

Pushes are XML from the internet: a body that declares a DOCTYPE or an ENTITY (XXE, billion
laughs) is refused before any parser sees it, and xmltodict's `disable_entities` stays on as a
second wall. A push becomes an `Inbound` for the core, or None when it only needs an
acknowledgement (unsubscribe, menu clicks, location reports, customer-service session events,
a connected device's reports).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import datetime
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from bot.domain.messages import Inbound, Kind

log = logging.getLogger("adapters.wechat")

NAME = "wechat"
MAX_ID = 128
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
#: message types that carry nothing the bot can read (it asks for words)
_OTHER = {"video", "shortvideo", "location", "link", "file"}
#: the prefix of the hardware platform's pushes (device_text, device_event …)
_DEVICE = "device_"
#: what each type keeps in `raw` besides MsgType and CreateTime
_RAW_FIELDS = {
    "image": ("PicUrl", "MediaId"),
    "voice": ("MediaId", "Format"),
    "video": ("MediaId", "ThumbMediaId"),
    "shortvideo": ("MediaId", "ThumbMediaId"),
    "location": ("Location_X", "Location_Y", "Scale", "Label"),
    "link": ("Title", "Description", "Url"),
    "file": ("Title", "FileKey"),
}


class MalformedPush(ValueError):
    """The body is not a push this channel can read (answered 400, logged, nothing stored)."""


def read_xml(data: bytes | str) -> dict[str, Any]:
    """The fields of `<xml>…</xml>`; refuses declarations first, then anything malformed."""
    raw = data.encode() if isinstance(data, str) else data
    if _DECLARATION.search(raw):
        raise MalformedPush("a DOCTYPE or ENTITY declaration (refused unread)")
    return parse_fields(raw)


def parse_fields(raw: bytes) -> dict[str, Any]:
    """xmltodict with entities disabled: the wall behind `read_xml`'s own check."""
    try:
        document = xmltodict.parse(raw, disable_entities=True)
    except (ExpatError, ValueError) as exc:
        raise MalformedPush(f"not well-formed XML: {exc}") from None
    fields = document.get("xml") if isinstance(document, dict) else None
    if not isinstance(fields, dict):
        raise MalformedPush("the root element must be <xml>")
    return fields


def signature(*parts: str) -> str:
    """WeChat's signature: sha1 of the sorted parts, joined."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signed(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def to_inbound(fields: dict[str, Any], now: datetime) -> Inbound | None:
    """The core's view of a push; None when it only needs `success`."""
    openid = _text(fields, "FromUserName", required=True)
    if len(openid) > MAX_ID or not openid.isprintable():
        raise MalformedPush("FromUserName is not an openid")
    created = _text(fields, "CreateTime", required=True)
    if not created.isdigit():
        raise MalformedPush("CreateTime is not a number")
    kind = _text(fields, "MsgType", required=True).lower()
    _text(fields, "ToUserName", required=True)
    raw: dict[str, Any] = {"MsgType": kind, "CreateTime": int(created)}
    if kind == "event":
        return _event(fields, openid, created, now, raw)
    if kind.startswith(_DEVICE):
        # a connected device (WeChat's hardware platform) reporting, not a customer writing:
        # acknowledged and left unanswered, as wechatpy reads them (events, not messages)
        log.debug("WeChat device push %s from %s acknowledged", kind[:40], openid)
        return None
    msg_id = _text(fields, "MsgId", required=True)
    if not msg_id.isdigit() or len(msg_id) > MAX_ID:
        raise MalformedPush("MsgId is not a number")
    for name in _RAW_FIELDS.get(kind, ()):
        if name in fields:
            raw[name] = _text(fields, name)
    text = ""
    if kind == "text":
        kind_ = Kind.TEXT
        text = _text(fields, "Content")
    elif kind == "voice":
        text = _text(fields, "Recognition").strip()
        raw["voice"] = True
        kind_ = Kind.TEXT if text else Kind.VOICE
    elif kind == "image":
        kind_ = Kind.IMAGE
    elif kind in _OTHER:
        kind_ = Kind.OTHER
    else:
        log.info("unknown WeChat message type %r treated as other", kind[:32])
        kind_ = Kind.OTHER
    return Inbound(NAME, msg_id, openid, openid, text, now, kind_, raw)


def _event(
    fields: dict[str, Any], openid: str, created: str, now: datetime, raw: dict[str, Any]
) -> Inbound | None:
    event = _text(fields, "Event", required=True)
    raw["Event"] = event
    if event.lower() != "subscribe":
        # unsubscribe: writing back is refused anyway, and the pipeline would answer any
        # event it is fed; menus, location reports and kf sessions need no answer
        log.debug("WeChat event %s from %s acknowledged", event[:40], openid)
        return None
    key = _text(fields, "EventKey")
    if key.startswith("qrscene_"):
        raw["scene"] = key.removeprefix("qrscene_")
    raw["language"] = "zh"
    external = f"{openid}:{created}:{event}"[:MAX_ID]
    return Inbound(NAME, external, openid, openid, "welcome", now, Kind.EVENT, raw)


def _text(fields: dict[str, Any], name: str, required: bool = False) -> str:
    value = fields.get(name)
    if value is None:
        if required:
            raise MalformedPush(f"<{name}> is missing")
        return ""
    if not isinstance(value, str):
        raise MalformedPush(f"<{name}> must be text")
    return value


def text_reply(to_user: str, from_user: str, text: str, timestamp: str) -> str:
    """The passive reply: one text message back to the customer who pushed."""
    return (
        "<xml>"
        f"<ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(timestamp)}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{_cdata(text)}</Content>"
        "</xml>"
    )


def _cdata(text: str) -> str:
    """CDATA that stays closed where the text itself contains `]]>`."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
