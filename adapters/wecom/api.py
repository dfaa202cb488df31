"""The 微信客服 API as this channel uses it: wechatpy's WeCom client pointed at `api_base`, an
access token shared by every worker through `channel_state`, and what WeCom's error codes mean
for a reply.

wechatpy 1.8.18 has no 微信客服 (kf) methods, so the calls go through its generic
`client.post("kf/…", data=…)`; it still brings the access token, its refetch on 40001/40014/42001
and the JSON error handling. The client is synchronous (requests): callers run it in a thread.
"""

from __future__ import annotations

import threading
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from bot.domain.delivery import PermanentFailure, RetryAfter

NAME = "wecom"

#: send_msg refusals that no retry can fix: the dispatcher fails the conversation's unsent
#: replies and marks it unreachable (WeCom's global error codes, 微信客服 range)
PERMANENT_ERRORS = {
    95000: "invalid open_kfid (check the 微信客服 account)",
    95001: "message quota spent: 5 messages per customer message (wait for the customer)",
    95002: "the 48-hour reply window after the customer's last message has passed",
    95004: "open_kfid does not exist",
    95013: "the 微信客服 session has ended",
    95018: "the session's state does not allow the bot to send (a human or the queue has it)",
}
#: "too often": wait a minute
FREQUENCY_ERRORS = {45009, 45033}
#: the calling server's IP is not in the 企业可信IP list
UNTRUSTED_IP = 60020
#: the sync_msg token from the callback is invalid or expired (valid 10 minutes)
BAD_SYNC_TOKEN = 95007


class _DefaultTimeout(HTTPAdapter):
    """requests has no session-wide timeout and wechatpy's gettoken passes none: without this a
    stalled gettoken would hold a thread forever."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class KfClient(WeChatClient):
    """wechatpy's WeCom client with every URL under `api_base` (the real qyapi, a proxy, or a
    test's loopback fake): wechatpy hard-codes the gettoken URL, so it is rebuilt here."""

    def __init__(
        self,
        corp_id: str,
        secret: str,
        api_base: str,
        session: SessionStorage,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(corp_id, secret, session=session, timeout=timeout)
        self.api_base = api_base.rstrip("/")
        self.API_BASE_URL = f"{self.api_base}/cgi-bin/"
        adapter = _DefaultTimeout(timeout)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._calls = threading.local()

    @property
    def access_token_key(self) -> str:
        # wechatpy's default key carries the first 10 characters of the secret
        return f"access_token:{self.corp_id}"

    def fetch_access_token(self) -> dict[str, Any]:
        # wechatpy refetches and retries for as long as WeCom refuses the token: twice per
        # call is enough to recover from a revoked token without hammering gettoken
        fetches = getattr(self._calls, "fetches", 0) + 1
        self._calls.fetches = fetches
        if fetches > 2:
            raise WeChatClientException(40014, "the access token was refused again after a refetch")
        result: dict[str, Any] = self._fetch_access_token(
            url=f"{self.api_base}/cgi-bin/gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
        )
        return result

    def kf(self, endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
        """POST cgi-bin/kf/<endpoint>; raises WeChatClientException on a non-zero errcode."""
        self._calls.fetches = 0
        result: dict[str, Any] = self.post(f"kf/{endpoint}", data=data)
        return result


def delivery_error(exc: WeChatClientException) -> Exception:
    """What a send_msg refusal means for the dispatcher: PermanentFailure for the codes that
    no retry fixes, RetryAfter(60) when sending too often, else the error itself (a passing
    failure, retried with backoff)."""
    code = exc.errcode
    if code in PERMANENT_ERRORS:
        return PermanentFailure(f"微信客服 {code}: {PERMANENT_ERRORS[code]}")
    if code in FREQUENCY_ERRORS:
        return RetryAfter(60, f"微信客服 {code}: sending too often")
    if code == UNTRUSTED_IP:
        return ConnectionError(
            f"微信客服 {code}: this server's IP is not among the 企业可信IP (WeCom admin → "
            "应用管理 → 微信客服 → 企业可信IP)"
        )
    return ConnectionError(f"微信客服 send_msg failed: {code} {exc.errmsg}")
