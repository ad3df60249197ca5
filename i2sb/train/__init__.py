"""Training runner: ``train(cfg, task, out_dir)`` under torchrun, srun or a single process."""

from i2sb.train.runner import TrainingDiverged, train

__all__ = ["train", "TrainingDiverged"]
