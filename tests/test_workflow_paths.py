"""The workflow owns every path, and spells each once: a rule's output is the one place its pattern
is written; every other rule, input function and script reads it from ``rules.X.output`` or from
the record a job wrote. A pattern written twice drifts (rename one, and the other silently names a
file that is never made)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk")) + [REPO / "Snakefile"]
# A path under the run folder, as the workflow writes one: f"{RUN}/...".
RUN_PATH = re.compile(r'f"\{RUN\}/([^"]*)"')
# A wildcard ({{task}}), a value ({split}, {wildcards.task}, {t}): any one path piece.
PLACEHOLDER = re.compile(r"\{\{?[^{}]*\}?\}")


def run_paths(files=WORKFLOW_FILES) -> list[tuple[str, str]]:
    """(where, pattern) for every RUN path spelled in ``files``, its placeholders as "{}"."""
    found = []
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), 1):
            for match in RUN_PATH.finditer(line):
                found.append((f"{file.name}:{number}", PLACEHOLDER.sub("{}", match[1])))
    return found


def spelled_twice(paths: list[tuple[str, str]]) -> list[str]:
    """Each pattern written more than once, or written again as its folder (a prefix of whole parts)."""
    problems = []
    for i, (where, pattern) in enumerate(paths):
        for other_where, other in paths[i + 1 :]:
            a, b = pattern.split("/"), other.split("/")
            shorter, longer = sorted((a, b), key=len)
            if longer[: len(shorter)] == shorter:
                problems.append(f"{where} {pattern!r} and {other_where} {other!r}")
    return problems


def test_each_output_pattern_is_spelled_in_one_place():
    paths = run_paths()
    assert len(paths) > 20, paths  # every rule's output and log is found
    assert spelled_twice(paths) == []


def test_the_run_folder_is_only_joined_in_those_patterns():
    """RUN + "/x", os.path.join(RUN, ...) or Path(RUN) / ... would hide a pattern from the check above."""
    other_uses = [
        f"{file.name}:{number}: {line.strip()}"
        for file in WORKFLOW_FILES
        for number, line in enumerate(file.read_text().splitlines(), 1)
        if re.search(r"\bRUN\b", RUN_PATH.sub("", line)) and not line.lstrip().startswith("#")
        and "RUN/" not in line  # a comment or docstring naming the layout (RUN/config/<slice>...)
    ]  # fmt: skip
    assert [use.split(": ", 1)[1] for use in other_uses] == [
        "RUN = str(Path(CFG.results_dir) / CFG.benchmark)"
    ], other_uses


def test_the_check_finds_a_pattern_and_its_folder_spelled_again(tmp_path):
    rules = tmp_path / "x.smk"
    rules.write_text(
        'rule sample:\n    output:\n        part=f"{RUN}/samples/{{task}}/part_{{part}}.npz",\n'
        'def part_files(wc):\n    folder = f"{RUN}/samples/{wc.task}"\n'
        'def index(split):\n    return f"{RUN}/data/{split}.json"\n'
        'rule convert:\n    output:\n        f"{RUN}/data/{{split}}.json",\n'
        'rule log:\n    log:\n        f"{RUN}/logs/samples.log",\n'
    )
    assert spelled_twice(run_paths([rules])) == [
        "x.smk:3 'samples/{}/part_{}.npz' and x.smk:5 'samples/{}'",
        "x.smk:7 'data/{}.json' and x.smk:10 'data/{}.json'",
    ]
