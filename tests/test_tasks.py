"""The task table (i2sb/tasks.py): every task has a family, and each row says what the spec says."""

import re
from pathlib import Path

import pytest

from i2sb import tasks
from i2sb.config import load_config
from i2sb.samplers import SamplerConfig, skipped_tasks
from i2sb.tasks import FAMILIES, TASKS, FamilySpec, TaskSpec, family_patterns, task_spec
from tests.test_help import subparser

ROOT = Path(__file__).resolve().parents[1]

# Spec §1 (beta_max, OT-ODE), §7 (evaluation set, FID reference), §5/§10 (forward operator A,
# hole mask) per task name prefix, written out here rather than read from the table.
SPEC = {
    "jpeg-": dict(beta_max=0.3, ot_ode=False, eval_set="10k", fid_reference="val",
                  operator=False, mask=False),
    "sr4x-": dict(beta_max=0.3, ot_ode=False, eval_set="full", fid_reference="adm_train",
                  operator=True, mask=False),
    "blur-": dict(beta_max=1.0, ot_ode=True, eval_set="10k", fid_reference="val",
                  operator=True, mask=False),
    "inpaint-": dict(beta_max=1.0, ot_ode=True, eval_set="10k", fid_reference="val",
                     operator=True, mask=True),
}  # fmt: skip


@pytest.mark.parametrize("name", [*TASKS, "jpeg-37", "paired"])
def test_every_task_has_a_family_and_the_spec_values(name):
    spec = task_spec(name)
    assert spec.family in FAMILIES and spec.family_spec is FAMILIES[spec.family]
    assert re.fullmatch(spec.family_spec.pattern.replace("*", ".+"), name)
    if name == "paired":
        expected = dict(beta_max=0.3, ot_ode=False, eval_set="full", fid_reference="val",
                        operator=False, mask=False)  # fmt: skip
    else:
        (expected,) = [values for prefix, values in SPEC.items() if name.startswith(prefix)]
    got = dict(beta_max=spec.beta_max, ot_ode=spec.ot_ode, eval_set=spec.eval_set,
               fid_reference=spec.fid_reference, operator=spec.has_forward_operator,
               mask=spec.has_mask)  # fmt: skip
    assert got == expected
    # The known-pixel reset erases a data-consistency step exactly where there is a hole mask
    # (tests/test_sample.py::test_cddb_against_ddpm_on_a_tiny_checkpoint shows it on inpaint).
    assert spec.family_spec.reset_erases_consistency == expected["mask"]
    assert (spec.hole_ratio is not None) == name.startswith("inpaint-freeform")


def test_a_task_of_an_unknown_family_is_refused():
    with pytest.raises(KeyError, match="task denoise-1: unknown family 'denoise'"):
        TaskSpec("denoise-1", "denoise")


def _listed(message: str, between: str) -> set[str]:
    (listing,) = re.findall(between, message)
    return set(listing.split(", "))


def test_messages_list_exactly_the_families_of_the_table(monkeypatch):
    """Add a family with a forward operator: every message listing families names it."""
    denoise = FamilySpec("denoise", "denoise-*", 0.3, False, "10k", "val", True, False, False)
    monkeypatch.setitem(FAMILIES, "denoise", denoise)
    with_operator = {f.pattern for f in FAMILIES.values() if f.forward_operator}
    consistent = {f.pattern for f in FAMILIES.values() if f.data_consistency_applies}
    assert with_operator == {"sr4x-*", "blur-*", "inpaint-*", "denoise-*"}
    assert consistent == {"sr4x-*", "blur-*", "denoise-*"}
    cddb = SamplerConfig("cddb")
    no_operator = cddb.problem(task_spec("jpeg-5"))
    assert _listed(no_operator, r"\(only (.*) do\)") == with_operator
    erased = cddb.skip_reason(task_spec("inpaint-center"))
    assert _listed(erased, r"differs only on (.*)\)") == consistent
    assert _listed(family_patterns("data_consistency_applies"), "^(.*)$") == consistent
    sample = subparser("sample")
    (flag,) = [a for a in sample._actions if "--sampler" in a.option_strings]
    assert _listed(flag.help, r"--step-size; (.*) only") == consistent
    assert _listed(sample.description, r"--step-size 1 \(([^)]*)\)") == consistent


