"""What a metric's implementation is given: the clean images and everything else it may need.

Every row of the metric table (i2sb/metric_table.py) names a function ``f(images, ctx) -> float``:
``images`` are the restored (or, for a metric with a degraded twin, the degraded) uint8
(N, 3, H, W) images, ``ctx`` this context. Evaluation streams them from the samples file
(``sample.samplefile.ImageStream``, as ``ctx.clean``): they have ``len``, ``shape`` and
``images[a:b]`` slices, not the whole array; ``ctx.per_image`` runs an (images, clean) ->
(N,) function over them a batch at a time. A metric that cannot be measured raises
``MetricUnavailable`` (or a weights/download error) with the reason; evaluation writes it as
``{"value": null, "reason": ...}``, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from i2sb.config import DownloadConfig, EvaluateConfig


class MetricUnavailable(RuntimeError):
    """The metric cannot be measured here (not applicable to the task, missing input); the
    message is the reason recorded in metrics.json."""


@dataclass
class MetricContext:
    """One evaluation's inputs shared by its metrics; models are loaded once, on first use."""

    task: str
    clean: np.ndarray  # uint8 (N, 3, H, W)
    labels: np.ndarray  # int64 (N,)
    indices: np.ndarray  # int64 (N,): evaluation-set positions (pick the free-form masks)
    meta: dict[str, Any]  # the samples file's meta
    samples_path: Path
    settings: EvaluateConfig = field(default_factory=EvaluateConfig)
    downloads: DownloadConfig = field(default_factory=DownloadConfig)
    device: str = "cpu"
    fid_reference: str = ""  # an explicit FID reference npz (i2sb evaluate --fid-reference)
    mask_options: dict[str, Any] = field(default_factory=dict)  # Config.mask_options()
    # Models by role ("inception", "resnet50", "alexnet"): given by a caller (tests) or loaded.
    models: dict[str, Any] = field(default_factory=dict)
    # Top-level facts of metrics.json a metric adds (what FID was measured against).
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.settings.batch_size

    def per_image(
        self, function: Callable[[np.ndarray, np.ndarray], np.ndarray], images: Any
    ) -> np.ndarray:
        """``function(images, clean)`` -> (N,), over ``batch_size`` images at a time; the
        per-image values do not depend on the batch. Empty images get ``function``'s error."""
        if len(images) == 0:
            return function(images, self.clean)
        batch = self.batch_size
        return np.concatenate(
            [
                function(images[start : start + batch], self.clean[start : start + batch])
                for start in range(0, len(images), batch)
            ]
        )

    def model(self, role: str, load: Callable[[str], Any]) -> Any:
        """The model of ``role``: the one given, else ``load(device)`` once."""
        if self.models.get(role) is None:
            self.models[role] = load(self.device)
        return self.models[role]
