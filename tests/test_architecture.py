"""Limits that keep the code readable, checked on every run (no imports of the package).

- no module in src over 400 lines, no function over 60;
- imports run one way: leaves -> slide readers / models -> engine -> results -> settings
  -> slide job -> api -> cluster / demo -> CLI / napari; nothing below the napari layer
  imports Qt or napari;
- the manifest's reader patterns are the slide readers' suffix table.
"""

import ast
from pathlib import Path

import pytest
import yaml

PACKAGE = Path(__file__).parents[1] / "src" / "napari_shisrcnet"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: Top-level module or sub-package -> layer; a module may import only lower layers (and
#: its own sub-package).
LAYERS = {
    **dict.fromkeys(("_version", "errors", "geometry", "host", "classes", "figures", "samples"), 0),
    **dict.fromkeys(("io", "model", "data"), 1),
    "engine": 2,
    **dict.fromkeys(("results", "train"), 3),
    "settings": 4,
    "slide_job": 5,
    "api": 6,
    **dict.fromkeys(("cluster", "demo", "weights"), 7),
    **dict.fromkeys(("predict_cli", "napari"), 8),
    **dict.fromkeys(("cli", "__init__"), 9),
    "__main__": 10,
}
GUI_MODULES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt")


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _unit(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path):
    """(our top-level unit, or None for third-party, absolute module name) per import."""
    package = path.relative_to(PACKAGE).parent.parts
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _ours(alias.name), alias.name
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = target or [alias.name for alias in node.names]
            yield names[0], ".".join(names)
        elif isinstance(node, ast.ImportFrom):
            yield _ours(node.module), node.module


def _ours(module: str):
    parts = module.split(".")
    if parts[0] != "napari_shisrcnet":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_are_short(path):
    lines = path.read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{lines} lines"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{node.name}() is {length} lines"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    unit = _unit(path)
    assert unit in LAYERS, f"{unit} has no layer in this test"
    for target, module in _imports(path):
        if target is None:
            if LAYERS[unit] < LAYERS["napari"]:
                assert module.split(".")[0] not in GUI_MODULES, f"the core imports {module}"
            continue
        if target != unit:
            assert LAYERS[target] < LAYERS[unit], f"{unit} imports {module} (layer above)"


def test_slide_readers_import_nothing_from_the_engine_or_results():
    for path in (PACKAGE / "io").rglob("*.py"):
        targets = {target for target, _ in _imports(path)}
        assert not targets & {"engine", "results", "settings", "slide_job", "api"}, path


def test_the_manifest_reads_exactly_what_the_slide_readers_open():
    from napari_shisrcnet.io.slides import slide_suffixes
    from napari_shisrcnet.napari.reader import LABEL_IMAGE_PATTERN

    manifest = yaml.safe_load((PACKAGE / "napari.yaml").read_text())
    [reader] = manifest["contributions"]["readers"]
    expected = [f"*{s}" for s in slide_suffixes()] + [LABEL_IMAGE_PATTERN]
    assert sorted(reader["filename_patterns"]) == sorted(expected)
    # The repository's top-level manifest is the packaged one.
    assert (PACKAGE.parents[1] / "napari.yaml").read_text() == (PACKAGE / "napari.yaml").read_text()
