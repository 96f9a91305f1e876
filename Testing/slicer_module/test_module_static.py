"""Static checks of the Slicer module's Qt parts (no Slicer application, no Qt here).

``ParaspinalFat/ParaspinalFat.py`` imports ``qt``, ``ctk`` and ``ScriptedLoadableModule``,
which exist only inside the Slicer application, so it is never imported here.  Instead its
source is parsed (``ast``) and the panel's ``Resources/UI/ParaspinalFat.ui`` read as XML
(``xml.etree``), and the two are checked against each other, against the contract of issue
#13 (the parameter node's fields and defaults, the Logic call) and against the Logic file
(``ParaspinalFatLogic.PARAMETER_OPTIONS``, the methods the panel calls):

* every ``self.ui.<name>`` used in the code exists in the .ui with the class its name
  promises (``...Selector`` a ``qMRMLNodeComboBox``, ``...Button`` a ``QPushButton``...);
* every ``SlicerParameterName`` in the .ui is a parameter-node field, bound to a widget that
  Slicer's ``parameterNodeWrapper`` GUI connectors accept for the field's type, with the
  field's node type / choices / range / default; every field is bound or set in code;
* every non-node field is in ``PARAMETER_OPTIONS`` and every node field is passed to
  ``process`` under the contract's argument name;
* the file compiles, passes ``vermin -t=3.9-``, imports only what Slicer bundles at file
  scope, and executes nothing at import (only imports, defs, classes and constants);
* ``levelSliceToRAS`` (the only pure-numpy function, extracted from the source and run
  with numpy) builds Slicer's axial SliceToRAS for an axial plane and an orthonormal,
  radiological frame for an oblique one.

What runs inside Slicer (the panel's behaviour, the Logic on real data) is checked by
``ParaspinalFatTest`` in the module itself.
"""
from __future__ import annotations

import ast
import builtins
import importlib.util
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Set

import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = PROJECT_ROOT / "ParaspinalFat"
MODULE_FILE = MODULE_DIR / "ParaspinalFat.py"
LOGIC_FILE = MODULE_DIR / "ParaspinalFatLogic.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "ParaspinalFat.ui"
VERMIN = PROJECT_ROOT / ".venv-py312" / "bin" / "vermin"

#: the contract's parameter node: field -> (type, node class or default, choices)
CONTRACT_FIELDS = {
    "inputVolume": ("node", "vtkMRMLScalarVolumeNode", None),
    "waterVolume": ("node", "vtkMRMLScalarVolumeNode", None),
    "inputSegmentation": ("node", "vtkMRMLSegmentationNode", None),
    "levelMarkups": ("node", "vtkMRMLMarkupsNode", None),
    "mapKind": ("str", "pdff", ("pdff", "dixon", "ct", "t1", "t2", "scalar")),
    "pdffScale": ("str", "auto", ("auto", "0-1", "0-100", "0-1000")),
    "fatThresholdPct": ("float", 50.0, None),
    "levels": ("str", "L3/4,L4/5,L5/S1", None),
    "plane": ("str", "image", ("image", "disc")),
    "nSlices": ("int", 1, None),
    "unit": ("str", "", None),
    "goutallierCutoffs": ("str", "", None),
    "kjaerCutoffs": ("str", "", None),
    "outputTable": ("node", "vtkMRMLTableNode", None),
    "outputChart": ("node", "vtkMRMLPlotChartNode", None),
    "outputOverlay": ("node", "vtkMRMLSegmentationNode", None),
}
NODE_FIELDS = [name for name, spec in CONTRACT_FIELDS.items() if spec[0] == "node"]
OPTION_FIELDS = [name for name, spec in CONTRACT_FIELDS.items() if spec[0] != "node"]

#: how the contract's process() call receives each node field (int = positional index)
PROCESS_ARGUMENTS = {
    0: "inputVolume", 1: "inputSegmentation", "markupsNode": "levelMarkups",
    "waterNode": "waterVolume", "tableNode": "outputTable", "chartNode": "outputChart",
    "overlayNode": "outputOverlay",
}

