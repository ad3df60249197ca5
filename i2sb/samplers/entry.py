"""A ``samplers`` entry of the config (and of ``i2sb sample --sampler NAME``), derived from the table.

``SamplerConfig`` is generated from the options dataclasses of :mod:`i2sb.samplers.registry`: a
field ``name``, one field per option of any sampler (None = that sampler's default), and the
entry's own ``nfe`` and ``tasks``. So the config's generic parsing, coercion and JSON round trip
see every option without it being written here, and ``entry_schema`` gives the schema fragment.
Imports neither torch nor numpy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

from i2sb.samplers.options import OptionField, build_options
from i2sb.samplers.registry import SAMPLER_NAMES, SAMPLERS, SamplerSpec, sampler_spec
from i2sb.tasks import TaskSpec, family_patterns, task_spec


def option_owners() -> dict[str, list[tuple[str, OptionField]]]:
    """Each option name -> the samplers that take it, with their field (in table order)."""
    owners: dict[str, list[tuple[str, OptionField]]] = {}
    for spec in SAMPLERS.values():
        for field in spec.fields:
            owners.setdefault(field.name, []).append((spec.name, field))
    for name, fields in owners.items():
        if len({field.kind for _, field in fields}) > 1:
            raise TypeError(f"option {name} has different types in samplers {fields}")
    return owners


class OptionProblem(NamedTuple):
    """What is wrong with one option of an entry; ``why`` names the sampler and the option."""

    option: str
    why: str
    foreign: bool  # the sampler takes no such option (True) or the value is out of range


class _EntryMethods:
    """The behaviour of ``SamplerConfig``; its fields are generated below."""

    name: str
    nfe: tuple[int, ...]
    tasks: tuple[str, ...]

    @property
    def spec(self) -> SamplerSpec:
        return sampler_spec(self.name)

    @property
    def needs_forward_operator(self) -> bool:
        return self.spec.needs_forward_operator

    def given_options(self) -> dict[str, Any]:
        """The options set in this entry (not None), e.g. {"eta": 0.5}."""
        return {o: getattr(self, o) for o in option_owners() if getattr(self, o) is not None}

    def runs_on(self, task: str) -> bool:
        """Whether the workflow plans this entry on ``task``: one of its ``tasks``, or (none
        listed) every task where it can run and differs from ddpm (see ``skip_reason``)."""
        if self.tasks:
            return task in self.tasks
        return self.skip_reason(task_spec(task)) is None

    def skip_reason(self, task: TaskSpec) -> str | None:
        """Why planning this entry on ``task`` is an error or a waste, or None: no forward
        operator, or one whose step the known-pixel reset erases (cddb on inpaint-*)."""
        why = self.skip_why(task)
        return why and f"sampler {self.name} on task {task.name}: {why}"

    def skip_why(self, task: TaskSpec) -> str | None:
        if self.name not in SAMPLERS or not self.needs_forward_operator:
            return None
        if not task.has_forward_operator:
            return f"no differentiable forward operator (only {family_patterns('forward_operator')} have one)"
        if task.family_spec.reset_erases_consistency:
            return (
                "ddpm's images exactly, as the known-pixel reset after every step erases its "
                f"data-consistency step (it differs only on {family_patterns('data_consistency_applies')})"
            )
        return None

    def option_problem(self) -> OptionProblem | None:
        """The first option this sampler does not take, or whose value is out of its range."""
        own = {field.name: field for field in self.spec.fields}
        for option, value in self.given_options().items():
            if option not in own:
                why = (
                    f"sampler {self.name} takes no option {option} "
                    f"(its options: {', '.join(own) or 'none'})"
                )
                return OptionProblem(option, why, foreign=True)
            problem = own[option].problem(value)
            if problem:
                return OptionProblem(option, problem, foreign=False)
        return None

    def problem(self, task: TaskSpec | None = None) -> str | None:
        """Why this entry is invalid (unknown name, another sampler's option, a value out of
        range) or cannot run on ``task`` (cddb needs the task's forward operator); None if fine."""
        if self.name not in SAMPLERS:
            return f"unknown sampler {self.name!r}; valid samplers: {', '.join(SAMPLER_NAMES)}"
        wrong = self.option_problem()
        if wrong:
            return (
                wrong.why
                if wrong.foreign
                else f"sampler {self.name} option {wrong.option}: {wrong.why}"
            )
        if task is not None and self.needs_forward_operator and not task.has_forward_operator:
            return (
                f"sampler {self.name} needs the task's differentiable forward operator, which task "
                f"{task.name} does not have (only {family_patterns('forward_operator')} do)"
            )
        return None

    def options(self) -> Any:
        """The sampler's options dataclass with defaults filled in, e.g. ImplicitOptions(eta=0.0)."""
        return build_options(self.spec.options, self.given_options(), self.name)

    @property
    def label(self) -> str:
        """A stable name for paths and runs: ``ddpm``, ``implicit-eta0``, ``cddb-lam1``."""
        options = self.options()
        parts = [f"{f.info.label or f.name}{getattr(options, f.name):g}" for f in self.spec.fields]
        return "-".join([self.name, *parts])

    def describe(self) -> dict[str, object]:
        """What part files, metrics.json and MLflow record: {"name", "label", "options"}."""
        return {
            "name": self.name,
            "label": self.label,
            "options": dataclasses.asdict(self.options()),
        }


SamplerConfig = dataclasses.make_dataclass(
    "SamplerConfig",
    [
        ("name", str, dataclasses.field(default="ddpm")),  # a sampler of the registry
        *(
            (option, fields[0][1].kind | None, dataclasses.field(default=None, kw_only=True))
            for option, fields in option_owners().items()
        ),
        # Where the workflow runs this entry: its own NFE list and tasks (a subset of the config's
        # tasks); () = the config's nfe / tasks. E.g. a fast sampler at NFE 10-50 beside ddpm at 999.
        ("nfe", tuple[int, ...], dataclasses.field(default=(), kw_only=True)),
        ("tasks", tuple[str, ...], dataclasses.field(default=(), kw_only=True)),
    ],
    bases=(_EntryMethods,),
    frozen=True,
)
SamplerConfig.__module__ = __name__  # pickled by name (Snakemake hands params to scripts so)
SamplerConfig.__doc__ = """One entry of the config's ``samplers`` list: ``name``, one keyword per
sampler option (None = the sampler's default; another sampler's option is an error), ``nfe`` and
``tasks``. E.g. ``SamplerConfig("implicit", eta=0.0)``."""


def entry_schema() -> dict[str, Any]:
    """The JSON-schema of one ``samplers`` entry, read from the table (config.resolved_schema)."""
    options = {}
    for option, fields in option_owners().items():
        node = fields[0][1].schema()
        owners = ", ".join(name for name, _ in fields)
        node["description"] = f"{fields[0][1].expected()} ({owners})"
        options[option] = node
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"enum": list(SAMPLER_NAMES)},
            **options,
            "nfe": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            "tasks": {"type": "array", "items": {"type": "string"}},
        },
    }


