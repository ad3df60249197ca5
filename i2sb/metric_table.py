"""The metric table: every evaluation metric's facts, in one row each.

Evaluation (which metrics exist, which function measures each, which also score the degraded
inputs), the config (``evaluate.metrics``), the MLflow runs-table columns, the tables (headers,
decimals) and the NFE plots (direction, panels, captions) all read this table, so a metric is one
implementation file, one row here and one test. Imports neither torch nor mlflow: the config and
the Snakefile read it.
"""

from __future__ import annotations

from dataclasses import dataclass

DEGRADED_SUFFIX = "_degraded"  # <name>_degraded: the same metric of the degraded inputs


@dataclass(frozen=True)
class MetricSpec:
    """What every layer knows of one metric; the numbers come from ``implementation``."""

    name: str  # key in metrics.json, MLflow metric name, evaluate.metrics entry
    header: str  # column header of the tables and label of the plots
    decimals: int  # printed decimals in the Markdown/LaTeX tables
    lower_is_better: bool
    degraded_twin: bool  # also measured on the degraded inputs (<name>_degraded)
    needs_weights: str  # what it needs from outside ("" = nothing): unavailable offline if missing
    plotted: bool  # a panel of the NFE plots
    caption: str  # what it measures, in the NFE table's caption
    # "module:function" measuring a uint8 (N, 3, H, W) batch against the clean images
    # (i2sb.metrics.context.MetricContext): a float, or MetricUnavailable with the reason.
    implementation: str
    table_scale: float = 1.0  # printed value = metrics.json value x table_scale (CA in percent)
    quoted_by_paper: bool = False  # the paper's tables quote it (PaperResult has the field)
    # the metrics.json / MLflow param saying what it was measured against ("" = nothing)
    reference_fact: str = ""


_CONSISTENCY = (
    "measurement consistency: PSNR in dB of A(restored) against y = A(clean), A the task's "
    "degradation (the known pixels for inpainting, the JPEG round trip for jpeg-*); how well a "
    "restoration explains what was measured, not a quality metric by itself: a restoration can be "
    "consistent and still blurry, and the degraded input itself is consistent by construction "
    "for sr4x-pool, inpainting and JPEG"
)
# fmt: off
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(name="fid", header="FID", decimals=2, lower_is_better=True, degraded_twin=False,
               needs_weights="Inception weights and a reference", plotted=True,
               caption="Frechet Inception distance (clean-fid legacy_pytorch) of the restored "
                       "images to the task's reference",
               implementation="i2sb.metrics.fid:measure_fid", quoted_by_paper=True,
               reference_fact="fid_reference_kind"),
    MetricSpec(name="ca", header="CA (%)", decimals=2, lower_is_better=False, degraded_twin=False,
               needs_weights="ResNet-50 weights", plotted=True,
               caption="top-1 accuracy of torchvision's ResNet-50 IMAGENET1K_V1 on the restored images",
               implementation="i2sb.metrics.classifier:measure_accuracy", table_scale=100.0,
               quoted_by_paper=True),
    MetricSpec(name="psnr", header="PSNR", decimals=2, lower_is_better=False, degraded_twin=True,
               needs_weights="", plotted=True, implementation="i2sb.metrics.image_quality:mean_psnr",
               caption="PSNR in dB of the restored images against the clean ones"),
    MetricSpec(name="ssim", header="SSIM", decimals=3, lower_is_better=False, degraded_twin=True,
               needs_weights="", plotted=True, caption="SSIM against the clean images",
               implementation="i2sb.metrics.image_quality:mean_ssim"),
    MetricSpec(name="lpips", header="LPIPS", decimals=3, lower_is_better=True, degraded_twin=True,
               needs_weights="AlexNet weights", plotted=True,
               caption="LPIPS (AlexNet) distance of the restored images to the clean ones",
               implementation="i2sb.metrics.perceptual:mean_lpips"),
    MetricSpec(name="consistency", header="consistency (dB)", decimals=2, lower_is_better=False,
               degraded_twin=True, needs_weights="", plotted=True, caption=_CONSISTENCY,
               implementation="i2sb.metrics.consistency:mean_consistency"),
)
# fmt: on

METRIC_NAMES: tuple[str, ...] = tuple(spec.name for spec in METRICS)
_BY_NAME = {spec.name: spec for spec in METRICS}
# The metric whose restored-against-degraded comparison the report leads with (``i2sb tables``).
HEADLINE_METRIC = "psnr"


def metric_spec(name: str) -> MetricSpec:
    """The row of metric ``name``; an unknown name is a KeyError listing the valid ones."""
    if name not in _BY_NAME:
        raise KeyError(f"unknown metric {name!r}; valid metrics: {', '.join(METRIC_NAMES)}")
    return _BY_NAME[name]


def degraded_name(name: str) -> str:
    return name + DEGRADED_SUFFIX


def result_names(specs: tuple[MetricSpec, ...] = METRICS) -> tuple[str, ...]:
    """Every value metrics.json and MLflow hold for ``specs``: each name, then the twins."""
    twins = tuple(degraded_name(s.name) for s in specs if s.degraded_twin)
    return (*(s.name for s in specs), *twins)
