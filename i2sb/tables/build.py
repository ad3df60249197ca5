"""Our results beside the paper's, as data frames; missing values stay missing (NaN), never filled in.

Pure pandas: the input is the frame ``mlflow.search_runs`` returns, so these functions are tested
without a tracking store.
"""

from __future__ import annotations

import math

import pandas as pd

from i2sb.paper import PAPER_TABLES, paper_results

METRICS = ("fid", "ca", "psnr", "ssim")
PAPER_ORDER = tuple(task for tasks in PAPER_TABLES.values() for task in tasks)
HEADERS = {"fid": "FID", "ca": "CA (%)", "psnr": "PSNR", "ssim": "SSIM"}
# `i2sb evaluate` reports CA as the fraction of correct top-1 predictions; the paper prints percent.
CA_TO_PERCENT = 100.0


def runs_frame(search: pd.DataFrame) -> pd.DataFrame:
    """``mlflow.search_runs`` output -> one row per run: task, variant, nfe and the metrics (NaN if absent)."""
    columns = ["task", "variant", "nfe", *METRICS, *(f"{m}_reason" for m in METRICS)]
    if search.empty:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        {
            "task": search["params.task"],
            "variant": search["params.variant"],
            "nfe": pd.to_numeric(search["params.nfe"]).astype(int),
        }
    )
    for name in METRICS:
        column, reason = f"metrics.{name}", f"tags.{name}_unavailable_reason"
        frame[name] = search[column] if column in search else math.nan
        frame[f"{name}_reason"] = search[reason] if reason in search else None
    frame["ca"] = frame["ca"] * CA_TO_PERCENT
    return frame.sort_values(["task", "variant", "nfe"]).reset_index(drop=True)


def paper_table(runs: pd.DataFrame, tasks: tuple[str, ...]) -> pd.DataFrame:
    """Rows per task: the paper's I2SB and baselines, then ours per (variant, NFE); one empty 'ours' row
    when a task has no run, so the gap shows."""
    rows = []
    for task in tasks:
        for result in paper_results(task):
            rows.append(
                {
                    "task": task,
                    "method": f"{result.method} (paper)",
                    "nfe": result.nfe,
                    "fid": result.fid,
                    "ca": result.ca,
                    "psnr": None,
                    "ssim": None,
                }
            )
        ours = runs[runs["task"] == task]
        if ours.empty:
            rows.append({"task": task, "method": "ours", "nfe": None})
        for record in ours[["variant", "nfe", *METRICS]].to_dict("records"):
            rows.append({"task": task, **record, "method": f"ours ({record['variant']})"})
    table = pd.DataFrame(rows, columns=["task", "method", "nfe", *METRICS])
    table["nfe"] = table["nfe"].astype("Int64")
    return table.astype({name: float for name in METRICS})


def nfe_table(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows (task, variant) over every benchmark task, columns NFE; a task without runs is an empty row."""
    pivot = runs.pivot_table(
        index=["task", "variant"], columns="nfe", values=metric, aggfunc="first"
    )
    if pivot.empty:
        pivot = pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=["task", "variant"]))
    variants = sorted(runs["variant"].unique()) or ["i2sb"]
    order = [(task, variant) for task in PAPER_ORDER for variant in variants]
    extra = [key for key in pivot.index if key not in order]  # e.g. jpeg-<q> outside the paper
    pivot = pivot.reindex(index=order + extra, columns=sorted(runs["nfe"].unique()))
    pivot.columns = [f"NFE {nfe}" for nfe in pivot.columns]
    return pivot.reset_index()
