"""Print one line per process for the Slurm test: rank, visible GPUs, Slurm job id, and that i2sb imports.

Ranks come from srun (SLURM_PROCID) or torchrun (RANK), the two launchers the train rule uses.
"""

import os

import i2sb

rank = os.environ.get("RANK", os.environ.get("SLURM_PROCID", "none"))
gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
print(rank, gpus, os.environ.get("SLURM_JOB_ID", "none"), i2sb.__name__, flush=True)