def samplers_problem(entries: Sequence[Any], tasks: Sequence[TaskSpec]) -> str | None:
    """The first problem of a ``samplers`` list run on ``tasks``, as 'samplers[i]: why' (or
    'samplers[i].option: why'), or None.

    A task an entry lists explicitly must be one where it runs and differs from ddpm; an entry
    that lists none is planned only there (``skipped_tasks`` says where it is not).
    """
    labels: dict[str, int] = {}
    names = [task.name for task in tasks]
    for i, entry in enumerate(entries):
        unknown = [task for task in entry.tasks if task not in names]
        if unknown:
            return (
                f"samplers[{i}]: tasks {unknown} are not in the config's tasks ({', '.join(names)})"
            )
        wrong = entry.option_problem() if entry.name in SAMPLERS else None
        if wrong:
            return f"samplers[{i}].{wrong[0]}: {wrong[1]}"
        problem = entry.problem()
        if problem is None and entry.tasks:
            listed = [task for task in tasks if task.name in entry.tasks]
            problem = next(filter(None, map(entry.skip_reason, listed)), None)
        elif problem is None and tasks and not any(entry.runs_on(task.name) for task in tasks):
            problem = f"runs on none of the config's tasks: {entry.skip_reason(tasks[0])}"
        if problem is None and entry.label in labels:
            problem = f"{entry.label} is already samplers[{labels[entry.label]}]"
        if problem:
            return f"samplers[{i}]: {problem}"
        labels[entry.label] = i
    return None


def skipped_tasks(entries: Sequence[Any], tasks: Sequence[str]) -> list[str]:
    """One line per entry without ``tasks`` that is not planned on some of ``tasks``, saying why:
    what planning prints, so a skipped (task, sampler) is never silent."""
    lines = []
    for i, entry in enumerate(entries):
        skipped = [task for task in tasks if not entry.tasks and not entry.runs_on(task)]
        by_why: dict[str, list[str]] = {}
        for task in skipped:
            by_why.setdefault(entry.skip_why(task_spec(task)) or "", []).append(task)
        if skipped:
            why = "; ".join(f"{', '.join(names)}: {why}" for why, names in by_why.items())
            lines.append(f"samplers[{i}] ({entry.label}) is not planned on {why}")
    return lines


def find_sampler(entries: Sequence[Any], label: str) -> Any:
    """The entry labelled ``label`` (e.g. implicit-eta0), or a ValueError listing the labels."""
    for entry in entries:
        if entry.label == label:
            return entry
    labels = ", ".join(entry.label for entry in entries)
    raise ValueError(f"no sampler labelled {label!r} in config key 'samplers' ({labels})")
