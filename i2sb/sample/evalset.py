"""From a run folder and a data location to the evaluation set it samples, without loading weights.

``sample_run_partition`` is what ``i2sb sample`` and the workflow call: it reads the run's
options (cheap), builds the evaluation set for the run's task, and hands both to
``sample_partition``, which loads the network only if the part still has to be computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2sb.sample.options import SamplingOptions, sampling_options
from i2sb.sample.partitioned import SampleSettings, sample_partition
from i2sb.sampler_table import SamplerConfig, find_sampler
from i2sb.tasks import task_spec


@dataclass(frozen=True)
class EvalData:
    """Where the evaluation images are (see i2sb.data.build for the layouts)."""

    root: str  # folder with val_faster_imagefolder.lmdb, or val/<class>/<image>, or paired data
    kind: str = "imagefolder"  # imagefolder (LMDB or folder) | paired
    eval_subset: str = "auto"  # auto | full | 10k
    max_images: int = 0  # the first N evaluation images (0 = all)
    subset_fn: str = ""
    subset_label: str = ""
    cache_dir: str = ""
    allow_pickle: bool = False  # read the official LMDB's pickled .pt index (runs code in it)


def read_options(ckpt: str | Path) -> tuple[SamplingOptions, dict[str, Any]]:
    """(typed options, raw options) of a run folder or its latest.pt, without the weights."""
    from i2sb.network.checkpoint import read_run_options

    path = Path(ckpt)
    folder = path.parent if path.is_file() else path
    if not folder.is_dir():
        raise FileNotFoundError(f"--ckpt {ckpt}: no such run folder")
    raw, _ = read_run_options(folder)
    return sampling_options(raw, source=str(folder)), raw


def recorded_mask_options(raw: dict[str, Any], default: Any = None) -> dict[str, Any]:
    """The free-form mask options the run was trained with (our options.json), else those of
    ``default`` (a Config; the workflow's own for a published run, which records none), else
    the defaults."""
    from i2sb.config import Config, config_from_dict

    recorded = raw.get("config")
    if isinstance(recorded, dict):
        config = config_from_dict(recorded, "the run's options.json")
    else:
        config = default if default is not None else Config()
    return config.mask_options()


def sample_run_partition(
    ckpt: str | Path,
    data: EvalData,
    part: tuple[int, int],
    settings: SampleSettings,
    out: str | Path,
    device: str = "cpu",
    precision: str = "auto",
    image_size: int | None = None,
) -> tuple[Path, bool]:
    """Sample partition ``part`` of the run's evaluation set into ``out``; (out, computed)."""
    from i2sb.data.build import build_eval_set

    options, _ = read_options(ckpt)
    check_sampler(settings.sampler, options.task, ckpt)
    if image_size is not None and image_size != options.image_size:
        raise ValueError(
            f"--image-size {image_size} differs from the model's {options.image_size} ({ckpt})"
        )
    dataset, indices = build_eval_set(
        options.task, data.kind, data.root, options.image_size, data.eval_subset,
        data.max_images, data.subset_fn, data.subset_label, data.cache_dir, data.allow_pickle,
    )  # fmt: skip
    if not indices:
        raise ValueError(f"the evaluation set in {data.root} is empty")
    return sample_partition(str(ckpt), dataset, indices, part, settings, out, device, precision)


def check_sampler(sampler: SamplerConfig, task: str, run: str | Path) -> None:
    """Fail before any work when ``sampler`` is invalid or cannot run on the run's task."""
    problem = sampler.problem(task_spec(task))
    if problem:
        raise ValueError(f"{problem} (run {run})")


def sample_for_config(
    config: Any,
    task: str,
    sampler: str,
    run_dir: str | Path,
    nfe: int,
    part: tuple[int, int],
    out: str | Path,
) -> tuple[Path, bool]:
    """The workflow's entry: sample a partition with every setting taken from an i2sb Config.

    Data come from ``config.data`` (i2sb.data.build.eval_set_for_config); sampling settings from
    ``config.sample``; ``sampler`` is the label of one ``config.samplers`` entry (implicit-eta0);
    the free-form mask options are those the run recorded (``config``'s own for a published run,
    which records none). Runs on CUDA when ``sample.gpus`` > 0, else on the CPU.
    """
    from i2sb.data.build import eval_set_for_config

    options, raw = read_options(run_dir)
    if options.task != task:
        raise ValueError(f"run {run_dir} was trained for {options.task}, not {task}")
    if config.data.image_size != options.image_size:
        raise ValueError(
            f"config key data.image_size is {config.data.image_size}, "
            f"but the run {run_dir} was trained at {options.image_size}"
        )
    entry = find_sampler(config.samplers, sampler)
    check_sampler(entry, task, run_dir)
    sample = config.sample
    settings = SampleSettings(
        nfe=nfe, batch_size=sample.batch_size, clip_denoise=sample.clip_denoise, seed=sample.seed,
        save_degraded=sample.save_degraded, trajectory=True, log_count=sample.log_count,
        corruption_options=recorded_mask_options(raw, default=config), sampler=entry,
    )  # fmt: skip
    dataset, indices = eval_set_for_config(config, task)
    device = "cuda" if sample.gpus > 0 else "cpu"
    return sample_partition(
        str(run_dir), dataset, indices, part, settings, out, device, sample.precision,
        compile=config.network.compile,
    )  # fmt: skip
