"""Packaging of the 3D Slicer extension: CMake lists, Extensions Index entry, install tree, batch script.

What is checked, and how
------------------------
* Static (no tool needed): the CMake lists are read by a small evaluator below (``set``,
  ``file(GLOB ...)``, ``add_subdirectory`` and the two install macros) and every file under
  ``ParaspinalFat/`` and ``ParaspinalFatLib/`` must be listed for installation, every listed
  file must exist; ``project()`` equals the name of ``ParaspinalFat.json``; the JSON entry
  follows catalog schema v1.0.1 and the ExtensionsIndex checker's rules
  (``scripts/check_description_files.py`` of Slicer/ExtensionsIndex, read for this test);
  ``EXTENSION_ICONURL`` / ``EXTENSION_SCREENSHOTURLS`` have the syntax that checker's
  regular expressions accept and point to images of this repository; ``LICENSE`` is the
  Apache-2.0 text that ``pyproject.toml`` declares; the icon is what
  ``Resources/make_icon.py`` draws.
* The schema itself is not stored in this repository (it is Slicer's file).  Set
  ``PARASPINALFAT_EXTENSION_SCHEMA`` to a copy of
  ``slicer-extension-catalog-entry-schema-v1.0.1.json`` (and install ``jsonschema``) to
  validate against it as well; otherwise that test skips and the fields are checked
  explicitly by the test before it.
* CMake configure + build + install with a stand-in ``SlicerConfig.cmake``
  (``Testing/slicer_module/cmake_standin/``).  This checks PACKAGING ONLY: that the lists
  name existing files and install them in the folder layout of a Slicer 5.8 extension, and
  that ``ParaspinalFatLib`` imports and reads its data files from the installed tree (in a
  subprocess whose ``PYTHONPATH`` is the installed qt-scripted-modules folder, as
  ``PythonSlicer`` has it for an installed extension).  It is NOT a Slicer build: the
  stand-in provides CMake variables and macros only -- not Slicer's Python, MRML, Qt or
  CTK -- nothing is byte-compiled and no test runs inside Slicer.  Skips when ``cmake`` or
  a C/C++ compiler is absent (``project()`` enables C and C++, as Slicer's template does).
* The batch script ``ParaspinalFat/Scripts/batch.py`` run with this interpreter exactly as
  Slicer would run it (``sys.argv == ['batch.py', ARGS...]``): its study folder equals
  the one ``python -m ParaspinalFatLib cohort`` writes for the same manifest (the oracle),
  and its exit status is 1 with a failing case and 2 for input errors.
  ``python -m ParaspinalFatLib --help`` stands for ``PythonSlicer -m ParaspinalFatLib``.
"""
from __future__ import annotations

import filecmp
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "ParaspinalFat"
LIB_DIR = REPO / "ParaspinalFatLib"
STANDIN_DIR = Path(__file__).resolve().parent / "cmake_standin"
BATCH = MODULE_DIR / "Scripts" / "batch.py"
JSON_ENTRY = REPO / "ParaspinalFat.json"
#: Slicer 5.8's Slicer_QTSCRIPTEDMODULES_LIB_DIR (CMake/SlicerDirectories.cmake); the stand-in uses the same
QT_SCRIPTED = "lib/Slicer-5.8/qt-scripted-modules"
#: published repository name (ExtensionsIndex: repository names start with "Slicer", extension names do not)
REPOSITORY = "SlicerParaspinalFat"
#: sha256 of the Apache License 2.0 text as published at https://www.apache.org/licenses/LICENSE-2.0.txt
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
#: keys allowed by the catalog entry schema v1.0.1 ("additionalProperties": false), and its required keys
SCHEMA_KEYS = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
               "build_subdirectory", "enabled", "tier"}
SCHEMA_REQUIRED = {"$schema", "category", "scm_url"}
SCHEMA_URL = ("https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/"
              "slicer-extension-catalog-entry-schema-v1.0.1.json")
TIMEOUT = 600