#: widget-name suffix -> the .ui class the name promises (longest suffix wins)
SUFFIX_CLASSES = {
    "CollapsibleButton": "ctkCollapsibleButton",
    "Button": "QPushButton",
    "Selector": "qMRMLNodeComboBox",
    "ComboBox": "QComboBox",
    "SliderWidget": "ctkSliderWidget",
    "SpinBox": "QSpinBox",
    "LineEdit": "QLineEdit",
    "Label": "QLabel",
    "Widget": "QWidget",
}

#: Slicer's parameterNodeWrapper GUI connectors (guiConnectors.py, 5.4-5.8 and main):
#: field type -> widget classes it binds (exact class match in the connectors)
CONNECTOR_CLASSES = {
    "node": {"qMRMLNodeComboBox"},
    "choice": {"QComboBox", "ctkComboBox"},
    "float": {"QDoubleSpinBox", "ctkSliderWidget", "qMRMLSliderWidget", "ctkDoubleSlider",
              "ctkDoubleSpinBox", "qMRMLSpinBox"},
    "int": {"QSpinBox", "QSlider"},
    "str": {"QLineEdit"},
}

#: what Slicer bundles and the module may import at file scope (besides the standard library)
BUNDLED_ROOTS = {"slicer", "vtk", "qt", "ctk", "numpy", "ParaspinalFatLogic"}

#: signals of the widgets used in connect("signal", slot) strings
WIDGET_SIGNALS = {"QPushButton": {"clicked()", "clicked(bool)", "toggled(bool)", "pressed()", "released()"}}


# --- parsing ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_tree() -> ast.Module:
    if not MODULE_FILE.is_file():
        pytest.fail(f"{MODULE_FILE} is missing")
    return ast.parse(MODULE_FILE.read_text(encoding="utf-8"), filename=str(MODULE_FILE))


@pytest.fixture(scope="module")
def logic_tree() -> ast.Module:
    if not LOGIC_FILE.is_file():
        pytest.skip(f"{LOGIC_FILE.relative_to(PROJECT_ROOT)} does not exist yet: the checks against "
                    f"the Logic (PARAMETER_OPTIONS, method names) cannot run")
    return ast.parse(LOGIC_FILE.read_text(encoding="utf-8"), filename=str(LOGIC_FILE))


@pytest.fixture(scope="module")
def ui_root() -> ET.Element:
    if not UI_FILE.is_file():
        pytest.fail(f"{UI_FILE} is missing")
    return ET.parse(UI_FILE).getroot()


def _class_def(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise AssertionError(f"class {name} not found at module level")


def _module_constants(tree: ast.Module) -> Dict[str, object]:
    """Module-level NAME = <literal> assignments, evaluated with ast.literal_eval."""
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return constants


def _resolve(node: ast.AST, constants: Dict[str, object]):
    """A literal, a module constant, or list()/tuple() of one."""
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("list", "tuple") \
            and len(node.args) == 1:
        return tuple(_resolve(node.args[0], constants))
    return ast.literal_eval(node)


class Field:
    """One parameter-node field as declared in the class body."""

    def __init__(self, name: str, annotation: ast.AST, value: Optional[ast.AST], constants: Dict[str, object]):
        self.name = name
        self.node_classes: List[str] = []
        self.base = None
        self.choices = None
        self.range = None
        self.default = ast.literal_eval(value) if value is not None else None
        self.has_default = value is not None
        self._read(annotation, constants)

    def _read(self, annotation: ast.AST, constants: Dict[str, object]) -> None:
        if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name) \
                and annotation.value.id == "Annotated":
            elements = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
            self._read(elements[0], constants)
            for extra in elements[1:]:
                if isinstance(extra, ast.Call) and isinstance(extra.func, ast.Name):
                    if extra.func.id == "Choice":
                        self.choices = tuple(_resolve(extra.args[0], constants))
                    elif extra.func.id == "WithinRange":
                        self.range = tuple(float(_resolve(a, constants)) for a in extra.args)
            return
        names = [n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)]
        self.node_classes = [n for n in names if n.startswith("vtkMRML")]
        if self.node_classes:
            self.base = "node"
        else:
            plain = [n for n in names if n in ("str", "int", "float", "bool")]
            assert len(plain) == 1, f"field {self.name}: unexpected annotation {ast.dump(annotation)}"
            self.base = plain[0]

    @property
    def kind(self) -> str:
        """The connector kind: node, choice, float, int or str."""
        return "choice" if self.choices is not None else self.base


