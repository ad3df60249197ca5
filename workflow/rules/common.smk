# Shared by all rules -- the validated config, paths of the results layout, and input functions.
# Imports only i2sb modules free of torch/mlflow, so planning the full benchmark stays instant.
import os
import shlex
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

from i2sb.cluster import evaluate_job_resources, gather_job_resources, sample_job_resources
from i2sb.config import SCHEMA_PATH, coerce_values, config_from_dict
from i2sb.planning import (
    SLICE_KEYS,
    check_inputs,
    checkpoint_changed,
    download_slice_keys,
    recorded_files_changed,
    recorded_folder,
    sampler_slice,
    slice_digest,
    slice_values,
    sources_changed,
)
from i2sb.data.sources import paired_sources_changed
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
# The run folder: every results path of the workflow starts here (the library builds none).
RUN = str(Path(CFG.results_dir) / CFG.benchmark)
TASKS = list(CFG.tasks)
NFES = list(CFG.nfe)
NPARTS = CFG.partitions
PAIRED = CFG.data.kind == "paired"
ENV = "../../envs/i2sb.yaml"  # relative to workflow/rules/
# The python of train's shell command: under --sdm conda (or apptainer) the job runs inside the declared
# environment (envs/i2sb.yaml), whose `python` it must use; otherwise the python that planned the DAG (.venv).
# Script rules (sample, evaluate, ...) get the same choice from Snakemake itself.
IN_DECLARED_ENV = bool(
    {DeploymentMethod.CONDA, DeploymentMethod.APPTAINER} & set(workflow.deployment_settings.deployment_method)
)
PYTHON = "python" if IN_DECLARED_ENV else shlex.quote(sys.executable)

# The whole resolved config, written by the resolved_config rule (planning writes no file) from the
# "all" slice; train and track read it. Every other job reads its own slice (below).
CONFIG_JSON = f"{RUN}/config.json"

# What each job reads, as an input file named by the hash of its content: RUN/config/<slice>-<sha16>.json
# (i2sb/planning.py). A changed value is a new file, so the first call after a change reruns
# exactly the jobs reading it, with or without Snakemake's .snakemake/ metadata.
VALUES = CFG.to_dict()
SLICES = {}  # slice name -> its values, read by the config_slice rule


def config_slice(name, values=None, keys=None):
    """The slice file of ``name`` (values given, or taken from VALUES by ``keys`` / SLICE_KEYS[name]).

    Snakemake reruns a job whose input is newer than its output, but not one whose input is
    missing: a slice file not there yet (a changed value, or a value switched back) is forced,
    so the jobs reading it rerun, as when they are built the first time.
    """
    if values is None:
        values = slice_values(VALUES, keys or SLICE_KEYS[name])
    SLICES[name] = values
    path = rules.config_slice.output[0].format(slice=name, digest=slice_digest(values))
    if workflow.dag is not None:  # called while Snakemake builds the DAG (an input function)
        rerun_if_changed_on_disk(path, lambda: not os.path.exists(path))
    return path


def slice_input(name, values=None, keys=None):
    """config_slice as an input function (a rule's input list is read before the DAG exists)."""
    config_slice(name, values, keys)  # registers SLICES[name] for the config_slice rule
    return lambda wildcards: config_slice(name, values, keys)


SAMPLER_INDEX = {entry.label: i for i, entry in enumerate(CFG.samplers)}


def sampler_rule_slice(rule, wildcards):
    """The slice of a sample or evaluate job: per sampler label (RUN/config/<rule>-<label>-<sha16>.json)."""
    values = sampler_slice(VALUES, SAMPLER_INDEX[wildcards.sampler], rule)
    return config_slice(f"{rule}-{wildcards.sampler}", values)


# Paths of other rules' outputs are read from those rules (rules.X.output), never spelled again here:
# the rule's output is the one place its pattern is written (tests/test_workflow_paths.py). These
# helpers are called after the rules they read are defined (a later .smk file, or an input function).


def lmdb_index(split):
    """The index convert_lmdb writes last for ``split``: its presence marks a complete LMDB."""
    return rules.convert_lmdb.output.index.format(split=split)


def paired_records(splits):
    """The records of the paired data's ``splits`` (data.smk: paired_sources), read instead of LMDBs."""
    return [rules.paired_sources.output.record.format(split=split) for split in splits]


def data_inputs(wildcards=None):
    """What training and sampling read: the converted LMDBs, or the records of the paired splits."""
    return paired_records(["train", "val"]) if PAIRED else [lmdb_index("train"), lmdb_index("val")]