# --------------------------------------------------------------------------- a small CMake list evaluator
def _strip_comments(text: str) -> str:
    out, quoted = [], False
    for line in text.splitlines():
        kept = []
        for ch in line:
            if ch == '"':
                quoted = not quoted
            if ch == "#" and not quoted:
                break
            kept.append(ch)
        out.append("".join(kept))
    return "\n".join(out)


_COMMAND = re.compile(r'([A-Za-z_]\w*)\s*\(((?:"[^"]*"|[^)"])*)\)', re.S)
_TOKEN = re.compile(r'"([^"]*)"|([^\s"]+)')
_VAR = re.compile(r"\$\{(\w+)\}")


def _commands(path: Path):
    """(name, [raw argument tokens]) of every command of a CMake list, in order."""
    for m in _COMMAND.finditer(_strip_comments(path.read_text(encoding="utf-8"))):
        yield m.group(1), [quoted if bare == "" else bare for quoted, bare in _TOKEN.findall(m.group(2))]


def _expand(tokens: List[str], variables: Dict[str, List[str]]) -> List[str]:
    """``${VAR}`` replaced (unknown variables stay as written); ``;``-lists split into items."""
    out: List[str] = []
    for tok in tokens:
        text = _VAR.sub(lambda m: ";".join(variables[m.group(1)]) if m.group(1) in variables else m.group(0), tok)
        out.extend(item for item in text.split(";") if item != "")
    return out


def _keyword_args(args: List[str], keywords, options=()) -> Dict[str, List[str]]:
    parsed: Dict[str, List[str]] = {}
    current: Optional[str] = None
    for arg in args:
        if arg in options:
            parsed[arg] = ["TRUE"]
            current = None
        elif arg in keywords:
            current = arg
            parsed.setdefault(arg, [])
        elif current is not None:
            parsed[current].append(arg)
        else:
            raise AssertionError(f"argument {arg!r} before any keyword")
    return parsed


def _script_name(name: str) -> str:
    """A SCRIPTS entry as CTK's macro copies it: ".py" appended when its extension has no "py"."""
    return name if "py" in "".join(Path(name).suffixes) else name + ".py"


def _glob(args: List[str], recurse: bool) -> List[str]:
    """``file(GLOB[_RECURSE] VAR RELATIVE dir [CONFIGURE_DEPENDS] patterns...)`` evaluated with pathlib."""
    relative = None
    patterns = []
    i = 1
    while i < len(args):
        if args[i] == "RELATIVE":
            relative = Path(args[i + 1])
            i += 2
            continue
        if args[i] not in ("CONFIGURE_DEPENDS", "FOLLOW_SYMLINKS"):
            patterns.append(args[i])
        i += 1
    found = set()
    for pattern in patterns:
        parts = Path(pattern).parts
        cut = next(k for k, part in enumerate(parts) if any(c in part for c in "*?["))
        base, rest = Path(*parts[:cut]), str(Path(*parts[cut:]))
        matches = base.rglob(rest) if recurse else base.glob(rest)
        found.update(p for p in matches if p.is_file())
    assert relative is not None, "the globs must use RELATIVE (ctkMacroCompilePythonScript takes relative paths)"
    return sorted(p.relative_to(relative).as_posix() for p in found)