@pytest.fixture(scope="module")
def fields(module_tree) -> Dict[str, Field]:
    cls = _class_def(module_tree, "ParaspinalFatParameterNode")
    decorators = [d.id for d in cls.decorator_list if isinstance(d, ast.Name)]
    assert decorators == ["parameterNodeWrapper"], "the parameter node class must be @parameterNodeWrapper"
    constants = _module_constants(module_tree)
    out = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = Field(node.target.id, node.annotation, node.value, constants)
    return out



def _ui_widgets(ui_root: ET.Element) -> Dict[str, ET.Element]:
    widgets = {}
    for element in ui_root.iter("widget"):
        name = element.get("name")
        assert name not in widgets, f"{UI_FILE.name}: widget name {name!r} is used twice"
        widgets[name] = element
    return widgets


def _own_property(widget: ET.Element, name: str) -> Optional[ET.Element]:
    """The widget's own <property name=...> (not one of its children's)."""
    for prop in widget.findall("property"):
        if prop.get("name") == name:
            return prop
    return None


def _property_value(widget: ET.Element, name: str):
    prop = _own_property(widget, name)
    if prop is None:
        return None
    value = prop[0]
    if value.tag == "stringlist":
        return [s.text or "" for s in value.findall("string")]
    if value.tag in ("double", "number"):
        return float(value.text)
    if value.tag == "bool":
        return value.text == "true"
    return value.text or ""


def _parameter_bindings(ui_root: ET.Element) -> Dict[str, ET.Element]:
    """SlicerParameterName -> widget (each name bound once)."""
    bound = {}
    for name, widget in _ui_widgets(ui_root).items():
        prop = _own_property(widget, "SlicerParameterName")
        if prop is not None:
            assert prop.get("stdset") == "0", f"{name}: SlicerParameterName must be a dynamic property (stdset=0)"
            parameter = prop[0].text
            assert parameter not in bound, f"parameter {parameter!r} is bound to two widgets"
            bound[parameter] = widget
    return bound


def _ui_attribute_uses(module_tree: ast.Module) -> Dict[str, List[ast.Attribute]]:
    """``self.ui.<name>`` -> the attribute nodes that use it."""
    uses: Dict[str, List[ast.Attribute]] = {}
    for node in ast.walk(module_tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "ui" and isinstance(node.value.value, ast.Name) \
                and node.value.value.id == "self":
            uses.setdefault(node.attr, []).append(node)
    return uses


def _expected_class(widget_name: str) -> Optional[str]:
    for suffix in sorted(SUFFIX_CLASSES, key=len, reverse=True):
        if widget_name.endswith(suffix):
            return SUFFIX_CLASSES[suffix]
    return None


def _process_calls(module_tree: ast.Module) -> List[ast.Call]:
    widget = _class_def(module_tree, "ParaspinalFatWidget")
    return [node for node in ast.walk(widget)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "process"]


def _assigned_names(node: ast.AST) -> List[str]:
    """Names bound by ``NAME = ...`` or ``NAME: type = ...`` (else [])."""
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _attributes_in(node: ast.AST) -> Set[str]:
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


# --- the .ui ---------------------------------------------------------------------------


def test_ui_root_sections_and_scene_connections(ui_root):
    """qMRMLWidget root; Inputs / Options / Outputs / Results sections; every selector gets the scene."""
    assert ui_root.tag == "ui"
    assert ui_root.findtext("class") == "ParaspinalFat"
    root_widget = ui_root.find("widget")
    assert root_widget.get("class") == "qMRMLWidget" and root_widget.get("name") == "ParaspinalFat"
    widgets = _ui_widgets(ui_root)
    sections = [_property_value(w, "text") for w in widgets.values() if w.get("class") == "ctkCollapsibleButton"]
    assert sections == ["Inputs", "Options", "Outputs", "Results"]

    selectors = sorted(name for name, w in widgets.items() if w.get("class") == "qMRMLNodeComboBox")
    assert len(selectors) == len(NODE_FIELDS)
    connected = set()
    for connection in ui_root.iter("connection"):
        if connection.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)":
            assert connection.findtext("sender") == "ParaspinalFat"
            assert connection.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
            connected.add(connection.findtext("receiver"))
    assert connected == set(selectors), f"selectors without the scene: {set(selectors) - connected}"

    # every custom (non-Qt) class used is declared with its header, as Qt Designer writes it
    declared = {c.findtext("class"): c.findtext("header") for c in ui_root.iter("customwidget")}
    for widget in widgets.values():
        cls = widget.get("class")
        if not cls.startswith("Q"):
            assert declared.get(cls) == f"{cls}.h", f"custom widget class {cls} is not declared"


