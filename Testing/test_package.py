"""The package's shape: a free import, no import circles, no private names across
modules, no module named like a function, numpydoc docstrings, Python 3.9 syntax.

These checks read the source (AST) or run a fresh interpreter; they assert facts a
newcomer relies on (see README "Architecture").
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ParaspinalFatLib"
THIRD_PARTY = ("numpy", "scipy", "pandas", "SimpleITK", "matplotlib", "highdicom", "pydicom")


def _modules() -> Dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, top_level_only: bool) -> List[tuple]:
    """(imported module, [names], lineno) of every ``from`` import of this package."""
    tree = _tree(path)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            target = _absolute(module, path, node)
            if target.split(".")[0] == "ParaspinalFatLib":
                out.append((target, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ParaspinalFatLib":
                    out.append((alias.name, [], node.lineno))
    return out


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(PACKAGE.parent), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_loads_no_third_party_package():
    out = _run("import sys, time, json\n"
               "t = time.perf_counter(); import ParaspinalFatLib; dt = time.perf_counter() - t\n"
               "import ParaspinalFatLib.stats, ParaspinalFatLib.errors\n"
               f"print(json.dumps([dt, sorted(m for m in sys.modules if m.split('.')[0] in {THIRD_PARTY!r})]))")
    seconds, loaded = json.loads(out)
    assert loaded == []
    assert seconds < 0.5  # the README states < 50 ms; a loose bound here (no timed tests)


def test_importtime_shows_only_stdlib_and_the_package():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import ParaspinalFatLib"],
                          capture_output=True, text=True, cwd=str(PACKAGE.parent), timeout=120)
    names = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    names.discard("package")
    third = {n for n in names if n in THIRD_PARTY or n in ("numba", "sklearn", "statsmodels")}
    assert not third
    assert "ParaspinalFatLib" in names


def test_public_names_resolve_on_first_use():
    out = _run("import ParaspinalFatLib as pf, sys\n"
               "f = pf.measure_case; c = pf.CaseMeasurement; s = pf.stats.roc\n"
               "print(f.__module__, c.__name__, s.__module__, callable(s), 'pandas' in sys.modules)")
    module, cls, stats_module, is_callable, pandas_loaded = out.split()
    assert module == "ParaspinalFatLib.measurement.pipeline"
    assert cls == "CaseMeasurement"
    assert stats_module.startswith("ParaspinalFatLib.stats.") and is_callable == "True"
    assert pandas_loaded == "True"


@pytest.mark.parametrize("name, package", [("measure_case", "pandas"), ("stats", None),
                                           ("read_image", "SimpleITK")])
def test_missing_dependency_is_one_clear_error(name, package):
    blocked = package or "pandas"
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, fullname, path, target=None):\n"
            f"        if fullname.split('.')[0] == {blocked!r}:\n"
            "            raise ModuleNotFoundError(f'No module named {fullname!r}', name=fullname)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import ParaspinalFatLib as pf\n"
            "from ParaspinalFatLib.errors import MissingDependencyError\n"
            "try:\n"
            f"    obj = getattr(pf, {name!r})\n"
            "    obj = obj.describe if obj.__name__.endswith('stats') else obj\n"
            "except MissingDependencyError as exc:\n"
            "    print('ERROR', exc)\n"
            "else:\n"
            "    print('OK')\n")
    out = _run(code)
    assert out.startswith("ERROR"), out
    assert f"'{blocked}'" in out and "pip install" in out and "slicer.util.pip_install" in out


def _graph(top_level_only: bool) -> Dict[str, Set[str]]:
    graph = {}
    for module, path in MODULES.items():
        deps = set()
        for target, names, _ in _imports(module, path, top_level_only):
            for name in names or [""]:
                full = f"{target}.{name}" if name else target
                deps.add(full if full in MODULES else target)
        graph[module] = {d for d in deps if d in MODULES and d != module}
    return graph


def test_no_import_cycles_between_modules():
    graph = _graph(top_level_only=False)
    # a package __init__ importing lazily is not an edge; only real module-to-module imports
    for m in list(graph):
        graph[m] = {d for d in graph[m] if not MODULES[d].name == "__init__.py"}
    state: Dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_no_private_name_imported_across_modules():
    bad = []
    for module, path in MODULES.items():
        for target, names, line in _imports(module, path, top_level_only=False):
            bad += [f"{path.name}:{line} {target}.{n}" for n in names
                    if n.startswith("_") and n != "__version__"]
            if any(part.startswith("_") for part in target.split(".")[1:]):
                bad.append(f"{path.name}:{line} {target}")
    assert bad == []


def test_no_module_is_named_like_a_function_it_defines():
    clashes = []
    for module, path in MODULES.items():
        stem = module.split(".")[-1]
        for node in _tree(path).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == stem:
                clashes.append(module)
    assert clashes == []


def test_stats_function_names_survive_importing_every_submodule():
    out = _run("import importlib, pkgutil, ParaspinalFatLib.stats as st\n"
               "for m in pkgutil.iter_modules(st.__path__): importlib.import_module('ParaspinalFatLib.stats.' + m.name)\n"
               "import ParaspinalFatLib as pf\n"
               "for m in pkgutil.iter_modules(pf.__path__): importlib.import_module('ParaspinalFatLib.' + m.name)\n"
               "print(all(callable(getattr(st, n)) for n in st.__all__), callable(pf.measure))")
    assert out.split() == ["True", "True"]


# --------------------------------------------------------------------------- docstrings
def _returns_value(fn: ast.FunctionDef) -> bool:
    stack = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            return True
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def _param_names(fn: ast.FunctionDef) -> List[str]:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return [n for n in names if n not in ("self", "cls")]


def _docstring_problems(fn: ast.FunctionDef, where: str) -> List[str]:
    doc = ast.get_docstring(fn)
    if not doc:
        return [f"{where}: no docstring"]
    problems = []
    params = _param_names(fn)
    if params:
        if "Parameters\n----------" not in doc:
            problems.append(f"{where}: no 'Parameters' section")
        else:
            section = doc.split("Parameters\n----------", 1)[1]
            for name in params:
                if not any(line.lstrip("*").split(":")[0].split(",")[0].strip() == name
                           or name in [p.strip().lstrip("*") for p in line.split(":")[0].split(",")]
                           for line in section.splitlines() if line and not line.startswith(" ")):
                    problems.append(f"{where}: parameter '{name}' not documented")
    if _returns_value(fn) and not any(s in doc for s in ("Returns\n-------", "Yields\n------")):
        problems.append(f"{where}: no 'Returns' section")
    return problems


def test_every_public_function_has_a_numpydoc_docstring():
    problems = []
    for module, path in MODULES.items():
        tree = _tree(path)
        if not ast.get_docstring(tree):
            problems.append(f"{module}: no module docstring")
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                problems += _docstring_problems(node, f"{module}.{node.name}")
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                if not ast.get_docstring(node):
                    problems.append(f"{module}.{node.name}: no class docstring")
                for item in node.body:
                    if (isinstance(item, ast.FunctionDef) and not item.name.startswith("_")
                            and not ast.get_docstring(item)):
                        problems.append(f"{module}.{node.name}.{item.name}: no docstring")
    assert problems == [], "\n".join(problems)
