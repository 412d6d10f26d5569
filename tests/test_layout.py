"""The floors of src/ (docs/layout.md): an import never points up a floor, nor sideways between two packages of one
floor below the top, function-level imports included. Six floors, as measured: each package sits one above the
highest it imports."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"core": 0, "networks": 1, "data": 1, "gan": 2, "metrics": 3, "callbacks": 4, "run": 5}
TOP = 5  # the CLIs (src/*.py) and src/run/: they may import one another


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOORS else "top"


def floor(module: str) -> int:
    return FLOORS.get(package(module), TOP)


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("src."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("src.")}
    return found


def imports() -> list[tuple[str, str]]:
    """(importing module, imported module) for every import of the project's own code."""
    pairs = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        if path == ROOT / "src" / "__init__.py":  # the package's entry: registers the config resolvers
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        pairs += [(module, name) for name in imported(path)]
    return pairs


def test_no_import_points_up_a_floor() -> None:
    assert [f"{a} -> {b}" for a, b in imports() if floor(b) > floor(a)] == []


def test_no_import_points_sideways_below_the_top() -> None:
    """data and networks share a floor and import neither one another: an import between them (or from gan into
    callbacks, a floor up) would make the floors a lie."""
    assert [f"{a} -> {b}" for a, b in imports()
            if floor(a) == floor(b) < TOP and package(a) != package(b)] == []


def test_every_floor_is_needed() -> None:
    """Each package below the top imports one of the floor just beneath it (else it belongs lower)."""
    reached = {package(a): set() for a, _ in imports()}
    for a, b in imports():
        reached[package(a)].add(floor(b))
    lower = [name for name, level in FLOORS.items() if 0 < level < TOP and level - 1 not in reached.get(name, set())]
    assert lower == []


def test_the_floors_cover_every_package() -> None:
    packages = {p.name for p in (ROOT / "src").iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(FLOORS)
