"""`i2sb tables`: captions that say what a figure is, footnoted gaps, a sampler column, and the
paper's rows only beside runs on its data set."""

from __future__ import annotations

import math
import re

import mlflow
import pandas as pd
import pytest
from test_tracking_data import make_run

from i2sb.cli import main
from i2sb.paper import I2SB, PAPER_RESULTS, paper_results
from i2sb.tables import degraded_check, degraded_line, make_tables, write_report
from i2sb.tables.build import (
    NO_RUN,
    SAMPLER_BEFORE_SAMPLERS,
    below_degraded,
    nfe_table,
    not_comparable,
    on_paper_data,
    paper_table,
    runs_frame,
)
from i2sb.tables.facts import REFERENCE_NAMES, table_caption
from i2sb.tables.plots import task_figure
from i2sb.tables.render import Footnotes, display, markdown
from i2sb.tracking import track

TRAINED = {"config.checkpoints.source": "train", "config.network.preset": "small"}
DEMO = {"dataset_name": "demo photos", "dataset_kind": "demo", "image_size": "64"}
DEMO |= TRAINED | {"config.train.iterations": "300"}
IMAGENET = {"dataset_name": "ImageNet", "dataset_kind": "imagenet", "image_size": "256"}
IMAGENET |= {"config.checkpoints.source": "published", "config.network.preset": "adm256"}
OFFLINE = {
    "fid": "Inception (FID) weights unavailable offline",
    "ca": "ResNet-50 (CA) weights unavailable offline",
    "lpips": "AlexNet (LPIPS) weights unavailable offline",
}


def run(task, sampler, nfe, psnr, data=DEMO, images=16, fid=None, reference="None", **extra):
    """One row shaped like mlflow.search_runs output; metrics not given are unavailable offline."""
    row = {f"params.{k}": v for k, v in data.items()}
    row |= {"params.task": task, "params.nfe": str(nfe), "params.num_images": str(images)}
    row |= {"params.fid_reference_kind": reference, "params.mask_source": "None"}
    if sampler is not None:
        row["params.sampler"] = sampler
    row |= {"metrics.psnr": psnr, "metrics.ssim": 0.6, "metrics.psnr_degraded": 18.5}
    row |= {"metrics.ssim_degraded": 0.5, "metrics.fid": fid}
    row |= {f"tags.{m}_unavailable_reason": why for m, why in OFFLINE.items()}
    row["tags.lpips_degraded_unavailable_reason"] = OFFLINE["lpips"]
    if fid is not None:
        row["tags.fid_unavailable_reason"] = None
    return row | extra


def search(rows):
    return pd.DataFrame(rows)


DEMO_RUNS = [
    run(task, sampler, nfe, 20 + nfe / 5 + (sampler == "implicit"))
    for task in ("sr4x-pool", "jpeg-10", "inpaint-center")
    for sampler in ("ddpm", "implicit")
    for nfe in (5, 20)
]


def test_runs_carry_their_sampler_and_what_they_were_evaluated_on():
    runs = runs_frame(search([run("jpeg-10", "implicit", 5, 21.0, **{"metrics.ca": 0.5})]))
    (row,) = runs.to_dict("records")
    assert (row["task"], row["sampler"], row["nfe"]) == ("jpeg-10", "implicit", 5)
    assert (row["dataset"], row["image_size"], row["num_images"]) == ("demo photos", 64, 16)
    assert row["ca"] == 50.0 and row["ca_reason"] is None  # fraction -> percent; no stale reason
    assert math.isnan(row["fid"]) and row["fid_reason"] == OFFLINE["fid"]
    assert row["fid_reference_kind"] is None  # "None" in MLflow = no FID measured


def test_runs_recorded_before_samplers_are_the_papers_sampler():
    rows = [run("jpeg-10", None, 5, 21.0), run("jpeg-10", "implicit-eta0", 5, 22.0)]
    old, new = runs_frame(search(rows[:1])), runs_frame(search(rows))
    assert list(old["sampler"]) == [SAMPLER_BEFORE_SAMPLERS]
    assert list(new["sampler"]) == [SAMPLER_BEFORE_SAMPLERS, "implicit-eta0"]  # NaN param: old run


