"""The metric table: one contract over every row, and every layer reading the row, not a copy.

Weight-free metrics are perfect on identical images and get worse, step by step, as the images
are corrupted more; weight-needing ones are unavailable offline with the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_metrics_evaluate import DATASET, make_samples, offline  # noqa: F401 (fixture)
from test_tables import DEMO_RUNS, run, search

from i2sb.config import ConfigError, EvaluateConfig, config_from_dict
from i2sb.metric_table import METRIC_NAMES, METRICS, degraded_name, metric_spec
from i2sb.metrics.consistency import consistency_per_image
from i2sb.metrics.context import MetricContext
from i2sb.metrics.evaluate import evaluate_samples, implementation
from i2sb.metrics.image_quality import PSNR_CAP_DB
from i2sb.sample.parts import Part, write_part
from i2sb.tables import write_report
from i2sb.tables.build import runs_frame
from i2sb.tables.plots import task_figure
from i2sb.tasks import BENCHMARK_TASKS
from i2sb.tracking.ui import EVAL_COLUMNS

WEIGHT_FREE = [spec for spec in METRICS if not spec.needs_weights]
WEIGHT_NEEDING = [spec for spec in METRICS if spec.needs_weights]
NOISE_LEVELS = (2, 8, 32)  # uniform noise of +-level grey values, growing


def clean_images(count=4, size=32, seed=0) -> np.ndarray:
    """Smooth-ish uint8 images (a gradient plus texture), so every metric has structure to see."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 200, size)[None, None, :, None] + np.linspace(0, 30, size)[None, None]
    texture = rng.integers(-20, 21, (count, 3, size, size))
    return np.clip(ramp + texture, 0, 255).astype(np.uint8)


def noisy(images: np.ndarray, level: int, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(
        images.astype(int) + rng.integers(-level, level + 1, images.shape), 0, 255
    ).astype(np.uint8)


def context(clean: np.ndarray, task="sr4x-pool") -> MetricContext:
    count = len(clean)
    return MetricContext(
        task, clean, np.zeros(count, np.int64), np.arange(count), {"task": task}, Path("s.npz")
    )


def evaluated(spec, clean: np.ndarray, restored: np.ndarray, folder: Path) -> tuple:
    """(value, twin value or None) of ``spec`` as evaluation writes them: the images streamed
    from a samples file in batches of 3 (not whole arrays), the degraded images = ``restored``."""
    meta = {"task": "sr4x-pool", "nfe": 5, "dataset": DATASET}
    part = Part(restored, clean, np.arange(len(clean)), np.zeros(len(clean)), meta, restored)
    path = write_part(folder / "samples.npz", part)
    settings = EvaluateConfig(metrics=(spec.name,), batch_size=3)
    metrics = evaluate_samples(path, "sr4x-pool", folder / "metrics.json", settings)["metrics"]
    twin = metrics[degraded_name(spec.name)]["value"] if spec.degraded_twin else None
    return metrics[spec.name]["value"], twin


@pytest.mark.parametrize("spec", WEIGHT_FREE, ids=lambda s: s.name)
def test_a_weight_free_metric_is_perfect_on_identical_images_and_monotone_in_corruption(
    spec, tmp_path
):
    clean = clean_images(count=5)
    scores = []
    for level in (0, *NOISE_LEVELS):
        restored = clean if level == 0 else noisy(clean, level)
        value, twin = evaluated(spec, clean, restored, tmp_path / f"level{level}")
        assert twin == (value if spec.degraded_twin else None)  # the twin: the same measure
        scores.append(value)
    perfect, *worse = scores
    if spec.lower_is_better:
        assert perfect == pytest.approx(0.0, abs=1e-9)
        assert perfect < worse[0] < worse[1] < worse[2]
    else:
        assert perfect in (pytest.approx(1.0), PSNR_CAP_DB)  # SSIM 1; PSNR-like at the cap
        assert perfect > worse[0] > worse[1] > worse[2]


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("spec", WEIGHT_NEEDING, ids=lambda s: s.name)
def test_a_weight_needing_metric_is_unavailable_offline_with_the_reason(spec, tmp_path):
    path, _ = make_samples(tmp_path / "samples.npz", task="sr4x-pool")
    settings = EvaluateConfig(metrics=(spec.name,))
    metrics = evaluate_samples(path, "sr4x-pool", tmp_path / "m.json", settings)["metrics"]
    names = [spec.name, *([degraded_name(spec.name)] if spec.degraded_twin else [])]
    for entry in (metrics[name] for name in names):
        assert entry["value"] is None
        assert "unavailable" in entry["reason"] and ".pth" in entry["reason"]  # the weights file
    required = EvaluateConfig(metrics=(spec.name,), require_external_metrics=True)
    with pytest.raises(RuntimeError, match=f"metric '{spec.name}' cannot be computed"):
        evaluate_samples(path, "sr4x-pool", tmp_path / "r.json", required)


@pytest.mark.parametrize("spec", METRICS, ids=lambda s: s.name)
def test_every_layer_reads_the_row(spec, tmp_path):
    """metrics.json, the MLflow columns, the tables, their captions and the plots all know it."""
    assert callable(implementation(spec))
    assert f"metrics.`{spec.name}`" in EVAL_COLUMNS
    rows = [
        row | {f"metrics.{spec.name}": 3.0, f"metrics.{degraded_name(spec.name)}": 1.0}
        for row in DEMO_RUNS
    ]
    runs = runs_frame(search(rows))
    assert (runs[spec.name] == 3.0 * spec.table_scale).all()
    write_report(runs, tmp_path)
    table = (tmp_path / f"nfe_{spec.name}.md").read_text()
    assert spec.header in table and spec.caption in table
    assert f"{3.0 * spec.table_scale:.{spec.decimals}f}" in table
    assert ("degraded input" in table.splitlines()[2]) == spec.degraded_twin
    figure = task_figure(runs, "sr4x-pool", with_paper=False)
    titles = [axis.get_title() for axis in figure.axes]
    better = "lower is better" if spec.lower_is_better else "higher is better"
    assert (f"{spec.header} ({better})" in titles) == spec.plotted


def test_an_unknown_metric_name_is_a_key_error_listing_the_valid_ones():
    with pytest.raises(KeyError, match="unknown metric 'psnr2'; valid metrics: fid, ca"):
        metric_spec("psnr2")


@pytest.mark.parametrize(
    ("retired", "metric"), [("fid", "fid"), ("classifier_accuracy", "ca"), ("lpips", "lpips")]
)
def test_an_old_boolean_key_is_refused_naming_evaluate_metrics(retired, metric):
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"evaluate": {retired: False}})
    message = str(caught.value)
    assert "\n" not in message and f"'evaluate.{retired}'" in message
    assert "'evaluate.metrics'" in message and repr(metric) in message


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [(["psnr", "sharpness"], "evaluate.metrics.1': got 'sharpness', expected one of 'fid'"),
     (["psnr", "psnr"], "evaluate.metrics': got ['psnr', 'psnr'], expected a list of metric")],
)  # fmt: skip
def test_evaluate_metrics_takes_known_names_once(metrics, expected):
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        config_from_dict({"evaluate": {"metrics": metrics}})
    assert config_from_dict({}).evaluate.metrics == METRIC_NAMES


