"""The layout rule: domain packages are library code that never sees a scenario.

Parses the imports of every module of the package (no import is executed)
and fails on:

* a domain module importing the pipeline, the scenario schema or the run
  result (``planner.pipeline``, ``planner.scenario``, ``planner._settings``);
* a private import across packages (``from planner.access._x import ...`` or
  ``from planner.access import _y`` outside ``planner.access``); the shared
  internals ``planner._errors``, ``planner._schema``, ``planner._validate``,
  ``planner._kml``, ``planner._yaml`` and ``planner._where`` may be used by every package;
* a public module without ``__all__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "planner"
#: Modules allowed to import the pipeline (it, batch runs of it, the command line, the package
#: entry points).
PIPELINE_USERS = {"pipeline", "batch", "cli", "scenario", "__init__", "__main__"}
FORBIDDEN = ("planner.pipeline", "planner.scenario", "planner._settings")
SHARED_INTERNALS = {"planner._errors", "planner._schema", "planner._validate", "planner._kml",
                    "planner._yaml", "planner._where"}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _package(module: str) -> str:
    """The top-level part of planner a module belongs to (``planner.access.routing`` -> access)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, module: str) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) of every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                parts = parts if is_pkg else parts[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            out.append((node.lineno, base, [a.name for a in node.names]))
    return out


def _violations(module: str, path: Path) -> list[str]:
    pkg = _package(module)
    found = []
    for line, target, names in _imports(path, module):
        if not target.startswith("planner"):
            continue
        where = f"{path.relative_to(ROOT.parent) if path.is_relative_to(ROOT.parent) else path}:{line}"
        if pkg not in PIPELINE_USERS and target.startswith(FORBIDDEN):
            found.append(f"{where}: domain module {module} imports {target}")
        if target.startswith(FORBIDDEN) and target.startswith("planner._settings"):
            found.append(f"{where}: {target} no longer exists; use planner.pipeline.settings")
        tparts = target.split(".")
        tpkg = tparts[1] if len(tparts) > 1 else ""
        if tpkg == pkg or target in SHARED_INTERNALS:
            continue
        if any(p.startswith("_") for p in tparts[1:]):
            found.append(f"{where}: {module} imports the private module {target}")
        private = [n for n in names if n.startswith("_") and n != "__version__"
                   and f"{target}.{n}" not in SHARED_INTERNALS]
        sub_modules = [n for n in private if (ROOT.parent / Path(*tparts) / f"{n}.py").exists()]
        if private and target not in SHARED_INTERNALS:
            found.append(f"{where}: {module} imports private name(s) {private} from {target}"
                         + (" (private modules)" if sub_modules else ""))
    return found


def test_domain_packages_never_import_the_pipeline_and_no_private_imports_across_packages():
    problems = [v for module, path in _modules() for v in _violations(module, path)]
    assert problems == []


def test_the_check_finds_violations(tmp_path):
    # a hand-made domain module with each kind of violation: the check must flag all three
    bad = tmp_path / "bad.py"
    bad.write_text("from planner.pipeline import RunResult\n"
                   "from planner.access.routing import _virtual_graph\n"
                   "from planner.locate._models import PMedian\n", encoding="utf-8")
    found = _violations("planner.maps", bad)
    assert len(found) == 3
    assert "imports planner.pipeline" in found[0]
    assert "private name(s) ['_virtual_graph']" in found[1]
    assert "private module planner.locate._models" in found[2]
    # the same imports are fine inside their own package / in the pipeline
    assert _violations("planner.pipeline.steps", bad)[0:1] != found[0:1]


@pytest.mark.parametrize("module,path", [m for m in _modules()
                                         if not any(p.startswith("_") and p != "__init__"
                                                    for p in m[0].split(".")[1:])
                                         and m[0] not in ("planner.__main__",)])
def test_public_modules_declare_all(module, path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
             for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
             if isinstance(t, ast.Name)}
    assert "__all__" in names, f"{module} has no __all__"


def test_import_planner_reaches_every_package():
    import planner

    assert planner.network.WalkNetwork.__name__ == "WalkNetwork"
    assert callable(planner.access.population_access) and callable(planner.demand.allocate)
    assert callable(planner.locate.propose_sites) and callable(planner.pipeline.run)
    assert planner.read_layer is planner.layers.read_layer
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        planner.nope  # noqa: B018
