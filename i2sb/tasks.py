"""The benchmark's task table: the one place that says how each restoration task is set up.

Two tables: ``FAMILIES`` holds what a family of tasks shares (spec §1: beta_max and OT-ODE; §7:
evaluation set and FID reference; §5 and §10: whether it has a forward operator and a hole mask),
and ``TASKS`` holds one row per task naming its family and the function in i2sb/corruption/ that
builds its degradation. A new task is that function and one row here (naming an existing family,
or with one row added to ``FAMILIES``); nothing is inherited silently. Every message that lists
families (``sr4x-*, blur-*``) is built from ``FAMILIES`` by ``family_patterns``.

Imports neither torch nor mlflow, so the Snakefile can read it and a dry run stays instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EVAL_FULL = "full"  # the whole validation set (50k images on ImageNet)
EVAL_10K = "10k"  # the 10k subset suggested by Palette (NVlabs/I2SB dataset/*_10k_*.txt)

FID_REF_TRAIN = "adm_train"  # ADM's VIRTUAL_imagenet256_labeled.npz (training-set batch)
FID_REF_VAL = "val"  # statistics of the full validation set, computed once and cached


@dataclass(frozen=True)
class FamilySpec:
    """What every task of one family shares (spec §1, §5, §7, §10)."""

    name: str
    pattern: str  # how messages name the family's tasks: "sr4x-*"
    beta_max: float
    ot_ode: bool
    eval_set: str
    fid_reference: str
    # A differentiable operator A with a measurement y = A(x0) (the data-consistent sampler's).
    forward_operator: bool
    # A hole mask: the known pixels are reset to the degraded image's after every sampling step.
    mask: bool
    # That reset overwrites a data-consistency step outside the hole and its gradient is zero
    # inside, so a data-consistent sampler gives ddpm's images exactly (tests/test_sample.py).
    reset_erases_consistency: bool
    # "module:function" in i2sb/corruption/ building any task of the family from its name
    # ("" = each task row names its own; the paired family has none).
    corruption: str = ""

    @property
    def data_consistency_applies(self) -> bool:
        """Whether a data-consistency step changes anything on this family's tasks."""
        return self.forward_operator and not self.reset_erases_consistency


# fmt: off
FAMILIES: dict[str, FamilySpec] = {
    family.name: family
    for family in (
        FamilySpec("jpeg", "jpeg-*", 0.3, False, EVAL_10K, FID_REF_VAL, False, False, False,
                   corruption="jpeg:jpeg_of_task"),
        FamilySpec("superres", "sr4x-*", 0.3, False, EVAL_FULL, FID_REF_TRAIN, True, False, False),
        FamilySpec("blur", "blur-*", 1.0, True, EVAL_10K, FID_REF_VAL, True, False, False),
        FamilySpec("inpaint", "inpaint-*", 1.0, True, EVAL_10K, FID_REF_VAL, True, True, True),
        # user data given as (clean, degraded) pairs: no corruption operator
        FamilySpec("paired", "paired", 0.3, False, EVAL_FULL, FID_REF_VAL, False, False, False),
    )
}
# fmt: on


def family_patterns(flag: str) -> str:
    """The families whose FamilySpec ``flag`` (a bool field or property) is true, as messages
    name them: ``family_patterns("data_consistency_applies")`` is "sr4x-*, blur-*"."""
    return ", ".join(family.pattern for family in FAMILIES.values() if getattr(family, flag))


@dataclass(frozen=True)
class TaskSpec:
    """One task: its family (a key of FAMILIES) and what is its own."""

    name: str
    family: str  # "jpeg" | "superres" | "blur" | "inpaint" | "paired"
    hole_ratio: tuple[float, float] | None = None  # free-form inpainting: range of the hole's area
    # "module:function" in i2sb/corruption/ building its degradation as f(name, image_size,
    # device), free-form inpainting with the mask options too; "" = its family's.
    corruption: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise KeyError(
                f"task {self.name}: unknown family {self.family!r} ({', '.join(FAMILIES)})"
            )

    @property
    def family_spec(self) -> FamilySpec:
        return FAMILIES[self.family]

    @property
    def beta_max(self) -> float:
        return self.family_spec.beta_max

    @property
    def ot_ode(self) -> bool:
        return self.family_spec.ot_ode

    @property
    def eval_set(self) -> str:
        return self.family_spec.eval_set

    @property
    def fid_reference(self) -> str:
        return self.family_spec.fid_reference

    @property
    def has_mask(self) -> bool:
        return self.family_spec.mask

    @property
    def corruption_builder(self) -> str:
        """Where its degradation is built ("module:function" in i2sb/corruption/; "" = none)."""
        return self.corruption or self.family_spec.corruption

    @property
    def has_forward_operator(self) -> bool:
        """Whether the degradation has a differentiable operator A and a measurement y (CDDB)."""
        return self.family_spec.forward_operator


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("jpeg-5", "jpeg"),
        TaskSpec("jpeg-10", "jpeg"),
        TaskSpec("sr4x-pool", "superres", corruption="superres:PoolSuperResolution"),
        TaskSpec("sr4x-bicubic", "superres", corruption="superres:BicubicSuperResolution"),
        TaskSpec("blur-uni", "blur", corruption="blur:uniform_blur"),
        TaskSpec("blur-gauss", "blur", corruption="blur:gaussian_blur"),
        TaskSpec("inpaint-center", "inpaint", corruption="inpaint:CenterInpainting"),
        TaskSpec("inpaint-freeform1020", "inpaint", (0.1, 0.2), "inpaint:freeform_inpainting"),
        TaskSpec("inpaint-freeform2030", "inpaint", (0.2, 0.3), "inpaint:freeform_inpainting"),
    )
}

BENCHMARK_TASKS: tuple[str, ...] = tuple(TASKS)
PAIRED_TASK = "paired"  # user data given as (clean, degraded) pairs: no corruption operator
_JPEG_ANY = re.compile(r"^jpeg-(\d{1,3})$")


def task_spec(name: str) -> TaskSpec:
    """Look a task up by exact name; ``jpeg-<q>`` for any quality 1..100 is accepted too."""
    if name in TASKS:
        return TASKS[name]
    match = _JPEG_ANY.match(name)
    if match and 1 <= int(match.group(1)) <= 100:
        return TaskSpec(name, "jpeg")
    if name == PAIRED_TASK:
        return TaskSpec(PAIRED_TASK, "paired")
    valid = ", ".join([*TASKS, "jpeg-<q> (q in 1..100)", PAIRED_TASK])
    raise KeyError(f"unknown task {name!r}; valid tasks: {valid}")
