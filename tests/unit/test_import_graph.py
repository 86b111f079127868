"""Packages depend downwards only: no module imports a package of a higher layer (or a sibling)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2] / "src" / "tunelab"

# Bottom first. A package may import its own modules and those of any lower layer.
LAYERS: list[set[str]] = [
    {"registry", "batching", "html"},
    {"runs", "stages"},
    {"config"},
    {"pipeline", "metrics", "models", "tracking"},
    {"tasks"},
    {"data", "train", "evaluate"},
    {"explain", "generate", "audit", "serve", "report"},
    {"search", "preflight"},
    {"cli"},
]
LAYER = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _package(module: Path) -> str:
    rel = module.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py") if rel.parts[0] != "__init__.py" else ""


def _imports(module: Path) -> set[str]:
    """Top-level tunelab packages a module imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [
                f"{node.module}.{a.name}" for a in node.names if node.module == "tunelab"
            ]
        for name in names:
            parts = name.split(".")
            if parts[0] == "tunelab" and len(parts) > 1:
                found.add(parts[1])
    return found


def upward_imports() -> list[str]:
    bad = []
    for module in sorted(ROOT.rglob("*.py")):
        pkg = _package(module)
        if not pkg:
            continue
        for target in _imports(module) - {pkg}:
            if target not in LAYER:
                bad.append(f"{module.relative_to(ROOT)} imports tunelab.{target}, which has no layer")
            elif LAYER[target] >= LAYER[pkg]:
                bad.append(
                    f"{module.relative_to(ROOT)} ({pkg}, layer {LAYER[pkg]}) imports "
                    f"tunelab.{target} (layer {LAYER[target]})"
                )
    return bad


def test_every_package_has_a_layer():
    packages = {_package(m) for m in ROOT.rglob("*.py")} - {""}
    assert packages <= set(LAYER), sorted(packages - set(LAYER))


def test_no_package_imports_a_higher_or_sibling_one():
    assert upward_imports() == []


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "tunelab"
    (fake / "config").mkdir(parents=True)
    (fake / "config" / "bad.py").write_text("def f():\n    from tunelab.train.loop import fit\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake)
    assert upward_imports() == ["config/bad.py (config, layer 2) imports tunelab.train (layer 5)"]
