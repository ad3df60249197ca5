"""LPIPS (Zhang et al., 2018) of restored images against the clean ones, as the sampler papers report it.

The maintained ``lpips`` package supplies the network and its calibrated linear heads (v0.1, shipped
in its wheel). Its AlexNet backbone needs torchvision's ImageNet weights, which ``lpips`` would
download; here they are read only from the torch.hub cache ($TORCH_HOME/hub/checkpoints), where the
ResNet-50 of CA lives too. When the file is not there the metric is unavailable with the reason:
nothing is downloaded and no random backbone is ever scored.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from i2sb.metrics.context import MetricContext
from i2sb.metrics.weights import WeightsUnavailable, hub_checkpoint_dir

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet_Weights.IMAGENET1K_V1 file name
LPIPS_VERSION = "0.1"


def _features_state(path: Path) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a torchvision AlexNet state dict (the classifier is not used)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # a truncated or foreign file: say which one
        raise ValueError(f"{path}: not a torchvision AlexNet state dict ({err})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return {k: v for k, v in state.items() if k.startswith("features.")}


def _load_exact(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    missing = [k for k in module.state_dict() if k not in state]
    if missing:
        raise ValueError(f"{source}: missing {missing[:3]} for the LPIPS network")
    module.load_state_dict(state, strict=True)


def load_lpips(device: torch.device | str = "cpu") -> torch.nn.Module:
    """LPIPS(alex, v0.1) with the wheel's linear heads and the pre-placed AlexNet backbone.

    Raises WeightsUnavailable when ``alexnet-owt-7be5be79.pth`` is not in the torch.hub cache.
    """
    path = Path(hub_checkpoint_dir()) / ALEXNET_FILE
    if not path.is_file():
        raise WeightsUnavailable(
            f"AlexNet (LPIPS) weights unavailable offline: place {ALEXNET_FILE} (torchvision's "
            f"AlexNet IMAGENET1K_V1) in {path.parent} (set TORCH_HOME to choose the folder); "
            "LPIPS never downloads it"
        )
    import lpips

    features = _features_state(path)
    with warnings.catch_warnings():
        # lpips 0.1.4 builds its backbone with torchvision's deprecated `pretrained=False`.
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        model = lpips.LPIPS(
            net="alex", version=LPIPS_VERSION, pretrained=False, pnet_rand=True, verbose=False
        )
    for block in model.net.children():  # slice1..5 hold AlexNet's features.<i> under the name <i>
        state = {
            f"{i}.{param}": features[f"features.{i}.{param}"]
            for i, layer in block.named_children()
            for param in layer.state_dict()
            if f"features.{i}.{param}" in features
        }
        _load_exact(block, state, str(path))
    heads_file = Path(lpips.__file__).parent / "weights" / f"v{LPIPS_VERSION}" / "alex.pth"
    heads = torch.load(heads_file, map_location="cpu", weights_only=True)
    for number, head in enumerate(model.lins):
        prefix = f"lin{number}."
        state = {k.removeprefix(prefix): v for k, v in heads.items() if k.startswith(prefix)}
        _load_exact(head, state, str(heads_file))
    return model.eval().to(device)


@torch.no_grad()
def lpips_per_image(
    images: np.ndarray,
    reference: np.ndarray,
    model: torch.nn.Module,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
) -> np.ndarray:
    """uint8 (N, 3, H, W) pairs -> LPIPS distance (N,), inputs scaled to [-1, 1] as ``lpips`` expects."""
    if images.shape != reference.shape or images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"LPIPS: images {images.shape} and clean images {reference.shape} must be equal, "
            "non-empty (N, 3, H, W)"
        )
    from i2sb.joblog import progress

    distances = []
    starts = range(0, len(images), batch_size)
    for start in progress(starts, f"LPIPS ({len(images)} images)", unit="batch"):
        pair = [
            torch.from_numpy(x[start : start + batch_size]).to(device).float() / 127.5 - 1.0
            for x in (images, reference)
        ]
        distances.append(model(*pair).flatten().cpu().numpy())
    return np.concatenate(distances).astype(np.float64)


def mean_lpips(images: np.ndarray, ctx: MetricContext) -> float:
    """Mean LPIPS(alex) distance of ``images`` to the clean images."""
    model = ctx.model("alexnet", lambda device: load_lpips(device))
    return float(np.mean(lpips_per_image(images, ctx.clean, model, ctx.device, ctx.batch_size)))
