"""The nine degradations of the I2SB benchmark (spec §5): ``build_corruption(name, image_size)``."""

from i2sb.corruption.base import Corruption
from i2sb.corruption.registry import CORRUPTION_NAMES, build_corruption

__all__ = ["CORRUPTION_NAMES", "Corruption", "build_corruption"]
