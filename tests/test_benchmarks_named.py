"""A figure in a comment names the benchmark that produces it: that script (and its case) exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"benchmarks/(\w+\.py)(?:\s+--case\s+([\w-]+))?")


def named_benchmarks() -> list[tuple[str, str, str | None]]:
    """(file naming it, script, case or None) for every ``benchmarks/X.py [--case C]`` in i2sb/."""
    found = []
    for path in sorted((ROOT / "i2sb").rglob("*.py")):
        text = " ".join(path.read_text().split())  # a name may be wrapped across lines
        found += [(path.name, m[1], m[2]) for m in NAMED.finditer(text)]
    return found


def test_every_benchmark_a_comment_names_exists_with_its_case():
    named = named_benchmarks()
    assert ("layers.py", "bench_layers.py", "narrow-groupnorm") in named
    for source, script, case in named:
        path = ROOT / "benchmarks" / script
        assert path.is_file(), f"{source} names benchmarks/{script}, which does not exist"
        if case:
            assert f'"{case}":' in path.read_text(), f"{source}: {script} has no case {case!r}"
