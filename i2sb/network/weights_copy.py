"""Copy a memory-mapped checkpoint's tensors into a network, the file's pages released as it goes.

A ``torch.load(mmap=True)`` tensor costs no memory until read; once read, its pages stay resident
(and count in the process's RSS) for as long as any tensor of that load is alive. Copying all of
adm256's EMA weights at once would hold them twice at the peak: the file's pages (2.2 GB) and
the copies. Here the copy runs in groups of about ``group_bytes``: each group reads a fresh
mapping of the file and drops it before the next, so the peak is the network's own weights plus
one group.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

GROUP_BYTES = 256 * 2**20


@torch.no_grad()
def copy_in_groups(
    net: nn.Module,
    read_state: Callable[[], dict[str, torch.Tensor]],
    group_bytes: int = GROUP_BYTES,
) -> None:
    """``net``'s state_dict tensors (allocated, in their final dtype/layout) <- ``read_state()``.

    ``read_state`` maps the file afresh at each call (names as in ``net.state_dict()``, already
    checked by a strict load). ``copy_`` converts dtype and memory format on the way, rounding
    as ``Tensor.to`` does, so the weights are those a copy followed by a cast would give.
    """
    targets = net.state_dict(keep_vars=True)
    names = list(targets)
    start = 0
    while start < len(names):
        state, stop, copied = read_state(), start, 0
        while stop < len(names) and (stop == start or copied < group_bytes):
            source = state[names[stop]]
            targets[names[stop]].copy_(source)
            copied += source.nbytes
            stop += 1
        del state, source  # the last references to this mapping: its pages are released
        start = stop
