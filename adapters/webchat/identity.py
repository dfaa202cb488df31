"""Who a visitor is, without accounts: a signed id the browser keeps.

An anonymous visitor gets `v:<22 random characters>`; a shop whose visitors are logged in
passes its own user id with `data-user-hash`, the hex HMAC-SHA256 of the id under the web
chat's secret (computed on the shop's server, so a page cannot claim another customer), and the
visitor is `u:<user id>`, one history across devices. Either way the browser then holds a token,
`<visitor>.<signature>`, signed with a key derived from the same secret for tokens only: a
visitor cannot make one for another id, and a shop's user hash is never a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

#: the longest user id a shop may pass (the store keeps 128 characters, with the `u:` prefix)
MAX_USER = 100


class Refused(Exception):
    """The token, or the shop's user hash, does not check out."""


class Visitors:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the web chat needs its signing secret")
        self._secret = secret.encode()
        self._token_key = hmac.new(self._secret, b"webchat visitor tokens", hashlib.sha256).digest()

    def anonymous(self) -> str:
        """A token for a new anonymous visitor."""
        return self.token("v:" + secrets.token_urlsafe(16))

    def logged_in(self, user: str, user_hash: str) -> str:
        """A token for the shop's customer `user`, if `user_hash` is the shop's HMAC of it."""
        if not user or len(user) > MAX_USER or not user.isprintable():
            raise Refused(f"data-user must be 1 to {MAX_USER} printable characters")
        expected = hmac.new(self._secret, user.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, user_hash.strip().lower()):
            raise Refused("data-user-hash is not the HMAC-SHA256 of data-user under the secret")
        return self.token("u:" + user)

    def token(self, visitor: str) -> str:
        return f"{visitor}.{self._signature(visitor)}"

    def visitor(self, token: str) -> str:
        """The visitor a token stands for; raises `Refused` for a forged or altered one."""
        visitor, dot, signature = token.rpartition(".")
        if not dot or not visitor.startswith(("v:", "u:")) or len(visitor) > MAX_USER + 2:
            raise Refused("not a visitor token")
        if not hmac.compare_digest(signature, self._signature(visitor)):
            raise Refused("the visitor token's signature does not match")
        return visitor

    def _signature(self, visitor: str) -> str:
        digest = hmac.new(self._token_key, visitor.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
