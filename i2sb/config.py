"""Typed configuration, built once from config.yaml and validated.

The dataclasses below hold every default (one source of truth); ``config.schema.yaml``
beside this file checks types and ranges and is also what the Snakefile validates against.
Imports neither torch nor mlflow.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from i2sb.atomic import write_json
from i2sb.metric_table import METRIC_NAMES
from i2sb.samplers import SamplerConfig, samplers_problem
from i2sb.samplers.entry import entry_schema
from i2sb.tasks import CHOICES as TASK_CHOICES
from i2sb.tasks import task_spec

# Every ``choices: NAME`` of the schema (tasks.py's lists, the metric table's names).
CHOICES = {**TASK_CHOICES, "metric_names": METRIC_NAMES}

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")
DEFAULT_TRACKING_URI = "sqlite:///results/mlflow.db"
DEFAULT_ARTIFACT_ROOT = "results/mlartifacts"


class ConfigError(ValueError):
    """A configuration value is missing, misspelt or out of range; the message names the key."""


@dataclass(frozen=True)
class DemoDataConfig:
    classes: int = 4  # how many photo "classes" the demo image folder has
    train_per_class: int = 48  # seeded random crops per class for train/
    val_per_class: int = 8  # ... and for val/
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    kind: str = "demo"  # demo | imagefolder | paired
    root: str = ""  # image folder with train/ and val/ (imagefolder, paired); "" = <run dir>/photos
    image_size: int = 64
    eval_subset: str = "auto"  # auto (per task table) | full | 10k
    max_eval_images: int = 0  # evaluate on the first N images of the evaluation set (0 = all)
    num_workers: int = 0
    mask_source: str = "auto"  # free-form masks: auto | published | generated
    mask_seed: int = 0  # seed of generated free-form masks (mask i depends on (seed, i) only)
    demo: DemoDataConfig = field(default_factory=DemoDataConfig)


@dataclass(frozen=True)
class NetworkConfig:
    preset: str = "small"  # tiny (32 px) | small (64 px) | adm256 (the paper's)
    adm_init: bool = False  # start from ADM's 256x256 unconditional checkpoint
    use_checkpoint: bool = False  # activation checkpointing (less memory, slower)
    compile: bool = False  # torch.compile the network (train and sample); eager if it cannot


@dataclass(frozen=True)
class BridgeConfig:
    interval: int = 1000  # N, the number of discrete steps
    t0: float = 1e-4
    T: float = 1.0
    beta_max: float | None = None  # None: from the task table (0.3 or 1.0)
    ot_ode: bool | None = None  # None: from the task table
    cond_x1: bool = False  # also feed x1 to the network (image-to-image translation)


@dataclass(frozen=True)
class TrainResources:
    gpus: int = 0  # GPUs per node (0 = CPU)
    nodes: int = 1
    cpus_per_task: int = 2
    mem_mb: int = 8000
    runtime_min: int = 60
    # Seconds every rank may take to reach the master (rank 0's host) before the job fails with an error
    # naming MASTER_ADDR; a missing node then ends the job instead of hanging it (i2sb/distributed.py).
    rendezvous_timeout_s: float = 300.0


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = 300
    batch_size: int = 16  # global batch = world size x microbatch x accumulation
    microbatch: int = 8
    lr: float = 5e-5
    lr_step: int = 1000
    lr_gamma: float = 0.99
    weight_decay: float = 0.0
    ema_decay: float = 0.99
    grad_clip: float | None = None
    precision: str = "auto"  # auto | fp32 | bf16 (autocast; auto = bf16 where native, else fp32)
    seed: int = 42
    checkpoint_every: int = 100
    validate_every: int = 100
    validate_nfe: int = 20  # sampler steps of the periodic validation
    validate_images: int = 8
    log_every: int = 10
    resources: TrainResources = field(default_factory=TrainResources)


@dataclass(frozen=True)
class SampleConfig:
    batch_size: int = 8
    precision: str = "auto"  # auto | fp32 | fp16 | bf16 (auto = fp16 CUDA, bf16 native CPU)
    clip_denoise: bool = False
    save_degraded: bool = True
    log_count: int = 10
    seed: int = 0
    gpus: int = 0  # GPUs per sampling / evaluation job (0 = CPU)
    cpus: int = 1  # CPU cores per sampling / evaluation job (per GPU when gpus > 0)


@dataclass(frozen=True)
class EvaluateConfig:
    metrics: tuple[str, ...] = METRIC_NAMES  # of i2sb/metric_table.py; the rest: unavailable
    require_external_metrics: bool = False  # fail when a weight-needing metric cannot be had
    batch_size: int = 32
    fid_val_stats: str = ""  # npz (mu/sigma) of the val set, non-SR tasks (i2sb fid-reference)
    fid_reference_from_clean: bool = False  # non-SR without fid_val_stats: samples' clean images


@dataclass(frozen=True)
class DownloadConfig:
    cache_dir: str = ""  # "" = $I2SB_CACHE or ~/.cache/i2sb
    adm_checkpoint: str = ""  # pre-placed 256x256_diffusion_uncond.pt
    fid_reference: str = ""  # pre-placed VIRTUAL_imagenet256_labeled.npz
    freeform_masks: str = ""  # pre-placed imagenet_freeform_masks.npz
    subset_fn: str = ""  # pre-placed val_faster_imagefolder_10k_fn.txt
    subset_label: str = ""  # pre-placed val_faster_imagefolder_10k_label.txt


@dataclass(frozen=True)
class CheckpointsConfig:
    source: str = "train"  # train (the DAG trains each task) | published (the paper's nine folders)
    dir: str = ""  # published run folders <dir>/<task>/{latest.pt,options.pkl}; "" = <cache>/...


@dataclass(frozen=True)
class TrackingConfig:
    uri: str = DEFAULT_TRACKING_URI
    artifact_root: str = DEFAULT_ARTIFACT_ROOT
    experiment: str = ""  # "" = the benchmark name
    live: bool = True  # training logs to MLflow while it runs (rank 0; a failure only warns)


@dataclass(frozen=True)
class Config:
    benchmark: str = "demo"
    results_dir: str = "results"
    tasks: tuple[str, ...] = ("sr4x-pool", "jpeg-10", "inpaint-center")
    nfe: tuple[int, ...] = (5, 20)
    partitions: int = 2
    samplers: tuple[SamplerConfig, ...] = (SamplerConfig(),)  # i2sb/samplers/
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    downloads: DownloadConfig = field(default_factory=DownloadConfig)
    checkpoints: CheckpointsConfig = field(default_factory=CheckpointsConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.results_dir) / self.benchmark

    def beta_max(self, task: str) -> float:
        return (
            self.bridge.beta_max if self.bridge.beta_max is not None else task_spec(task).beta_max
        )

    def ot_ode(self, task: str) -> bool:
        return self.bridge.ot_ode if self.bridge.ot_ode is not None else task_spec(task).ot_ode

    @property
    def published(self) -> bool:
        """Whether sampling reads the published checkpoints instead of training (checkpoints.source)."""
        return self.checkpoints.source == "published"

    def checkpoint_folder(self, task: str) -> Path:
        """The run folder sampling reads for ``task``: the training output, or the published one."""
        if not self.published:
            return self.run_dir / "train" / task
        from i2sb.downloads import checkpoints_dir

        return checkpoints_dir(self.checkpoints.dir, self.downloads.cache_dir) / task

    def mask_options(self) -> dict[str, Any]:
        """Options of the free-form inpainting masks, as ``build_corruption`` takes them."""
        return {
            "mask_source": self.data.mask_source,
            "seed": self.data.mask_seed,
            "masks_path": self.downloads.freeform_masks,
            "cache_dir": self.downloads.cache_dir,
        }

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


def to_plain(obj: Any) -> Any:
    """Dataclass -> JSON-ready dict (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    return obj


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"config key {where or '<root>'!r}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key {_join(where, unknown[0])!r}; valid keys here: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in values.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            value = _build(kind, value, _join(where, name))
        elif typing.get_origin(kind) is tuple and isinstance(value, list):
            item = typing.get_args(kind)[0]
            if dataclasses.is_dataclass(item):
                value = [_build(item, v, f"{_join(where, name)}[{i}]") for i, v in enumerate(value)]
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def schema_errors(values: dict[str, Any]) -> list[str]:
    """One message per schema violation of a (partial) config, naming the key."""
    import jsonschema

    schema = resolved_schema()
    validator = jsonschema.Draft202012Validator(schema)
    non_finite = dict(_non_finite_numbers(values))
    messages = [
        f"config key {key!r}: got {value!r}, expected a finite number (not NaN or infinity)"
        for key, value in non_finite.items()
    ]
    for error in sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path)):
        key = ".".join(str(p) for p in error.absolute_path) or "<root>"
        if key in non_finite:  # said above, once
            continue
        if error.validator == "additionalProperties":
            messages.append(f"config key {key!r}: {error.message}")
        else:
            expected = error.schema.get("description") or _expected(error)
            messages.append(f"config key {key!r}: got {error.instance!r}, expected {expected}")
    return messages


