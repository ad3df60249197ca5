"""The dependency direction of STYLE.md: lower layers never import upper ones."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "i2sb"

# module (path relative to i2sb/, without .py) -> i2sb modules it must not import
FORBIDDEN = {
    "bridge": {
        "network",
        "corruption",
        "data",
        "train",
        "sample",
        "metrics",
        "tracking",
        "tables",
        "cli",
        "config",
    },
    "tasks": {"*"},
    "config": {
        "network",
        "corruption",
        "data",
        "train",
        "sample",
        "metrics",
        "tracking",
        "tables",
        "cli",
        "bridge",
    },
}
NO_HEAVY = {"tasks", "config"}  # read by the Snakefile: must not import torch or mlflow


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_lower_layers_do_not_import_upper_ones():
    for module, forbidden in FORBIDDEN.items():
        imported = imports_of(PACKAGE / f"{module}.py")
        inner = {name.split(".")[1] for name in imported if name.startswith("i2sb.")}
        bad = inner if "*" in forbidden else inner & forbidden
        assert not bad, f"i2sb/{module}.py imports {sorted(bad)}"


def test_task_table_and_config_stay_light():
    for module in NO_HEAVY:
        roots = {name.split(".")[0] for name in imports_of(PACKAGE / f"{module}.py")}
        assert not roots & {"torch", "mlflow", "torchvision", "numpy"}, module


def test_no_module_is_a_god_module():
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 500, f"{path} has {lines} lines; split it by concept"
