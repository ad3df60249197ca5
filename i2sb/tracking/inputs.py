"""Read what the pipeline wrote (docs/CONTRACTS.md) into plain values that MLflow can record.

No MLflow here: these readers check the files and say which file and key is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# training metrics.jsonl field -> MLflow metric name
CURVE_METRICS = {
    "loss": "train_loss",
    "lr": "lr",
    "it_per_s": "train_it_per_s",
    "images_per_s": "train_images_per_s",
    "val_psnr": "val_psnr",
    "val_psnr_degraded": "val_psnr_degraded",
}

# metrics.json's "sampling" figures (images/s, s/NFE) as MLflow metrics: timings, which a rerun of
# the same sampling changes, so they update a run in place (store.RunRecord.volatile).
SAMPLING_PREFIX = "sampling_"


@dataclass(frozen=True)
class EvalResult:
    """One ``RUN/eval/<task>/<sampler>/nfe<K>/metrics.json``: values, and reasons for the missing ones."""

    task: str
    nfe: int
    num_images: int | None
    values: dict[str, float]  # metric name -> value
    reasons: dict[str, str]  # metric name -> why it has no value
    fid_reference: str | None
    fid_reference_kind: str | None = None  # i2sb.metrics.evaluate.FID_REFERENCE_KINDS
    image_size: int | None = None
    dataset: dict[str, Any] | None = None  # the samples' meta "dataset"; None = not recorded
    sampler: dict[str, Any] | None = None  # {"name", "label", "options"}; None = not recorded


def read_json(path: str | Path, what: str) -> dict[str, Any]:
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {path} is not valid JSON: {err}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{what} {path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _require(obj: dict[str, Any], key: str, path: Path, kinds: type | tuple[type, ...]) -> Any:
    if key not in obj:
        raise ValueError(f"{path}: missing key {key!r}")
    if not isinstance(obj[key], kinds) or isinstance(obj[key], bool):
        raise ValueError(f"{path}: key {key!r} is {obj[key]!r}, expected {kinds}")
    return obj[key]


def read_eval_metrics(path: str | Path) -> EvalResult:
    """Parse an evaluation result; a metric is either a number or ``null`` with a reason."""
    path = Path(path)
    obj = read_json(path, "evaluation metrics file")
    values: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for name, entry in _require(obj, "metrics", path, dict).items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise ValueError(f"{path}: metrics.{name} must be {{'value': ..., 'reason': ...}}")
        value = entry["value"]
        if value is None:
            reasons[name] = str(entry.get("reason") or "no reason given by the evaluation step")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = float(value)
        else:
            raise ValueError(
                f"{path}: metrics.{name}.value is {value!r}, expected a number or null"
            )
    for name, value in (obj.get("sampling") or {}).items():
        key = SAMPLING_PREFIX + name
        if value is None:
            reasons[key] = "not reported by the sampling step"
        else:
            values[key] = float(value)
    return EvalResult(
        task=_require(obj, "task", path, str),
        nfe=_require(obj, "nfe", path, int),
        num_images=obj.get("num_images"),
        values=values,
        reasons=reasons,
        fid_reference=obj.get("fid_reference"),
        fid_reference_kind=obj.get("fid_reference_kind"),
        image_size=obj.get("image_size"),
        dataset=obj.get("dataset"),
        sampler=obj.get("sampler"),
    )


def read_training_curve(path: str | Path) -> dict[str, dict[int, float]]:
    """``metrics.jsonl`` -> {metric name: {step: value}}; a step logged twice (resumed run) keeps the last."""
    path = Path(path)
    curve: dict[str, dict[int, float]] = {name: {} for name in CURVE_METRICS.values()}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not valid JSON: {err}") from None
        step = row.get("step") if isinstance(row, dict) else None
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"{path}:{number}: expected an object with an integer 'step' >= 0")
        for field, name in CURVE_METRICS.items():
            value = row.get(field)
            if value is not None:
                curve[name][step] = float(value)
    return {name: steps for name, steps in curve.items() if steps}


def read_step_times(path: str | Path) -> dict[int, int]:
    """``metrics.jsonl`` -> {step: ms since the epoch} from the rows' ``time`` (seconds)."""
    times: dict[int, int] = {}
    for line in Path(path).read_text().splitlines():
        row = json.loads(line) if line.strip() else None
        if isinstance(row, dict) and isinstance(row.get("time"), int | float):
            times[row["step"]] = int(row["time"] * 1000)
    return times


