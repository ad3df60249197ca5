"""Classifier accuracy (CA): top-1 of torchvision's ResNet-50 on restored images (spec §7).

Preprocessing as the reference (NVlabs/I2SB evaluation/resnet.py): pixels mapped to [0, 1],
bicubic-resized to 224x224 with no crop, normalised with the ImageNet mean/std. The reference calls
``F.interpolate(..., mode="bicubic")`` whose default is ``antialias=False``; we keep that (and no
clamping of the bicubic overshoot) so our CA is comparable with the paper's numbers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from i2sb.metrics.context import MetricContext
from i2sb.metrics.weights import load_hub_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224
RESNET50_FILE = "resnet50-0676ba61.pth"  # torchvision's IMAGENET1K_V1 file name


def load_resnet50(device: torch.device | str) -> torch.nn.Module:
    """ResNet-50 with IMAGENET1K_V1 weights in eval mode; raises WeightsUnavailable when offline."""
    from torchvision.models import ResNet50_Weights, resnet50

    weights = ResNet50_Weights.IMAGENET1K_V1
    model = load_hub_weights(
        "ResNet-50 (CA)", RESNET50_FILE, weights.url, lambda: resnet50(weights=weights)
    )
    return model.eval().to(device)


def classifier_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (B, 3, 224, 224): [0, 1], bicubic (no antialias, no crop), normalised."""
    x = images.float() / 255.0
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def classifier_accuracy(
    images: np.ndarray,
    labels: np.ndarray,
    model: torch.nn.Module,
    device: torch.device | str,
    batch_size: int = 32,
) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on uint8 (N, 3, H, W) images against int labels (N,)."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(
            f"CA needs as many labels as images (>= 1): {len(images)} vs {len(labels)}"
        )
    from i2sb.joblog import progress

    correct = 0
    starts = range(0, len(images), batch_size)
    for start in progress(starts, f"classifier accuracy ({len(images)} images)", unit="batch"):
        batch = torch.from_numpy(images[start : start + batch_size]).to(device)
        logits = model(classifier_input(batch))
        predicted = logits.argmax(dim=1).cpu()
        correct += int((predicted == torch.from_numpy(labels[start : start + batch_size])).sum())
    return correct / len(images)


def measure_accuracy(images: np.ndarray, ctx: MetricContext) -> float:
    """CA of ``images`` against the samples' labels, with ResNet-50 IMAGENET1K_V1."""
    model = ctx.model("resnet50", lambda device: load_resnet50(device))
    return classifier_accuracy(images, ctx.labels, model, ctx.device, ctx.batch_size)
