"""Tables as Markdown, LaTeX (booktabs) and CSV.

A missing value prints as "–" with a footnote giving the reason (``<column>_reason`` of the table);
the CSV leaves it empty. Columns that describe the runs (data set, image count, ...) go to the
caption and the CSV, not to the printed table.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from i2sb.atomic import write_text
from i2sb.metric_table import METRICS as METRIC_SPECS
from i2sb.tables.build import DEGRADED, HEADERS, METRICS

MISSING = "–"
NO_REASON = "no value, and no reason was recorded"
DECIMALS = {spec.name: spec.decimals for spec in METRIC_SPECS}
COMPARABLE = "comparable"
PRINTED_HEADERS = {**HEADERS, "nfe": "NFE", COMPARABLE: "comparable with the paper"}
# Columns only the CSV holds: the caption says them for the whole table.
CSV_ONLY = ("dataset", "image_size", "num_images", "fid_reference_kind")
_LATEX_ESCAPES = {"_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "Π": r"$\Pi$", MISSING: "--"}


class Footnotes:
    """Numbered notes, one per distinct text, in the order they are first cited."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def cite(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def lines(self) -> list[str]:
        return [f"[{number}] {text}" for number, text in enumerate(self.texts, start=1)]


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _is_value_column(column: str) -> bool:
    return column in METRICS or column == DEGRADED or column.startswith("NFE ")


def printed_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if not c.endswith("_reason") and c not in CSV_ONLY]


def display(table: pd.DataFrame, notes: Footnotes, decimals: int = 2) -> pd.DataFrame:
    """The printed table: fixed decimals per metric (else ``decimals``), "–[n]" for a missing value
    whose reason is footnote n; an empty descriptive cell without a reason stays blank."""
    shown = pd.DataFrame(index=table.index)
    for column in printed_columns(table):
        places = DECIMALS.get(column, decimals)
        reasons = table.get(f"{column}_reason", pd.Series(None, index=table.index))
        cells = []
        for value, reason in zip(table[column], reasons, strict=True):
            if column == COMPARABLE:
                cells.append(_comparable(value, notes))
            elif not _missing(value):
                cells.append(f"{value:.{places}f}" if isinstance(value, float) else str(value))
            elif _is_value_column(column) or not _missing(reason):
                cells.append(MISSING + notes.cite(NO_REASON if _missing(reason) else str(reason)))
            else:
                cells.append("")
        shown[PRINTED_HEADERS.get(column, column)] = cells
    return shown


def _comparable(why, notes: Footnotes) -> str:
    if _missing(why):
        return ""  # a row of the paper or of the degraded inputs
    if not why:
        return "yes"
    return "no" + notes.cite(f"not comparable with the paper's figures: {why}")


def markdown(shown: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _latex_text(text: str) -> str:
    for plain, escaped in _LATEX_ESCAPES.items():
        text = text.replace(plain, escaped)
    return text


def latex(shown: pd.DataFrame, caption: str, notes: list[str] = ()) -> str:
    """A booktabs tabular in a table float, footnotes below it; needs \\usepackage{booktabs}."""
    align = "".join("l" if c in ("task", "method", "sampler") else "r" for c in shown.columns)
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
            *([r"\par\footnotesize"] if notes else []),
            *(_latex_text(note) + r"\\" for note in notes),
            r"\end{table}",
            "",
        ]
    )


def csv_text(table: pd.DataFrame) -> str:
    """Raw values (no rounding, no markers); a missing value is an empty cell."""
    columns = [c for c in table.columns if not c.endswith("_reason")]
    named = {c: HEADERS[c] for c in columns if c in HEADERS}  # "CA (%)": the unit travels along
    return table[columns].rename(columns=named).to_csv(index=False, na_rep="")


def write_table(
    table: pd.DataFrame, out_dir: Path, name: str, caption: str, decimals: int = 2
) -> tuple[list[Path], str]:
    """DIR/<name>.md, .tex and .csv; returns the paths and the Markdown text."""
    notes = Footnotes()
    shown = display(table, notes, decimals)
    text = f"**{caption}**\n\n" + markdown(shown)
    text += "".join(f"\n{line}\n" for line in notes.lines())
    paths = [out_dir / f"{name}.{ext}" for ext in ("md", "tex", "csv")]
    write_text(paths[0], text)
    write_text(paths[1], latex(shown, caption, notes.lines()))
    write_text(paths[2], csv_text(table))
    return paths, text
