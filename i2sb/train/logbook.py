"""The training metrics file (JSON lines) and the validation grid, written by rank 0 only."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol

import torch

from i2sb.atomic import atomic_path, write_text


class TrainMonitor(Protocol):
    """A live view of training on rank 0 (e.g. ``i2sb.tracking.live.LiveRun`` for MLflow).

    It sees what the run folder gets: the options at start, every metrics.jsonl row, each
    validation grid, and how training ended. It must not raise: training never waits on it.
    """

    def start(self, options: dict[str, Any]) -> None: ...
    def log(self, row: dict[str, Any]) -> None: ...
    def image(self, path: Path, step: int) -> None: ...
    def end(self, status: str) -> None: ...  # FINISHED | FAILED | KILLED


class MetricsLog:
    """Append-only JSONL; on resume, rows after the resumed iteration are dropped (no duplicates).

    Every row also goes to ``monitor`` (when given)."""

    def __init__(self, path: Path, resume_from: int, monitor: TrainMonitor | None = None):
        self.path, self.monitor = path, monitor
        if path.exists():
            kept = [
                row
                for row in path.read_text().splitlines()
                if row and json.loads(row)["step"] <= resume_from
            ]
            write_text(path, "".join(row + "\n" for row in kept))
        self._handle = open(path, "a", buffering=1)

    def write(self, **row: Any) -> None:
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.items()
        }
        self._handle.write(json.dumps(clean) + "\n")
        if self.monitor is not None:
            self.monitor.log(clean)

    def close(self) -> None:
        self._handle.close()


def psnr(images: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean PSNR (dB) of images in [-1, 1] after mapping to [0, 1]."""
    mse = (((images.clamp(-1, 1) - reference.clamp(-1, 1)) / 2) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean())


def save_grid(path: Path, columns: list[torch.Tensor]) -> None:
    """One row per image: clean | degraded | restored (each (B, 3, H, W) in [-1, 1])."""
    from torchvision.utils import save_image

    rows = torch.stack([c.detach().float().cpu() for c in columns], dim=1).flatten(0, 1)
    with atomic_path(path) as tmp:
        save_image((rows + 1) / 2, tmp, nrow=len(columns), padding=2)
