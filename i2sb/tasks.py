"""The benchmark's task table: the one place that says how each restoration task is set up.

Imports neither torch nor mlflow, so the Snakefile can read it and a dry run stays instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from i2sb.sampler_table import SAMPLER_NAMES

EVAL_FULL = "full"  # the whole validation set (50k images on ImageNet)
EVAL_10K = "10k"  # the 10k subset suggested by Palette (NVlabs/I2SB dataset/*_10k_*.txt)

FID_REF_TRAIN = "adm_train"  # ADM's VIRTUAL_imagenet256_labeled.npz (training-set batch)
FID_REF_VAL = "val"  # statistics of the full validation set, computed once and cached

# Choice lists read by the config schema (``choices: <name>``), the CLI and the code.
MASK_SOURCES = ("auto", "published", "generated")  # free-form inpainting masks
DATA_KINDS = ("demo", "imagefolder", "paired")
EVAL_SUBSETS = ("auto", EVAL_FULL, EVAL_10K)
# Autocast precisions; "auto" picks per device (i2sb/network/fastpath.py: resolve_precision).
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")
SAMPLE_PRECISIONS = ("auto", "fp32", "fp16", "bf16")
CHECKPOINT_SOURCES = ("train", "published")  # train here, or the paper's nine folders
CHOICES: dict[str, tuple[str, ...]] = {
    "mask_sources": MASK_SOURCES,
    "samplers": SAMPLER_NAMES,
    "data_kinds": DATA_KINDS,
    "eval_subsets": EVAL_SUBSETS,
    "train_precisions": TRAIN_PRECISIONS,
    "sample_precisions": SAMPLE_PRECISIONS,
    "checkpoint_sources": CHECKPOINT_SOURCES,
}


@dataclass(frozen=True)
class TaskSpec:
    """How a task is trained and evaluated (spec §1, §5, §7)."""

    name: str
    family: str  # "jpeg" | "superres" | "blur" | "inpaint"
    beta_max: float
    ot_ode: bool
    eval_set: str
    fid_reference: str
    hole_ratio: tuple[float, float] | None = None  # free-form inpainting: range of the hole's area

    @property
    def has_mask(self) -> bool:
        return self.family == "inpaint"

    @property
    def has_forward_operator(self) -> bool:
        """Whether the degradation has a differentiable operator A and a measurement y (CDDB)."""
        return self.family in ("superres", "blur", "inpaint")


def _spec(name: str, family: str, hole_ratio: tuple[float, float] | None = None) -> TaskSpec:
    restoring = family in ("blur", "inpaint")
    superres = family == "superres"
    return TaskSpec(
        name=name,
        family=family,
        beta_max=1.0 if restoring else 0.3,
        ot_ode=restoring,
        eval_set=EVAL_FULL if superres else EVAL_10K,
        fid_reference=FID_REF_TRAIN if superres else FID_REF_VAL,
        hole_ratio=hole_ratio,
    )


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        _spec("jpeg-5", "jpeg"),
        _spec("jpeg-10", "jpeg"),
        _spec("sr4x-pool", "superres"),
        _spec("sr4x-bicubic", "superres"),
        _spec("blur-uni", "blur"),
        _spec("blur-gauss", "blur"),
        _spec("inpaint-center", "inpaint"),
        _spec("inpaint-freeform1020", "inpaint", (0.1, 0.2)),
        _spec("inpaint-freeform2030", "inpaint", (0.2, 0.3)),
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
        return _spec(name, "jpeg")
    if name == PAIRED_TASK:
        return TaskSpec(PAIRED_TASK, "paired", 0.3, False, EVAL_FULL, FID_REF_VAL)
    valid = ", ".join([*TASKS, "jpeg-<q> (q in 1..100)", PAIRED_TASK])
    raise KeyError(f"unknown task {name!r}; valid tasks: {valid}")