def test_evaluate_metrics_all_is_every_row_so_the_shipped_config_measures_a_new_metric(monkeypatch):
    """config.yaml says ``metrics: all``: a row added to the table is measured without a config
    edit, and the resolved config names the rows (a new one changes evaluation's slice)."""
    from i2sb.config import choices, load_config

    shipped = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    assert shipped.evaluate.metrics == METRIC_NAMES
    assert config_from_dict({"evaluate": {"metrics": "all"}}).to_dict()["evaluate"][
        "metrics"
    ] == list(METRIC_NAMES)
    monkeypatch.setitem(choices.CHOICES, "metric_selection", (*METRIC_NAMES, "mae", "all"))
    assert config_from_dict({"evaluate": {"metrics": ["all"]}}).evaluate.metrics[-1] == "mae"
    with pytest.raises(
        ConfigError, match=r"'evaluate.metrics'.*'all' .* stands alone, got \['all', 'psnr'\]"
    ):
        config_from_dict({"evaluate": {"metrics": ["all", "psnr"]}})


@pytest.mark.parametrize("task", BENCHMARK_TASKS)
def test_consistency_is_perfect_for_the_clean_image_and_drops_with_noise_on_every_task(task):
    clean = clean_images(count=2)
    ctx = context(clean, task)
    ctx.mask_options = {"mask_source": "generated"}
    ctx.meta = {}
    perfect = consistency_per_image(clean, ctx)
    assert (perfect == PSNR_CAP_DB).all()
    assert (consistency_per_image(noisy(clean, 32), ctx) < perfect).all()


def test_consistency_measures_the_known_pixels_of_inpainting_only():
    clean = clean_images(count=2)
    hole = np.zeros_like(clean, dtype=bool)
    hole[..., 8:24, 8:24] = True  # inpaint-center's hole at 32 px
    filled = np.where(hole, noisy(clean, 64), clean)
    assert (consistency_per_image(filled, context(clean, "inpaint-center")) == PSNR_CAP_DB).all()
    changed = np.where(hole, clean, noisy(clean, 64))
    assert (consistency_per_image(changed, context(clean, "inpaint-center")) < 40).all()


