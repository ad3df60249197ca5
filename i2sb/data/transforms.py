"""Image transforms of spec §6: Resize -> CenterCrop -> (train) horizontal flip -> [0, 1] -> [-1, 1]."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision import transforms as T
from torchvision.transforms import functional as F


def to_signed_tensor(image: Any) -> torch.Tensor:
    """PIL image -> float tensor (C, H, W) in [-1, 1]."""
    return F.to_tensor(image) * 2 - 1


def resize_crop(image_size: int) -> Callable[[Any], Any]:
    """The deterministic part shared by training and evaluation: Resize(short side) then CenterCrop."""
    if image_size < 1:
        raise ValueError(f"data.image_size must be >= 1, got {image_size}")
    return T.Compose([T.Resize(image_size), T.CenterCrop(image_size)])


def build_transform(image_size: int, train: bool) -> Callable[[Any], torch.Tensor]:
    """PIL image -> (3, image_size, image_size) in [-1, 1]; random horizontal flip only when ``train``."""
    steps = [resize_crop(image_size)]
    if train:
        steps.append(T.RandomHorizontalFlip(p=0.5))
    steps.append(to_signed_tensor)
    return T.Compose(steps)


class PairTransform:
    """Transform a (clean, degraded) pair with the *same* random flip, so the pixels stay aligned."""

    def __init__(self, image_size: int, train: bool) -> None:
        self.resize_crop = resize_crop(image_size)
        self.train = train

    def __call__(self, clean: Any, degraded: Any) -> tuple[torch.Tensor, torch.Tensor]:
        clean, degraded = self.resize_crop(clean), self.resize_crop(degraded)
        # torch's generator (not numpy's) so DataLoader workers get distinct, seeded draws.
        if self.train and torch.rand(()) < 0.5:
            clean, degraded = F.hflip(clean), F.hflip(degraded)
        return to_signed_tensor(clean), to_signed_tensor(degraded)
