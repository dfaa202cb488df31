"""Which sites may embed the panel and call the web chat's API: `allowed_origins`.

A browser says where a request comes from (`Origin`); a request from a page on a site not on the
list is refused (403) and gets no CORS header, and the panel's CSP `frame-ancestors` lets only
those sites frame it. The service's own pages (the panel itself, the demo shop) are always
allowed. A request without `Origin` is not from another site's page (a server, curl): the
visitor's signed token is what it must show.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web


class Origins:
    def __init__(self, allowed: list[str], public_url: str) -> None:
        self.any = "*" in allowed
        self.allowed = frozenset(origin.lower().rstrip("/") for origin in allowed if origin != "*")
        self._public_host = urlsplit(public_url).netloc.lower() if public_url else ""

    def allows(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or self.own(request, origin) or self.listed(origin)

    def listed(self, origin: str) -> bool:
        return self.any or origin.lower().rstrip("/") in self.allowed

    def own(self, request: web.Request, origin: str) -> bool:
        host = urlsplit(origin).netloc.lower()
        return bool(host) and host in {request.host.lower(), self._public_host}

    def cors(self, request: web.Request) -> dict[str, str]:
        """The CORS headers for a request from a listed site (none for the others)."""
        origin = request.headers.get("Origin")
        if origin is None or self.own(request, origin) or not self.listed(origin):
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Headers": "Content-Type, X-Webchat-Token",
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    def frame_ancestors(self) -> str:
        if self.any:
            return "frame-ancestors *"
        return " ".join(["frame-ancestors 'self'", *sorted(self.allowed)])
