"""Decode any image file into 8-bit RGB: the one place every reader (convert, folders, LMDB,
paired data, restore, FID reference) turns bytes into pixels.

Photos are read upright: an EXIF orientation tag is applied (``PIL.ImageOps.exif_transpose``), as
every viewer does. Files that are not regular files (a FIFO, a socket, a device, a link to
``/dev/zero``) are never opened: reading one would hang or never end.

Pillow's own ``convert("RGB")`` clips 16-bit and 32-bit modes to 255, so a 16-bit PNG of mean
119 (in 8-bit terms) became nearly all white. Here high-bit-depth modes are scaled to 8 bits:
``I;16*`` (and ``I`` holding 0..65535) by 255/65535, ``F`` holding 0..1 by 255. Other ranges
cannot be read without guessing and are an error naming the file.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

SIXTEEN_BIT_MAX = 65535


class UnreadableImage(ValueError):
    """An image file that cannot be decoded into 8-bit RGB; the message names the file."""


def is_high_bit_depth(mode: str) -> bool:
    """True for Pillow modes with more than 8 bits per sample (I;16 variants, I, F)."""
    return mode.startswith("I") or mode == "F"


def _scaled_to_8_bits(image: Any, source: str) -> Any:
    from PIL import Image

    values = np.asarray(image)
    if image.mode == "F":
        if values.size and (np.nanmin(values) < 0 or np.nanmax(values) > 1):
            raise UnreadableImage(
                f"image {source}: float pixels outside [0, 1] (min {np.nanmin(values):.4g}, "
                f"max {np.nanmax(values):.4g}); save it as 8- or 16-bit integers"
            )
        scaled = np.nan_to_num(values, nan=0.0) * 255.0
    else:
        values = values.astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > SIXTEEN_BIT_MAX):
            raise UnreadableImage(
                f"image {source}: {image.mode} pixels outside 0..{SIXTEEN_BIT_MAX} "
                f"(min {values.min()}, max {values.max()}); only 8- and 16-bit images are read"
            )
        scaled = values * (255.0 / SIXTEEN_BIT_MAX)
    gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


def to_rgb8(image: Any, source: str = "") -> Any:
    """A decoded PIL image as 8-bit RGB, scaling (not clipping) high-bit-depth modes."""
    if is_high_bit_depth(image.mode):
        return _scaled_to_8_bits(image, source)
    return image.convert("RGB")


def special_kind(path: str | Path) -> str | None:
    """What ``path`` is when it is not a regular file (after links), else None (also when missing).

    Opening a FIFO blocks until a writer comes, and a device such as /dev/zero never ends, so
    such a file named ``*.png`` must be recognised before it is read.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # missing or unreadable: reading it reports that
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISDIR, "a folder"))  # fmt: skip
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in kinds if test(mode)), "not a regular file")


EXIF_ORIENTATION = 0x0112  # the TIFF/EXIF tag viewers turn a photo by


def upright(image: Any) -> Any:
    """``image`` turned the way viewers show it (its EXIF orientation applied), else itself.

    Cameras store a portrait photo as landscape pixels plus an orientation tag; every viewer
    applies the tag, so reading the pixels as stored would train and evaluate on sideways photos.
    """
    from PIL import ImageOps

    if image.getexif().get(EXIF_ORIENTATION, 1) in (1, None):
        return image
    return ImageOps.exif_transpose(image)


def load_rgb(data: bytes | str | Path, source: str = "") -> Any:
    """Decode an image (bytes or a path) into an 8-bit RGB PIL image, upright (EXIF orientation
    applied, as viewers show it); a failure names ``source``. A path that is not a regular file
    (FIFO, socket, device) is refused without being opened."""
    from PIL import Image

    source = source or str(data if not isinstance(data, bytes) else "<bytes>")
    kind = None if isinstance(data, bytes) else special_kind(data)
    if kind:
        raise UnreadableImage(f"image {source} is {kind}, not a regular file; not read")
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            return to_rgb8(upright(image), source)
    except UnreadableImage:
        raise
    except FileNotFoundError:
        raise FileNotFoundError(f"image {source} does not exist") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        raise UnreadableImage(f"cannot decode image {source}: {err}") from None


def jpeg_warning(data: bytes) -> str | None:
    """What libjpeg-turbo complains about in a JPEG that Pillow decodes without an error.

    Pillow silently repairs damaged entropy-coded data ("Corrupt JPEG data: premature end of
    data segment"); simplejpeg's strict mode raises on those recoverable errors instead. None for
    a clean file (or one that is not a JPEG).
    """
    import simplejpeg

    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        _, _, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        target = {"Gray": "GRAY", "CMYK": "CMYK", "YCCK": "CMYK"}.get(colorspace, "RGB")
        simplejpeg.decode_jpeg(data, colorspace=target, strict=True)
    except ValueError as err:
        return str(err)
    return None
