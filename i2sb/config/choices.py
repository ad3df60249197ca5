"""The config's choice lists: the schema's ``choices: NAME``, the CLI's ``choices=`` and the code's checks.

A list of values a config key may take is defined here once; lists owned by a table are read from it
(metric_table.py: metric names; preset_table.py: network presets; tasks.py: the evaluation sets). ``load.py`` turns each ``choices: NAME``
into its enum. The network, the data and the corruptions read their lists from here, not from the task
table, which holds task facts only.
"""

from i2sb.metric_table import METRIC_NAMES
from i2sb.preset_table import PRESET_NAMES
from i2sb.tasks import EVAL_10K, EVAL_FULL

MASK_SOURCES = ("auto", "published", "generated")  # free-form inpainting masks
DATA_KINDS = ("demo", "imagefolder", "paired")
EVAL_SUBSETS = ("auto", EVAL_FULL, EVAL_10K)
# Autocast precisions; "auto" picks per device (i2sb/network/fastpath.py: resolve_precision).
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")
SAMPLE_PRECISIONS = ("auto", "fp32", "fp16", "bf16")
CHECKPOINT_SOURCES = ("train", "published")  # train here, or the paper's nine folders

CHOICES: dict[str, tuple[str, ...]] = {
    "mask_sources": MASK_SOURCES,
    "data_kinds": DATA_KINDS,
    "eval_subsets": EVAL_SUBSETS,
    "train_precisions": TRAIN_PRECISIONS,
    "sample_precisions": SAMPLE_PRECISIONS,
    "checkpoint_sources": CHECKPOINT_SOURCES,
    "metric_names": METRIC_NAMES,
    # evaluate.metrics: names of the table, or "all" alone (every row, so a new metric is measured too)
    "metric_selection": (*METRIC_NAMES, "all"),
    "network_presets": PRESET_NAMES,
}
