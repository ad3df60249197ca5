# Shared by all rules -- the validated config, paths of the results layout, and input functions.
# Imports only i2sb modules free of torch/mlflow, so planning the full benchmark stays instant.
import hashlib
import json
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

from i2sb.cluster import evaluate_job_resources, gather_job_resources, sample_job_resources
from i2sb.config import SCHEMA_PATH, coerce_values, config_from_dict
from i2sb.planning import check_inputs
from i2sb.samplers import skipped_tasks
from i2sb.data.subsets import is_imagenet, resolve_eval_subset
from i2sb.tasks import EVAL_10K, FID_REF_TRAIN, task_spec

# Our check first: its message names the key; Snakemake's own validation then records the schema.
# --config gives every nested value as a string ('10'): coerce_values reads what is unambiguous.
config.update(coerce_values(config))
CFG = config_from_dict(config, source="the workflow config (--configfile / --config)")
validate(config, str(SCHEMA_PATH), set_default=False)
# A placeholder such as data.root: /path/to/imagenet stops planning here, naming the key.
check_inputs(CFG, "the workflow config (--configfile / --config)")
for line in skipped_tasks(CFG.samplers, CFG.tasks):  # e.g. cddb on inpaint-*: ddpm's images exactly
    print(line, file=sys.stderr)
RUN = str(CFG.run_dir)
TASKS = list(CFG.tasks)
NFES = list(CFG.nfe)
NPARTS = CFG.partitions
PAIRED = CFG.data.kind == "paired"
REPORT_DONE = f"{RUN}/tables/tables.json"
ENV = "../../envs/i2sb.yaml"  # relative to workflow/rules/
# The python of train's shell command: under --sdm conda (or apptainer) the job runs inside the declared
# environment (envs/i2sb.yaml), whose `python` it must use; otherwise the python that planned the DAG (.venv).
# Script rules (sample, evaluate, ...) get the same choice from Snakemake itself.
IN_DECLARED_ENV = bool(
    {DeploymentMethod.CONDA, DeploymentMethod.APPTAINER} & set(workflow.deployment_settings.deployment_method)
)
PYTHON = "python" if IN_DECLARED_ENV else sys.executable

# One resolved config file that jobs read, written by the resolved_config rule (planning writes no
# file); that rule reruns only when the resolved config changes (Snakemake's params trigger).
CONFIG_JSON = f"{RUN}/config.json"


def section_hash(*names):
    """Hash of the config sections a job depends on; a change there reruns the job."""
    blob = json.dumps({n: CFG.to_dict()[n] for n in names}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def lmdb_index(split):
    return f"{RUN}/data/{split}_faster_imagefolder.index.json"


def data_inputs(wildcards=None):
    """What training and sampling read: the converted LMDBs, or nothing for paired folders."""
    return [] if PAIRED else [lmdb_index("train"), lmdb_index("val")]


def train_dir(task):
    """The run folder sampling reads: RUN/train/<task>, or the published one (checkpoints.source)."""
    return str(CFG.checkpoint_folder(task))


def checkpoint_ready(task):
    """The file that marks ``task``'s run folder as ready: training's summary, or the checked download."""
    if CFG.published:
        return rules.download_checkpoint.output.record.format(task=task)
    return rules.train.output.summary.format(task=task)


def eval_data_dir():
    """Where sampling reads the validation images: data.root, else the converted LMDB folder."""
    return CFG.data.root or str(Path(lmdb_index("val")).parent)


def part_files(wildcards):
    folder = f"{RUN}/samples/{wildcards.task}/{wildcards.sampler}/nfe{wildcards.nfe}"
    return [f"{folder}/part_{i}_{NPARTS}.npz" for i in range(NPARTS)]


def evaluations():
    """Every (task, sampler label, NFE) of the benchmark: one evaluation and one MLflow run each.

    A samplers entry runs on its own tasks and NFEs when it lists them (samplers[i].tasks / .nfe).
    """
    return [(t, e.label, n) for t in TASKS for e in CFG.samplers if e.runs_on(t) for n in e.nfe or NFES]


def tracked_runs():
    """Per evaluation, the files the track step records: metrics, the run folder sampled, samples."""
    return [
        {
            "metrics": f"{RUN}/eval/{t}/{s}/nfe{n}/metrics.json",
            "train_dir": train_dir(t),
            "samples": f"{RUN}/samples/{t}/{s}/nfe{n}/samples.npz",
        }
        for t, s, n in evaluations()
    ]


def evaluated():
    return [run["metrics"] for run in tracked_runs()]


def image_folder_root():
    """The image folder the LMDBs are converted from: data.root, or the demo photos."""
    return CFG.data.root or rules.demo_photos.output.photos


def convert_source(wildcards):
    if CFG.data.kind == "demo":
        return rules.demo_photos.output.photos
    return []


def train_inputs(wildcards):
    inputs = {"data": data_inputs()}
    if CFG.network.adm_init:
        inputs["adm"] = rules.download_adm_checkpoint.output[0]
    return inputs


def uses_subset_lists(task):
    """Whether evaluating ``task`` reads the 10k subset lists (data.eval_subset, ImageNet folders only)."""
    if CFG.data.kind != "imagefolder":
        return False
    val = Path(CFG.data.root) / "val"
    # A folder not there yet (planning on another machine) is taken to be ImageNet, as in the benchmark.
    classes = sorted(p.name for p in val.iterdir() if p.is_dir()) if val.is_dir() else ["n00000000"]
    subset = resolve_eval_subset(CFG.data.eval_subset, task_spec(task).eval_set, is_imagenet("imagefolder", classes))
    return subset == EVAL_10K


def sample_inputs(wildcards):
    # Published checkpoints need no training data: only the validation split is converted.
    data = [lmdb_index("val")] if CFG.published and not PAIRED else data_inputs()
    inputs = {"checkpoint": checkpoint_ready(wildcards.task), "data": data}
    if uses_subset_lists(wildcards.task):
        inputs["subset"] = rules.download_subset_lists.output[0]
    if CFG.data.mask_source == "published" and task_spec(wildcards.task).hole_ratio is not None:
        inputs["masks"] = rules.download_freeform_masks.output[0]
    return inputs


def needs_val_stats(task):
    """Non-SR FID is measured against the validation set's statistics, computed once here."""
    return (
        "fid" in CFG.evaluate.metrics
        and task_spec(task).fid_reference != FID_REF_TRAIN
        and not CFG.evaluate.fid_val_stats
        and CFG.data.kind == "imagefolder"
        and bool(CFG.data.root)
    )


def evaluate_inputs(wildcards):
    inputs = {"samples": rules.gather.output.samples.format(**wildcards)}
    if "fid" in CFG.evaluate.metrics and task_spec(wildcards.task).fid_reference == FID_REF_TRAIN:
        if CFG.evaluate.require_external_metrics or CFG.downloads.fid_reference:
            inputs["fid_reference"] = rules.download_fid_reference.output[0]
    if needs_val_stats(wildcards.task):
        inputs["val_stats"] = rules.fid_val_stats.output.stats
    return inputs
