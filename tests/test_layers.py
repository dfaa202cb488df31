"""The rooms of `bot/` import only downward (docs/architecture.md): the core never imports an
adapter, no room imports one to its right, and no module imports one that imports it back.
Adapters use only the core's public seams for channels, and never reach through them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
ALLOWED = {
    "domain": set(),
    "content": {"domain"},
    "hours": {"content", "domain"},
    "understanding": {"content", "domain"},
    "store": {"domain"},
    "metrics": {"domain", "content", "hours", "understanding", "store"},
    "pipeline": {"domain", "content", "hours", "understanding", "store"},
    "telemetry": {"domain", "store"},
    "humans": {"domain", "content", "hours", "understanding", "store", "pipeline"},
    "jobs": {
        "domain",
        "content",
        "hours",
        "understanding",
        "store",
        "metrics",
        "pipeline",
        "humans",
        "telemetry",
    },
    "web": {
        "domain",
        "content",
        "hours",
        "understanding",
        "store",
        "metrics",
        "pipeline",
        "humans",
        "jobs",
        "telemetry",
    },
}
#: single modules allowed one room more than their own (none today)
EXCEPTIONS: dict[str, set[str]] = {}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "bot":
                found.update(f"bot.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_rooms_import_only_downward() -> None:
    wrong = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        room = relative.parts[1] if len(relative.parts) > 2 else ""
        for module in _imports(path):
            if module.split(".")[0] == "adapters" and room != "cli":
                wrong.append(f"{relative} imports {module} (only bot/cli may)")
            if room in ALLOWED and module.startswith("bot."):
                target = _room(module)
                allowed = ALLOWED[room] | EXCEPTIONS.get(
                    relative.with_suffix(".py").as_posix(), set()
                )
                if target != room and target not in allowed:
                    wrong.append(f"{relative} imports {module}")
    assert wrong == []


#: what an adapter may import from the core, and why
ADAPTER_SEAMS = {
    "bot.domain": "the typed edges: Inbound, Outbound, Decision, delivery errors, clocks",
    "bot.web.channels": "the channel contract: Channel, ChannelContext, Messages",
    "bot.store.channel_store": "the store as a channel sees it, by named calls",
    "bot.content.config": "the channel's own config section",
    "bot.content.problems": "errors that name config.toml's file and line",
    "bot.pipeline.intake": "cleaning a text for the terminal",
}
#: attributes that reach through a seam into the core's insides
REACH_THROUGH = {"pipeline", "store_executor", "engine", "knowledge"}


def adapter_problems(source: str, name: str) -> list[str]:
    """What in one adapter module breaks the channel contract: importing the core beyond
    `ADAPTER_SEAMS`, importing SQLAlchemy (no SQL in adapters), or reaching through an object
    into the core (`service.pipeline.store`)."""
    wrong = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        modules: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            if node.module == "bot":
                modules = [f"bot.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.Attribute) and node.attr in REACH_THROUGH:
            wrong.append(f"{name}:{line} reaches through .{node.attr}")
        for module in modules:
            top = module.split(".")[0]
            if top == "sqlalchemy":
                wrong.append(f"{name}:{line} imports {module} (no SQL in adapters)")
            elif top == "bot" and not any(
                module == seam or module.startswith(seam + ".") for seam in ADAPTER_SEAMS
            ):
                wrong.append(f"{name}:{line} imports {module}, not a channel seam")
    return wrong


def test_adapters_use_only_the_channel_seams() -> None:
    wrong = []
    for path in sorted((ROOT / "adapters").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        wrong += adapter_problems(path.read_text(encoding="utf-8"), name)
    assert wrong == []


def test_a_planted_reach_through_is_caught() -> None:
    planted = """
from bot.store.database import Store
from bot.web.channels import ChannelContext
import sqlalchemy as sa

def mount(app, service):
    store = service.pipeline.store
    with store.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
"""
    assert adapter_problems(planted, "adapters/planted.py") == [
        "adapters/planted.py:2 imports bot.store.database, not a channel seam",
        "adapters/planted.py:4 imports sqlalchemy (no SQL in adapters)",
        "adapters/planted.py:7 reaches through .pipeline",
        "adapters/planted.py:8 reaches through .engine",
    ]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """The project modules this one imports when it is imported (not inside functions, not
    under `if TYPE_CHECKING:`)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found.update(name for name in names if name in known)
    return found


def test_no_import_cycles() -> None:
    paths = [p for folder in ("bot", "adapters") for p in (ROOT / folder).rglob("*.py")]
    known = {_module_name(p) for p in paths}
    graph = {_module_name(p): _top_level_imports(p, known) for p in paths}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
