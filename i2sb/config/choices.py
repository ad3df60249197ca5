"""The config's choice lists, each read from its light table: the schema's ``choices: NAME``.

A choice list is defined once, by the table that owns the values (tasks.py: tasks, families'
settings; metric_table.py: metric names); ``load.py`` turns each ``choices: NAME`` into its enum.
"""

from i2sb.metric_table import METRIC_NAMES
from i2sb.tasks import CHOICES as TASK_CHOICES

# Every ``choices: NAME`` of the schema (tasks.py's lists, the metric table's names).
CHOICES = {**TASK_CHOICES, "metric_names": METRIC_NAMES}
