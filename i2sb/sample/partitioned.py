"""``sample_partition``: restore one contiguous partition of an evaluation set into a part file.

The dataset and the evaluation positions are passed in (the CLI builds them with
``i2sb.data.build.build_eval_set``), so the runner works with any indexable dataset whose items
are ``(x0, label)`` (degraded by the run's task) or ``(x0, x1, label)`` (paired data).

Speed in meta: ``seconds`` is sampling time only (network and bridge, not data loading or the
corruption); ``seconds_per_nfe`` is seconds per batched network evaluation at ``batch_size``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2sb.config import SampleConfig
from i2sb.data.fingerprint import content_fingerprint, data_fingerprint
from i2sb.data.partition import partition
from i2sb.joblog import progress
from i2sb.network.checkpoint import checkpoint_fingerprint
from i2sb.network.fastpath import resolve_precision
from i2sb.sample.images import NonFiniteImages, save_trajectory_png, to_uint8
from i2sb.sample.parts import Part, why_incomplete, write_part
from i2sb.sample.restorer import Restorer, per_image
from i2sb.samplers import SamplerConfig

TRAJECTORY_IMAGES = 4  # rows of trajectory.png
# How the noise is seeded; recorded so parts made under an older scheme are recomputed, not reused.
NOISE_SCHEME = "per-image generator seeded by (seed, evaluation index)"


@dataclass(frozen=True)
class SampleJob:
    """One sampling job: the config's ``sample`` section (the one definition of batch size,
    precision, seed, ...) plus what the job itself chooses. nfe, the sampler, seed, clip_denoise
    and the corruption options change the images; batch size and partitioning never do."""

    nfe: int
    settings: SampleConfig = field(default_factory=SampleConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)  # one entry of config samplers
    corruption_options: dict[str, Any] = field(default_factory=dict)
    trajectory: bool = False  # trajectory.png beside partition 0's file


def _load_batch(dataset: Any, dataset_indices: Sequence[int]):
    """(x0, x1 or None, labels) for dataset items ``(x0, label)`` or ``(x0, x1, label)``."""
    items = [dataset[int(i)] for i in dataset_indices]
    sizes = {len(item) for item in items}
    if sizes not in ({2}, {3}):
        raise ValueError(f"dataset items must be (x0, label) or (x0, x1, label), got sizes {sizes}")
    x0 = torch.stack([item[0] for item in items])
    x1 = torch.stack([item[1] for item in items]) if sizes == {3} else None
    labels = np.array([int(item[-1]) for item in items], dtype=np.int64)
    return x0, x1, labels


def _degrade(restorer: Restorer, job: SampleJob):
    """x0, positions -> (x1, mask) with the run's corruption; mask i follows evaluation position i."""
    from i2sb.corruption import build_corruption

    options = restorer.options
    corruption = build_corruption(
        options.task, options.image_size, restorer.device, **job.corruption_options
    )

    def degrade(x0: torch.Tensor, positions: np.ndarray):
        x0, indices = x0.to(restorer.device), torch.from_numpy(positions)
        if restorer.device.type != "cpu":
            return corruption(x0, indices)
        return per_image(corruption, x0, indices)  # batch-size independent (see per_image)

    return degrade, corruption.mask_source


class _PartArrays:
    """The part's images, allocated once at the part's size and filled batch by batch: a part
    of n images peaks at n images, not twice that (concatenating per-batch arrays at the end
    copied every image; 6250 images of 256 px with degraded are 3.7 GB)."""

    def __init__(self, count: int, size: int, save_degraded: bool):
        self.count, self.size, self.filled = count, size, 0
        self.keys = ("recon", "clean", "degraded") if save_degraded else ("recon", "clean")
        self.images: dict[str, np.ndarray] = {}
        self.labels = np.zeros(count, np.int64)

    def add(self, batch: dict[str, torch.Tensor], labels: np.ndarray) -> None:
        rows = slice(self.filled, self.filled + len(labels))
        for key in self.keys:
            pixels = to_uint8(batch[key])
            if key not in self.images:
                self.images[key] = np.empty((self.count, *pixels.shape[1:]), np.uint8)
            self.images[key][rows] = pixels
        self.labels[rows] = labels
        self.filled += len(labels)

    def part(self, positions: np.ndarray) -> Part:
        empty = np.zeros((0, 3, self.size, self.size), np.uint8)  # an empty partition
        images = {key: self.images.get(key, empty) for key in self.keys}
        return Part(images["recon"], images["clean"], positions, self.labels, {},
                    images.get("degraded"))  # fmt: skip