def _dashes_have_footnotes(text: str) -> list[str]:
    cited = set(re.findall(r"–\[(\d+)\]", text))
    defined = set(re.findall(r"^\[(\d+)\] .+$", text, flags=re.MULTILINE))
    assert text.count("–") == len(re.findall(r"–\[\d+\]", text)), "a dash without a footnote"
    assert cited <= defined
    return re.findall(r"^\[\d+\] (.+)$", text, flags=re.MULTILINE)


def test_the_demo_report_names_its_data_and_never_imagenet(tmp_path):
    runs = runs_frame(search(DEMO_RUNS))
    files = write_report(runs, tmp_path, ("sr4x-pool", "jpeg-10", "inpaint-center"))
    texts = {p.name: p.read_text() for p in files if p.suffix in (".md", ".tex", ".csv")}
    assert not [name for name, text in texts.items() if "ImageNet" in text]
    assert not [name for name, text in texts.items() if "(paper)" in text]
    superres = texts["table_superres.md"]
    ours = "demo photos, 64 px, 16 images; small network, 300 training iterations; samplers ddpm, implicit at NFE 5, 20"
    assert ours in superres
    assert "no FID measured" in superres
    assert {"table_superres.md", "table_jpeg.md", "table_inpaint.md"} <= set(texts)
    assert "table_deblur.md" not in texts  # only the configured tasks get rows
    notes = _dashes_have_footnotes(texts["report.md"])
    assert OFFLINE["lpips"] in notes and OFFLINE["fid"] in notes


def test_the_demo_psnr_table_has_each_sampler_at_each_nfe_beside_the_degraded_input():
    runs = runs_frame(search(DEMO_RUNS))
    table = nfe_table(runs, "psnr", ("sr4x-pool", "jpeg-10", "inpaint-center"))
    shown = markdown(display(table, Footnotes()))
    assert "| task | sampler | degraded input | NFE 5 | NFE 20 |" in shown
    assert "| jpeg-10 | ddpm | 18.50 | 21.00 | 24.00 |" in shown
    assert "| jpeg-10 | implicit | 18.50 | 22.00 | 25.00 |" in shown
    assert len(table) == 6


def test_the_report_and_its_summary_line_flag_each_evaluation_below_its_degraded_input(tmp_path):
    # DEMO_RUNS all beat their degraded input (18.5 dB); two runs made worse: one below, one equal.
    worse = {("jpeg-10", "implicit", 20): 18.2, ("sr4x-pool", "ddpm", 5): 18.5}
    rows = [
        r | {"metrics.psnr": worse.get((r["params.task"], r["params.sampler"], int(r["params.nfe"])),
                                       r["metrics.psnr"])}
        for r in DEMO_RUNS
    ]  # fmt: skip
    runs = runs_frame(search(rows))
    flagged = below_degraded(runs)
    assert sorted(zip(flagged["task"], flagged["sampler"], flagged["nfe"], strict=True)) == sorted(
        worse
    )
    check = degraded_check(runs)
    assert check["measured"] == len(DEMO_RUNS) and len(check["below"]) == 2
    files = write_report(runs, tmp_path, ("sr4x-pool", "jpeg-10", "inpaint-center"))
    report = next(p for p in files if p.name == "report.md").read_text()
    assert report.startswith(
        "# Results\n\n**WARNING: 2 of 12 evaluations do not beat their degraded input in PSNR**\n"
    )
    assert "- jpeg-10 implicit NFE 20: 18.20 dB restored, 18.50 dB degraded\n" in report
    assert "- sr4x-pool ddpm NFE 5: 18.50 dB restored, 18.50 dB degraded\n" in report
    line = degraded_line({"degraded_check": check})
    assert (
        line.startswith("WARNING: 2 of 12 evaluations") and "jpeg-10 implicit NFE 20: 18.20" in line
    )


