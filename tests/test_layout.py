"""The floors of src/ (README "Layout"): an import never points up a floor, function-level imports included."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"core": 0, "networks": 1, "data": 1, "gan": 1, "metrics": 1, "callbacks": 1, "run": 2}
TOP = 2  # the CLIs (src/*.py) and src/run/


def floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS.get(parts[1], TOP) if len(parts) > 1 else TOP


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("src."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("src.")}
    return found


def test_no_import_points_up_a_floor() -> None:
    upward = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        if path == ROOT / "src" / "__init__.py":  # the package's entry: registers the config resolvers
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        upward += [f"{module} -> {name}" for name in imported(path) if floor(name) > floor(module)]
    assert upward == []


def test_the_floors_cover_every_package() -> None:
    packages = {p.name for p in (ROOT / "src").iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(FLOORS)
