"""The package shows the workflow: subpackages by stage, data flowing one way (a subpackage
imports only those listed before it), the file contracts on the ground floor, the face on top."""

from __future__ import annotations

import ast
from pathlib import Path

import gexnet

PACKAGE = Path(gexnet.__file__).parent
# Each stage and what it may import (DESIGN.md); cli, config, layout, profiles and errors are the
# face and may import anything (errors imports nothing).
ALLOWED = {
    "formats": set(),
    "sources": {"formats"},
    "annotation": {"formats", "sources"},
    "corpus": {"formats"},
    "models": {"formats"},
    "training": {"formats", "models"},
    "analysis": {"formats", "models"},
    "report": {"formats"},
}
FACE = {"cli", "config", "layout", "profiles"}


def gexnet_imports(path: Path) -> set[str]:
    """The gexnet modules a file imports, at any depth (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gexnet"):
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("gexnet")}
    return found


def test_every_stage_imports_only_the_stages_before_it():
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) < 2:
            continue  # the face
        stage = rel.parts[0]
        assert stage in ALLOWED, f"{rel}: a subpackage the layout does not name"
        for name in gexnet_imports(path):
            parts = name.split(".")
            other = parts[1] if len(parts) > 1 else ""
            if other in FACE or (
                other in ALLOWED and other != stage and other not in ALLOWED[stage]
            ):
                broken.append(f"{rel} imports {name}")
    assert not broken, "\n".join(broken)


def test_every_subpackage_says_what_it_takes_and_gives():
    for stage in ALLOWED:
        doc = (PACKAGE / stage / "__init__.py").read_text().strip()
        assert doc.startswith('"""') and 20 < len(doc) < 400, stage


def test_errors_import_nothing_of_gexnet():
    assert not gexnet_imports(PACKAGE / "errors.py")


def test_tests_mirror_the_layout():
    tests = Path(__file__).parent
    for stage in ALLOWED:
        assert list((tests / stage).glob("test_*.py")), stage
