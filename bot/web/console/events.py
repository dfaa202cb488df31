"""`/console/events`: the server-sent events stream every console page listens to. It says
"changed" when the desk moved (the page then fetches its changing parts again), and every
`KEEPALIVE` seconds it checks that the agent is still active (a disabled agent's stream ends)
and tells the desk the agent is online. It also says "changed" once as it opens: whatever moved
between rendering the page and opening the stream (or while a dropped stream reconnected) is
shown then."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.web.auth import current_agent
from bot.web.console.parts import agent_of, console_of

KEEPALIVE = 15.0
#: at most one refresh a page this often, however fast the desk changes
SETTLE = 0.3


async def events(request: web.Request) -> web.StreamResponse:
    console, agent = console_of(request), agent_of(request)
    watch = console.watch
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # a proxy must not hold events back
        }
    )
    await response.prepare(request)
    seen = await watch.subscribe()
    try:
        # the page may have been rendered before a change this stream would have announced
        # (and a reconnect may have missed some): refresh once at the start
        await response.write(b"retry: 3000\n\nevent: changed\ndata: 0\n\n")
        while not watch.closed:
            if await watch.wait(seen, KEEPALIVE):
                if watch.closed:
                    break
                await asyncio.sleep(SETTLE)
                seen = watch.counter
                await response.write(f"event: changed\ndata: {seen}\n\n".encode())
                continue
            still = await console.run(current_agent, console.pipeline.store, agent.id)
            if still is None:
                break
            await console.run(console.desk.seen, still)
            await response.write(b": keepalive\n\n")
    except ConnectionResetError:
        pass  # the agent closed the page
    finally:
        watch.unsubscribe()
    return response
