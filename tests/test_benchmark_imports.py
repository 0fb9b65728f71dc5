"""The benchmark scripts import the project inside their functions (so `--help` stays fast); no test runs most of
them end to end, so a name moved or renamed in the project would break them silently. Every project name they
import must exist where they import it from."""

import ast
import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
PROJECT_PACKAGES = ("tracegen_cli", "forge", "model", "robot", "store")


def _project_imports(script: Path) -> list[tuple[str, str]]:
    """(module, name) for every `from <project or sibling benchmark> import name` in the script."""
    siblings = {path.stem for path in BENCHMARKS.glob("*.py")}
    found = []
    for node in ast.walk(ast.parse(script.read_text(), filename=str(script))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in PROJECT_PACKAGES or top in siblings:
                found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.split(".")[0] in PROJECT_PACKAGES]
    return found


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("*.py")), ids=lambda path: path.name)
def test_every_project_name_a_benchmark_imports_exists(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import each other (fit_check) as siblings
    imports = _project_imports(script)
    missing = []
    for module_name, name in imports:
        module = importlib.import_module(module_name)
        if name and not hasattr(module, name) and f"{module_name}.{name}" not in sys.modules:
            try:
                importlib.import_module(f"{module_name}.{name}")  # `from package import submodule`
            except ModuleNotFoundError:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"{script.name} imports names that do not exist: {missing}"


def test_the_check_sees_function_level_imports():
    imports = _project_imports(BENCHMARKS / "sim_success.py")
    assert ("tracegen_cli.demo_workflow", "stage_keys") in imports and len(imports) > 10
