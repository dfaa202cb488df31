"""The rooms of `bot/` import only downward (docs/architecture.md): the core never imports an
adapter, and no room imports one to its right, so there are no cycles between rooms."""

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
    "pipeline": {"domain", "content", "hours", "understanding", "store"},
    "jobs": {"domain", "content", "hours", "understanding", "store", "pipeline"},
    "web": {"domain", "content", "hours", "understanding", "store", "pipeline", "jobs"},
}


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
                if target != room and target not in ALLOWED[room]:
                    wrong.append(f"{relative} imports {module}")
    assert wrong == []
