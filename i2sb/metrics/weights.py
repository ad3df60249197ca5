"""Pretrained weights from torch.hub's cache: one error type for "not here and not downloadable".

Inception (FID) and ResNet-50 (CA) load through ``torch.hub`` from ``$TORCH_HOME/hub/checkpoints``
(default ``~/.cache/torch/hub/checkpoints``); a file pre-placed there is used offline. When it is
missing and the download fails, ``WeightsUnavailable`` lets the runner report the metric as
unavailable (or fail, when external metrics are required) instead of inventing a number.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.error
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from i2sb.downloads import unreachable

T = TypeVar("T")

DOWNLOAD_TIMEOUT_S = 30.0  # a stalled connection must not hang an evaluation job


class WeightsUnavailable(RuntimeError):
    """Pretrained weights are neither in the torch.hub cache nor downloadable."""


def hub_checkpoint_dir() -> str:
    """Where torch.hub looks for (and downloads) weight files: ``$TORCH_HOME/hub/checkpoints``."""
    import torch.hub

    return f"{torch.hub.get_dir()}/checkpoints"


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # torch.hub opens URLs without a timeout; a process-wide default is the only knob it honours.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def load_hub_weights(what: str, filename: str, url: str, build: Callable[[], T]) -> T:
    """Run ``build`` (which loads weights through torch.hub) if the file is cached or downloadable.

    Checks first: when ``filename`` is not in the hub cache and ``url``'s host cannot be reached, it
    raises WeightsUnavailable saying what is missing and where to place it, without letting torch.hub
    print a "Downloading" line; a download that still fails raises the same.
    """
    path = Path(hub_checkpoint_dir()) / filename
    if not path.is_file():
        offline = unreachable(url)
        if offline:
            message = (
                f"{what} weights unavailable offline: {filename} is not in {path.parent} and {offline}; "
                f"place the file there (set TORCH_HOME to choose the folder)"
            )
            raise WeightsUnavailable(message)
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S), warnings.catch_warnings():
            # Libraries build their networks with torchvision's deprecated `pretrained=` argument.
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
            return build()
    except (urllib.error.URLError, OSError) as err:
        raise WeightsUnavailable(
            f"{what} weights unavailable ({type(err).__name__}: {err}); place {filename} in "
            f"{hub_checkpoint_dir()} (set TORCH_HOME to choose the folder) or allow the download"
        ) from None