def _non_finite_numbers(values: Any, key: str = "") -> typing.Iterator[tuple[str, float]]:
    """(dotted key, value) of every NaN or infinite float in ``values``, whatever its definition
    (sampler options too): JSON Schema cannot say "finite", NaN passes any minimum/maximum."""
    if isinstance(values, dict):
        for name, value in values.items():
            yield from _non_finite_numbers(value, _join(key, str(name)))
    elif isinstance(values, list | tuple):
        for i, value in enumerate(values):
            yield from _non_finite_numbers(value, _join(key, str(i)))
    elif isinstance(values, float) and not math.isfinite(values):
        yield key, values


def resolved_schema() -> dict[str, Any]:
    """config.schema.yaml, each ``choices: NAME`` as its enum, a samplers entry's from the table."""
    schema = _with_choices(yaml.safe_load(SCHEMA_PATH.read_text()))
    schema["properties"]["samplers"]["items"] = entry_schema()
    return schema


def key_choices(section: str, key: str) -> list[Any] | None:
    """The allowed values of ``section.key`` (its schema enum), or None for a free value."""
    section_schema = resolved_schema()["properties"].get(section, {})
    return section_schema.get("properties", {}).get(key, {}).get("enum")


def _with_choices(node: Any) -> Any:
    """Replace each ``choices: NAME`` with ``enum: CHOICES[NAME]``: a choice list is defined once."""
    if isinstance(node, list):
        return [_with_choices(item) for item in node]
    if not isinstance(node, dict):
        return node
    resolved = {key: _with_choices(value) for key, value in node.items() if key != "choices"}
    if "choices" in node:
        resolved["enum"] = list(CHOICES[node["choices"]])
    return resolved


