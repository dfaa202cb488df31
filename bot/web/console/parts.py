"""What every console handler reaches through the request: the desk, the sessions, the live
watcher, and the store pool the desk's synchronous calls run in."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.content.config import Config
from bot.domain.agent import Agent
from bot.humans.desk import Desk
from bot.pipeline.runner import Pipeline
from bot.web.console.live import DeskWatch
from bot.web.console.sessions import Session, Sessions

T = TypeVar("T")


@dataclass
class Console:
    pipeline: Pipeline
    desk: Desk
    pool: Executor
    watch: DeskWatch
    #: set at start-up, when the key has been read from the database
    sessions: Sessions | None = None

    @property
    def config(self) -> Config:
        return self.pipeline.config

    @property
    def zone(self) -> ZoneInfo:
        """Times are shown in the default queue's time zone, the one the team works by."""
        schedules = self.pipeline.knowledge.schedules
        queue = self.config.queues[self.config.handoff.default_queue]
        return schedules[queue.schedule].zone

    async def run(self, call: Callable[..., T], *args: object, **kwargs: object) -> T:
        """A synchronous desk or store call, in the store pool: never on the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(call, *args, **kwargs))


CONSOLE = web.AppKey("console", Console)
#: per request: the session, and the logged-in agent (absent on the public pages)
SESSION = web.RequestKey("console.session", Session)
AGENT = web.RequestKey("console.agent", Agent)


def console_of(request: web.Request) -> Console:
    return request.config_dict[CONSOLE]


def session_of(request: web.Request) -> Session:
    session = request.get(SESSION)
    assert isinstance(session, Session), "the console's guard loads the session first"
    return session


def agent_of(request: web.Request) -> Agent:
    agent = request.get(AGENT)
    assert isinstance(agent, Agent), "only the guard's logged-in routes ask for the agent"
    return agent
