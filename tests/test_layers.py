"""The package's layers point one way: building (ganmotion.export) imports running
(ganmotion.runtime), never the reverse, and nothing in the library imports the scripts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ganmotion"
RUNTIME_MODULES = sorted((PACKAGE / "runtime").rglob("*.py"))
# The top-level script folders: no __init__.py, importable only by accident (from the repo root).
SCRIPT_FOLDERS = ("export", "infer", "train", "benchmarks")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`, at any depth (inside functions
    too); `from a import b` gives both a and a.b, since b may be a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def test_the_runtime_has_modules_to_check():
    names = {path.name for path in RUNTIME_MODULES}
    assert {"__init__.py", "backends.py", "tensorrt.py", "pipeline.py"} <= names


def imports_of_building(path: Path, root: Path = ROOT) -> list[str]:
    """'file:line: imports NAME' for each import of ganmotion.export in `path`."""
    return [
        f"{path.relative_to(root)}:{line}: imports {name}"
        for line, name in imported_modules(path, root)
        if name == "ganmotion.export" or name.startswith("ganmotion.export.")
    ]


@pytest.mark.parametrize("path", RUNTIME_MODULES, ids=lambda p: p.name)
def test_running_never_imports_building(path):
    assert imports_of_building(path) == []


def test_the_library_never_imports_the_script_folders():
    offending = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, name in imported_modules(path)
        if name.split(".")[0] in SCRIPT_FOLDERS
    ]
    assert offending == []


def test_the_import_check_sees_every_kind_of_import(tmp_path):
    folder = tmp_path / "ganmotion" / "runtime"
    folder.mkdir(parents=True)
    module = folder / "probe.py"
    module.write_text(
        "import ganmotion.export.onnx\n"
        "from ganmotion import export\n"
        "from .. import export as building\n"
        "def later():\n"
        "    from ganmotion.export.tensorrt import build_engine\n"
        "    importlib.import_module('ganmotion.export')\n"
    )
    lines = {int(found.split(":")[1]) for found in imports_of_building(module, tmp_path)}
    assert lines == {1, 2, 3, 5, 6}


def test_importing_the_runtime_loads_neither_tensorrt_nor_the_export_package():
    code = (
        "import sys, ganmotion.runtime\n"
        "print(sorted(m for m in sys.modules if m == 'tensorrt' or m.startswith('tensorrt.')"
        " or m == 'ganmotion.export' or m.startswith('ganmotion.export.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
