"""The web chat's other end in the tests: a visitor's event stream read as it comes, and the
`data-user-hash` a shop's server computes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

#: how long a test waits for a line on the stream (a busy 2-core machine)
LIVE_SECONDS = 20.0


def user_hash(user: str, secret: str) -> str:
    """What the shop's server computes for `data-user-hash`."""
    return hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()


@dataclass
class Stream:
    """One visitor's open event stream, read as it comes."""

    response: aiohttp.ClientResponse
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _buffer: str = ""

    async def until(self, check: Any, seconds: float = LIVE_SECONDS) -> dict[str, Any]:
        """The first event (old or new) whose line passes `check`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        seen = 0
        while True:
            for _, line in self.events[seen:]:
                if check(line):
                    return line
            seen = len(self.events)
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"not on the stream; it had: {self.events}")
            try:
                chunk = await asyncio.wait_for(self.response.content.readany(), left)
            except TimeoutError:
                continue
            self._buffer += chunk.decode()
            while "\n\n" in self._buffer:
                block, self._buffer = self._buffer.split("\n\n", 1)
                fields = dict(part.split(": ", 1) for part in block.split("\n") if ": " in part)
                if fields.get("event") == "line":
                    self.events.append((fields["id"], json.loads(fields["data"])))