def _run(
    restorer: Restorer,
    dataset: Any,
    eval_indices: Sequence[int],
    positions: np.ndarray,
    job: SampleJob,
    out: Path,
    desc: str,
) -> Part:
    settings = job.settings
    paired = restorer.options.task == "paired"
    degrade, mask_source = (None, None) if paired else _degrade(restorer, job)
    arrays = _PartArrays(len(positions), restorer.options.image_size, settings.save_degraded)
    seconds, evaluations = 0.0, 0
    size = settings.batch_size
    batches = [positions[s : s + size] for s in range(0, len(positions), size)]
    for number, batch in enumerate(progress(batches, desc, unit="batch")):
        x0, x1, labels = _load_batch(dataset, [eval_indices[p] for p in batch])
        mask = None
        if x1 is None:
            if degrade is None:
                raise ValueError("a run of the paired task needs paired data (--data-kind paired)")
            x1, mask = degrade(x0, batch)
        result = restorer.restore(
            x1, mask, job.nfe, settings.seed, indices=batch.tolist(),
            clip_denoise=settings.clip_denoise, log_count=settings.log_count, sampler=job.sampler,
        )  # fmt: skip
        seconds += result.seconds
        evaluations += result.network_evaluations
        try:
            arrays.add({"recon": result.recon, "clean": x0, "degraded": x1}, labels)
        except NonFiniteImages as err:  # say which part, images and settings; nothing is written
            raise NonFiniteImages(
                f"{out}: evaluation images {batch[0]}-{batch[-1]} restored with {job.sampler.label} "
                f"at NFE {job.nfe} in {restorer.precision}: {err}"
            ) from None
        if number == 0 and job.trajectory and positions[0] == 0:
            rows = slice(0, TRAJECTORY_IMAGES)
            save_trajectory_png(out.with_name("trajectory.png"), x1[rows], result.frames[rows])
    part = arrays.part(positions)
    part.meta = {
        "task": restorer.options.task,
        "mask_source": mask_source,
        "batch_size": settings.batch_size,
        "num_images": len(positions),
        "seconds": seconds,
        "network_evaluations": evaluations,
        "images_per_s": len(positions) / seconds if seconds > 0 else None,
        "seconds_per_nfe": seconds / evaluations if evaluations else None,
        "options": restorer.options.to_dict(),
    }
    return part


def sample_partition(
    restorer: Restorer | str | Path,
    dataset: Any,
    eval_indices: Sequence[int],
    part: tuple[int, int],
    job: SampleJob,
    out: str | Path,
    device: str = "cpu",
    compile: bool = False,
    *,
    data_description: dict[str, Any] | None = None,
) -> tuple[Path, bool]:
    """Restore partition ``part = (i, n)`` of the evaluation set; returns (out, computed).

    ``eval_indices[p]`` is the dataset position of evaluation image p. The part file records p
    (``indices``); p also picks the inpainting mask, and image p draws its noise from a generator
    seeded by (``seed``, p), so the images do not depend on the partitioning or the batch size
    (on the CPU byte for byte). A part already complete for the same checkpoint
    contents, evaluation images (their index and the bytes of the part's own) and settings is left alone (computed = False); any difference
    recomputes it with a line on stderr saying what changed. ``restorer`` is a Restorer or a run folder.
    ``data_description`` (``i2sb.data.build.describe_eval_data``) is recorded as meta "dataset":
    what evaluation and tracking say the images are (None: not known, which they refuse).
    """
    settings = job.settings
    if settings.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {settings.batch_size}")
    out = Path(out)
    index, count = part
    positions = np.asarray(partition(len(eval_indices), index, count), dtype=np.int64)
    source = restorer.checkpoint if isinstance(restorer, Restorer) else restorer
    identity = {
        "checkpoint": str(Path(source).resolve()),
        "checkpoint_fingerprint": checkpoint_fingerprint(source),
        "data_fingerprint": data_fingerprint(dataset, eval_indices),
        # the bytes of this part's own images: a file replaced in place recomputes its part
        "data_content": content_fingerprint(dataset, [eval_indices[p] for p in positions]),
        "dataset": data_description,
        "nfe": job.nfe,
        "sampler": job.sampler.describe(),
        "partition": [index, count],
        "total": len(eval_indices),
        "clip_denoise": settings.clip_denoise,
        "seed": settings.seed,
        "noise": NOISE_SCHEME,
        "precision": restorer.precision
        if isinstance(restorer, Restorer)
        else resolve_precision(settings.precision, device, training=False),
        "corruption_options": dict(job.corruption_options),
    }
    reason = why_incomplete(out, positions, identity)
    if not reason:
        return out, False
    if out.exists():
        print(f"recomputing {out}: {reason}", file=sys.stderr)
    if not isinstance(restorer, Restorer):
        restorer = Restorer.load(restorer, device, settings.precision, compile=compile)
    # The bar (or, in a job's log, the progress lines) names what is being sampled.
    label = f"{restorer.options.task} {job.sampler.label} nfe{job.nfe}"
    desc = f"sample {label} part {index}/{count} ({len(positions)} images)"
    result = _run(restorer, dataset, eval_indices, positions, job, out, desc)
    result.meta.update(identity)
    write_part(out, result)
    return out, True
