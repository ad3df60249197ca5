"""From a run folder and a config to the evaluation set it samples, without loading weights.

``sample_run_partition`` is what ``i2sb sample`` and the workflow both call: it reads the run's
options (cheap), builds the evaluation set for the run's task from the config's ``data`` and
``downloads`` sections, and hands both to ``sample_partition``, which loads the network only if
the part still has to be computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from i2sb.sample.options import SamplingOptions, sampling_options
from i2sb.sample.partitioned import SampleJob, sample_partition
from i2sb.samplers import SamplerConfig, find_sampler
from i2sb.tasks import task_spec


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
    config: Any,
    run_dir: str | Path,
    data_dir: str | Path,
    sampler: SamplerConfig | str,
    nfe: int,
    part: tuple[int, int],
    out: str | Path,
    *,
    task: str | None = None,
    image_size: int | None = None,
    device: str | None = None,
    mask_overrides: dict[str, Any] | None = None,
    trajectory: bool = False,
    allow_pickle: bool = False,
) -> tuple[Path, bool]:
    """Sample partition ``part`` of the run's evaluation set into ``out``; (out, computed).

    Settings come from ``config`` (an i2sb Config): ``sample`` (batch size, precision, seed, ...),
    ``data`` (kind, evaluation subset, max_eval_images) and ``downloads`` (subset lists, cache).
    ``data_dir`` is the data location (LMDB folder, image-folder root with val/, or paired data).
    The part's meta records what the data is (meta "dataset", ``describe_eval_data``) beside its
    fingerprints, so evaluation and tracking read it from the samples instead of the data.
    ``sampler`` is a SamplerConfig or the label of one ``config.samplers`` entry. ``task`` and
    ``image_size``, when given, must match the run's. The free-form mask options are those the
    run recorded (``config``'s own for a published run), updated by ``mask_overrides``. The device
    defaults to CUDA when ``sample.gpus`` > 0, else the CPU.
    """
    from i2sb.data.build import build_eval_set, describe_eval_data

    options, raw = read_options(run_dir)
    if task is not None and options.task != task:
        raise ValueError(f"run {run_dir} was trained for {options.task}, not {task}")
    if image_size is not None and image_size != options.image_size:
        raise ValueError(
            f"image size {image_size} (--image-size / data.image_size) differs from the "
            f"model's {options.image_size} (run {run_dir})"
        )
    entry = (
        sampler if isinstance(sampler, SamplerConfig) else find_sampler(config.samplers, sampler)
    )
    check_sampler(entry, options.task, run_dir)
    data, downloads = config.data, config.downloads
    dataset, indices = build_eval_set(
        options.task, data.kind, data_dir, options.image_size, data.eval_subset,
        data.max_eval_images, downloads.subset_fn, downloads.subset_label, downloads.cache_dir,
        allow_pickle,
    )  # fmt: skip
    if not indices:
        raise ValueError(f"the evaluation set in {data_dir} is empty")
    described = describe_eval_data(
        options.task, data.kind, data_dir, dataset, options.image_size, data.eval_subset,
        data.max_eval_images,
    )  # fmt: skip
    masks = recorded_mask_options(raw, default=config) | (mask_overrides or {})
    job = SampleJob(nfe, config.sample, entry, masks, trajectory)
    if device is None:
        device = "cuda" if config.sample.gpus > 0 else "cpu"
    return sample_partition(
        str(run_dir), dataset, indices, part, job, out, device, compile=config.network.compile,
        data_description=described,
    )  # fmt: skip


def check_sampler(sampler: SamplerConfig, task: str, run: str | Path) -> None:
    """Fail before any work when ``sampler`` is invalid, cannot run on the run's task, or would
    only repeat ddpm's images there (cddb on inpaint-*)."""
    problem = sampler.problem(task_spec(task)) or sampler.skip_reason(task_spec(task))
    if problem:
        raise ValueError(f"{problem} (run {run})")


def expected_for_samples(
    config: Any,
    task: str,
    samples_path: str | Path,
    sampler: str | None = None,
    nfe: int | None = None,
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """``expected_identity`` for the gathered file ``samples_path`` (its part count from meta)."""
    from i2sb.sample.samplefile import open_samples

    with open_samples(samples_path) as samples:
        parts = samples.meta.get("parts")
    return expected_identity(config, task, parts, sampler, nfe, data_dir)


def expected_identity(
    config: Any,
    task: str,
    parts: int | None,
    sampler: str | None = None,
    nfe: int | None = None,
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """What a gathered samples file made under ``config`` for ``task`` must record (meta keys):
    the sample settings that change images (seed, clip_denoise), the sampler entry labelled
    ``sampler`` and ``nfe`` when given, and, when ``data_dir`` (the data folder sampling read)
    is given, the evaluation set's index fingerprint and, for a file gathered from ``parts``
    parts, the content of each part's images (read from disk: the bytes the sampler read,
    hashed again). ``evaluate`` refuses a file that differs in any. Without ``data_dir`` the
    data is not opened: the workflow resamples when its data changes.
    """
    from i2sb.data.build import eval_set_for_config
    from i2sb.data.fingerprint import combined_fingerprint, content_fingerprint, data_fingerprint
    from i2sb.data.partition import partition

    expected: dict[str, Any] = {
        "task": task,
        "seed": config.sample.seed,
        "clip_denoise": config.sample.clip_denoise,
    }
    if sampler is not None:
        expected["sampler"] = find_sampler(config.samplers, sampler).describe()
    if nfe is not None:
        expected["nfe"] = int(nfe)
    if data_dir is None:
        return expected
    dataset, indices = eval_set_for_config(config, task, data_dir)
    expected["data_fingerprint"] = data_fingerprint(dataset, indices)
    if isinstance(parts, int) and parts >= 1:
        records = [
            content_fingerprint(dataset, [indices[p] for p in partition(len(indices), i, parts)])
            for i in range(parts)
        ]
        expected["data_content"] = combined_fingerprint(records)
    return expected