def mtime_ms(path: str | Path) -> int:
    return int(Path(path).stat().st_mtime * 1000)


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"train.lr": "5e-05", ...}; lists and scalars as JSON text, strings as they are."""
    flat: dict[str, str] = {}
    for key, value in obj.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return flat


# Config keys that say where, and beside which other jobs, a run was made, never what it measured
# (results do not depend on them): the benchmark's other tasks, NFEs and samplers, partitioning,
# resources, the tracking store. They are tags (``config_context``), which a rerun may update, so
# editing them keeps the runs' ids; every other key is a param, whose change replaces a run.
CONTEXT_KEYS = (
    "results_dir", "tasks", "nfe", "samplers", "partitions", "tracking", "train.resources",
    "sample.gpus", "sample.cpus", "data.num_workers",
)  # fmt: skip


def _is_context(key: str) -> bool:
    return any(key == c or key.startswith(c + ".") for c in CONTEXT_KEYS)


def _config_values(config: dict[str, Any], task: str) -> dict[str, str]:
    """The resolved config flattened as ``config.<key>``, with the per-task settings that the
    config leaves to the task table (bridge.beta_max, bridge.ot_ode = null) filled in."""
    from i2sb.config import config_from_dict

    cfg = config_from_dict(config, source="the resolved config")
    bridge = config.get("bridge") or {}
    resolved = {**bridge, "beta_max": cfg.beta_max(task), "ot_ode": cfg.ot_ode(task)}
    return {f"config.{k}": v for k, v in flatten({**config, "bridge": resolved}).items()}


def config_params(config: dict[str, Any], task: str) -> dict[str, str]:
    """The config keys that decide what a run of ``task`` measured, as MLflow params."""
    values = _config_values(config, task)
    return {k: v for k, v in values.items() if not _is_context(k.removeprefix("config."))}


def config_context(config: dict[str, Any], task: str) -> dict[str, str]:
    """The CONTEXT_KEYS of the config, as MLflow tags ``config.<key>``."""
    values = _config_values(config, task)
    return {k: v for k, v in values.items() if _is_context(k.removeprefix("config."))}


def training_params(options: dict[str, Any]) -> dict[str, str]:
    """The params of a training run, from its options (options.json, or the same dict in memory)."""
    top = {k: v for k, v in options.items() if k != "config"}
    return flatten(top) | config_params(options.get("config") or {}, options["task"])


def git_commit(directory: str | Path) -> tuple[str, str | None]:
    """(commit, None) for a git checkout, else ("unknown", why)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return "unknown", f"git could not be run: {err}"
    if done.returncode != 0:
        return "unknown", f"{directory} is not a git checkout: {done.stderr.strip()}"
    return done.stdout.strip(), None


@dataclass(frozen=True)
class SamplesSummary:
    meta: dict[str, Any]
    num_images: int
    fingerprint: str  # SHA-256 of the evaluation set's identity, see data_fingerprint
    fingerprint_covers: str


def _npz_member(archive: zipfile.ZipFile, key: str, path: Path) -> str:
    member = f"{key}.npy"
    if member not in archive.namelist():
        raise KeyError(f"samples file {path} has no array {key!r}; it has {archive.namelist()}")
    return member


def read_head(path: str | Path, key: str, count: int) -> np.ndarray | None:
    """The first ``count`` items of one array of an ``.npz``, without reading the rest.

    A gathered 50k-image samples file holds ~10 GB of pixels; the sample grid needs 8 images.
    Returns None when the array is absent (``degraded`` is optional).
    """
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        if f"{key}.npy" not in archive.namelist():
            return None
        with archive.open(f"{key}.npy") as stream:
            major, _ = np.lib.format.read_magic(stream)
            read_header = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(stream)
            if fortran or dtype.hasobject:
                raise ValueError(f"{path}: array {key!r} must be C-ordered and hold no objects")
            rows = min(count, shape[0])
            per_row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
            data = stream.read(rows * per_row)
    return np.frombuffer(data, dtype=dtype).reshape((rows, *shape[1:]))


def read_samples_summary(path: str | Path, data_index: str | Path | None = None) -> SamplesSummary:
    """Meta data and the data fingerprint of a gathered ``samples.npz``: the evaluation set's
    fingerprint comes from its meta (recorded by sampling), the data is not opened."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"samples file {path} does not exist")
    with zipfile.ZipFile(path) as archive:
        for key in ("recon", "clean", "indices", "labels", "meta"):
            _npz_member(archive, key, path)
    with np.load(path, allow_pickle=False) as npz:
        indices, labels = npz["indices"], npz["labels"]
        try:
            meta = json.loads(str(npz["meta"][()]))
        except json.JSONDecodeError as err:
            raise ValueError(f"samples file {path}: 'meta' is not JSON text: {err}") from None
    if indices.shape != labels.shape or indices.ndim != 1:
        raise ValueError(
            f"samples file {path}: 'indices' {indices.shape} and 'labels' {labels.shape} "
            "must be 1-D arrays of the same length"
        )
    recorded = meta.get("data_fingerprint") if isinstance(meta, dict) else None
    if not (isinstance(recorded, dict) and isinstance(recorded.get("sha256"), str)):
        raise ValueError(
            f"samples file {path} records no evaluation set fingerprint (meta 'data_fingerprint'); "
            "it predates samples recording what they were made from: sample it again"
        )
    fingerprint, covers = data_fingerprint(indices, labels, recorded, data_index)
    return SamplesSummary(meta, int(indices.shape[0]), fingerprint, covers)


def data_fingerprint(
    indices: np.ndarray,
    labels: np.ndarray,
    recorded: dict[str, Any],
    data_index: str | Path | None = None,
) -> tuple[str, str]:
    """SHA-256 over which images were evaluated (indices, labels), the evaluation set sampling
    recorded (``recorded``: its meta "data_fingerprint", the names, sizes and labels of the whole
    set) and, if given, a dataset index file.

    Two runs with the same fingerprint were scored on the same images with the same labels.
    """
    digest = hashlib.sha256()
    digest.update(b"indices:" + np.ascontiguousarray(indices, dtype="<i8").tobytes())
    digest.update(b"labels:" + np.ascontiguousarray(labels, dtype="<i8").tobytes())
    digest.update(b"evaluation set:" + json.dumps(recorded, sort_keys=True).encode("utf-8"))
    covers = (
        f"indices+labels of {len(indices)} evaluated images + names, sizes and labels of the "
        f"{recorded.get('images')} images of the evaluation set (recorded by sampling)"
    )
    if data_index is not None:
        index_path = Path(data_index)
        if not index_path.is_file():
            raise FileNotFoundError(f"--data-index {index_path} does not exist")
        with index_path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        covers += f" + {index_path.name}"
    return digest.hexdigest(), covers


def same_value(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b