def test_ui_selectors_have_node_types_and_parameter_names(ui_root, fields):
    for name, widget in _ui_widgets(ui_root).items():
        if widget.get("class") != "qMRMLNodeComboBox":
            continue
        parameter = _property_value(widget, "SlicerParameterName")
        assert parameter in fields, f"selector {name} is bound to {parameter!r}, not a parameter-node field"
        assert _property_value(widget, "nodeTypes") == fields[parameter].node_classes, (
            f"selector {name}: nodeTypes differ from the field {parameter}'s type")
        assert _property_value(widget, "noneEnabled") is True, (
            f"selector {name}: the parameter node starts with no node selected (noneEnabled must be true)")


# --- parameter node --------------------------------------------------------------------


def test_parameter_node_fields_are_the_contracts(fields):
    """Exactly the contract's fields, types, choices and defaults."""
    assert list(fields) == list(CONTRACT_FIELDS), "fields differ from the contract (names or order)"
    for name, (kind, value, choices) in CONTRACT_FIELDS.items():
        field = fields[name]
        if kind == "node":
            assert field.node_classes == [value], f"{name}: node type {field.node_classes}, contract {value}"
            assert not field.has_default, f"{name}: a node field has no default (None)"
        else:
            assert field.base == kind, f"{name}: type {field.base}, contract {kind}"
            assert field.default == value and type(field.default) is type(value), (
                f"{name}: default {field.default!r}, contract {value!r}")
            assert field.choices == choices, f"{name}: choices {field.choices}, contract {choices}"


def test_every_binding_is_a_field_with_a_matching_widget(ui_root, fields):
    """Each SlicerParameterName names a field; the widget suits Slicer's connector for its type."""
    bound = _parameter_bindings(ui_root)
    for parameter, widget in bound.items():
        assert parameter in fields, f"{widget.get('name')}: SlicerParameterName {parameter!r} is not a field"
        field = fields[parameter]
        cls = widget.get("class")
        assert cls in CONNECTOR_CLASSES[field.kind], (
            f"{widget.get('name')} ({cls}) cannot represent {parameter} ({field.kind})")
        if field.kind == "choice":
            items = [item.findtext("property/string") for item in widget.findall("item")]
            assert tuple(items) == field.choices, f"{widget.get('name')}: items {items} != choices {field.choices}"
        elif field.kind in ("float", "int"):
            # a ctkSliderWidget / QSlider connector refuses an unbounded field
            assert field.range is not None, f"{parameter}: needs WithinRange for {cls}"
            assert (_property_value(widget, "minimum"), _property_value(widget, "maximum")) == field.range
            assert _property_value(widget, "value") == field.default
        elif field.kind == "str":
            assert (_property_value(widget, "text") or "") == field.default, f"{widget.get('name')}: text"


