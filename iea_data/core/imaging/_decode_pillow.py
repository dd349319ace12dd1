"""The PIL path: everything OpenCV does not decode exactly, and every file the fast path refuses.

CMYK JPEG and TIFF (including Adobe's inverted CMYK, as PIL reads it), palette images,
images with ``tRNS`` transparency, 8-bit TIFF, WebP, GIF, BMP and the rest of PIL's formats;
a truncated file is always judged here (PIL's ``LOAD_TRUNCATED_IMAGES`` stays False). Recent
PIL orients TIFF pixels on ``load()`` and deletes the tag: :class:`_Pixels` ``oriented``
says so.

Examples
--------
>>> import io
>>> from PIL import Image
>>> buf = io.BytesIO()
>>> Image.new("P", (3, 2)).save(buf, "GIF")
>>> px = _pil_pixels(Image.open(buf), "GIF", "a.gif")
>>> px.array.shape, px.array.dtype.name, px.channels, px.alpha
((2, 3, 3), 'uint8', 3, False)
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

from ._decode_errors import _pil_refuses, _truncated, _unsupported
from ._decoded import _Pixels
from ._header import _orientation_tag


def _pil_pixels(im: Image.Image, fmt: str, name: str, scale: int = 1) -> _Pixels:
    """Pixels via PIL.

    ``scale`` (2, 4 or 8; JPEG only) asks PIL's JPEG decoder for 1/scale of the stored
    size in the DCT domain (``Image.draft``), each side rounded up.
    """
    mode = im.mode
    # Recent PIL applies a TIFF's Orientation tag on load and then deletes the tag.
    tag_before = _orientation_tag(im)
    if scale > 1 and fmt == "JPEG":
        w, h = im.size
        # draft picks the largest of 8, 4, 2, 1 that is <= min(w // dw, h // dh): asked for
        # (w // scale, h // scale), that is exactly `scale`; the box it returns says so.
        drafted = im.draft(mode, (w // scale, h // scale))
        scale = 1 if drafted is None else round(w / drafted[1][2])
    else:
        scale = 1
    try:
        im.load()  # PIL's warnings are ignored by the filter _header installs; none is caught here
    except Image.DecompressionBombError as err:  # a TIFF's own check, past 2 x PIL's limit
        raise _pil_refuses(name, err) from None
    except OSError as err:
        if "not available" in str(err) or "unsupported" in str(err).lower():
            raise _unsupported(name, fmt, mode, str(err)) from None
        raise _truncated(name, fmt, err) from None
    except (SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError, ZeroDivisionError) as err:
        raise _truncated(name, fmt, f"{type(err).__name__}: {err}") from None
    oriented = tag_before is not None and _orientation_tag(im) is None

    transparent = "transparency" in im.info
    channels = len(im.getbands())
    if mode == "P":
        channels = 4 if transparent else 3
    elif mode == "PA":
        channels = 4
    try:
        if (mode in ("RGB", "L") and not transparent) or mode in ("RGBA", "LA"):
            out = im
        elif transparent and mode in ("P", "L", "RGB", "1"):
            out = im.convert("RGBA")
        elif mode == "PA":
            out = im.convert("RGBA")
        elif mode == "La":
            out = im.convert("LA")
        elif mode == "RGBa":
            out = im.convert("RGBA")
        elif mode == "1":
            out = im.convert("L")
        elif mode.startswith("I;16"):
            arr16 = np.asarray(im).astype(np.uint16, copy=False)
            return _Pixels(arr16, channels, False, oriented, scale)
        elif mode in ("P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
            out = im.convert("RGB")
        else:
            raise _unsupported(name, fmt, mode, "only 8-bit and 16-bit integer pixels are read; no float or 32-bit")
    except ValueError as err:  # a conversion PIL does not offer
        raise _unsupported(name, fmt, mode, str(err)) from None
    return _Pixels(np.asarray(out), channels, out.mode in ("RGBA", "LA"), oriented, scale)
