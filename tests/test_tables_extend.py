"""Issue 23's "done when": each metric name and each sampler option is spelled in at most 2
modules of i2sb/ (its table or implementation, and at most one more); every other layer reads
the tables. A name written out again in a third module is a fact with two homes, which goes
stale the day a row changes.

What counts as spelling a name N in a module (found in its syntax tree, so comments never count):

- a string constant that is a key, flag or column rather than a sentence: it holds no whitespace
  and, with "-" read as "_" and split at every other non-word character, one of its pieces is N
  or N's degraded twin (``"psnr"``, ``"metrics.psnr"``, ``"psnr_degraded"``, ``"--step-size"``);
- a name that other code addresses: an attribute (``cfg.eta``), a keyword argument
  (``f(eta=0)``), a parameter (``def update(eta)``) or a field of a class body (``fid: float``).

What does not count: docstrings and sentences (a message naming several metrics by hand is
caught by ``test_no_message_lists_the_metrics_by_hand`` instead), plain local variables,
imports and function names (a local ``order`` of a sort, a progress bar's ``eta``, the
``psnr()`` of training validation are bindings of one module, not a second home of the fact).
Names are matched case-sensitively: the tables key metrics and options in lower case, and
"PSNR" in a message is prose.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from i2sb.metric_table import METRICS, degraded_name
from i2sb.samplers import SAMPLERS

PACKAGE = Path(__file__).resolve().parents[1] / "i2sb"
MAX_MODULES = 2
METRIC_NAMES = [spec.name for spec in METRICS]
OPTION_NAMES = sorted({field.name for spec in SAMPLERS.values() for field in spec.fields})


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of ``tree`` (module, classes, functions)."""
    owners = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, owners) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    found.add(id(first.value))
    return found


def _key_pieces(text: str) -> list[str]:
    """The pieces of a key-like string ("--step-size" -> step_size); none of a sentence."""
    if not text or any(char.isspace() for char in text):
        return []
    return [piece.strip("_") for piece in re.split(r"\W+", text.replace("-", "_"))]


def spelled_names(source: str) -> set[str]:
    """Every name ``source`` spells in the sense of this module's docstring (twins included)."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                names.update(_key_pieces(node.value))
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ClassDef):
            names.update(_class_fields(node))
    return names


def _class_fields(node: ast.ClassDef) -> set[str]:
    fields = set()
    for statement in node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            fields.add(statement.target.id)
        elif isinstance(statement, ast.Assign):
            fields.update(t.id for t in statement.targets if isinstance(t, ast.Name))
    return fields


def modules_spelling(names: list[str], twins: bool) -> dict[str, list[str]]:
    """name -> the modules of i2sb/ (relative paths) that spell it."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        spelled = spelled_names(path.read_text())
        for name in names:
            if name in spelled or (twins and degraded_name(name) in spelled):
                found[name].append(str(path.relative_to(PACKAGE.parent)))
    return found


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_each_metric_name_is_spelled_in_at_most_two_modules(name):
    modules = modules_spelling([name], twins=True)[name]
    assert "i2sb/metric_table.py" in modules
    assert len(modules) <= MAX_MODULES, f"metric {name!r} is spelled in {modules}"


@pytest.mark.parametrize("name", OPTION_NAMES)
def test_each_sampler_option_is_spelled_in_at_most_two_modules(name):
    modules = modules_spelling([name], twins=False)[name]
    assert any(m.startswith("i2sb/samplers/") for m in modules)
    assert len(modules) <= MAX_MODULES, f"sampler option {name!r} is spelled in {modules}"


def test_the_scanner_counts_keys_fields_and_keywords_not_prose_or_locals():
    """The rule above, on a made-up module: what counts is found, the rest is not."""
    counted = '''
"""psnr in the module docstring"""
class Settings:
    psnr: bool = True
    eta = 0.0
def f(step_size=1.0):
    """eta in a docstring"""
    order = sorted([3, 1])  # a local
    g(cfg.lpips, fid=1, key="metrics.`ssim`", flag="--step-size", twin="consistency_degraded")
    return "a sentence naming ca and order"
'''
    spelled = spelled_names(counted)
    assert {"psnr", "eta", "step_size", "lpips", "fid", "ssim", "consistency_degraded"} <= spelled
    assert not {"ca", "order"} & spelled


def _metric_words(text: str) -> list[str]:
    """The metric names a sentence mentions as words (any case; "data-consistency" is not one)."""
    return [n for n in METRIC_NAMES if re.search(rf"(?<![-\w]){n}(?![-\w])", text, re.I)]


def test_no_message_lists_the_metrics_by_hand():
    """A help text or message naming two or more metrics outside the table is a hand-kept list
    that a new metric makes false; such text is built from i2sb/metric_table.py."""
    hand_lists = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "metric_table.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                named = _metric_words(node.value) if id(node) not in docstrings else []
                if len(named) >= 2:
                    hand_lists.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {named}")
    assert not hand_lists