def test_cddb_on_inpainting_is_refused_when_listed_and_skipped_with_one_line_otherwise():
    from i2sb.config import ConfigError, config_from_dict

    pattern = r"samplers\[1\]' in <dict>: sampler cddb on task inpaint-center: ddpm's images"
    with pytest.raises(ConfigError, match=pattern):
        config_from_dict({"tasks": ["sr4x-pool", "inpaint-center"],
                          "samplers": [{"name": "ddpm"},
                                       {"name": "cddb", "tasks": ["inpaint-center"]}]})  # fmt: skip
    cfg = config_from_dict({"tasks": ["sr4x-pool", "jpeg-10", "inpaint-center"],
                            "samplers": [{"name": "ddpm"}, {"name": "cddb"}]})  # fmt: skip
    assert [t for t in cfg.tasks if cfg.samplers[1].runs_on(t)] == ["sr4x-pool"]
    (line,) = skipped_tasks(cfg.samplers, cfg.tasks)
    assert line.startswith("samplers[1] (cddb-lam1) is not planned on jpeg-10: no differentiable")
    assert "; inpaint-center: ddpm's images exactly" in line and "\n" not in line
    with pytest.raises(ConfigError, match=r"samplers\[1\].*runs on none of the config's tasks"):
        config_from_dict({"tasks": ["inpaint-center"],
                          "samplers": [{"name": "ddpm"}, {"name": "cddb"}]})  # fmt: skip


def test_the_reproduce_plan_has_no_cddb_on_inpainting():
    """What workflow/rules/common.smk plans: (task, label) for every entry that runs_on the task."""
    cfg = load_config(ROOT / "config" / "reproduce.yaml")
    planned = {(t, e.name) for t in cfg.tasks for e in cfg.samplers if e.runs_on(t)}
    cddb = {t for t, name in planned if name == "cddb"}
    assert cddb == {t for t in cfg.tasks if task_spec(t).family_spec.data_consistency_applies}
    assert cddb == {"sr4x-pool", "sr4x-bicubic", "blur-uni", "blur-gauss"}
    assert skipped_tasks(cfg.samplers, cfg.tasks) == []


def test_the_table_imports_no_sampler_or_torch():
    imported = {line.split()[1] for line in Path(tasks.__file__).read_text().splitlines()
                if line.startswith(("import ", "from "))}  # fmt: skip
    assert imported <= {"__future__", "re", "dataclasses"}


def _valid_list(message: str) -> list[str]:
    """The names after 'valid tasks:' / 'valid names:' in a refusal."""
    (listing,) = re.findall(r"valid (?:tasks|names): (.*)$", message)
    return listing.split(", ")


@pytest.mark.parametrize("name", TASKS)
def test_every_task_row_is_named_wherever_tasks_or_families_are_listed(name):
    """A new row needs nothing beside it: the refusals that list tasks (the task table, the
    corruption registry, the config's tasks) name it, and the family messages list its family
    exactly where its FamilySpec says so."""
    from i2sb.config import ConfigError, config_from_dict
    from i2sb.corruption import build_corruption

    with pytest.raises(KeyError) as unknown_task:
        task_spec("denoise-1")
    with pytest.raises(KeyError) as unknown_corruption:
        build_corruption("denoise-1", 64)
    with pytest.raises(ConfigError) as refused:
        config_from_dict({"tasks": ["denoise-1"]})
    for message in (unknown_task.value.args[0], unknown_corruption.value.args[0]):
        assert name in _valid_list(message)
    assert name in _valid_list(str(refused.value))
    family = TASKS[name].family_spec
    for flag in ("forward_operator", "mask", "data_consistency_applies"):
        listed = family_patterns(flag).split(", ")
        assert (family.pattern in listed) == getattr(family, flag), flag
