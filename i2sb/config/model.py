"""The config's model: frozen dataclasses holding every default, and their small derived values.

One source of truth for each key's default and type: ``load.py`` coerces and builds these from a
mapping, and the schema (``schema.yaml``) checks names, types and ranges. Imports neither torch
nor mlflow (the Snakefile imports it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from i2sb.metric_table import METRIC_NAMES
from i2sb.samplers import SamplerConfig
from i2sb.tasks import task_spec

DEFAULT_TRACKING_URI = "sqlite:///results/mlflow.db"
DEFAULT_ARTIFACT_ROOT = "results/mlartifacts"


@dataclass(frozen=True)
class DemoDataConfig:
    classes: int = 4  # how many photo "classes" the demo image folder has
    train_per_class: int = 48  # seeded random crops per class for train/
    val_per_class: int = 8  # ... and for val/
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    kind: str = "demo"  # demo | imagefolder | paired
    root: str = ""  # image folder with train/ and val/ (imagefolder, paired); "" = the workflow's
    # converted demo data (RUN/data), which it passes as --data-dir: the library never guesses it
    image_size: int = 64
    eval_subset: str = "auto"  # auto (per task table) | full | 10k
    max_eval_images: int = 0  # evaluate on the first N images of the evaluation set (0 = all)
    num_workers: int = 0
    mask_source: str = "auto"  # free-form masks: auto | published | generated
    mask_seed: int = 0  # seed of generated free-form masks (mask i depends on (seed, i) only)
    demo: DemoDataConfig = field(default_factory=DemoDataConfig)


@dataclass(frozen=True)
class NetworkConfig:
    preset: str = "small"  # a row of i2sb/preset_table.py (the schema reads its names)
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
