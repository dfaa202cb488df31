"""The WeChat Official Account's customer-service message API (客服消息): how replies that miss
the 5-second passive reply reach the customer, through wechatpy's synchronous client.

One access token for the whole cluster: WeChat invalidates the previous token a few minutes
after a new one is fetched and allows only so many fetches a day, so every worker reads it from
`channel_state` (`TokenStorage`) and only one fetches at a time (`SharedTokenClient`).
The client speaks `requests`, so every call runs in this channel's own small thread pool,
never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from adapters.common.text_parts import split_utf8
from adapters.common.wechatpy_tokens import TokenStorage
from bot.domain.clock import Clock
from bot.domain.delivery import PermanentFailure, RetryAfter
from bot.domain.messages import Outbound
from bot.domain.privacy import redact_secrets
from bot.store.channel_store import ChannelKeys, ChannelStore

log = logging.getLogger("adapters.wechat")

NAME = "wechat"
#: a custom text message's content must stay under WeChat's limit; 2048 bytes of UTF-8 is safe
MAX_TEXT_BYTES = 2048
#: what WeChat's refusals mean for the dispatcher
REFUSED_FOR_GOOD = {
    45015: "WeChat refused (45015): more than 48 hours since the customer's last message, "
    "or the customer unfollowed the account",
    45047: "WeChat refused (45047): the 5 messages allowed after the customer's last "
    "message are spent",
    43004: "WeChat refused (43004): the customer does not follow the account",
    40003: "WeChat refused (40003): not an openid of this account",
}
API_DAILY_LIMIT = 45009
#: fixes for errors that are the operator's to fix, not the customer's
SETUP_HINTS = {
    40164: "add this server's public IP to the IP whitelist (设置与开发 → 基本配置 → IP白名单)",
    40125: "the AppSecret is wrong: check $WECHAT_APP_SECRET",
    40013: "the AppID is wrong: check app_id under [channels.wechat]",
}


class SharedTokenClient(WeChatClient):
    """wechatpy's client pointed at `api_base` (WeChat's, or a test's loopback fake), with the
    token fetched by one worker at a time: a worker that finds a token newer than the one it
    was refused with uses it instead of fetching another (which would invalidate the first)."""

    def __init__(self, app_id: str, secret: str, api_base: str, storage: TokenStorage) -> None:
        super().__init__(app_id, secret, session=storage, timeout=10)
        self.API_BASE_URL = api_base.rstrip("/") + "/cgi-bin/"
        self.token_url = api_base.rstrip("/") + "/cgi-bin/token"
        self.storage = storage
        self._local = threading.local()
        #: one fetch at a time in this process (and, on PostgreSQL, in the cluster)
        self._fetching = threading.Lock()

    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        if not token:
            self.fetch_access_token()
            token = self.session.get(self.access_token_key)
        self._local.used = token
        return str(token)

    def begin_call(self) -> None:
        """A new API call on this thread: it may refetch the token once (wechatpy retries a
        refused token forever otherwise)."""
        self._local.fetches = 0

    def fetch_access_token(self) -> dict[str, Any]:
        fetches = getattr(self._local, "fetches", 0) + 1
        self._local.fetches = fetches
        if fetches > 2:
            raise WeChatClientException(40001, "the access token was refused again after a refetch")
        refused = getattr(self._local, "used", None)
        # one fetch at a time in this process; on PostgreSQL the other workers wait on the
        # key's lock, then use this fetch's token (on SQLite nothing is held across the call)
        with self._fetching, self.storage.store.locked(self.access_token_key) as keys:
            return self._reuse_or_fetch(keys, refused)

    def _reuse_or_fetch(self, keys: ChannelKeys, refused: str | None) -> dict[str, Any]:
        key = self.access_token_key
        current = keys.get(key)
        if current is not None and current != refused:
            self._local.used = current
            return {"access_token": current}
        result = self._request_token()
        token, ttl = str(result["access_token"]), int(result.get("expires_in", 7200))
        self.storage.put(keys, key, token, ttl)
        self._local.used = token
        return result

    def _request_token(self) -> dict[str, Any]:
        log.info("fetching a WeChat access token from %s", self.token_url)
        response = self._http.get(
            self.token_url,
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            timeout=self.timeout,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        code = int(result.get("errcode", 0) or 0)
        if code or "access_token" not in result:
            message = result.get("errmsg", "no access_token in the answer")
            hint = SETUP_HINTS.get(code)
            raise WeChatClientException(code, f"{message}; {hint}" if hint else message)
        return result


class WechatSender:
    """Sends replies through the customer-service API; the dispatcher calls it."""

    def __init__(self, app_id: str, secret: str, api_base: str, threads: int = 4) -> None:
        self.app_id = app_id
        self.secret = secret
        self.api_base = api_base
        self.threads = threads
        self.client: SharedTokenClient | None = None
        self._pool: ThreadPoolExecutor | None = None

    def attach(self, store: ChannelStore, clock: Clock) -> None:
        """Where the shared token lives (the service's store), known once the app is built."""
        self.client = SharedTokenClient(
            self.app_id, self.secret, self.api_base, TokenStorage(store, clock)
        )

    async def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="wechat-api")

    async def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    async def send(self, message: Outbound) -> None:
        assert self.client is not None and self._pool is not None, "the channel was not started"
        loop = asyncio.get_running_loop()
        for part in split_utf8(message.text, MAX_TEXT_BYTES):
            await loop.run_in_executor(self._pool, self._send_text, message.chat_id, part)

    def _send_text(self, openid: str, text: str) -> None:
        assert self.client is not None
        self.client.begin_call()
        try:
            self.client.message.send_text(openid, text)
        except WeChatClientException as exc:
            raise _classify(exc) from exc
        except requests.RequestException as exc:
            raise ConnectionError(f"WeChat API unreachable: {redact_secrets(str(exc))}") from None


def _classify(exc: WeChatClientException) -> Exception:
    code = exc.errcode
    if code in REFUSED_FOR_GOOD:
        return PermanentFailure(REFUSED_FOR_GOOD[code])
    if code == API_DAILY_LIMIT:
        return RetryAfter(600, "WeChat's daily API call limit (45009) is reached")
    hint = SETUP_HINTS.get(code) if code is not None else None
    detail = f"WeChat API error {code}: {exc.errmsg}"
    return ConnectionError(f"{detail} ({hint})" if hint else detail)