def evaluate_cmake(source_dir: Path = REPO) -> Dict[str, list]:
    """What the CMake lists install and register, read without CMake.

    Returns
    -------
    dict
        ``"installs"``: list of (target, source folder, [relative files], install folder);
        ``"modules"``: module NAMEs; ``"unittests"``: scripts given to
        ``slicer_add_python_unittest``; ``"project"``: the project() name.
    """
    result: Dict[str, list] = {"installs": [], "modules": [], "unittests": [], "project": []}

    def run(cmake_dir: Path, variables: Dict[str, List[str]]) -> None:
        variables = dict(variables, CMAKE_CURRENT_SOURCE_DIR=[str(cmake_dir)])
        for name, raw in _commands(cmake_dir / "CMakeLists.txt"):
            args = _expand(raw, variables)
            lname = name.lower()
            if lname == "project":
                result["project"].append(args[0])
            elif lname == "set" and args:
                variables[args[0]] = args[1:]
            elif lname == "file" and args and args[0] in ("GLOB", "GLOB_RECURSE"):
                variables[args[1]] = _glob(args[1:], recurse=args[0] == "GLOB_RECURSE")
            elif lname == "add_subdirectory":
                run(cmake_dir / args[0], variables)
            elif lname == "slicermacrobuildscriptedmodule":
                kw = _keyword_args(args, ("NAME", "SCRIPTS", "RESOURCES"),
                                   ("WITH_GENERIC_TESTS", "WITH_SUBDIR", "VERBOSE"))
                assert "WITH_SUBDIR" not in kw, "the evaluator does not handle WITH_SUBDIR"
                result["modules"].append(kw["NAME"][0])
                files = [_script_name(f) for f in kw.get("SCRIPTS", [])]
                result["installs"].append((kw["NAME"][0], cmake_dir, files + kw.get("RESOURCES", []), QT_SCRIPTED))
            elif lname == "ctkmacrocompilepythonscript":
                kw = _keyword_args(args, ("TARGET_NAME", "SCRIPTS", "RESOURCES", "SOURCE_DIR", "DESTINATION_DIR",
                                          "INSTALL_DIR"), ("NO_INSTALL_SUBDIR", "GLOBAL_TARGET"))
                source = Path(kw["SOURCE_DIR"][0]) if "SOURCE_DIR" in kw else cmake_dir
                scripts = [_script_name(f) for f in kw["SCRIPTS"]]
                install = kw["INSTALL_DIR"][0]
                if "NO_INSTALL_SUBDIR" not in kw:
                    install = f"{install}/{Path(kw['DESTINATION_DIR'][0]).name}"
                result["installs"].append((kw["TARGET_NAME"][0], source, scripts + kw.get("RESOURCES", []), install))
            elif lname == "slicer_add_python_unittest":
                result["unittests"].append(cmake_dir / _keyword_args(args, ("SCRIPT", "TESTNAME_PREFIX",
                                                                            "SLICER_ARGS"))["SCRIPT"][0])

    layout = [QT_SCRIPTED]
    run(source_dir, {"Slicer_QTSCRIPTEDMODULES_LIB_DIR": layout, "Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR": layout,
                     "CMAKE_BINARY_DIR": ["<build>"], "CMAKE_SOURCE_DIR": [str(source_dir)]})
    return result


def expected_install_tree(cmake: Dict[str, list]) -> Dict[str, Path]:
    """Installed path (relative to the prefix) -> source file, from the evaluated lists."""
    tree: Dict[str, Path] = {}
    for target, source, files, install in cmake["installs"]:
        for f in files:
            dest = f"{install}/{f}"
            assert dest not in tree, f"{dest} is installed twice ({target})"
            tree[dest] = source / f
    return tree


