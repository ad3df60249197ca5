"""The paper's reported numbers (Liu et al., ICML 2023; spec §8), kept apart from any code that computes ours.

The report sets our figures beside these; they are quoted, never used as a fallback for a missing value.
Imports neither torch nor mlflow.
"""

from __future__ import annotations

from dataclasses import dataclass

from i2sb.tasks import EVAL_10K, EVAL_FULL, FID_REF_TRAIN, FID_REF_VAL, TASKS, task_spec


@dataclass(frozen=True)
class PaperResult:
    """One figure of the paper: a method on a task (ImageNet 256). ``None`` = not reported."""

    task: str
    method: str
    nfe: int | None
    fid: float | None
    ca: float | None = None  # top-1 classifier accuracy, in percent


I2SB = "I2SB"

# What the paper's figures were measured on (spec §7), named as metrics.json names ours: the data
# set, its resolution, the evaluation set's size per task and the FID reference per task.
PAPER_DATASET = "ImageNet"
PAPER_IMAGE_SIZE = 256
PAPER_EVAL_IMAGES = {EVAL_FULL: 50_000, EVAL_10K: 10_000}
PAPER_FID_REFERENCE = {FID_REF_TRAIN: "adm_train_batch", FID_REF_VAL: "val_stats"}


def paper_eval_images(task: str) -> int:
    """How many validation images the paper evaluated ``task`` on (50k for 4x SR, else the 10k subset)."""
    return PAPER_EVAL_IMAGES[task_spec(task).eval_set]


def paper_fid_reference(task: str) -> str:
    """The paper's FID reference for ``task``, as metrics.json's ``fid_reference_kind`` names it."""
    return PAPER_FID_REFERENCE[task_spec(task).fid_reference]


PAPER_RESULTS: tuple[PaperResult, ...] = (
    PaperResult("sr4x-pool", I2SB, 1000, 2.7, 71.0),
    PaperResult("sr4x-bicubic", I2SB, 1000, 2.8, 70.7),
    PaperResult("jpeg-5", I2SB, 1000, 4.6, 67.9),
    PaperResult("jpeg-10", I2SB, 1000, 3.6, 72.1),
    PaperResult("inpaint-center", I2SB, 1000, 4.9, 66.1),
    PaperResult("inpaint-freeform1020", I2SB, 1000, 2.9, 74.9),
    PaperResult("inpaint-freeform2030", I2SB, 1000, 3.2, 73.4),
    PaperResult("blur-uni", I2SB, 1000, 3.9, 73.7),
    PaperResult("blur-gauss", I2SB, 1000, 3.0, 75.0),
    PaperResult("jpeg-5", I2SB, 100, 5.4, 67.5),
    PaperResult("jpeg-10", I2SB, 100, 4.4, 71.6),
    PaperResult("inpaint-center", I2SB, 10, 5.4, 65.97),
    # Baselines of the same tables; the spec quotes their FID only.
    PaperResult("sr4x-pool", "ADM", None, 3.1),
    PaperResult("sr4x-pool", "ΠGDM", None, 3.8),
    PaperResult("sr4x-pool", "DDNM", None, 9.9),
    PaperResult("sr4x-pool", "DDRM", None, 14.8),
    PaperResult("jpeg-5", "Palette", None, 8.3),
    PaperResult("jpeg-5", "ΠGDM", None, 8.6),
    PaperResult("inpaint-center", "Palette", None, 6.1),
    PaperResult("inpaint-center", "ΠGDM", None, 7.3),
)

# The paper's tables, in its order: table name -> the tasks it reports.
PAPER_TABLES: dict[str, tuple[str, ...]] = {
    "superres": ("sr4x-pool", "sr4x-bicubic"),
    "jpeg": ("jpeg-5", "jpeg-10"),
    "inpaint": ("inpaint-center", "inpaint-freeform1020", "inpaint-freeform2030"),
    "deblur": ("blur-uni", "blur-gauss"),
}

TABLE_TITLES: dict[str, str] = {
    "superres": "4x super-resolution",
    "jpeg": "JPEG restoration",
    "inpaint": "Inpainting",
    "deblur": "Deblurring",
}


def paper_results(task: str) -> list[PaperResult]:
    """The paper's rows for ``task``: I2SB first (by decreasing NFE), then the baselines."""
    rows = [r for r in PAPER_RESULTS if r.task == task]
    return sorted(rows, key=lambda r: (r.method != I2SB, -(r.nfe or 0)))


def _check_tables() -> None:
    # The task table is the source of truth for names: a typo here must fail at import, not in a report.
    named = {task for tasks in PAPER_TABLES.values() for task in tasks}
    named |= {r.task for r in PAPER_RESULTS}
    unknown = sorted(named - set(TASKS))
    if unknown:
        raise KeyError(f"i2sb/paper.py names tasks missing from i2sb/tasks.py: {unknown}")


_check_tables()
