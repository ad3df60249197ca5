"""Evaluation metrics: FID (clean-fid), classifier accuracy (ResNet-50), PSNR/SSIM, and the runner.

Each metric lives in its own module; ``evaluate`` reads a gathered ``samples.npz`` and writes
``metrics.json`` (docs/CONTRACTS.md).
"""
