"""Static checks of the module's Logic file (no Slicer needed; runs on Python 3.9 and 3.12).

``ParaspinalFat/ParaspinalFatLogic.py`` must load in a Slicer without pandas and run under
the ``slicer-core`` wheel, which has no Qt and no application: at file scope it may import
only the standard library, ``slicer``, ``vtk``, ``numpy`` (and ``vtkmodules``); nowhere may it
import ``qt``/``ctk`` or use ``slicer.app``, ``slicer.modules`` or ``ScriptedLoadableModule``.
It must also parse as Python 3.9 (vermin, when installed).
"""
from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

LOGIC = Path(__file__).resolve().parents[2] / "ParaspinalFat" / "ParaspinalFatLogic.py"
#: third-party packages the Logic may import at file scope (Slicer bundles them)
ALLOWED_THIRD_PARTY = {"slicer", "vtk", "vtkmodules", "numpy"}
#: never anywhere in the Logic: the Qt side of Slicer (not in slicer-core, not Qt-free)
FORBIDDEN_MODULES = {"qt", "ctk", "slicer.ScriptedLoadableModule"}
FORBIDDEN_ATTRIBUTES = {("slicer", "app"), ("slicer", "modules")}


def _tree() -> ast.Module:
    return ast.parse(LOGIC.read_text(encoding="utf-8"), filename=str(LOGIC))


def _imported(node) -> list:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []


def _file_scope_imports(tree: ast.Module) -> list:
    """Imports executed when the file is imported: module level, also inside if/try/with blocks."""
    found = []

    def visit(statements):
        for statement in statements:
            found.extend(_imported(statement))
            for block in ("body", "orelse", "finalbody"):
                if isinstance(statement, (ast.If, ast.Try, ast.With)) and hasattr(statement, block):
                    visit(getattr(statement, block))
            if isinstance(statement, ast.Try):
                for handler in statement.handlers:
                    visit(handler.body)

    visit(tree.body)
    return found


def _is_stdlib(name: str) -> bool:
    root = name.split(".")[0]
    if root == "__future__" or root in sys.builtin_module_names:
        return True
    names = getattr(sys, "stdlib_module_names", None)  # Python >= 3.10
    if names is not None:
        return root in names
    spec = importlib.util.find_spec(root)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return spec is not None
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    origin = Path(spec.origin).resolve()
    return stdlib in origin.parents and "site-packages" not in origin.parts


def test_file_scope_imports_are_stdlib_slicer_vtk_numpy_only():
    imports = _file_scope_imports(_tree())
    assert {"slicer", "vtk", "numpy"} <= {name.split(".")[0] for name in imports}
    bad = [name for name in imports if name.split(".")[0] not in ALLOWED_THIRD_PARTY and not _is_stdlib(name)]
    assert not bad, f"{LOGIC.name} imports {bad} at file scope; import them inside the functions that need them"


def test_the_library_and_pandas_are_imported_lazily():
    tree = _tree()
    lazy = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                lazy.update(name.split(".")[0] for name in _imported(inner))
    assert {"ParaspinalFatLib", "pandas", "SimpleITK"} <= lazy
    assert not {"ParaspinalFatLib", "pandas", "SimpleITK", "scipy"} & {
        name.split(".")[0] for name in _file_scope_imports(tree)}


def test_no_qt_and_no_slicer_application_anywhere():
    tree = _tree()
    everywhere = [name for node in ast.walk(tree) for name in _imported(node)]
    assert not [n for n in everywhere if n in FORBIDDEN_MODULES or n.split(".")[0] in {"qt", "ctk"}]
    used = {(node.value.id, node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)}
    assert not used & FORBIDDEN_ATTRIBUTES, sorted(used & FORBIDDEN_ATTRIBUTES)
    assert "ScriptedLoadableModule" not in LOGIC.read_text(encoding="utf-8")


def test_logic_file_runs_on_python_3_9():
    compile(LOGIC.read_text(encoding="utf-8"), str(LOGIC), "exec")  # this interpreter's syntax
    vermin = shutil.which("vermin") or str(Path(sys.executable).with_name("vermin"))
    if not Path(vermin).exists():
        pytest.skip("vermin is not installed in this environment (it is in .venv-py312)")
    done = subprocess.run([vermin, "-q", "-t=3.9-", "--eval-annotations", "--feature", "union-types",
                           "--violations", "--no-tips", str(LOGIC)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