def _expected(error: Any) -> str:
    schema = error.schema
    if error.validator == "enum":
        return "one of " + ", ".join(map(repr, schema["enum"]))
    if error.validator in ("minimum", "maximum", "exclusiveMinimum"):
        return f"{error.validator} {schema[error.validator]}"
    if error.validator == "type":
        return f"type {schema['type']}"
    return error.message


_NULLS = ("null", "none", "~", "")
_BOOLS = {"true": True, "false": False}


def _coerce_scalar(kind: Any, value: Any) -> Any:
    """``value`` as ``kind`` when that is unambiguous ('10' or 4.0 for an int); else unchanged.

    Strings arrive from ``snakemake --config`` (which reads every nested value as a string) and
    integral floats from YAML (``4.0``, ``1e3``); what cannot be read without guessing is left
    for the schema to reject, naming the key.
    """
    args = typing.get_args(kind)
    if type(None) in args:  # Optional[X]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULLS):
            return None
        kind = next(a for a in args if a is not type(None))
    if isinstance(value, bool):
        return value
    if kind is bool and isinstance(value, str):
        return _BOOLS.get(value.strip().lower(), value)
    if kind is int:
        number = _number(value)
        return int(number) if number is not None and float(number).is_integer() else value
    if kind is float:
        number = _number(value)
        return float(number) if number is not None else value
    if kind is str and isinstance(value, int | float):
        return str(value)
    return value


def _number(value: Any) -> float | int | None:
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number  # NaN and inf too: refused by schema_errors, naming the key
    return None