def test_consistency_does_not_depend_on_the_batch():
    clean = clean_images(count=4)
    restored = noisy(clean, 8)
    whole = consistency_per_image(restored, context(clean, "blur-gauss"))
    halves = [
        consistency_per_image(restored[i : i + 2], context(clean[i : i + 2], "blur-gauss"))
        for i in (0, 2)
    ]
    assert np.array_equal(whole, np.concatenate(halves))


def test_consistency_is_unavailable_with_the_reason_where_it_has_no_operator(tmp_path):
    clean = clean_images(count=2)
    meta = {"task": "paired", "nfe": 5, "dataset": DATASET}
    path = write_part(
        tmp_path / "s.npz", Part(clean, clean, np.arange(2), np.zeros(2), meta, clean)
    )
    settings = EvaluateConfig(metrics=("psnr", "consistency"))
    metrics = evaluate_samples(path, "paired", tmp_path / "m.json", settings)["metrics"]
    for name in ("consistency", "consistency_degraded"):
        assert metrics[name]["value"] is None and "paired data" in metrics[name]["reason"]
    assert metrics["psnr"]["value"] == PSNR_CAP_DB


def test_consistency_refuses_masks_other_than_the_sampled_ones(tmp_path):
    clean = clean_images(count=2)
    meta = {"task": "inpaint-freeform1020", "nfe": 5, "mask_source": "published file x.npz",
            "dataset": DATASET}  # fmt: skip
    path = write_part(
        tmp_path / "s.npz", Part(clean, clean, np.arange(2), np.zeros(2), meta, clean)
    )
    settings = EvaluateConfig(metrics=("consistency",))
    metrics = evaluate_samples(
        path, "inpaint-freeform1020", tmp_path / "m.json", settings,
        mask_options={"mask_source": "generated"},
    )["metrics"]  # fmt: skip
    assert metrics["consistency"]["value"] is None
    assert "masked with 'published file x.npz'" in metrics["consistency"]["reason"]


def test_the_report_shows_consistency_per_task_sampler_and_nfe(tmp_path):
    rows = [
        r | {"metrics.consistency": 30.0, "metrics.consistency_degraded": 25.0} for r in DEMO_RUNS
    ]
    rows.append(run("jpeg-10", "ddpm", 99, 20.0))  # a run whose consistency was not measured
    write_report(runs_frame(pd.DataFrame(rows)), tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "not a quality metric by itself" in report
    table = (tmp_path / "nfe_consistency.csv").read_text().splitlines()
    assert table[0] == "task,sampler,degraded input,NFE 5,NFE 20,NFE 99"
    assert "sr4x-pool,implicit,25.0,30.0,30.0," in table


def test_consistency_rebuilds_the_masks_sampling_recorded_not_the_configs(tmp_path):
    clean = clean_images(count=2)
    recorded = {"mask_source": "generated", "seed": 3}
    meta = {"task": "inpaint-freeform1020", "nfe": 5, "corruption_options": recorded}
    ctx = context(clean, "inpaint-freeform1020")
    ctx.meta, ctx.mask_options = meta, {"mask_source": "generated", "seed": 0}
    known = 1 - consistency_mask(recorded, clean)  # known pixels of the recorded masks
    filled = np.where(known.astype(bool), clean, noisy(clean, 64))  # the holes changed only
    assert (consistency_per_image(filled, ctx) == PSNR_CAP_DB).all()
    ctx.meta = {"task": "inpaint-freeform1020", "nfe": 5}  # no record: the config's seed 0 masks
    assert (consistency_per_image(filled, ctx) < PSNR_CAP_DB).all()


def consistency_mask(options, clean):
    """(N, 3, H, W) 1 in the free-form hole of each image, from ``options``."""
    import torch

    from i2sb.corruption import build_corruption

    operator = build_corruption("inpaint-freeform1020", clean.shape[-1], "cpu", **options)
    x = torch.from_numpy(clean.astype(np.float64)) / 127.5 - 1
    mask = operator(x, torch.arange(len(clean)))[1].numpy()
    return np.broadcast_to(mask, clean.shape).astype(np.uint8)


@pytest.mark.parametrize(
    ("task", "consistent"),
    [("sr4x-pool", True), ("inpaint-center", True), ("jpeg-10", True), ("sr4x-bicubic", False),
     ("blur-gauss", False)],
)  # fmt: skip
def test_the_degraded_input_is_consistent_by_construction_where_the_docs_say_so(task, consistent):
    """README: A(degraded) = y up to uint8 rounding for sr4x-pool, inpainting and JPEG only."""
    import torch

    from i2sb.corruption import build_corruption

    clean = clean_images(count=2)
    x1, _ = build_corruption(task, 32, "cpu")(torch.from_numpy(clean / 127.5 - 1), torch.arange(2))
    degraded = ((x1.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    scores = consistency_per_image(degraded, context(clean, task))
    assert (scores > 55).all() if consistent else (scores < 52).all()  # rounding vs model error