def trained_folder(task):
    """The run folder training writes for ``task``: the folder of its summary (rule train's output)."""
    return str(Path(rules.train.output.summary.format(task=task)).parent)


def planned_run_folder(task):
    """The run folder sampling reads for ``task``, as planning knows it: the trained one, or the
    published folder its download record names (None before that record is written)."""
    if not CFG.published:
        return trained_folder(task)
    record = checkpoint_ready(task)
    return recorded_folder(record) if os.path.isfile(record) else None


def checkpoint_ready(task):
    """The file that marks ``task``'s run folder as ready: training's summary, or the checked download."""
    if CFG.published:
        return rules.download_checkpoint.output.record.format(task=task)
    return rules.train.output.summary.format(task=task)


def checkpoint_record(task):
    """The content fingerprint of the latest.pt sampling reads for ``task`` (rule checkpoint_record)."""
    return rules.checkpoint_record.output.record.format(task=task)


def sources_record(split):
    """What the LMDB of ``split`` was converted from (names, sizes, mtimes; rule convert_lmdb)."""
    return rules.convert_lmdb.output.sources.format(split=split)


def eval_data_dir():
    """Where sampling reads the validation images: data.root, else the converted LMDB folder."""
    return CFG.data.root or str(Path(lmdb_index("val")).parent)


def part_files(wildcards):
    """The NPARTS part files of one (task, sampler, NFE) that gather merges (rule sample's output)."""
    run = {"task": wildcards.task, "sampler": wildcards.sampler, "nfe": wildcards.nfe}
    return [rules.sample.output.part.format(**run, part=i, nparts=NPARTS) for i in range(NPARTS)]


def evaluations():
    """Every (task, sampler label, NFE) of the benchmark: one evaluation and one MLflow run each.

    A samplers entry runs on its own tasks and NFEs when it lists them (samplers[i].tasks / .nfe).
    """
    return [(t, e.label, n) for t in TASKS for e in CFG.samplers if e.runs_on(t) for n in e.nfe or NFES]


def tracked_runs():
    """Per evaluation, the files the track step records: metrics, the run folder sampled, samples."""
    runs = [{"task": t, "sampler": s, "nfe": n} for t, s, n in evaluations()]
    return [
        {
            "metrics": rules.evaluate.output.metrics.format(**run),
            # the run folder sampled: the trained one (where the results folder is now, if moved), or
            # the published one its checkpoint record names (track.py reads it there)
            "train_dir": None if CFG.published else trained_folder(run["task"]),
            "checkpoint": checkpoint_record(run["task"]),
            "samples": rules.gather.output.samples.format(**run),
        }
        for run in runs
    ]


def evaluated():
    return [run["metrics"] for run in tracked_runs()]


def image_folder_root():
    """The image folder the LMDBs are converted from: data.root, or the demo photos."""
    return CFG.data.root or rules.demo_photos.output.photos


def image_folder(split):
    """The folder of ``split`` that convert_lmdb converts."""
    return f"{image_folder_root()}/{split}"


def convert_source(wildcards):
    record, folder = sources_record(wildcards.split), image_folder(wildcards.split)
    rerun_if_changed_on_disk(record, lambda: sources_changed(record, folder))
    if CFG.data.kind == "demo":
        return rules.demo_photos.output.photos
    return []


def paired_sources_inputs(wildcards):
    record = rules.paired_sources.output.record.format(split=wildcards.split)
    changed = lambda: paired_sources_changed(record, CFG.data.root, wildcards.split)
    rerun_if_changed_on_disk(record, changed)
    return {"config": config_slice("paired_sources")}


def train_inputs(wildcards):
    adm = [rules.download_adm_checkpoint.output[0]] if CFG.network.adm_init else []
    downloads = adm + masks_record(wildcards.task)
    # the training split's identity (names, sizes, mtimes), kept in options.json: a rerun because
    # a photo was replaced trains afresh instead of resuming the finished run
    sources = paired_records(["train"]) if PAIRED else [sources_record("train")]
    return {"data": data_inputs(), "slice": config_slice("train"), "downloads": downloads,
            "sources": sources}  # fmt: skip


def record_args(flag, records):
    """train's ``flag`` arguments (each led by a space), one per record: --downloads (i2sb train
    uses the files named there, and keeps their SHA-256) or --sources (it keeps their tree)."""
    return "".join(f" {flag} {shlex.quote(record)}" for record in records)


