"""The house's layering: core/ below both families, no import between the families, commands on top.

- `pnlp_bench/core/` imports nothing of the package outside core (the package's own `__version__` aside);
- `pnlp_bench/mixer/` (pNLP-Mixer) and `pnlp_bench/bigs/` (BiGS) import core and themselves, never each other;
- `pnlp_bench/commands/` (one module per verb) is imported by `pnlp_bench/cli.py` and by other commands only;
- `tools/` use the families and core, never a command module.
Imports inside functions count the same as those at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pnlp_bench"

ALLOWED = {
    "core": {"core"},
    "mixer": {"core", "mixer"},
    "bigs": {"core", "bigs"},
    "commands": {"core", "mixer", "bigs", "commands"},
    "cli": {"core", "mixer", "bigs", "commands"},
    "conf": {"core", "mixer", "bigs"},
    "tools": {"core", "mixer", "bigs"},
}


def room(path: Path) -> str:
    if path.is_relative_to(ROOT / "tools"):
        return "tools"
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_rooms(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names] if node.module == "pnlp_bench" else [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "pnlp_bench" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def sources() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *(ROOT / "tools").glob("*.py")])


@pytest.mark.parametrize("path", sources(), ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_follow_the_layers(path: Path):
    here = room(path)
    if here == "__init__":
        return
    wrong = [f"line {line}: {target}" for line, target in imported_rooms(path)
             if target != "__version__" and target not in ALLOWED[here]]
    assert not wrong, f"{path.relative_to(ROOT)} ({here}) imports across the layers: {', '.join(wrong)}"


def test_the_top_level_holds_only_the_cli_and_the_rooms():
    loose = sorted(path.name for path in PACKAGE.glob("*.py") if path.name not in {"__init__.py", "cli.py"})
    assert not loose, f"modules outside core/, mixer/, bigs/, commands/: {loose}"