def _package_files(folder: Path) -> List[Path]:
    """Every file of ``folder`` that belongs in the package (no caches, no CMakeLists.txt)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix not in (".pyc", ".pyo") and p.name != "CMakeLists.txt")


@pytest.fixture(scope="module")
def cmake_lists():
    return evaluate_cmake()


def _root_cmake_text() -> str:
    return (REPO / "CMakeLists.txt").read_text(encoding="utf-8")


def _json_entry() -> dict:
    return json.loads(JSON_ENTRY.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- static checks
def test_every_module_and_library_file_is_listed_for_installation(cmake_lists):
    listed = {src.resolve() for src in expected_install_tree(cmake_lists).values()}
    missing = [str(p) for p in sorted(listed) if not p.is_file()]
    assert not missing, f"listed in the CMake lists but absent: {missing}"
    present = _package_files(MODULE_DIR) + _package_files(LIB_DIR)
    unlisted = [str(p.relative_to(REPO)) for p in present if p.resolve() not in listed]
    assert not unlisted, f"files not installed by any CMake list: {unlisted}"
    # the evaluator itself read the lists: the module, the batch script and the library were all found
    targets = {t for t, *_ in cmake_lists["installs"]}
    assert targets == {"ParaspinalFat", "ParaspinalFatScripts", "ParaspinalFatLib"}
    assert any(p.name == "muscle_names.csv" for p in listed) and any(p.name == "runner.py" for p in listed)


def test_module_layout_follows_the_scripted_module_template(cmake_lists):
    assert cmake_lists["modules"] == ["ParaspinalFat"]
    tree = expected_install_tree(cmake_lists)
    for rel in ("ParaspinalFat.py", "Resources/Icons/ParaspinalFat.png", "Resources/UI/ParaspinalFat.ui",
                "ParaspinalFatScripts/batch.py", "ParaspinalFatLib/__init__.py", "ParaspinalFatLib/__main__.py",
                "ParaspinalFatLib/data/muscle_names.csv"):
        assert f"{QT_SCRIPTED}/{rel}" in tree, rel
    # the module's own test class is registered (inside BUILD_TESTING) like the template's
    assert cmake_lists["unittests"] == [MODULE_DIR / "ParaspinalFat.py"]
    module_text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"if\(BUILD_TESTING\)\s+(#[^\n]*\n\s*)*slicer_add_python_unittest\(SCRIPT \$\{MODULE_NAME\}\.py\)",
                     module_text)
    assert "WITH_GENERIC_TESTS" in module_text


def _top_level_class_accepts_parent(path: Path) -> Optional[str]:
    """Why Slicer would make a wrong module of ``path`` (None when it makes the right one).

    Slicer's scripted-module factory loads every top-level ``.py`` and calls the class named
    after the file with the module object (qSlicerScriptedLoadableModule::setPythonSource).
    Accepted: a module class whose ``__init__`` takes ``parent`` (or inherits one), or a
    helper whose ``__init__`` recognises that call (``_isModuleParent``) and declares itself
    hidden (``_declareHiddenModule`` setting ``parent.hidden = True``).
    """
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == path.stem), None)
    if cls is None:
        return f"{path.name} has no class {path.stem}"
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        return None if cls.bases else f"class {path.stem} neither takes 'parent' nor inherits a module class"
    params = [a.arg for a in init.args.args[1:]]
    if params[:1] == ["parent"]:
        return None
    calls = {n.func.id for n in ast.walk(init) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    helper = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_declareHiddenModule"), None)
    hides = helper is not None and any(
        isinstance(n, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "hidden" for t in n.targets)
        and isinstance(n.value, ast.Constant) and n.value.value is True for n in ast.walk(helper))
    if {"_isModuleParent", "_declareHiddenModule"} <= calls and hides:
        return None
    return (f"{path.stem}.__init__ takes {params}, not a module's 'parent', and does not declare itself a hidden "
            f"module when Slicer's factory calls it with one")


def test_top_level_scripts_are_slicer_modules(cmake_lists):
    tree = expected_install_tree(cmake_lists)
    top = [src for dest, src in tree.items() if dest.startswith(QT_SCRIPTED + "/")
           and "/" not in dest[len(QT_SCRIPTED) + 1:] and dest.endswith(".py")]
    assert sorted(Path(t).name for t in top) == ["ParaspinalFat.py", "ParaspinalFatLogic.py"]
    problems = [why for why in map(_top_level_class_accepts_parent, top) if why]
    assert not problems, problems


def test_project_name_equals_json_name_and_index_naming_rules(cmake_lists):
    # the ExtensionsIndex checker takes the first project(...) of the top-level CMakeLists.txt
    names = re.findall(r"(?im)project\s*\(\s*([^\s\)\n\r]+)", _root_cmake_text())
    assert names and names[0] == "ParaspinalFat" and cmake_lists["project"] == ["ParaspinalFat"]
    assert JSON_ENTRY.stem == names[0]
    assert not JSON_ENTRY.stem.lower().startswith("slicer")
    assert re.search(r"cmake_minimum_required\(VERSION 3\.16\.3\.\.\.3\.19\.7 FATAL_ERROR\)", _root_cmake_text())
    repo_name = Path(_json_entry()["scm_url"].rstrip("/")).stem
    assert repo_name == REPOSITORY and repo_name.startswith("Slicer")


def test_json_entry_fields():
    raw = JSON_ENTRY.read_bytes()
    assert b"\r" not in raw, "the index wants LF-only line endings"
    entry = json.loads(raw.decode("utf-8"))
    assert SCHEMA_REQUIRED <= set(entry), f"missing: {SCHEMA_REQUIRED - set(entry)}"
    assert set(entry) <= SCHEMA_KEYS, f"not allowed by the schema: {set(entry) - SCHEMA_KEYS}"
    assert entry["$schema"].rstrip("#") == SCHEMA_URL
    for key in ("category", "scm_url", "scm_revision", "build_subdirectory"):
        assert isinstance(entry[key], str), key
    assert entry["category"] == "Quantification"  # one of the index's accepted categories
    scheme, _, rest = entry["scm_url"].partition("://")
    assert scheme in ("git", "https") and rest.startswith("github.com/") and rest.endswith(f"/{REPOSITORY}.git")
    assert entry["scm_revision"] == "main"
    assert entry["build_dependencies"] == []
    assert entry["build_subdirectory"] == "."
    assert isinstance(entry["tier"], int) and not isinstance(entry["tier"], bool) and 1 <= entry["tier"] <= 5
    # the same facts in the CMake metadata
    text = _root_cmake_text()
    assert re.search(r'set\(EXTENSION_CATEGORY "Quantification"\)', text)
    assert re.search(r'set\(EXTENSION_DEPENDS "NA"\)', text)  # no build_dependencies


def test_json_entry_against_the_real_schema():
    schema_path = os.environ.get("PARASPINALFAT_EXTENSION_SCHEMA")
    if not schema_path or not Path(schema_path).is_file():
        pytest.skip("set PARASPINALFAT_EXTENSION_SCHEMA to a copy of Slicer's "
                    "slicer-extension-catalog-entry-schema-v1.0.1.json to validate against it "
                    "(the fields are checked explicitly by test_json_entry_fields)")
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    assert schema["$id"].rstrip("#") == SCHEMA_URL
    jsonschema.validate(_json_entry(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(_json_entry(), unknown_key=1), schema)


def _png_size(path: Path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _repo_file_of(url: str, owner: str) -> Path:
    m = re.fullmatch(rf"https://raw\.githubusercontent\.com/([^/]+)/{REPOSITORY}/([^/]+)/(.+)", url)
    assert m, f"{url} is not a raw.githubusercontent.com URL of {REPOSITORY}"
    assert m.group(1) == owner, f"{url}: owner {m.group(1)} differs from the scm_url's {owner}"
    assert m.group(2) == _json_entry()["scm_revision"], f"{url}: not the revision the index builds"
    return REPO / m.group(3)


def test_icon_and_screenshot_urls_point_to_images_of_this_repository():
    text = _root_cmake_text()
    owner = _json_entry()["scm_url"].split("/")[3]
    # the index checker's patterns: the screenshot one allows no space before ')'
    icons = re.findall(r'(?im)set\s*\(EXTENSION_ICONURL\s*"([^"]+)"[ ]*\)', text)
    shots = re.findall(r'(?im)set\s*\(EXTENSION_SCREENSHOTURLS\s*"([^"]+)"\)', text)
    assert len(icons) == 1 and len(shots) == 1
    icon = _repo_file_of(icons[0].strip(), owner)
    assert icon == MODULE_DIR / "Resources" / "Icons" / "ParaspinalFat.png" and icon.is_file()
    assert _png_size(icon) == (128, 128)
    urls = shots[0].split()
    assert urls
    for url in urls:
        shot = _repo_file_of(url, owner)
        assert shot.is_file(), shot
        width, height = _png_size(shot)
        assert width >= 300 and height >= 300
    homepage = re.findall(r'set\(EXTENSION_HOMEPAGE "([^"]+)"\)', text)
    assert homepage == [f"https://github.com/{owner}/{REPOSITORY}"]


def test_license_is_the_apache_2_text():
    license_file = REPO / "LICENSE"
    assert license_file.is_file()
    assert hashlib.sha256(license_file.read_bytes()).hexdigest() == APACHE_2_SHA256
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'license\s*=\s*\{\s*text\s*=\s*"Apache-2\.0"\s*\}', pyproject)
    assert re.search(r"set\(EXTENSION_LICENSE_FILE \$\{CMAKE_CURRENT_SOURCE_DIR\}/LICENSE\)", _root_cmake_text())


def test_icon_is_what_make_icon_draws():
    image_module = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    np = pytest.importorskip("numpy")
    spec = importlib.util.spec_from_file_location("make_icon", REPO / "Resources" / "make_icon.py")
    make_icon = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icon)
    drawn = np.asarray(make_icon.draw_icon().convert("RGBA"), dtype=int)
    with image_module.open(MODULE_DIR / "Resources" / "Icons" / "ParaspinalFat.png") as im:
        stored = np.asarray(im.convert("RGBA"), dtype=int)
    assert drawn.shape == stored.shape == (128, 128, 4)
    # equal pixels with Pillow 11 and 13; a few levels of slack for another Pillow's resampling
    assert np.abs(drawn - stored).max() <= 3


# --------------------------------------------------------------------------- configure/build/install (stand-in)
def _compilers_present() -> bool:
    cc = os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    cxx = os.environ.get("CXX") or next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
    return bool(cc and cxx and shutil.which(cc.split()[0]) and shutil.which(cxx.split()[0]))


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=TIMEOUT, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Configure, build and install the extension with the stand-in SlicerConfig.cmake (packaging only)."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed: the configure/build/install packaging check needs it")
    if not _compilers_present():
        pytest.skip("no C/C++ compiler: project() enables C and C++ (as Slicer's extension template does)")
    work = tmp_path_factory.mktemp("cmake")
    build, prefix = work / "build", work / "install"
    steps = [
        ["cmake", "-S", REPO, "-B", build, f"-DSlicer_DIR={STANDIN_DIR}", f"-DCMAKE_INSTALL_PREFIX={prefix}",
         "-DBUILD_TESTING=ON"],
        ["cmake", "--build", build],
        ["cmake", "--install", build],
    ]
    for cmd in steps:
        proc = _run(cmd)
        assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return {"build": build, "prefix": prefix, "modules": prefix / QT_SCRIPTED}


def _standin_calls(build: Path) -> List[Dict[str, str]]:
    calls = []
    for line in (build / "slicer_standin_calls.txt").read_text(encoding="utf-8").splitlines():
        name, *fields = line.split("\t")
        calls.append(dict([("macro", name)] + [tuple(f.split("=", 1)) for f in fields]))
    return calls


def test_install_tree_holds_exactly_the_listed_files(installed, cmake_lists):
    prefix = installed["prefix"]
    got = sorted(p.relative_to(prefix).as_posix() for p in prefix.rglob("*") if p.is_file())
    expected = expected_install_tree(cmake_lists)
    assert got == sorted(expected)  # the evaluator above agrees with CMake
    different = [rel for rel, src in expected.items() if not filecmp.cmp(prefix / rel, src, shallow=False)]
    assert not different, different
    # every package file of the library's source tree is in it
    for p in _package_files(LIB_DIR):
        assert f"{QT_SCRIPTED}/ParaspinalFatLib/{p.relative_to(LIB_DIR).as_posix()}" in got, p
    # the build tree holds the same layout (Slicer's build-tree tests load modules from there)
    build_modules = installed["build"] / QT_SCRIPTED
    assert sorted(p.relative_to(build_modules).as_posix() for p in build_modules.rglob("*") if p.is_file()) == \
        sorted(rel[len(QT_SCRIPTED) + 1:] for rel in expected)


def test_macro_calls_and_extension_metadata(installed):
    calls = _standin_calls(installed["build"])
    by_macro: Dict[str, List[Dict[str, str]]] = {}
    for call in calls:
        by_macro.setdefault(call["macro"], []).append(call)
    assert by_macro["slicerMacroBuildScriptedModule"] == [
        {"macro": "slicerMacroBuildScriptedModule", "NAME": "ParaspinalFat", "GENERIC_TESTS": "ON"}]
    assert [c["SCRIPT"] for c in by_macro["slicer_add_python_unittest"]] == [str(MODULE_DIR / "ParaspinalFat.py")]
    lib = next(c for c in by_macro["ctkMacroCompilePythonScript"] if c["TARGET_NAME"] == "ParaspinalFatLib")
    assert lib["SOURCE_DIR"] == str(LIB_DIR.resolve())
    assert lib["DESTINATION_DIR"] == lib["INSTALL_DIR"] == f"{QT_SCRIPTED}/ParaspinalFatLib"
    assert lib["NO_INSTALL_SUBDIR"] == "TRUE"
    assert [c["EXTENSION_NAME"] for c in by_macro["Slicer_EXTENSION_GENERATE_CONFIG"]] == ["ParaspinalFat"]
    (cpack,) = by_macro["Slicer_EXTENSION_CPACK"]
    assert cpack["EXTENSION_NAME"] == JSON_ENTRY.stem
    assert cpack["CATEGORY"] == _json_entry()["category"]
    assert cpack["LICENSE_FILE"] == str(REPO / "LICENSE") and cpack["README_FILE"] == str(REPO / "README.md")
    assert calls[-1]["macro"] == "Slicer_EXTENSION_CPACK"  # included last, as in the template


_DATA_PROBE = """
import json, sys
import ParaspinalFatLib, ParaspinalFatLib.cohort.runner as runner
from ParaspinalFatLib.anatomy.muscle_names import builtin_table_path, default_name_table
from ParaspinalFatLib.io.label_names import convention_table
from ParaspinalFatLib.report.analysis_config import load_config
names = default_name_table()
print(json.dumps({
    "lib": ParaspinalFatLib.__file__, "runner": runner.__file__, "table": str(builtin_table_path()),
    "names": len(names), "canonical": sorted(names.canonical_names()),
    "totalsegmentator": len(convention_table("totalsegmentator")),
    "totalspineseg": len(convention_table("totalspineseg")),
    "configs": [repr(sorted(vars(load_config(n)))) for n in ("seed001", "seed002")],
}))
"""


def _probe(pythonpath: Path, cwd: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    proc = _run([sys.executable, "-c", _DATA_PROBE], cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_installed_library_imports_and_reads_its_data_files(installed, tmp_path):
    modules = installed["modules"]
    got = _probe(modules, tmp_path)
    for key in ("lib", "runner", "table"):
        assert Path(got[key]).resolve().is_relative_to(modules.resolve()), f"{key}: {got[key]} is not installed"
    # the oracle: the same reads from the source tree
    source = _probe(REPO, tmp_path)
    assert Path(source["lib"]).resolve() == (LIB_DIR / "__init__.py").resolve()
    for key in ("names", "canonical", "totalsegmentator", "totalspineseg", "configs"):
        assert got[key] == source[key], key
    assert got["names"] > 0 and got["totalsegmentator"] > 100


def test_installed_command_line_and_batch_script_run(installed, tmp_path):
    modules = installed["modules"]
    env = dict(os.environ, PYTHONPATH=str(modules))  # as PythonSlicer has it for an installed extension
    proc = _run([sys.executable, "-m", "ParaspinalFatLib", "--help"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "cohort" in proc.stdout and "measure" in proc.stdout
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = _run([sys.executable, modules / "ParaspinalFatScripts" / "batch.py", "--help"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "--manifest" in proc.stdout
    # the installed script found the installed library beside it (one folder up)
    assert f"ParaspinalFatLib 0.1.0 from {modules};" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- the batch script with plain Python
def _batch(args, cwd: Path, env=None) -> subprocess.CompletedProcess:
    return _run([sys.executable, BATCH, *args], cwd=cwd, env=env)


def _cli(args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return _run([sys.executable, "-m", "ParaspinalFatLib", *args], cwd=cwd, env=env)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A synthetic 3-subject cohort (phantom PDFF images + segmentations) and its manifest."""
    pytest.importorskip("pandas")
    pytest.importorskip("SimpleITK")
    from ParaspinalFatLib.cohort.synthetic_cohort import make_synthetic_cohort

    folder = tmp_path_factory.mktemp("cohort")
    return make_synthetic_cohort(folder / "synthetic", n_subjects=3, n_repeated=0)