def test_every_field_is_bound_or_set_in_code(ui_root, module_tree, fields):
    bound = set(_parameter_bindings(ui_root))
    assigned = {target.attr for node in ast.walk(module_tree) if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Attribute)}
    for name in fields:
        assert name in bound or name in assigned, f"field {name} is neither bound in the .ui nor set in code"
    # the contract makes every field a widget in the panel
    assert bound == set(fields)


# --- the code against the .ui ----------------------------------------------------------


def test_every_ui_name_used_exists_with_the_right_class(ui_root, module_tree):
    widgets = _ui_widgets(ui_root)
    uses = _ui_attribute_uses(module_tree)
    assert uses, "the widget uses no self.ui.<name>"
    for name, nodes in uses.items():
        assert name in widgets, f"self.ui.{name} (line {nodes[0].lineno}) is not in {UI_FILE.name}"
        expected = _expected_class(name)
        assert expected is not None, f"self.ui.{name}: the name does not say its widget class"
        assert widgets[name].get("class") == expected, (
            f"self.ui.{name} is a {widgets[name].get('class')} in the .ui, its name promises {expected}")


def test_ui_signals_and_layouts_used_exist(ui_root, module_tree):
    """connect("signal") strings are signals of the widget; .layout() is called on a widget with one."""
    widgets = _ui_widgets(ui_root)
    for node in ast.walk(module_tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        if not (isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Attribute)
                and owner.value.attr == "ui"):
            continue
        cls = widgets[owner.attr].get("class")
        if node.func.attr == "connect":
            signal = ast.literal_eval(node.args[0])
            assert signal in WIDGET_SIGNALS.get(cls, set()), f"self.ui.{owner.attr}: {cls} has no signal {signal}"
        if node.func.attr == "layout":
            assert widgets[owner.attr].find("layout") is not None, f"self.ui.{owner.attr} has no layout in the .ui"