def coerce_values(values: Any, cls: type = Config) -> Any:
    """A copy of a config mapping with unambiguous values turned into the declared types.

    The dataclasses' type hints are the one definition of each key's type. Unknown keys and
    values of the wrong shape are kept as they are: validation then names them.
    """
    if not isinstance(values, dict):
        return values
    hints = typing.get_type_hints(cls)
    coerced = {}
    for name, value in values.items():
        kind = hints.get(name)
        if kind is None:
            coerced[name] = value
        elif dataclasses.is_dataclass(kind):
            coerced[name] = coerce_values(value, kind)
        elif typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            if isinstance(value, str) and value.strip().startswith("["):
                value = yaml.safe_load(value)  # a list given as text: 'nfe=[10,100]'
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                value = [value]  # one item given without brackets: 'tasks=jpeg-5'
            if not isinstance(value, list | tuple):
                coerced[name] = value
            elif dataclasses.is_dataclass(item):  # e.g. samplers: [{name: implicit, eta: '0'}]
                coerced[name] = [coerce_values(v, item) for v in value]
            else:
                coerced[name] = [_coerce_scalar(item, v) for v in value]
        else:
            coerced[name] = _coerce_scalar(kind, value)
    return coerced


def config_from_dict(values: dict[str, Any] | None, source: str = "<dict>") -> Config:
    """Coerce, validate a (partial) config mapping and fill in every default."""
    values = coerce_values(values or {})
    errors = schema_errors(values)
    if errors:
        sep = " " if len(errors) == 1 else "\n  "  # one error: one line
        raise ConfigError(f"invalid configuration in {source}:{sep}" + "\n  ".join(errors))
    cfg = _build(Config, values, "")
    _check_consistency(cfg, source)
    return cfg


def _check_consistency(cfg: Config, source: str) -> None:
    for task in cfg.tasks:
        try:
            task_spec(task)
        except KeyError as err:
            raise ConfigError(f"config key 'tasks' in {source}: {err.args[0]}") from None
    nfes = [("nfe", cfg.nfe)] + [(f"samplers[{i}].nfe", e.nfe) for i, e in enumerate(cfg.samplers)]
    for key, nfe in ((key, nfe) for key, values in nfes for nfe in values):
        if not 0 < nfe < cfg.bridge.interval:
            raise ConfigError(
                f"config key {key!r} in {source}: {nfe} is outside [1, bridge.interval - 1 = "
                f"{cfg.bridge.interval - 1}]"
            )
    problem = samplers_problem(cfg.samplers, [task_spec(task) for task in cfg.tasks])
    if problem:
        key, why = problem.split(": ", 1)
        raise ConfigError(f"config key {key!r} in {source}: {why}")
    bridge, train = cfg.bridge, cfg.train
    if not bridge.t0 < bridge.T:
        raise ConfigError(
            f"config key 'bridge.t0' in {source}: {bridge.t0} must be smaller than bridge.T = "
            f"{bridge.T}"
        )
    if not train.validate_nfe < bridge.interval:
        raise ConfigError(
            f"config key 'train.validate_nfe' in {source}: {train.validate_nfe} must be smaller "
            f"than bridge.interval = {bridge.interval}"
        )
    if train.batch_size % train.microbatch:
        raise ConfigError(
            f"config key 'train.batch_size' in {source}: {train.batch_size} is not a multiple of "
            f"train.microbatch = {train.microbatch}"
        )


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read a YAML config file (plus optional nested overrides) into a :class:`Config`."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"config file {path}: expected a mapping at the top, got {type(values).__name__}"
        )
    return config_from_dict(deep_merge(values, overrides or {}), source=str(path))


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as JSON (atomically); ``config_from_dict`` reads it back exactly."""
    write_json(path, cfg.to_dict())


def field_paths(cls: type = Config, prefix: str = "") -> list[str]:
    """Every leaf key as a dotted path (used to check that config.yaml documents them all)."""
    paths = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            paths += field_paths(kind, _join(prefix, f.name))
        else:
            paths.append(_join(prefix, f.name))
    return paths


__all__ = [
    "Config",
    "ConfigError",
    "config_from_dict",
    "load_config",
    "save_config",
    "field_paths",
]
