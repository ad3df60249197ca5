"""Tables as Markdown, LaTeX (booktabs) and CSV, and the metric-vs-NFE plots; a missing value prints as "–"."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from i2sb.atomic import atomic_path, write_text
from i2sb.paper import I2SB, paper_results
from i2sb.tables.build import HEADERS

MISSING = "–"
DECIMALS = {"fid": 2, "ca": 2, "psnr": 2, "ssim": 3}
_LATEX_ESCAPES = {"_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "Π": r"$\Pi$", MISSING: "--"}


def display(table: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """Numbers as text with fixed decimals per metric column (else ``decimals``); NaN/NA as "–"."""
    shown = pd.DataFrame(index=table.index)
    for column in table.columns:
        places = DECIMALS.get(column, decimals)
        shown[HEADERS.get(column, column.replace("nfe", "NFE"))] = [
            _cell(value, places) for value in table[column]
        ]
    return shown


def _cell(value, decimals: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def markdown(shown: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _latex_text(text: str) -> str:
    for plain, escaped in _LATEX_ESCAPES.items():
        text = text.replace(plain, escaped)
    return text


def latex(shown: pd.DataFrame, caption: str) -> str:
    """A booktabs tabular in a table float; needs \\usepackage{booktabs}."""
    align = "".join("l" if c in ("task", "method", "variant") else "r" for c in shown.columns)
    body = [
        " & ".join(_latex_text(c) for c in row) + r" \\" for row in shown.itertuples(index=False)
    ]
    return "\n".join(
        [
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{{_latex_text(caption)}}}",
            rf"\begin{{tabular}}{{{align}}}",
            r"\toprule",
            " & ".join(_latex_text(c) for c in shown.columns) + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
            "",
        ]
    )


def write_table(
    table: pd.DataFrame, out_dir: Path, name: str, caption: str, decimals: int = 2
) -> list[Path]:
    """DIR/<name>.md, .tex and .csv; returns the paths."""
    shown = display(table, decimals)
    paths = [out_dir / f"{name}.{ext}" for ext in ("md", "tex", "csv")]
    write_text(paths[0], f"**{caption}**\n\n" + markdown(shown))
    write_text(paths[1], latex(shown, caption))
    write_text(paths[2], shown.to_csv(index=False))
    return paths


def plot_task(runs: pd.DataFrame, task: str, path: Path) -> None:
    """FID and PSNR against NFE for one task, one line per variant; the paper's I2SB FID as stars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = runs[runs["task"] == task].sort_values("nfe")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for axis, metric in zip(axes, ("fid", "psnr")):
        for variant, group in ours.groupby("variant"):
            valid = group.dropna(subset=[metric])
            if valid.empty:
                continue
            axis.plot(valid["nfe"], valid[metric], marker="o", label=f"ours ({variant})")
        if metric == "fid":
            paper = [r for r in paper_results(task) if r.method == I2SB]
            axis.scatter(
                [r.nfe for r in paper],
                [r.fid for r in paper],
                marker="*",
                s=120,
                color="black",
                label="I2SB (paper)",
            )
        if ours[metric].isna().all():
            reasons = ours[f"{metric}_reason"].dropna().unique()
            why = str(reasons[0])[:60] if len(reasons) else "no run"
            axis.text(
                0.5,
                0.5,
                f"no {metric.upper()} values:\n{why}",
                ha="center",
                va="center",
                transform=axis.transAxes,
                fontsize=8,
                wrap=True,
            )
        axis.set(
            xscale="log", xlabel="NFE", ylabel=HEADERS[metric], title=f"{task}: {HEADERS[metric]}"
        )
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
