"""The package's layers, read from its source: every import points down, and nothing sits loose at the root.

    commands → cli → train → training → sweeps / analysis / serving → evaluation → inference → models / data → utils

A module may import its own package and any layer below it; packages that share a layer do not import each
other; `inference` imports no Lightning or Hydra. Imports under `if TYPE_CHECKING:` count too (they name what a
module depends on).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "emo_lightning"
LAYERS = [
    ["commands"],
    ["cli"],
    ["train"],
    ["training"],
    ["sweeps", "analysis", "serving"],
    ["evaluation"],
    ["inference"],
]
LAYERS += [["models", "data"], ["utils"]]
RANK = {name: depth for depth, names in enumerate(LAYERS) for name in names}
FORBIDDEN = {"inference": ("lightning", "hydra", "omegaconf")}  # third-party imports a package must not make


def unit_of(path: Path) -> str:
    """The layer unit a file belongs to: its top-level package, or the root module's name."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ["emo_lightning", *path.relative_to(PACKAGE).parent.parts]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            if module == "emo_lightning":  # `from emo_lightning import x`: x is the unit
                found += [(node.lineno, f"emo_lightning.{alias.name}") for alias in node.names]
    return found


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_only_train_and_init_sit_at_the_package_root():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "train.py"))
    assert loose == [], f"modules outside a package: {loose}"
    packages = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file() and p.name != "conf"]
    assert sorted(RANK) == sorted([*packages, "train"]), "every package has a layer"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path):
    unit = unit_of(path)
    if unit == "__init__":  # the package's lazy `EmotionPredictor` re-export
        return
    wrong = []
    for line, module in imported_modules(path):
        top = module.split(".")[0]
        if top in FORBIDDEN.get(unit, ()):
            wrong.append(f"line {line}: {module} ({unit} must not import {top})")
        if top != "emo_lightning" or module == "emo_lightning":
            continue
        target = module.split(".")[1]
        if target == unit or target == "__init__":
            continue
        if target not in RANK:
            wrong.append(f"line {line}: {module} (not in a layer)")
        elif RANK[target] <= RANK[unit]:
            wrong.append(f"line {line}: {module} ({unit} may import only layers below it)")
    assert not wrong, f"{path.relative_to(PACKAGE)}: " + "; ".join(wrong)


def test_no_import_cycle_between_modules():
    """No two modules import each other, directly or around a loop: imports inside functions count (a cycle hidden
    behind a function-level import is still one)."""
    graph: dict[str, set[str]] = {}
    for path in sources():
        name = ".".join(["emo_lightning", *path.relative_to(PACKAGE).with_suffix("").parts]).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("emo_lightning."):
                targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("emo_lightning.")}
        graph[name] = targets
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join([*trail[trail.index(nxt) :], nxt]))
            if nxt in graph and not state.get(nxt):
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in graph:
        if not state.get(start):
            visit(start, [start])
