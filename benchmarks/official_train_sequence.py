"""The official I2SB trainer's memory-relevant sequence, re-enacted on CPU for bench_memory.py.

The official code (NVlabs/I2SB) cannot be fetched here, so this script performs, in our own
words, what its ``Runner.__init__`` and the first iteration of ``Runner.train`` hold and do, with
the same libraries it uses: guided-diffusion's ``create_model`` (the UNet its ``Image256Net``
wraps, adm256 options, fresh weights as with ``pretrained_adm`` off), ``torch_ema``'s
ExponentialMovingAverage, ``DistributedDataParallel`` (one gloo rank: the official trainer
always wraps the network), AdamW + StepLR, and the ResNet-50 its validation classifies with
(torchvision's architecture, no weights). Iteration 0 then does what the official loop does at
``it == 0``: one microbatch forward/backward, the optimizer, EMA and scheduler steps, saving
``latest.pt`` (net, ema, optimizer, sched state dicts) and a validation inside
``ema.average_parameters()``. Validation runs 1 network call (NFE 1) instead of the official
999: each call's activations are freed before the next, so the peak is that of one call.

Differences, each making this sequence's peak no higher than the real trainer's: the images
are random tensors (no LMDB loader or worker processes), no TensorBoard/W&B writer.

    python official_train_sequence.py SIZE OUT_DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812
from guided_diffusion.script_util import create_model
from torch.nn.parallel import DistributedDataParallel
from torch_ema import ExponentialMovingAverage
from torchvision.models import resnet50

from i2sb.network.presets import preset_kwargs

INTERVAL = 1000


class OfficialNet(torch.nn.Module):
    """guided-diffusion's UNet fed the noise level of a step index, as Image256Net does."""

    def __init__(self) -> None:
        super().__init__()
        self.diffusion_model = create_model(**preset_kwargs("adm256"))
        self.register_buffer("noise_levels", torch.linspace(1e-4, 1.0, INTERVAL) * INTERVAL)

    def forward(self, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        return self.diffusion_model(x, self.noise_levels[steps])


def main(size: int, out_dir: Path) -> None:
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("gloo", rank=0, world_size=1)
    torch.manual_seed(0)
    net = OfficialNet()
    ema = ExponentialMovingAverage(net.parameters(), decay=0.99)
    ddp = DistributedDataParallel(net)
    optimizer = torch.optim.AdamW(ddp.parameters(), lr=5e-5, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5000, gamma=0.99)
    classifier = resnet50(weights=None).eval()

    ddp.train()
    optimizer.zero_grad()
    x0 = torch.rand(1, 3, size, size) * 2 - 1
    x1 = F.avg_pool2d(x0, 4).repeat_interleave(4, 2).repeat_interleave(4, 3)
    step = torch.randint(0, INTERVAL, (1,))
    std = 0.5
    xt = x0 + std * torch.randn_like(x0)  # the bridge's marginal: only its shape matters here
    label = (xt - x0) / std
    loss = F.mse_loss(ddp(xt, step), label)
    loss.backward()
    optimizer.step()
    ema.update()
    sched.step()

    state = {"net": net.state_dict(), "ema": ema.state_dict(),
             "optimizer": optimizer.state_dict(), "sched": sched.state_dict()}  # fmt: skip
    torch.save(state, out_dir / "latest.pt")
    del state

    ddp.eval()
    with torch.no_grad(), ema.average_parameters():
        net.eval()
        out = net(x1, torch.full((1,), INTERVAL - 1, dtype=torch.long))
        recon = x1 - out  # one step into x0
        classifier(torch.cat([x0, x1, recon]))
    dist.destroy_process_group()
    print(f"loss {loss.item():.4f}")


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