def test_the_report_says_when_every_evaluation_beats_its_degraded_input(tmp_path):
    runs = runs_frame(search(DEMO_RUNS))
    assert below_degraded(runs).empty
    files = write_report(runs, tmp_path, ("sr4x-pool", "jpeg-10", "inpaint-center"))
    report = next(p for p in files if p.name == "report.md").read_text()
    verdict = "every evaluation (12 of 12) beats its degraded input in PSNR"
    assert f"**{verdict}**" in report and "WARNING" not in report
    assert degraded_line({"degraded_check": degraded_check(runs)}) == verdict
    # Nothing measured is said as such, never as a pass; an older tables.json is named as one.
    unmeasured = runs.assign(psnr_degraded=math.nan)
    assert "no evaluation has both PSNRs" in degraded_line(
        {"degraded_check": degraded_check(unmeasured)}
    )
    assert "rerun the report" in degraded_line({"num_runs": 12})


def test_a_missing_run_is_a_footnoted_gap_and_the_csv_cell_is_empty(tmp_path):
    gone = {"params.task": "jpeg-10", "params.nfe": "20", "params.sampler": "implicit"}
    rows = [r for r in DEMO_RUNS if any(r[k] != v for k, v in gone.items())]
    runs = runs_frame(search(rows))
    table = nfe_table(runs, "psnr", ("jpeg-10",))
    assert table["NFE 20_reason"].isna().tolist() == [True, False]
    assert table["NFE 20_reason"].iloc[1] == NO_RUN
    files = write_report(runs, tmp_path, ("jpeg-10",))
    notes = _dashes_have_footnotes((tmp_path / "nfe_psnr.md").read_text())
    assert notes == [NO_RUN]
    csv_path = next(p for p in files if p.name == "nfe_psnr.csv")
    text = csv_path.read_text()
    assert text.startswith("task,sampler,degraded input,NFE 5,NFE 20\n")
    assert "–" not in text and "jpeg-10,implicit,18.5,22.0,\n" in text
    assert pd.read_csv(csv_path)["NFE 20"].isna().tolist() == [False, True]


def test_only_the_configured_tasks_get_rows_and_other_tasks_their_own_table(tmp_path):
    rows = [*DEMO_RUNS, run("jpeg-37", "ddpm", 5, 30.0)]
    runs = runs_frame(search(rows))
    write_report(runs, tmp_path, ("jpeg-10", "jpeg-37", "blur-uni"))
    names = sorted(p.name for p in tmp_path.glob("table_*.md"))
    assert names == ["table_deblur.md", "table_jpeg.md", "table_other.md"]
    jpeg = (tmp_path / "table_jpeg.md").read_text()
    assert "jpeg-10" in jpeg and "jpeg-5" not in jpeg and "sr4x" not in jpeg
    assert "| jpeg-37 | I2SB (ours) | ddpm | 5 |" in (tmp_path / "table_other.md").read_text()
    assert NO_RUN in (tmp_path / "table_deblur.md").read_text()  # configured, no run: a gap
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "jpeg-10_vs_nfe.png",
        "jpeg-37_vs_nfe.png",
    ]


def test_one_label_per_method_and_a_degraded_row_per_task():
    runs = runs_frame(search(DEMO_RUNS))
    table = paper_table(runs, ("jpeg-10", "sr4x-pool"), with_paper=False)
    assert set(table["method"]) == {f"{I2SB} (ours)", "degraded input"}
    degraded = table[table["method"] == "degraded input"]
    assert list(degraded["task"]) == ["jpeg-10", "sr4x-pool"] and (degraded["psnr"] == 18.5).all()
    assert table.groupby("task")["method"].first().eq("degraded input").all()  # it leads


def imagenet_runs():
    full = run("sr4x-pool", "ddpm", 999, 25.0, IMAGENET, 50_000, 2.9, "adm_train_batch")
    subset = run("sr4x-pool", "implicit", 10, 24.0, IMAGENET, 1_000, 5.0, "adm_train_batch")
    own = run("jpeg-5", "ddpm", 100, 26.0, IMAGENET, 10_000, 6.0, "clean_images")
    return runs_frame(search([full, subset, own]))


