"""The agents' console through the real application (`make_app`) on the fixture shop: a test
client, the pipeline and its clock, and agents made the way `bot agents add` makes them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from bot.assembly import build_pipeline
from bot.content.config import Config
from bot.domain.agent import Agent, Role
from bot.domain.clock import FixedClock
from bot.humans.desk import Desk
from bot.pipeline.knowledge import Knowledge
from bot.pipeline.runner import Pipeline
from bot.store import agents
from bot.understanding.encoders import MemoEncoder
from bot.web.app import Parts, make_app
from bot.web.auth import hash_password
from bot.web.console.sessions import COOKIE
from tests.support.service import AppClient
from tests.support.shop import at

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    client: AppClient
    pipeline: Pipeline
    clock: FixedClock

    def add_agent(self, login: str, role: Role = Role.AGENT, queues: tuple[str, ...] = ()) -> Agent:
        with self.pipeline.store.transaction() as tx:
            return agents.add(
                tx, login, login.title(), role, hash_password(PASSWORD), self.clock.now(), queues
            )

    def desk(self) -> Desk:
        """The desk the console works through, on the same store and clock (to set a scene)."""
        pipeline = self.pipeline
        return Desk(pipeline.config, pipeline.store, pipeline.clock, lambda: pipeline.knowledge)

    def set_active(self, login: str, active: bool) -> None:
        with self.pipeline.store.transaction() as tx:
            agents.set_active(tx, login, active)

    async def csrf(self, path: str = "/console/login") -> str:
        page = await self.client.get(path, allow_redirects=False)
        found = CSRF.search(await page.text())
        assert found, f"no CSRF token on {path} ({page.status})"
        return found.group(1)

    async def log_in(self, login: str, password: str = PASSWORD) -> ClientResponse:
        token = await self.csrf()
        return await self.client.post(
            "/console/login",
            data={"login": login, "password": password, "csrf": token},
            allow_redirects=False,
        )

    def cookie(self) -> str:
        for morsel in self.client.session.cookie_jar:
            if morsel.key == COOKIE:
                return morsel.value
        raise AssertionError("no session cookie")

    def set_cookie(self, value: str) -> None:
        self.client.session.cookie_jar.clear()
        self.client.session.cookie_jar.update_cookies({COOKIE: value}, self.client.make_url("/"))


async def open_console(
    config: Config,
    encoder: MemoEncoder,
    tmp_path: Path,
    store_url: str | None = None,
    knowledge: Knowledge | None = None,
) -> Console:
    """The console on a new store (SQLite in `tmp_path` unless `store_url`); the content is
    learnt from `config` unless `knowledge` learnt from the same content is given."""
    clock = FixedClock(at("2026-11-24 10:00"))
    pipeline = build_pipeline(
        config,
        clock,
        store_url=store_url or f"sqlite:///{tmp_path}/console.sqlite3",
        encoder=encoder,
        knowledge=knowledge,
    )
    app = make_app(Parts(pipeline, [], run_scheduler=False))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return Console(client, pipeline, clock)
