"""Pulling 微信客服 messages: a callback only says "there is news for this account"
(`kf_msg_or_event`), the messages themselves come from `kf/sync_msg`, page by page from a cursor.

One pull per account (open_kfid) at a time across the cluster: a lease `wecom-sync:<open_kfid>`
(bot.store.leases) is held while pulling. A worker that finds the lease taken leaves a note
(`wanted:<open_kfid>` in channel_state); the holder takes the note and pulls once more before it
lets go, and the worker that left it waits until the note is taken or the lease is free — so no
callback's messages wait for the next callback. The cursor (`cursor:<open_kfid>`) is saved only
after a page's messages are stored by the service: a crash re-pulls a page (the store's unique
msgid answers each message once) rather than losing one. No transaction is held across an HTTP
call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any, TypeVar

from wechatpy.exceptions import WeChatClientException

from adapters.wecom.api import BAD_SYNC_TOKEN, NAME, KfClient
from bot.domain.messages import Inbound, Kind
from bot.web.channels import ChannelContext, ServiceStopping

log = logging.getLogger("adapters.wecom")

T = TypeVar("T")

#: origin of a message in sync_msg: the customer, a system event, a human servicer
CUSTOMER, SYSTEM, SERVICER = 3, 4, 5
PAGE_LIMIT = 1000
CHAT_SEPARATOR = "/"
KINDS = {"text": Kind.TEXT, "image": Kind.IMAGE, "voice": Kind.VOICE}
MAX_ID = 128


def chat_id(open_kfid: str, external_userid: str) -> str:
    """Where a reply goes: the account and the customer (ids are [A-Za-z0-9_-])."""
    return f"{open_kfid}{CHAT_SEPARATOR}{external_userid}"


def split_chat(chat: str) -> tuple[str, str]:
    open_kfid, separator, user = chat.partition(CHAT_SEPARATOR)
    if not separator or not open_kfid or not user:
        raise ValueError(f"not a 微信客服 chat id: {chat!r}")
    return open_kfid, user


def inbound_of(message: dict[str, Any]) -> Inbound | None:
    """A customer's message (origin 3) as the service's Inbound; None for anything else."""
    msgid, user = message.get("msgid"), message.get("external_userid")
    open_kfid = message.get("open_kfid")
    if not (_usable(msgid) and _usable(user) and _usable(open_kfid)):
        log.warning("sync_msg item without usable msgid/open_kfid/external_userid skipped")
        return None
    msgtype = str(message.get("msgtype", ""))
    kind = KINDS.get(msgtype, Kind.OTHER)
    body = message.get(msgtype)
    text = ""
    if kind == Kind.TEXT and isinstance(body, dict):
        text = str(body.get("content", ""))
    try:
        at = datetime.fromtimestamp(int(message.get("send_time", 0)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        at = datetime.now(UTC)
    raw: dict[str, Any] = {"msgtype": msgtype, "open_kfid": open_kfid}
    if kind != Kind.TEXT and isinstance(body, dict):
        raw[msgtype] = body  # media_id, location, link …: what an agent needs to look it up
    return Inbound(
        NAME, str(msgid), str(user), chat_id(str(open_kfid), str(user)), text, at, kind, raw
    )


def _usable(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID
        and value.isprintable()
        and CHAT_SEPARATOR not in value
    )


@dataclass
class PullSettings:
    lease_ttl: timedelta = timedelta(seconds=60)
    #: how often a worker that found the lease taken looks again
    retry_seconds: float = 0.2
    #: a note for the holder is valid as long as its sync token (10 minutes)
    note_ttl: timedelta = timedelta(minutes=10)
    #: pauses before pulling again after a failed pull (then every last one, until it works)
    retry_waits: tuple[float, ...] = (2.0, 5.0, 15.0, 30.0, 60.0)


class Puller:
    """The pulls of one worker: at most one running per account here, and (by the lease) in
    the cluster. `wanted(open_kfid, token)` is what a callback calls."""

    def __init__(
        self,
        context: ChannelContext,
        client: KfClient,
        http: Executor,
        holder: str,
        on_event: Callable[[dict[str, Any]], Awaitable[None]],
        settings: PullSettings | None = None,
    ) -> None:
        self.context = context
        self.store = context.store
        self.client = client
        self.http = http
        self.holder = holder
        self.on_event = on_event
        self.settings = settings or PullSettings()
        self._tokens: dict[str, str] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self.stopping = False

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._running.values())

    def wanted(self, open_kfid: str, token: str) -> None:
        """News for this account: pull now, or once more after the pull under way."""
        self._tokens[open_kfid] = token
        if open_kfid not in self._running and not self.stopping:
            task = asyncio.create_task(self._pulls(open_kfid), name=f"wecom-pull-{open_kfid}")
            self._running[open_kfid] = task

            def done(finished: asyncio.Task[None]) -> None:
                if self._running.get(open_kfid) is finished:
                    del self._running[open_kfid]

            task.add_done_callback(done)

    async def _pulls(self, open_kfid: str) -> None:
        failures = 0
        while not self.stopping:
            token = self._tokens.pop(open_kfid, None)
            if token is None:
                # no await between the last look and leaving: news that comes after this
                # starts a pull of its own
                self._running.pop(open_kfid, None)
                return
            try:
                await self._pull_when_free(open_kfid, token)
                failures = 0
            except ServiceStopping:
                log.info(
                    "微信客服 %s: worker stopping; the cursor stays for the next pull", open_kfid
                )
                return
            except Exception as exc:
                # WeCom down, a timeout, the database away: the customers' messages wait in
                # WeCom (3 days); pull again with growing pauses rather than wait for news
                failures += 1
                waits = self.settings.retry_waits
                wait = waits[min(failures, len(waits)) - 1]
                log.warning(
                    "pulling 微信客服 %s failed (%s: %s); again in %.0f s",
                    open_kfid,
                    type(exc).__name__,
                    exc,
                    wait,
                )
                self._tokens.setdefault(open_kfid, token)  # unless newer news brought one
                await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but not past the worker's stop (tasks are cancelled on stop anyway)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while not self.stopping and loop.time() < until:
            await asyncio.sleep(min(0.5, until - loop.time()))

    async def _pull_when_free(self, open_kfid: str, token: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.lease_ttl.total_seconds() + 10
        state = await self._db(self._take, open_kfid, token, True)
        while state == "busy":
            if self.stopping or loop.time() > deadline:
                log.warning("微信客服 %s: another worker keeps the pull; left to it", open_kfid)
                return
            await asyncio.sleep(self.settings.retry_seconds)
            state = await self._db(self._take, open_kfid, token, False)
        if state == "covered":
            log.debug("微信客服 %s: the worker pulling took this callback's note", open_kfid)
            return
        try:
            await self._sync(open_kfid, token)
            while not self.stopping:
                noted = await self._db(self._take_note, open_kfid)
                if noted is None:
                    break
                await self._sync(open_kfid, noted)
        finally:
            await self._db(self._let_go, open_kfid)

    async def _sync(self, open_kfid: str, token: str) -> None:
        """sync_msg from the stored cursor while has_more; the cursor moves after each page's
        messages are stored."""
        cursor = await self._db(self._cursor, open_kfid)
        while not self.stopping:
            page = await self._page(open_kfid, token, cursor)
            messages = page.get("msg_list") or []
            if not isinstance(messages, list):
                raise ValueError("sync_msg: msg_list is not a list")
            await self._accept(open_kfid, [m for m in messages if isinstance(m, dict)])
            next_cursor = page.get("next_cursor")
            if isinstance(next_cursor, str) and next_cursor and next_cursor != cursor:
                if not await self._db(self._advance, open_kfid, next_cursor):
                    log.warning("微信客服 %s: lease lost mid-pull; stopping", open_kfid)
                    return
                cursor = next_cursor
            if not page.get("has_more"):
                return

    async def _page(self, open_kfid: str, token: str, cursor: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {"token": token, "limit": PAGE_LIMIT, "open_kfid": open_kfid}
        if cursor:
            data["cursor"] = cursor
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.http, self.client.kf, "sync_msg", data)
        except WeChatClientException as exc:
            if exc.errcode != BAD_SYNC_TOKEN:
                raise
            # an expired callback token: without one sync_msg still works, only more limited
            log.info("微信客服 %s: sync token refused (%s); pulling without it", open_kfid, exc)
            data.pop("token")
            return await loop.run_in_executor(self.http, self.client.kf, "sync_msg", data)

    async def _accept(self, open_kfid: str, messages: list[dict[str, Any]]) -> None:
        """Customers' messages to the service (each customer's in order, customers side by
        side), events to the channel; servicers' and other messages are not bot input."""
        inbounds: list[Inbound] = []
        for message in messages:
            origin = message.get("origin")
            if message.get("msgtype") == "event":
                await self.on_event(message)
            elif origin == CUSTOMER:
                inbound = inbound_of({"open_kfid": open_kfid, **message})
                if inbound is not None:
                    inbounds.append(inbound)
            else:
                log.debug(
                    "微信客服 %s: message %s from origin %s skipped",
                    open_kfid,
                    message.get("msgid"),
                    origin,
                )
        by_user = groupby(sorted(inbounds, key=lambda i: i.user_id), key=lambda i: i.user_id)
        await asyncio.gather(*(self._handle_in_order(list(group)) for _, group in by_user))

    async def _handle_in_order(self, inbounds: list[Inbound]) -> None:
        for inbound in inbounds:
            await self.context.messages.handle(inbound)

    # --- database calls (in the store's pool) ----------------------------------------------

    def _lease(self, open_kfid: str) -> str:
        return f"wecom-sync:{open_kfid}"[:64]

    def _take(self, open_kfid: str, token: str, first: bool) -> str:
        """ "taken": pull now; "covered": the holder took our note and pulls after it; "busy":
        another worker holds the lease (our note is left for it)."""
        note = f"wanted:{open_kfid}"
        with self.store.transaction() as tx:
            if not first and tx.get(note) is None:
                return "covered"
            if tx.hold_lease(self._lease(open_kfid), self.holder, self.settings.lease_ttl):
                # pulling now covers whoever left a note before
                tx.forget(note)
                return "taken"
            tx.put(note, token, tx.now + self.settings.note_ttl)
            return "busy"

    def _take_note(self, open_kfid: str) -> str | None:
        """A note another worker left while this one pulled: its token, and the note gone."""
        note = f"wanted:{open_kfid}"
        with self.store.transaction() as tx:
            token = tx.get(note)
            if token is not None:
                tx.forget(note)
                tx.hold_lease(self._lease(open_kfid), self.holder, self.settings.lease_ttl)
            return token

    def _cursor(self, open_kfid: str) -> str | None:
        return self.store.get(f"cursor:{open_kfid}")

    def _advance(self, open_kfid: str, cursor: str) -> bool:
        """Save the cursor and renew the lease; False (nothing saved) if the lease was lost."""
        with self.store.transaction() as tx:
            if not tx.hold_lease(self._lease(open_kfid), self.holder, self.settings.lease_ttl):
                return False
            tx.put(f"cursor:{open_kfid}", cursor)
            return True

    def _let_go(self, open_kfid: str) -> None:
        with self.store.transaction() as tx:
            tx.let_go(self._lease(open_kfid), self.holder)

    async def _db(self, call: Callable[..., T], *args: object) -> T:
        return await self.context.in_store_pool(lambda: call(*args))
