"""Captions that say what a figure is: data set, resolution, image count, sampler, NFE, FID reference.

Everything comes from what the evaluation recorded (MLflow params of each run, see
``build.FACTS``); what was not recorded is said to be unknown, never assumed.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from i2sb.metric_table import METRICS as METRIC_SPECS
from i2sb.paper import PAPER_DATASET, PAPER_IMAGE_SIZE, paper_eval_images, paper_fid_reference

# metrics.json's fid_reference_kind (i2sb.metrics.evaluate.FID_REFERENCE_KINDS) in words.
REFERENCE_NAMES = {
    "adm_train_batch": "ADM's training-set batch",
    "val_stats": "validation-set statistics",
    "clean_images": "the samples' own clean images",
    "file": "a statistics file given by the user",
}


def _unique(values: Iterable) -> list:
    seen = []
    for value in values:
        if value is not None and value is not pd.NA and value == value and value not in seen:
            seen.append(value)
    return seen


def _reference(kind: str) -> str:
    return REFERENCE_NAMES.get(kind, f"'{kind}'")


def describe_runs(runs: pd.DataFrame) -> str:
    """'demo photos, 32 px, 32 images; small network, 600 training iterations; sampler ddpm at NFE
    5, 20; FID reference: ...' for ``runs``."""
    if runs.empty:
        return "no evaluation run recorded"
    data = ", ".join(_unique(runs["dataset"])) or "data set not recorded"
    sizes = " or ".join(f"{s} px" for s in sorted(_unique(runs["image_size"])))
    counts = " or ".join(f"{n:,}" for n in sorted(_unique(runs["num_images"])))
    samplers = _unique(runs["sampler"])
    nfes = ", ".join(str(n) for n in sorted(_unique(runs["nfe"])))
    parts = [
        f"{data}, {sizes or 'resolution not recorded'}, {counts or 'an unknown number of'} images",
        _networks(runs),
        f"sampler{'s' if len(samplers) > 1 else ''} {', '.join(samplers)} at NFE {nfes}",
    ]
    for spec in (s for s in METRIC_SPECS if s.reference_fact):  # what FID was measured against
        measured = runs[runs[spec.name].notna()]
        references = [_reference(k) for k in _unique(measured[spec.reference_fact])]
        parts.append(
            f"{spec.header} reference: {' and '.join(references)}"
            if references
            else f"no {spec.header} measured"
        )
    return "; ".join(parts)


def _networks(runs: pd.DataFrame) -> str:
    """'small network, 600 training iterations' (or the published checkpoints) of ``runs``."""
    described = []
    for source in _unique(runs["checkpoints"]) or [None]:
        if source == "published":
            described.append("the paper's published checkpoints")
            continue
        group = runs if source is None else runs[runs["checkpoints"] == source]
        nets = " or ".join(_unique(group["network"])) or "network not recorded"
        iterations = " or ".join(str(n) for n in _unique(group["iterations"]))
        described.append(
            f"{nets} network, {iterations} training iterations" if iterations else nets
        )
    return " and ".join(described)


def describe_paper(tasks: Iterable[str]) -> str:
    """The paper's evaluation of ``tasks``, for the caption of its quoted rows."""
    tasks = list(tasks)
    counts = " or ".join(f"{n:,}" for n in _unique(paper_eval_images(t) for t in tasks))
    references = " or ".join(_reference(k) for k in _unique(paper_fid_reference(t) for t in tasks))
    return (
        f"rows marked (paper) are quoted from Liu et al. (ICML 2023): {PAPER_DATASET}, "
        f"{PAPER_IMAGE_SIZE} px, {counts} validation images, NFE as listed, FID reference: "
        f"{references}"
    )


def table_caption(title: str, runs: pd.DataFrame, tasks: Iterable[str], with_paper: bool) -> str:
    """The caption of one of the paper's tables: what ours are, and what the paper's are."""
    tasks = list(tasks)
    ours = describe_runs(runs[runs["task"].isin(tasks)])
    if with_paper:
        paper = describe_paper(tasks)
    else:
        paper = "the paper's figures are not shown, as these runs are not on its data set"
    return f"{title}. Ours: {ours}. The {DEGRADED_WORDS}; {paper}."


DEGRADED_WORDS = "degraded-input rows score the inputs the sampler restored"