def test_ui_file_loaded_is_this_one(module_tree):
    paths = [ast.literal_eval(node.args[0]) for node in ast.walk(module_tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "resourcePath"]
    assert paths == ["UI/ParaspinalFat.ui"]
    assert (MODULE_DIR / "Resources" / paths[0]).resolve() == UI_FILE.resolve()
    loads = [node for node in ast.walk(module_tree) if isinstance(node, ast.Attribute)
             and node.attr in ("loadUI", "childWidgetVariables")]
    assert {n.attr for n in loads} == {"loadUI", "childWidgetVariables"}


# --- the Logic call --------------------------------------------------------------------


def test_process_gets_every_node_field_under_the_contracts_name(module_tree):
    calls = _process_calls(module_tree)
    assert len(calls) == 1, "the widget should call logic.process() in one place"
    call = calls[0]
    for where, field in PROCESS_ARGUMENTS.items():
        if isinstance(where, int):
            assert len(call.args) > where, f"process() lacks positional argument {where} ({field})"
            expression = call.args[where]
        else:
            matches = [k.value for k in call.keywords if k.arg == where]
            assert matches, f"process() lacks {where}= ({field})"
            expression = matches[0]
        assert field in _attributes_in(expression), f"process(): {where} does not pass the field {field}"
    assert set(PROCESS_ARGUMENTS.values()) == set(NODE_FIELDS)
    keyword_names = {k.arg for k in call.keywords}
    assert "progress" in keyword_names
    double_star = [k.value for k in call.keywords if k.arg is None]
    assert len(double_star) == 1, "the options are passed as **optionsFromParameters(...)"
    options_call = double_star[0]
    assert isinstance(options_call, ast.Call) and isinstance(options_call.func, ast.Attribute)
    assert options_call.func.attr == "optionsFromParameters"
    assert ast.unparse(options_call.func.value) == "ParaspinalFatLogic"
    # its argument is parameterValues(p), which reads every name of PARAMETER_OPTIONS
    assert ast.unparse(options_call.args[0]).startswith("parameterValues(")
    helper = next(n for n in module_tree.body if isinstance(n, ast.FunctionDef) and n.name == "parameterValues")
    assert "PARAMETER_OPTIONS" in _attributes_in(helper)


def test_option_fields_are_the_logics_parameter_options(logic_tree):
    logic = _class_def(logic_tree, "ParaspinalFatLogic")
    values = [node.value for node in logic.body + logic_tree.body
              if _assigned_names(node) == ["PARAMETER_OPTIONS"] and node.value is not None]
    assert values, "ParaspinalFatLogic.PARAMETER_OPTIONS is not assigned in the Logic file"
    options = _resolve(values[0], _module_constants(logic_tree))
    assert isinstance(options, (tuple, list))
    missing = [name for name in OPTION_FIELDS if name not in options]
    assert not missing, f"fields not understood by optionsFromParameters: {missing}"
    extra = [name for name in options if name not in OPTION_FIELDS]
    assert not extra, f"PARAMETER_OPTIONS names that are not parameter-node fields: {extra}"


def test_logic_methods_the_panel_calls_exist(module_tree, logic_tree):
    """Every ``self.logic.X`` / ``logic.X`` / ``ParaspinalFatLogic.X`` used is defined by the Logic."""
    logic = _class_def(logic_tree, "ParaspinalFatLogic")
    defined = {n.name for n in logic.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    defined |= {name for n in logic.body for name in _assigned_names(n)}
    init = next((n for n in logic.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:  # instance attributes set in __init__ (self.X = ...)
        defined |= {t.attr for n in ast.walk(init) if isinstance(n, ast.Assign) for t in n.targets
                    if isinstance(t, ast.Attribute) and ast.unparse(t.value) == "self"}
    used = set()
    for node in ast.walk(module_tree):
        if isinstance(node, ast.Attribute):
            owner = ast.unparse(node.value)
            if owner in ("self.logic", "logic", "ParaspinalFatLogic"):
                used.add(node.attr)
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "getattr" and len(node.args) >= 2 \
                and ast.unparse(node.args[0]) in ("self.logic", "logic"):
            used.add(ast.literal_eval(node.args[1]))
    assert {"process", "levelViews", "createSampleCase", "missingPackages", "optionsFromParameters",
            "PARAMETER_OPTIONS"} <= used
    assert used <= defined, f"called but not defined by ParaspinalFatLogic: {sorted(used - defined)}"
    process = next(n for n in logic.body if isinstance(n, ast.FunctionDef) and n.name == "process")
    names = [a.arg for a in process.args.args + process.args.kwonlyargs]
    for keyword in [k for k in PROCESS_ARGUMENTS if isinstance(k, str)] + ["progress"]:
        assert keyword in names, f"ParaspinalFatLogic.process has no argument {keyword}"
    assert process.args.kwarg is not None, "ParaspinalFatLogic.process must take **options"


# --- Python 3.9, imports, nothing executed at import -----------------------------------


def test_module_compiles():
    compile(MODULE_FILE.read_text(encoding="utf-8"), str(MODULE_FILE), "exec")


def test_module_passes_vermin_for_python_3_9():
    if not VERMIN.is_file():
        pytest.skip(f"vermin is not installed at {VERMIN} (Testing/run_tests.sh installs it)")
    completed = subprocess.run(
        [str(VERMIN), "-q", "-t=3.9-", "--eval-annotations", "--feature", "union-types", "--violations",
         "--no-tips", str(MODULE_FILE)],
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, f"vermin: needs a Python newer than 3.9:\n{completed.stdout}{completed.stderr}"


def _is_standard_library(root: str) -> bool:
    names = getattr(sys, "stdlib_module_names", None)  # Python >= 3.10
    if names is not None:
        return root in names
    if root in sys.builtin_module_names:
        return True
    spec = importlib.util.find_spec(root)
    if spec is None or spec.origin is None:
        return False
    if spec.origin in ("built-in", "frozen"):
        return True
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    origin = Path(spec.origin).resolve()
    return stdlib in origin.parents and "site-packages" not in origin.parts


def _file_scope_imports(tree: ast.Module) -> List[ast.AST]:
    """Import statements executed at import time (module body, also inside top-level if/try)."""
    found = []
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            pending.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.ExceptHandler):
            pending.extend(node.body)
    return found


def test_only_bundled_packages_imported_at_file_scope(module_tree):
    roots = set()
    for node in _file_scope_imports(module_tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        else:
            assert node.level == 0, "relative import in a Slicer module file"
            roots.add(node.module.split(".")[0])
    not_bundled = sorted(r for r in roots if r not in BUNDLED_ROOTS and not _is_standard_library(r))
    assert not not_bundled, f"imported at file scope but not bundled with Slicer: {not_bundled}"
    for package in ("pandas", "matplotlib", "scipy", "SimpleITK", "ParaspinalFatLib"):
        assert package not in roots
    # the library is imported lazily, where it is used
    lazy = {node.module.split(".")[0] for node in ast.walk(module_tree)
            if isinstance(node, ast.ImportFrom) and node.module}
    assert "ParaspinalFatLib" in lazy


def _is_constant_expression(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except ValueError:
        return False


def test_nothing_executed_at_import(module_tree):
    """Module level holds only the docstring, imports, defs, classes and literal constants."""
    for index, node in enumerate(module_tree.body):
        where = f"{MODULE_FILE.name}:{node.lineno}"
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef)):
            continue
        if isinstance(node, ast.ClassDef):
            decorators = [ast.unparse(d) for d in node.decorator_list]
            assert decorators in ([], ["parameterNodeWrapper"]), f"{where}: class decorators {decorators}"
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            assert _is_constant_expression(node.value), f"{where}: module-level value is computed: " \
                                                         f"{ast.unparse(node)}"
            continue
        raise AssertionError(f"{where}: statement executed at import: {ast.unparse(node)[:80]}")
    for node in ast.walk(module_tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                assert _is_constant_expression(default), f"{node.name}: default argument is computed"


# --- module description and self-test --------------------------------------------------


def _string_constants(node: ast.AST) -> List[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_module_description(module_tree):
    module = _class_def(module_tree, "ParaspinalFat")
    assert [ast.unparse(b) for b in module.bases] == ["ScriptedLoadableModule"]
    assignments = {ast.unparse(t): n.value for n in ast.walk(module) if isinstance(n, ast.Assign) for t in n.targets}
    assert _string_constants(assignments["self.parent.title"]) == ["Paraspinal Fat"]
    assert "Quantification" in _string_constants(assignments["self.parent.categories"])
    assert _string_constants(assignments["self.parent.contributors"])
    help_text = " ".join(_string_constants(assignments["self.parent.helpText"]))
    for word in ("PDFF", "Dixon", "CT", "T1", "cross-sectional area", "L4/5", "Create sample case"):
        assert word in help_text, f"helpText does not mention {word}"
    acknowledgement = " ".join(_string_constants(assignments["self.parent.acknowledgementText"]))
    for citation in ("Goutallier", "Kjaer", "Guo J", "Wang H", "IDEAL-IQ"):
        assert citation in acknowledgement, f"acknowledgementText does not cite {citation}"


def test_self_test_runs_every_test_method(module_tree):
    test = _class_def(module_tree, "ParaspinalFatTest")
    assert [ast.unparse(b) for b in test.bases] == ["ScriptedLoadableModuleTest"]
    methods = {n.name: n for n in test.body if isinstance(n, ast.FunctionDef)}
    tests = sorted(name for name in methods if name.startswith("test_"))
    assert len(tests) >= 3
    called = {n.func.attr for n in ast.walk(methods["runTest"])
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert set(tests) <= called, f"runTest does not run {set(tests) - called}"
    assert "slicer.mrmlScene.Clear" in {ast.unparse(n.func) for n in ast.walk(methods["setUp"])
                                        if isinstance(n, ast.Call)}
    calls = {ast.unparse(n.func) for n in ast.walk(test) if isinstance(n, ast.Call)}
    for needed in ("logic.createSampleCase", "logic.process", "logic.levelViews", "jumpSliceViewsToLevel"):
        assert needed in calls, f"ParaspinalFatTest never calls {needed}"
    # the oblique run uses disc planes
    assert "disc" in _string_constants(methods["test_ParaspinalFat_ObliqueDiscPlane"])


# --- levelSliceToRAS, run with numpy ---------------------------------------------------


@pytest.fixture(scope="module")
def level_slice_to_ras(module_tree):
    """The function's own source, compiled alone with numpy (it uses nothing else)."""
    function = next(n for n in module_tree.body if isinstance(n, ast.FunctionDef) and n.name == "levelSliceToRAS")
    used = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)}
    local = {a.arg for a in function.args.args} | {t.id for n in ast.walk(function)
                                                   if isinstance(n, (ast.Assign, ast.For))
                                                   for t in ast.walk(n.targets[0] if isinstance(n, ast.Assign)
                                                                     else n.target)
                                                   if isinstance(t, ast.Name)}
    free = used - local - set(dir(builtins))
    assert free <= {"np"}, f"levelSliceToRAS uses more than numpy: {free}"
    namespace = {"np": np}
    exec(compile(ast.Module(body=[function], type_ignores=[]), str(MODULE_FILE), "exec"), namespace)
    return namespace["levelSliceToRAS"]


def test_level_view_of_an_axial_plane_is_slicers_axial_view(level_slice_to_ras):
    matrix = level_slice_to_ras([10.0, -20.0, 35.5], [0.0, 0.0, 2.0])
    # vtkMRMLSliceNode axial orientation: screen right = patient left (-R), up = anterior, normal = superior
    axial = np.array([[-1.0, 0, 0, 10.0], [0, 1.0, 0, -20.0], [0, 0, 1.0, 35.5], [0, 0, 0, 1.0]])
    np.testing.assert_allclose(matrix, axial, atol=1e-12)
    # a normal pointing inferiorly shows the same view (the plane has no side)
    np.testing.assert_allclose(level_slice_to_ras([10.0, -20.0, 35.5], [0.0, 0.0, -1.0]), axial, atol=1e-12)


@pytest.mark.parametrize("tilt_deg", [8.0, -15.0, 36.0])
def test_level_view_of_a_disc_plane_is_oblique(level_slice_to_ras, tilt_deg):
    t = np.radians(tilt_deg)
    normal = np.array([0.0, np.sin(t), np.cos(t)])  # a disc tilted about the left-right axis
    center = np.array([1.5, 40.0, -120.0])
    matrix = level_slice_to_ras(center, 3.0 * normal)
    rotation = matrix[:3, :3]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)  # orthonormal
    assert np.linalg.det(rotation) == pytest.approx(-1.0)  # radiological, as Slicer's axial
    np.testing.assert_allclose(matrix[:3, 2], normal, atol=1e-12)
    np.testing.assert_allclose(matrix[:3, 0], [-1.0, 0.0, 0.0], atol=1e-12)  # tilt keeps left-right
    np.testing.assert_allclose(matrix[:3, 1], [0.0, np.cos(t), -np.sin(t)], atol=1e-12)  # "up" leans with it
    np.testing.assert_allclose(matrix[:3, 3], center)
    np.testing.assert_allclose(matrix[3], [0, 0, 0, 1])


def test_level_view_of_a_coronal_normal_and_bad_input(level_slice_to_ras):
    matrix = level_slice_to_ras([0, 0, 0], [0.0, 1.0, 0.0])  # "up" falls back to superior
    np.testing.assert_allclose(matrix[:3, 2], [0, 1, 0], atol=1e-12)
    assert np.linalg.det(matrix[:3, :3]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="non-zero normal"):
        level_slice_to_ras([0, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="finite centre"):
        level_slice_to_ras([np.nan, 0, 0], [0, 0, 1])
