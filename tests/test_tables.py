"""`i2sb tables`: our figures beside the paper's; a missing value shows as "–", never filled in."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from test_tracking_data import make_run

from i2sb.cli import main
from i2sb.paper import PAPER_RESULTS, PAPER_TABLES, paper_results
from i2sb.tables import make_tables
from i2sb.tables.build import nfe_table, paper_table, runs_frame
from i2sb.tables.render import display, latex, markdown
from i2sb.tasks import TASKS
from i2sb.tracking import track


def _search(rows):
    """A frame shaped like mlflow.search_runs output."""
    return pd.DataFrame(
        {
            "params.task": [r[0] for r in rows],
            "params.variant": ["i2sb"] * len(rows),
            "params.nfe": [str(r[1]) for r in rows],
            "metrics.fid": [r[2] for r in rows],
            "metrics.ca": [0.5] * len(rows),
            "tags.fid_unavailable_reason": [None if r[2] else "offline" for r in rows],
        }
    )


def test_paper_tables_cover_the_nine_tasks_once():
    named = [task for tasks in PAPER_TABLES.values() for task in tasks]
    assert sorted(named) == sorted(TASKS)
    assert [r.fid for r in paper_results("sr4x-pool")] == [2.7, 3.1, 3.8, 9.9, 14.8]
    assert len(PAPER_RESULTS) == 20


def test_a_task_without_runs_gets_an_empty_ours_row():
    runs = runs_frame(_search([("jpeg-5", 5, 40.0)]))
    table = paper_table(runs, PAPER_TABLES["jpeg"])
    ours = table[table["method"].str.startswith("ours")]
    assert list(ours["task"]) == ["jpeg-5", "jpeg-10"]
    assert ours.iloc[0]["fid"] == 40.0 and ours.iloc[0]["ca"] == 50.0  # CA fraction -> percent
    assert ours.iloc[1][["fid", "ca", "psnr", "ssim"]].isna().all()
    shown = markdown(display(table))
    assert "| jpeg-10 | ours | – | – | – | – | – |" in shown
    assert "| jpeg-5 | I2SB (paper) | 100 | 5.40 | 67.50 | – | – |" in shown


def test_nfe_table_has_every_task_and_every_nfe():
    runs = runs_frame(_search([("jpeg-5", 5, 40.0), ("jpeg-5", 20, None), ("blur-uni", 2, 9.0)]))
    table = nfe_table(runs, "fid")
    assert list(table.columns) == ["task", "variant", "NFE 2", "NFE 5", "NFE 20"]
    assert len(table) == len(TASKS)
    jpeg5 = table[table["task"] == "jpeg-5"].iloc[0]
    assert jpeg5["NFE 5"] == 40.0 and math.isnan(jpeg5["NFE 20"]) and math.isnan(jpeg5["NFE 2"])


def test_latex_is_booktabs_with_escapes():
    runs = runs_frame(_search([]))
    text = latex(display(paper_table(runs, PAPER_TABLES["superres"])), "4x SR_test")
    assert r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text
    assert r"$\Pi$GDM" in text and r"4x SR\_test" in text and "–" not in text


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """A sqlite store holding sr4x-pool at NFE 5 and 20 and jpeg-5 at NFE 5 only."""
    root = tmp_path_factory.mktemp("tables")
    uri = f"sqlite:///{root}/mlflow.db"
    for task, nfe, fid in (("sr4x-pool", 5, None), ("sr4x-pool", 20, 30.0), ("jpeg-5", 5, 50.0)):
        args = make_run(root / "bench", task=task, nfe=nfe, fid=fid)
        track(**args, tracking_uri=uri, artifact_root=str(root / "art"))
    return {"uri": uri, "root": root}


def test_tables_from_a_store_with_tasks_missing(tracked, tmp_path):
    out = tmp_path / "tables"
    assert (
        main(
            [
                "tables",
                "--tracking-uri",
                tracked["uri"],
                "--experiment",
                "bench",
                "--out",
                str(out),
                "--artifact-root",
                str(tracked["root"] / "art"),
            ]
        )
        == 0
    )
    superres = (out / "table_superres.md").read_text()
    assert "| sr4x-pool | ours (i2sb) | 20 | 30.00 |" in superres
    assert "| sr4x-pool | ours (i2sb) | 5 | – | – | 21.50 | 0.610 |" in superres
    assert "| sr4x-bicubic | ours | – | – | – | – | – |" in superres
    assert "| blur-uni | i2sb | – |" in (out / "nfe_fid.md").read_text()
    csv = pd.read_csv(out / "table_deblur.csv", na_values="–")
    assert csv[csv["method"] == "ours"][["FID", "PSNR"]].isna().all().all()
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == ["jpeg-5_vs_nfe.png", "sr4x-pool_vs_nfe.png"]
    for name in ("superres", "jpeg", "inpaint", "deblur"):
        assert (out / f"table_{name}.tex").read_text().startswith(r"\begin{table}")


def test_the_summary_run_is_one_and_holds_the_tables(tracked, tmp_path):
    first = make_tables(tracked["uri"], "bench", tmp_path / "a")
    second = make_tables(tracked["uri"], "bench", tmp_path / "b")
    assert first["run_id"] == second["run_id"] and second["num_runs"] == 3
    client = mlflow.MlflowClient(tracked["uri"])
    summaries = client.search_runs(
        [first["experiment_id"]], filter_string="tags.`i2sb.kind` = 'summary'"
    )
    assert len(summaries) == 1
    names = {a.path for a in client.list_artifacts(first["run_id"], "tables")}
    assert {"tables/table_superres.md", "tables/report.md", "tables/plots"} <= names