def masks_record(task):
    """The free-form masks' download record, where ``task`` reads the published masks."""
    if CFG.data.mask_source == "published" and task_spec(task).hole_ratio is not None:
        return [rules.download_freeform_masks.output[0]]
    return []


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
    if PAIRED:  # sampling reads the validation pairs only
        data = paired_records(["val"])
    else:  # Published checkpoints need no training data: only the validation split is converted.
        data = [lmdb_index("val")] if CFG.published else data_inputs()
    inputs = {"checkpoint": checkpoint_record(wildcards.task), "data": data}
    inputs["config"] = sampler_rule_slice("sample", wildcards)
    subset = [rules.download_subset_lists.output[0]] if uses_subset_lists(wildcards.task) else []
    # the download records: sample.py reads the files they name (downloads.with_recorded_files)
    inputs["downloads"] = subset + masks_record(wildcards.task)
    return inputs


def reads_val_stats(task):
    """Non-SR FID is measured against the validation set's statistics: evaluate.fid_val_stats, or
    computed once here (needs_val_stats)."""
    return "fid" in CFG.evaluate.metrics and task_spec(task).fid_reference != FID_REF_TRAIN


def needs_val_stats(task):
    return (
        reads_val_stats(task)
        and not CFG.evaluate.fid_val_stats
        and CFG.data.kind == "imagefolder"
        and bool(CFG.data.root)
    )


def evaluate_inputs(wildcards):
    inputs = {"samples": rules.gather.output.samples.format(**wildcards)}
    inputs["config"] = sampler_rule_slice("evaluate", wildcards)
    # the download records: evaluate.py reads the files they name (downloads.with_recorded_files);
    # the masks rebuild the ones sampling used (the consistency metric)
    inputs["downloads"] = masks_record(wildcards.task)
    if "fid" in CFG.evaluate.metrics and task_spec(wildcards.task).fid_reference == FID_REF_TRAIN:
        if CFG.evaluate.require_external_metrics or CFG.downloads.fid_reference:
            inputs["downloads"].append(rules.download_fid_reference.output[0])
    if reads_val_stats(wildcards.task) and CFG.evaluate.fid_val_stats:  # the user's statistics
        inputs["downloads"].append(rules.placed_fid_val_stats.output[0])
    if needs_val_stats(wildcards.task):
        inputs["val_stats"] = rules.fid_val_stats.output.stats
    return inputs



def rerun_if_changed_on_disk(records, changed):
    """Rerun the jobs writing ``records`` (and, as their content changes, every job after) when
    what it describes was replaced in place since: a latest.pt swapped for other weights, a
    source photo replaced under the same name. ``changed`` compares by stat (nothing is read)
    with the record's own copy, so no .snakemake/ metadata is needed; the input set stays the
    same, so no rerun follows the one that is due.

    Called from the rule's input function, while Snakemake builds the DAG and before it decides
    what to run: the record joins the forced files, as `--forcerun RECORD` would. Only the
    planning process does this; a cluster job re-reads this file to run one job. (Snakemake
    9's DAG.forcefiles: tests/test_workflow_reruns.py fails if a Snakemake release changes it.)
    """
    if workflow.is_main_process and changed():
        workflow.dag.forcefiles.update([records] if isinstance(records, str) else records)


def download_inputs(job, keys=None):
    """The input function of a download job (``job``: its rule's name) reading its config slice
    (``keys``, else SLICE_KEYS[job]), through download_record_check."""
    slice_file = slice_input(job, keys=keys)
    return lambda wildcards: download_record_check(job, slice_file(wildcards))


def download_record_check(job, slice_file):
    """``slice_file``, once the record of ``job`` is forced if a file it names was replaced in
    place or is gone since (planning.recorded_files_changed): the file is verified and hashed
    again and the jobs reading the record rerun."""
    record = getattr(rules, job).output[0]
    rerun_if_changed_on_disk(record, lambda: recorded_files_changed(record))
    return slice_file


def checkpoint_record_inputs(wildcards):
    record, folder = checkpoint_record(wildcards.task), planned_run_folder(wildcards.task)
    ready = checkpoint_ready(wildcards.task)
    # a published folder is checked again too (download_checkpoint), a trained one is not retrained
    again = [record, ready] if CFG.published else [record]
    # no published folder recorded yet: download_checkpoint runs, and everything after it
    rerun_if_changed_on_disk(again, lambda: folder is not None and checkpoint_changed(record, folder))
    # no config slice: the folder is training's output or named by the download record (ready)
    return {"ready": ready}
