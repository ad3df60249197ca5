"""I2SB: Image-to-Image Schrodinger Bridge, as a reproducible pipeline."""

__version__ = "0.1.0"
