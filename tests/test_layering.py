"""The dependency direction of STYLE.md: lower layers never import upper ones."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "i2sb"

# Rank of each top-level module or package of i2sb; a module may import only ranks <= its own
# (runners may read each other's file formats, e.g. metrics reads sample's part files).
LAYER = {
    "tasks": 0, "metric_table": 0, "preset_table": 0, "paper": 0, "atomic": 0, "identity": 0, "config": 1, "planning": 1,
    "downloads": 1, "cluster": 1, "slurm_profile": 1, "slurm_status": 0, "joblog": 0,
    "bridge": 1, "distributed": 1, "samplers": 1,
    "network": 2, "corruption": 2, "data": 2,
    "train": 3, "sample": 3, "metrics": 3,
    "tracking": 4, "tables": 4,
    "cli": 5, "__main__": 5, "__init__": 0,
}  # fmt: skip
LIGHT = {
    "tasks",
    "samplers/__init__",
    "samplers/registry",
    "samplers/entry",
    "samplers/options",
    "metric_table",
    "preset_table",
    "config/__init__",
    "config/model",
    "config/load",
    "config/choices",
    "paper",
    "cluster",
    "atomic",
    "identity",
    "downloads",
    "planning",
    "joblog",
    "slurm_status",
    "data/layout",
    "data/sources",
}  # the Snakefile (joblog: every rule script) imports these


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (lazy and TYPE_CHECKING imports count too).

    ``from i2sb import samplers`` counts as ``i2sb.samplers``; relative imports are refused.
    """
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (use an absolute one)"
            names.add(node.module)
            if node.module == "i2sb":  # a submodule by name (not a name such as __version__)
                names |= {f"i2sb.{a.name}" for a in node.names if _is_module(PACKAGE / a.name)}
    return names


def _is_module(path: Path) -> bool:
    return path.is_dir() or path.with_suffix(".py").is_file()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """i2sb module -> the i2sb modules it imports (a name inside a module counts as that module)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}

    def owner(name: str) -> str:
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    return {
        name: {owner(n) for n in imports_of(path) if n.startswith("i2sb.")} - {name, "i2sb"}
        for name, path in modules.items()
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for target in graph[module]:
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in order:
            visit(module)
    return cycles


def top_name(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_module_has_a_layer():
    assert {top_name(p) for p in PACKAGE.rglob("*.py")} <= set(LAYER)


def test_lower_layers_do_not_import_upper_ones():
    for path in PACKAGE.rglob("*.py"):
        own = LAYER[top_name(path)]
        for name in imports_of(path):
            if name.startswith("i2sb."):
                target = name.split(".")[1]
                assert LAYER[target] <= own, (
                    f"{path.relative_to(PACKAGE)} imports {name} (a higher layer)"
                )


def test_bridge_knows_nothing_but_tensors():
    inner = {n for n in imports_of(PACKAGE / "bridge.py") if n.startswith("i2sb")}
    assert not inner


def test_task_table_and_config_stay_light():
    for module in LIGHT:
        roots = {name.split(".")[0] for name in imports_of(PACKAGE / f"{module}.py")}
        assert not roots & {"torch", "mlflow", "torchvision", "numpy"}, module


def test_the_cli_parses_and_calls():
    """A command module never imports torch, numpy or mlflow, even inside a handler: work that needs
    them is a library function the handler calls (so it is testable without argparse)."""
    for path in (PACKAGE / "cli").glob("*.py"):
        roots = {name.split(".")[0] for name in imports_of(path)}
        assert not roots & {"torch", "numpy", "mlflow", "torchvision"}, path.name


def test_planning_imports_neither_torch_nor_numpy():
    """What the Snakefile imports, the sampler table and its sampler files included, stays light
    at import (the updates import torch when called)."""
    import subprocess
    import sys

    code = (
        "import sys; import i2sb.config, i2sb.planning, i2sb.cluster, i2sb.samplers, i2sb.preset_table; "
        "from i2sb.samplers import SAMPLERS; "
        "heavy = {'torch', 'numpy', 'mlflow'} & set(sys.modules); assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


MAX_MODULE_LINES = 400  # STYLE.md: small modules (~400 lines)


def test_no_module_is_a_god_module():
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_MODULE_LINES, f"{path} has {lines} lines; split it by concept"


def test_no_import_cycle():
    assert import_cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


# The workflow's data folders in the results layout: RUN/photos (the demo) and RUN/data (LMDBs).
RESULTS_DATA_FOLDERS = ("photos", "data")


def _joins_a_results_data_folder(node: ast.AST) -> bool:
    """``x / "data"``, ``Path(x, "photos")``, ``os.path.join(x, "data")``, ``p.joinpath("data")``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        operands = [node.left, node.right]
    elif isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        operands = node.args if name in ("Path", "join", "joinpath") else []
    else:
        return False
    return any(isinstance(o, ast.Constant) and o.value in RESULTS_DATA_FOLDERS for o in operands)


def test_the_library_builds_no_data_path_of_the_results_layout():
    """The workflow owns every path (issue 23 §3): no module guesses RUN/data or RUN/photos;
    training, sampling and evaluation take the data folder they are given."""
    found = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if _joins_a_results_data_folder(node)
    ]
    assert not found, f"paths of the results layout built in the library: {found}"


def test_the_library_never_reads_where_the_results_live():
    """The results folder is the workflow's (common.smk's RUN): no i2sb module reads
    ``results_dir`` off a config, so none can build a path of the results layout from it."""
    found = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in ("results_dir", "run_dir")
    ]
    assert not found, f"the results folder read in the library: {found}"


def test_the_results_path_finder_sees_each_spelling():
    spellings = ('run / "data"', 'Path(run, "photos")', 'os.path.join(run, "data")',
                 'run.joinpath("photos")')  # fmt: skip
    for code in spellings:
        assert any(_joins_a_results_data_folder(n) for n in ast.walk(ast.parse(code))), code
    assert not any(_joins_a_results_data_folder(n) for n in ast.walk(ast.parse('cfg["data"]')))
