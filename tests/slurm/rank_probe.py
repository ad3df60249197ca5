"""Write one line per process for the Slurm test: rank, visible GPUs, Slurm job id, and that i2sb imports.

Ranks come from srun (SLURM_PROCID) or torchrun (RANK), the two launchers the train rule uses. Usage:
`rank_probe.py OUT`: the line is appended to OUT with a single write() on a file opened with O_APPEND, so the lines
of processes that run at once never interleave (printing to a shared stdout did: print may write each field
separately, and two ranks' fields then mixed in one line).
"""

import os
import sys

import i2sb

rank = os.environ.get("RANK", os.environ.get("SLURM_PROCID", "none"))
gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
line = f"{rank} {gpus} {os.environ.get('SLURM_JOB_ID', 'none')} {i2sb.__name__}\n".encode()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
try:
    if os.write(fd, line) != len(line):
        raise SystemExit(f"rank_probe: short write to {sys.argv[1]}")
finally:
    os.close(fd)
