"""Metric-vs-NFE plots: one figure per task, one panel per metric that has values, one line per sampler.

Ticks sit at the measured NFEs; the degraded inputs' score is a dashed line, so the gain shows; the
paper's I2SB figures are stars only when the runs are on its data set. The title says what the
runs are (``facts.describe_runs``) and the notes under the panels say why a metric has no panel.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from i2sb.atomic import atomic_path
from i2sb.metric_table import METRICS as METRIC_SPECS
from i2sb.metric_table import degraded_name, metric_spec
from i2sb.paper import I2SB, paper_results
from i2sb.tables.build import DEGRADED_METRICS, HEADERS, QUOTED_BY_PAPER
from i2sb.tables.facts import describe_runs

# The panels, in the metric table's order: every row marked plotted (a row not plotted is said
# under the figure, never silently left out).
PLOT_METRICS = tuple(spec.name for spec in METRIC_SPECS if spec.plotted)
NOT_PLOTTED = tuple(spec.name for spec in METRIC_SPECS if not spec.plotted)
PANEL_INCHES = 3.4
LINE_INCHES = 0.17  # one line of 8-pt text


def _notes(ours: pd.DataFrame, missing: list[str], width: int) -> list[str]:
    lines = []
    for metric in missing:
        reasons = ours[f"{metric}_reason"].dropna().unique()
        why = "; ".join(str(r) for r in reasons) or "no run recorded it"
        lines += textwrap.wrap(f"{HEADERS[metric]}: no value - {why}", width)
    return lines


def _panel(axis, ours: pd.DataFrame, metric: str, with_paper: bool, task: str) -> None:
    for sampler, group in ours.groupby("sampler"):
        valid = group.dropna(subset=[metric]).sort_values("nfe")
        if not valid.empty:
            axis.plot(valid["nfe"], valid[metric], marker="o", label=f"{I2SB} (ours), {sampler}")
    if metric in DEGRADED_METRICS:
        degraded = ours[degraded_name(metric)].dropna()
        if not degraded.empty:
            axis.axhline(degraded.iloc[0], color="grey", linestyle="--", label="degraded input")
    if with_paper and metric in QUOTED_BY_PAPER:
        paper = [r for r in paper_results(task) if r.method == I2SB]
        axis.scatter([r.nfe for r in paper], [getattr(r, metric) for r in paper], marker="*",
                     s=120, color="black", label=f"{I2SB} (paper)", zorder=3)  # fmt: skip
    nfes = sorted(ours["nfe"].unique())
    axis.set_xscale("log")
    axis.set_xticks(nfes, [str(n) for n in nfes])
    axis.minorticks_off()
    better = "lower is better" if metric_spec(metric).lower_is_better else "higher is better"
    axis.set(xlabel="NFE", ylabel=HEADERS[metric], title=f"{HEADERS[metric]} ({better})")
    axis.legend(fontsize=7)


def task_figure(runs: pd.DataFrame, task: str, with_paper: bool):
    """The matplotlib figure of ``task``'s metrics against NFE (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = runs[runs["task"] == task]
    shown = [m for m in PLOT_METRICS if ours[m].notna().any()]
    missing = [m for m in PLOT_METRICS if m not in shown]
    columns = max(len(shown), 1)
    width = PANEL_INCHES * columns
    chars = int(width * 15)  # characters of 8-pt text per line
    title = textwrap.wrap(f"{task}: {describe_runs(ours)}", chars * 9 // 10)
    notes = _notes(ours, missing, chars)
    notes += [f"{HEADERS[m]}: not plotted (the metric table says so)" for m in NOT_PLOTTED]
    top, bottom = len(title) * LINE_INCHES * 1.2 + 0.1, (len(notes) + 0.5) * LINE_INCHES
    height = PANEL_INCHES + top + bottom
    fig, axes = plt.subplots(1, columns, figsize=(width, height), squeeze=False)
    for axis, metric in zip(axes[0], shown):
        _panel(axis, ours, metric, with_paper, task)
    if not shown:
        axes[0][0].set_axis_off()
    fig.suptitle("\n".join(title), fontsize=9)
    if notes:
        fig.text(0.01, 0.01, "\n".join(notes), fontsize=8, va="bottom", ha="left")
    fig.tight_layout(rect=(0, bottom / height, 1, 1 - top / height))
    return fig


def plot_task(runs: pd.DataFrame, task: str, path: Path, with_paper: bool) -> None:
    """Write ``path`` (PNG): the metrics of ``task`` against NFE."""
    import matplotlib.pyplot as plt

    fig = task_figure(runs, task, with_paper)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
