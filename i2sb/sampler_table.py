"""The sampler table: each sampler's name, options, defaults and label (spec §2 and §10).

The one place the config, the CLI, the workflow and the library read which samplers exist; the
functions themselves are in i2sb/samplers.py. Imports neither torch nor mlflow, so the Snakefile
can use it and planning stays instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from i2sb.tasks import TaskSpec, family_patterns, task_spec


@dataclass(frozen=True)
class SamplerKind:
    """What the configuration knows of a sampler."""

    options: dict[str, float]  # option name -> default
    label_keys: dict[str, str]  # option name -> its short name in the label (implicit-eta0)
    # A data-consistency step: needs the task's operator A and measurement y, and is erased where
    # the family's known-pixel reset overwrites it (FamilySpec.reset_erases_consistency).
    needs_forward_operator: bool = False


SAMPLER_KINDS: dict[str, SamplerKind] = {
    "ddpm": SamplerKind({}, {}),
    "implicit": SamplerKind({"eta": 0.0}, {"eta": "eta"}),
    "cddb": SamplerKind({"step_size": 1.0}, {"step_size": "lam"}, needs_forward_operator=True),
}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLER_KINDS)
# Every sampler option (a field of SamplerConfig, a key of a samplers entry, an i2sb sample flag).
OPTION_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(o for k in SAMPLER_KINDS.values() for o in k.options)
)


@dataclass(frozen=True)
class SamplerConfig:
    """One entry of the config's ``samplers`` list, or of ``i2sb sample --sampler NAME``.

    An option left None takes the sampler's default; an option of another sampler is an error.
    """

    name: str = "ddpm"  # ddpm | implicit | cddb (spec §2, §10)
    eta: float | None = None  # implicit: noise in [0, 1]; 0 = deterministic after step 1 (0)
    step_size: float | None = None  # cddb: lambda of the data-consistency step, >= 0 (default 1)
    # Where the workflow runs this entry: its own NFE list and tasks (a subset of the config's
    # tasks); () = the config's nfe / tasks. E.g. a fast sampler at NFE 10-50 beside ddpm at 999.
    nfe: tuple[int, ...] = ()
    tasks: tuple[str, ...] = ()

    def runs_on(self, task: str) -> bool:
        """Whether the workflow plans this entry on ``task``: one of its ``tasks``, or (none
        listed) every task where it can run and differs from ddpm (see ``skip_reason``)."""
        if self.tasks:
            return task in self.tasks
        return self.skip_reason(task_spec(task)) is None

    def skip_reason(self, task: TaskSpec) -> str | None:
        """Why planning this entry on ``task`` is an error or a waste, or None: no forward
        operator, or one whose step the known-pixel reset erases (cddb on inpaint-*)."""
        why = self._skip_why(task)
        return why and f"sampler {self.name} on task {task.name}: {why}"

    def _skip_why(self, task: TaskSpec) -> str | None:
        if not self.needs_forward_operator or self.name not in SAMPLER_KINDS:
            return None
        if not task.has_forward_operator:
            return f"no differentiable forward operator (only {family_patterns('forward_operator')} have one)"
        if task.family_spec.reset_erases_consistency:
            return (
                "ddpm's images exactly, as the known-pixel reset after every step erases its "
                f"data-consistency step (it differs only on {family_patterns('data_consistency_applies')})"
            )
        return None

    def problem(self, task: TaskSpec | None = None) -> str | None:
        """Why this entry is invalid (unknown name, another sampler's option) or cannot run on
        ``task`` (cddb needs the task's forward operator); None when it is fine."""
        if self.name not in SAMPLER_KINDS:
            return f"unknown sampler {self.name!r}; valid samplers: {', '.join(SAMPLER_NAMES)}"
        accepted = SAMPLER_KINDS[self.name].options
        for option in OPTION_NAMES:
            if getattr(self, option) is not None and option not in accepted:
                return (
                    f"sampler {self.name} takes no option {option} "
                    f"(its options: {', '.join(accepted) or 'none'})"
                )
        if task is not None and self.needs_forward_operator and not task.has_forward_operator:
            return (
                f"sampler {self.name} needs the task's differentiable forward operator, which task "
                f"{task.name} does not have (only {family_patterns('forward_operator')} do)"
            )
        return None

    def options(self) -> dict[str, float]:
        """The sampler's options with defaults filled in, e.g. {"eta": 0.0}."""
        return {
            option: float(default if getattr(self, option) is None else getattr(self, option))
            for option, default in SAMPLER_KINDS[self.name].options.items()
        }

    @property
    def label(self) -> str:
        """A stable name for paths and runs: ``ddpm``, ``implicit-eta0``, ``cddb-lam1``."""
        keys = SAMPLER_KINDS[self.name].label_keys
        return "-".join([self.name, *(f"{keys[k]}{v:g}" for k, v in self.options().items())])

    def describe(self) -> dict[str, object]:
        """What part files, metrics.json and MLflow record: {"name", "label", "options"}."""
        return {"name": self.name, "label": self.label, "options": self.options()}

    @property
    def needs_forward_operator(self) -> bool:
        return SAMPLER_KINDS[self.name].needs_forward_operator


def samplers_problem(entries: Sequence[SamplerConfig], tasks: Sequence[TaskSpec]) -> str | None:
    """The first problem of a ``samplers`` list run on ``tasks``, as 'samplers[i]: why', or None.

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


def skipped_tasks(entries: Sequence[SamplerConfig], tasks: Sequence[str]) -> list[str]:
    """One line per entry without ``tasks`` that is not planned on some of ``tasks``, saying why:
    what planning prints, so a skipped (task, sampler) is never silent."""
    lines = []
    for i, entry in enumerate(entries):
        skipped = [task for task in tasks if not entry.tasks and not entry.runs_on(task)]
        by_why: dict[str, list[str]] = {}
        for task in skipped:
            by_why.setdefault(entry._skip_why(task_spec(task)) or "", []).append(task)
        if skipped:
            why = "; ".join(f"{', '.join(names)}: {why}" for why, names in by_why.items())
            lines.append(f"samplers[{i}] ({entry.label}) is not planned on {why}")
    return lines


def find_sampler(entries: Sequence[SamplerConfig], label: str) -> SamplerConfig:
    """The entry labelled ``label`` (e.g. implicit-eta0), or a ValueError listing the labels."""
    for entry in entries:
        if entry.label == label:
            return entry
    labels = ", ".join(entry.label for entry in entries)
    raise ValueError(f"no sampler labelled {label!r} in config key 'samplers' ({labels})")
