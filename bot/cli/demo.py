"""`bot demo`: the bot as a customer meets it, in the browser, on the embedded defaults. A
sample shop page with the web chat at http://127.0.0.1:8080/ (`--port`), the service beside it
on the next port (the chat's panel and API, the agents' console), and an agent `demo` whose
random password is printed once. It listens on 127.0.0.1 only and keeps its conversations,
tickets and its agent in a database of its own (`var/demo.sqlite3` beside config.toml), never
in `storage.url`: a demo agent with a printed password must not be able to log in to the real
console later, nor demo tickets reach the reports. It is for trying, not serving.
"""

from __future__ import annotations

import html
import os
import secrets
import sys
from datetime import datetime

from aiohttp import web

from bot.cli.run import Site, serve
from bot.content.config import Config, StorageConfig, pick
from bot.domain.agent import Role
from bot.domain.clock import SystemClock
from bot.hours.schedule import Schedule, format_moment, read_schedules

HOST = "127.0.0.1"
LOGIN = "demo"
#: the demo's own database, relative to config.toml's folder
DEMO_STORAGE = "sqlite:///var/demo.sqlite3"

SHOP_PAGE = """<!doctype html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} · demo</title>
<style>
body {{ margin: 0; font: 16px/1.6 -apple-system, "Segoe UI", "PingFang SC", sans-serif;
  color: #2b2b2b; background: #f7f4ee; }}
header {{ padding: 28px 8vw; background: #1d6f5f; color: #fff; }}
main {{ padding: 24px 8vw; display: grid; gap: 18px;
  grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); }}
.item {{ background: #fff; border-radius: 12px; padding: 18px; box-shadow: 0 1px 4px #0001; }}
footer {{ padding: 24px 8vw; color: #777; font-size: 14px; }}
</style>
</head>
<body>
<header><h1>{name}</h1><p>手工茶具 · 家居好物 · 满 99 元包邮</p></header>
<main>
  <div class="item"><h2>青瓷茶杯</h2><p>¥68 · 景德镇手作，一杯一釉。</p></div>
  <div class="item"><h2>竹编收纳篮</h2><p>¥45 · 三个尺寸，透气不发霉。</p></div>
  <div class="item"><h2>亚麻桌旗</h2><p>¥39 · 水洗亚麻，越用越软。</p></div>
</main>
<footer>This is a sample shop page. The chat button in the corner is the bot's web chat, embedded
with the one line below; ask it about shipping, invoices or returns, or ask for a person and
answer yourself in the agents' console.<br><code>{snippet}</code></footer>
<script src="{bot}/webchat/widget.js" data-site="demo" async></script>
</body>
</html>
"""


def demo(config: Config, port: int) -> int:
    bot_port = port + 1
    shop = f"http://{HOST}:{port}"
    bot = f"http://{HOST}:{bot_port}"
    webchat = config.channels.webchat
    secret = os.environ.get(webchat.secret_env) or secrets.token_urlsafe(32)
    config.channels.webchat = webchat.model_copy(
        update={"enabled": True, "allowed_origins": [shop], "secret": secret}
    )
    config.service.public_url = bot
    config.storage = StorageConfig(url=DEMO_STORAGE)
    password = _demo_agent(config)
    snippet = f'<script src="{bot}/webchat/widget.js" data-site="demo" async></script>'
    page = SHOP_PAGE.format(
        name=html.escape(pick(config.brand.name, "zh")), bot=bot, snippet=html.escape(snippet)
    )

    async def shop_page(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def no_icon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", shop_page)
    app.router.add_get("/favicon.ico", no_icon)
    print(
        f"bot demo: a sample shop page with the web chat at {shop}/\n"
        f"  its conversations and tickets: {config.storage_url} (not storage.url)\n"
        f"  agents' console: {bot}/console/  login {LOGIN}, password {password}  "
        "(shown once; `bot demo` again makes a new one)",
        file=sys.stderr,
        flush=True,
    )
    closed = _closed_now(config)
    if closed:
        print(closed, file=sys.stderr, flush=True)
    return serve(config, HOST, bot_port, also=[Site("sample shop page", app, port)])


def closed_line(queue: str, schedule: Schedule, now: datetime) -> str | None:
    """What to do when the queue a "转人工" goes to is closed as the demo starts: its ticket
    waits for the opening (queue closed), so the console's "claim next" finds none, while
    claiming the ticket itself works. None while the queue is open."""
    if schedule.is_open(now):
        return None
    back = schedule.next_open(now)
    opens = f"opens {format_moment(back, 'en')}" if back else "does not open"
    return (
        f"  the {queue} queue is closed now ({opens}): a 转人工 ticket waits for its opening, "
        "so 领取下一个 (Claim next) finds none; open the ticket under 排队中的工单 "
        "(Tickets waiting) and press 领取 (Claim)"
    )


def _closed_now(config: Config) -> str | None:
    """`closed_line` for the default queue as of now; None when its schedule cannot be read
    (`bot run` then names the problem)."""
    queue = config.handoff.default_queue
    schedules, _ = read_schedules(config.resolve(config.content.schedules))
    schedule = schedules.get(config.front_schedule)
    if schedule is None:
        return None
    return closed_line(queue, schedule, SystemClock().now())


def _demo_agent(config: Config) -> str:
    """The agent `demo` with a new random password (made, or its password replaced)."""
    from bot.store import agents
    from bot.store.database import Store
    from bot.web.auth import hash_password

    password = secrets.token_urlsafe(12)
    hashed = hash_password(password)
    now = SystemClock().now()
    store = Store(config.storage_url)
    try:
        store.migrate()
        with store.transaction() as tx:
            if not agents.set_password(tx, LOGIN, hashed, now):
                agents.add(tx, LOGIN, "Demo agent", Role.AGENT, hashed, now)
            agents.set_active(tx, LOGIN, True)
    finally:
        store.close()
    return password
