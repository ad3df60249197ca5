# Shared by every rule: the validated config, paths of the results layout, and input functions.
# Imports only i2sb modules free of torch/mlflow, so planning the full benchmark stays instant.
import hashlib
import json
import sys
from pathlib import Path

from snakemake.utils import validate

from i2sb.atomic import write_text
from i2sb.config import SCHEMA_PATH, config_from_dict
from i2sb.tasks import FID_REF_TRAIN, PAIRED_TASK, task_spec

validate(config, str(SCHEMA_PATH), set_default=False)
CFG = config_from_dict(config, source="the workflow config (--configfile / --config)")
RUN = str(CFG.run_dir)
TASKS = list(CFG.tasks)
NFES = list(CFG.nfe)
NPARTS = CFG.partitions
PAIRED = CFG.data.kind == "paired"
REPORT_DONE = f"{RUN}/tables/tables.json"
PYTHON = sys.executable

# One resolved config file that every job reads; rewritten only when its content changes, so
# re-planning does not make finished jobs look outdated.
CONFIG_JSON = f"{RUN}/config.json"
_resolved = json.dumps(CFG.to_dict(), indent=2, sort_keys=True) + "\n"
if not Path(CONFIG_JSON).is_file() or Path(CONFIG_JSON).read_text() != _resolved:
    write_text(CONFIG_JSON, _resolved)


wildcard_constraints:
    task=r"[a-z0-9][a-z0-9-]*",
    nfe=r"\d+",
    part=r"\d+",
    nparts=r"\d+",
    split=r"train|val",


def section_hash(*names):
    """Hash of the config sections a rule depends on: a change there reruns the rule."""
    blob = json.dumps({n: CFG.to_dict()[n] for n in names}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def lmdb_index(split):
    return f"{RUN}/data/{split}_faster_imagefolder.index.json"


def data_inputs(wildcards=None):
    """What training and sampling read: the converted LMDBs, or nothing for paired folders."""
    return [] if PAIRED else [lmdb_index("train"), lmdb_index("val")]


def needs_fid_reference():
    return CFG.evaluate.fid and any(task_spec(t).fid_reference == FID_REF_TRAIN for t in TASKS)


def train_dir(task):
    return f"{RUN}/train/{task}"


def part_files(wildcards):
    return [
        f"{RUN}/samples/{wildcards.task}/nfe{wildcards.nfe}/part_{i}_{NPARTS}.npz" for i in range(NPARTS)
    ]


def evaluated(task=None):
    return [f"{RUN}/eval/{t}/nfe{n}/metrics.json" for t in ([task] if task else TASKS) for n in NFES]