def test_batch_study_equals_the_command_line_cohort(cohort, tmp_path):
    batch = _batch(["--manifest", cohort.manifest, "--output", tmp_path / "batch", "--workers", "2"], tmp_path)
    assert batch.returncode == 0, batch.stderr
    cli = _cli(["cohort", "--manifest", cohort.manifest, "--output", tmp_path / "cli", "--workers", "1"], tmp_path)
    assert cli.returncode == 0, cli.stderr
    for name in ("measurements.csv", "errors.csv", "subjects.csv", "codebook.csv"):
        assert (tmp_path / "batch" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    import pandas as pd

    measured = pd.read_csv(tmp_path / "batch" / "measurements.csv")
    assert sorted(set(measured["subject"])) == sorted(cohort.truth["subject"])
    assert "ran on 2 worker process(es)" in (tmp_path / "batch" / "run.log").read_text(encoding="utf-8")
    assert "3 case(s): 3 measured" in batch.stdout
    assert "[3/3]" in batch.stderr and "ParaspinalFat batch: ParaspinalFatLib" in batch.stderr


def test_batch_exit_1_when_a_case_fails(cohort, tmp_path):
    import pandas as pd

    good = pd.read_csv(cohort.manifest).head(1)
    for column in ("image", "segmentation"):  # absolute paths: the new manifest lives elsewhere
        good[column] = [str(cohort.folder / p) for p in good[column]]
    broken = tmp_path / "broken_pdff.nrrd"
    broken.write_text("this is not an image\n")
    manifest = tmp_path / "cases.csv"
    pd.concat([good, good.assign(subject="BROKEN", image=str(broken))]).to_csv(manifest, index=False)
    proc = _batch(["--manifest", manifest, "--output", tmp_path / "study", "--workers", "1"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    errors = pd.read_csv(tmp_path / "study" / "errors.csv")
    assert list(errors["subject"]) == ["BROKEN"] and list(errors["stage"]) == ["measure"]
    measured = pd.read_csv(tmp_path / "study" / "measurements.csv")
    assert set(measured["subject"]) == {good["subject"].iloc[0]}
    assert "1 failed" in proc.stdout


def test_batch_exit_2_on_input_errors(tmp_path):
    missing = tmp_path / "no_such_manifest.csv"
    # a leading "--" (as Slicer's command line may leave it) is dropped
    proc = _batch(["--", "--manifest", missing, "--output", tmp_path / "study"], tmp_path)
    assert proc.returncode == 2
    assert "paraspinalfat: error:" in proc.stderr and str(missing) in proc.stderr
    proc = _batch(["--manifest", missing], tmp_path)  # no --output: argparse's error
    assert proc.returncode == 2 and "--output" in proc.stderr
    proc = _batch(["--help"], tmp_path)
    assert proc.returncode == 0 and "--manifest" in proc.stdout and "--workers" in proc.stdout


def test_batch_reports_a_missing_package_outside_slicer(tmp_path):
    # pandas blocked in this subprocess (sys.modules entry None): the script names it and how to install it
    code = ("import runpy, sys; sys.modules['pandas'] = None; "
            f"sys.argv = ['batch.py', '--manifest', 'cases.csv', '--output', 'study']; "
            f"runpy.run_path({str(BATCH)!r}, run_name='__main__')")
    proc = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "'pandas'" in proc.stderr and "pip install pandas" in proc.stderr
    assert not (tmp_path / "study").exists()


def test_python_m_library_runs_the_command_line(tmp_path):
    proc = _run([sys.executable, "-m", "ParaspinalFatLib", "--help"], cwd=tmp_path,
                env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    for command in ("measure", "cohort", "report", "phantom", "demo"):
        assert command in proc.stdout
