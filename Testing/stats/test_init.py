"""stats/__init__.py (the lazy package face) and conventions of the whole stats package.

* ``import ParaspinalFatLib.stats`` imports no third-party package; a missing one is reported
  as MissingDependencyError when a function is first used.
* After importing every submodule, ``stats.roc``, ``stats.correlation``... are still the
  functions (no module is named like a function of the package).
* Names imported from one stats module into another are public (no leading underscore).
* Every public function, class and method has a numpydoc docstring: a summary line, a
  ``Parameters`` section listing every parameter, a ``Returns`` section if it returns a value.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ParaspinalFatLib.errors as errors
from ParaspinalFatLib import stats

STATS_DIR = Path(stats.__file__).resolve().parent
LIB_DIR = STATS_DIR.parent
SUBMODULES = sorted(m.name for m in pkgutil.iter_modules([str(STATS_DIR)]))
THIRD_PARTY = ("numpy", "scipy", "pandas")


def run_python(code: str, prefix: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", prefix + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300, cwd=str(LIB_DIR.parent))


# The package alone (parent package replaced by an empty namespace, whatever it imports).
STUB_PARENT = f"""
import sys, types
parent = types.ModuleType("ParaspinalFatLib")
parent.__path__ = [{str(LIB_DIR)!r}]
sys.modules["ParaspinalFatLib"] = parent
"""


def test_submodules():
    assert SUBMODULES == ["agreement", "clinical_categories", "compare", "correlations",
                          "deprecation", "descriptive", "logistic", "numerics", "regression",
                          "roc_analysis", "validation"]


def test_import_loads_no_third_party_package():
    proc = run_python(f"""
        import ParaspinalFatLib.stats as stats
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {THIRD_PARTY!r})
        assert not loaded, loaded
        assert "describe" in dir(stats) and "ttest" in stats.__all__
        stats.StatsError, stats.StatsWarning
        assert not any(m.split(".")[0] in {THIRD_PARTY!r} for m in sys.modules)
        print("ok")
    """, STUB_PARENT)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_import_adds_nothing_to_what_the_parent_package_imports():
    proc = run_python(f"""
        import sys
        import ParaspinalFatLib
        before = set(sys.modules)
        import ParaspinalFatLib.stats
        added = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in {THIRD_PARTY!r})
        assert not added, added
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_missing_pandas_is_a_clear_error():
    proc = run_python("""
        import importlib.abc
        class NoPandas(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "pandas" or name.startswith("pandas."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, NoPandas())
        import ParaspinalFatLib.stats as stats
        from ParaspinalFatLib.errors import MissingDependencyError
        try:
            stats.ttest
        except MissingDependencyError as exc:
            print(exc)
    """, STUB_PARENT)
    assert proc.returncode == 0, proc.stderr
    assert "'pandas'" in proc.stdout and "pip install pandas" in proc.stdout


def test_public_names_are_functions_after_importing_every_submodule():
    proc = run_python(f"""
        import importlib, inspect
        import ParaspinalFatLib.stats as stats
        for name in {SUBMODULES!r}:
            importlib.import_module("ParaspinalFatLib.stats." + name)
        for name, module in stats._EXPORTS.items():
            value = getattr(stats, name)
            assert inspect.isfunction(value), (name, value)
            assert value.__module__ == "ParaspinalFatLib.stats." + module, (name, value.__module__)
        assert inspect.isfunction(stats.roc) and inspect.isfunction(stats.correlation)
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    for name in SUBMODULES:  # and in this process, whatever was imported before
        importlib.import_module(f"ParaspinalFatLib.stats.{name}")
    for name in stats._EXPORTS:
        assert inspect.isfunction(getattr(stats, name)), name


def test_no_module_is_named_like_a_public_name():
    public = set(stats.__all__)
    for name in SUBMODULES:
        module = importlib.import_module(f"ParaspinalFatLib.stats.{name}")
        public |= {n for n in vars(module) if not n.startswith("_")}
    assert not public & set(SUBMODULES)


def test_errors_are_the_library_classes():
    assert stats.StatsError is errors.StatsError
    assert stats.StatsWarning is errors.StatsWarning
    assert issubclass(stats.StatsError, errors.ParaspinalFatError)
    for name in SUBMODULES:
        source = (STATS_DIR / f"{name}.py").read_text(encoding="utf-8")
        assert not re.search(r"^class Stats(Error|Warning)\b", source, re.M), name


def test_unknown_attribute_and_dir():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        stats.nope  # noqa: B018
    assert set(stats.__all__) <= set(dir(stats))


def test_names_imported_across_modules_are_public():
    for path in sorted(STATS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (path.name, node.module, private)
                assert not (node.module or "").split(".")[-1].startswith("_"), (path.name, node.module)


# ---------------------------------------------------------------------------
# numpydoc docstrings
# ---------------------------------------------------------------------------

def _section(doc: str, title: str):
    match = re.search(rf"^{title}\n-{{{len(title)}}}\n(.*?)(?=^\S[^\n]*\n-{{3,}}\n|\Z)", doc, re.M | re.S)  # novm (regex flags)
    return None if match is None else match.group(1)


def _documented_names(section: str) -> set:
    names = set()
    for line in section.splitlines():
        if line and not line[0].isspace():
            head = line.split(" : ")[0]
            names.update(n.strip().lstrip("*") for n in head.split(","))
    return names


def _parameters(obj) -> list:
    target = obj
    if inspect.isclass(obj):
        target = obj.__init__ if "__init__" in vars(obj) or not hasattr(obj, "_fields") else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [p for p in sig.parameters if p not in ("self", "cls")]


def _returns_value(func) -> bool:
    ann = inspect.signature(func).return_annotation
    return ann not in (inspect.Signature.empty, None, "None")


def _public_objects():
    for name in SUBMODULES:
        module = importlib.import_module(f"ParaspinalFatLib.stats.{name}")
        for attr, obj in vars(module).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{name}.{attr}", obj, True
            elif inspect.isclass(obj):
                yield f"{name}.{attr}", obj, False
                for meth_name, meth in vars(obj).items():
                    if meth_name.startswith("_"):
                        continue
                    func = meth.fget if isinstance(meth, property) else meth
                    if inspect.isfunction(func):
                        yield f"{name}.{attr}.{meth_name}", func, True


PUBLIC = list(_public_objects())


@pytest.mark.parametrize("qualname, obj, is_function", PUBLIC, ids=[p[0] for p in PUBLIC])
def test_numpydoc_docstring(qualname, obj, is_function):
    doc = inspect.getdoc(obj)
    assert doc and doc.splitlines()[0].strip(), f"{qualname}: no summary line"
    params = _parameters(obj)
    if params:
        section = _section(doc, "Parameters")
        assert section is not None, f"{qualname}: no Parameters section"
        missing = [p for p in params if p not in _documented_names(section)]
        assert not missing, f"{qualname}: parameters not documented: {missing}"
    if is_function and _returns_value(obj):
        assert _section(doc, "Returns") is not None, f"{qualname}: no Returns section"


def test_every_public_function_has_type_hints():
    for qualname, obj, is_function in PUBLIC:
        if not is_function:
            continue
        sig = inspect.signature(obj)
        assert sig.return_annotation is not inspect.Signature.empty, qualname
        for p in sig.parameters.values():
            if p.name not in ("self", "cls"):
                assert p.annotation is not inspect.Parameter.empty, (qualname, p.name)