def test_imagenet_runs_sit_beside_the_papers_rows_and_say_whether_they_compare():
    runs = imagenet_runs()
    assert on_paper_data(runs) and not on_paper_data(runs_frame(search(DEMO_RUNS)))
    table = paper_table(runs, ("sr4x-pool", "jpeg-5"), with_paper=True)
    paper = table[table["method"].str.endswith("(paper)")]
    assert list(paper["fid"]) == [r.fid for t in ("sr4x-pool", "jpeg-5") for r in paper_results(t)]
    ours = table[table["method"] == f"{I2SB} (ours)"].set_index(["task", "nfe"])["comparable"]
    assert ours[("sr4x-pool", 999)] == ""
    assert ours[("sr4x-pool", 10)] == "1,000 images, not the paper's 50,000"
    assert ours[("jpeg-5", 100)] == "FID against clean_images, not val_stats"
    sizes = {999: 64, 10: 256, 100: pd.NA}
    smaller = runs.assign(image_size=pd.array(runs["nfe"].map(sizes), dtype="Int64"))
    resized = paper_table(smaller, ("sr4x-pool", "jpeg-5"), with_paper=True)
    why = resized.dropna(subset=["comparable"]).set_index("nfe")["comparable"]
    assert why[999] == "64 px, not 256 px"
    assert why[100].startswith("resolution not recorded, not 256 px; FID against")
    notes = Footnotes()
    shown = markdown(display(table, notes))
    assert "| sr4x-pool | I2SB (ours) | ddpm | 999 | 2.90 |" in shown and "| yes |" in shown
    assert any("not comparable with the paper's figures: 1,000 images" in n for n in notes.texts)


def test_a_caption_names_what_was_sampled_and_says_when_it_was_not_recorded():
    mixed = [run("jpeg-10", "ddpm", 5, 21.0), run("jpeg-10", "ddpm", 20, 21.0, data=DEMO | TRAINED)]
    mixed[1]["params.config.train.iterations"] = "600"
    caption = table_caption("JPEG", runs_frame(search(mixed)), ("jpeg-10",), with_paper=False)
    assert "; small network, 300 or 600 training iterations;" in caption
    bare = {k: v for k, v in DEMO.items() if not k.startswith("config.")}
    caption = table_caption("JPEG", runs_frame(search([run("jpeg-10", "ddpm", 5, 21.0, data=bare)])),
                            ("jpeg-10",), with_paper=False)  # fmt: skip
    assert "; network not recorded;" in caption


def test_the_imagenet_caption_names_ours_and_the_papers_evaluation():
    runs = imagenet_runs()
    caption = table_caption("4x super-resolution", runs, ("sr4x-pool",), with_paper=True)
    assert (
        "Ours: ImageNet, 256 px, 1,000 or 50,000 images; the paper's published checkpoints;"
        in caption
    )
    assert "samplers ddpm, implicit at NFE 10, 999" in caption
    assert "FID reference: ADM's training-set batch" in caption
    assert (
        "quoted from Liu et al. (ICML 2023): ImageNet, 256 px, 50,000 validation images" in caption
    )


def test_every_fid_reference_kind_the_evaluation_writes_has_words():
    from i2sb.metrics.evaluate import FID_REFERENCE_KINDS

    assert set(REFERENCE_NAMES) == set(FID_REFERENCE_KINDS)


def test_the_papers_rows_keep_its_order_and_name_only_known_tasks():
    for task in {r.task for r in PAPER_RESULTS}:
        rows = paper_results(task)
        i2sb = [r for r in rows if r.method == I2SB]
        assert rows[: len(i2sb)] == sorted(i2sb, key=lambda r: -r.nfe)  # I2SB first, NFE down


