"""Datasets: LMDB conversion and readers, image folders, paired data, demo photos, evaluation subsets.

Deliberately imports nothing at package import time, so ``i2sb.data.partition`` stays usable from
the Snakefile without pulling in torch. Import the submodules you need.
"""