def test_plots_tick_the_measured_nfes_draw_a_line_per_sampler_and_fit_their_notes():
    import matplotlib.pyplot as plt

    runs = runs_frame(search(DEMO_RUNS))
    fig = task_figure(runs, "jpeg-10", with_paper=False)
    try:
        psnr_axis = fig.axes[0]
        assert list(psnr_axis.get_xticks()) == [5, 20]
        labels = [line.get_label() for line in psnr_axis.get_lines()]
        assert labels == [f"{I2SB} (ours), ddpm", f"{I2SB} (ours), implicit", "degraded input"]
        assert [a.get_title() for a in fig.axes] == [
            "PSNR (higher is better)",
            "SSIM (higher is better)",
        ]
        fig.canvas.draw()
        frame = fig.bbox
        texts = [t for t in fig.texts if t.get_text()] + [fig._suptitle]
        assert any(OFFLINE["fid"] in t.get_text() for t in texts)
        for text in texts:
            box = text.get_window_extent()
            assert box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
            assert box.y1 <= frame.y1, text.get_text()
    finally:
        plt.close(fig)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """A sqlite store holding sr4x-pool at NFE 5 and 20 and jpeg-5 at NFE 5 only."""
    root = tmp_path_factory.mktemp("tables")
    uri = f"sqlite:///{root}/mlflow.db"
    for task, nfe, fid in (("sr4x-pool", 5, None), ("sr4x-pool", 20, 30.0), ("jpeg-5", 5, 50.0)):
        args = make_run(root / "bench", task=task, nfe=nfe, fid=fid)
        track(**args, tracking_uri=uri, artifact_root=str(root / "art"))
    return {"uri": uri, "root": root}


def test_tables_from_a_store(tracked, tmp_path):
    out = tmp_path / "tables"
    argv = ["tables", "--tracking-uri", tracked["uri"], "--experiment", "bench", "--out", str(out),
            "--artifact-root", str(tracked["root"] / "art"), "--task", "sr4x-pool",
            "--task", "sr4x-bicubic"]  # fmt: skip
    assert main(argv) == 0
    superres = (out / "table_superres.md").read_text()
    assert "| sr4x-pool | I2SB (ours) | ddpm | 20 | 30.00 |" in superres
    assert "| sr4x-bicubic | I2SB (ours) |  |  | –[" in superres
    assert not list(out.glob("table_jpeg.*"))  # jpeg-5 has runs but is not asked for
    _dashes_have_footnotes(superres)
    assert (out / "table_superres.tex").read_text().startswith(r"\begin{table}")
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["sr4x-pool_vs_nfe.png"]


def test_the_summary_run_is_one_and_holds_the_tables(tracked, tmp_path):
    first = make_tables(tracked["uri"], "bench", tmp_path / "a")
    second = make_tables(tracked["uri"], "bench", tmp_path / "b")
    assert first["run_id"] == second["run_id"] and second["num_runs"] == 3
    assert second["degraded_check"] == {"measured": 0, "below": []}  # no degraded PSNR recorded
    client = mlflow.MlflowClient(tracked["uri"])
    summaries = client.search_runs(
        [first["report_experiment_id"]], filter_string="tags.`i2sb.kind` = 'summary'"
    )
    assert len(summaries) == 1
    # Apart from the evaluations: their experiment's runs table holds no summary run.
    assert client.get_experiment(first["report_experiment_id"]).name == "bench/report"
    kinds = {r.data.tags["i2sb.kind"] for r in client.search_runs([first["experiment_id"]])}
    assert kinds == {"eval"}
    names = {a.path for a in client.list_artifacts(first["run_id"], "tables")}
    assert {"tables/table_superres.md", "tables/report.md", "tables/plots"} <= names


def test_generated_masks_are_noted_on_the_free_form_tasks_only():
    """The task table's hole_ratio says which tasks use free-form masks (not a name prefix)."""
    rows = [
        run(task, "ddpm", 5, 20.0, data=IMAGENET, **{"params.mask_source": "generated"})
        for task in ("inpaint-freeform1020", "inpaint-center")
    ]
    why = {
        r["task"]: not_comparable(pd.Series(r)) for r in runs_frame(search(rows)).to_dict("records")
    }
    assert "generated free-form masks, not the paper's" in why["inpaint-freeform1020"]
    assert not any("free-form" in line for line in why["inpaint-center"])
