"""Images in the library: decoding, colour, luma statistics, resizing and writing.

Conventions (shared by the whole toolkit):

- An image is float32 RGB (H, W, 3) in [0, 1], sRGB-encoded, EXIF orientation applied.
  Integer pixels become floats only here: uint8 / 255, uint16 / 65535.
- Luma is Rec.601 (0.299, 0.587, 0.114) of the sRGB-encoded values.
- A residual map is float32 (H, W) in [-1, 1]; exposure changes are EV stops in linear light.
- Entry points validate their arrays with :func:`check_image`, :func:`check_residual` and
  :func:`check_range`; out-of-range values raise instead of being clipped.
"""

from ._color import LUMA_WEIGHTS, apply_ev, linear_to_srgb, luma, srgb_to_linear
from ._decode import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    decode_memory,
    read_header,
    read_image,
    read_image_bytes,
)
from ._encode import encode_image, encode_png, write_image
from ._exif import ExifInfo
from ._resize import label_shape, resize_image, resize_map, thumbnail
from ._stats import BLACK_LEVEL, LUMA_STATS_KEYS, WHITE_LEVEL, luma_stats
from ._validate import check_image, check_range, check_residual

__all__ = [
    # validation
    "check_image",
    "check_residual",
    "check_range",
    # colour
    "LUMA_WEIGHTS",
    "srgb_to_linear",
    "linear_to_srgb",
    "luma",
    "apply_ev",
    # decoding
    "DEFAULT_MAX_PIXELS",
    "DecodedImage",
    "ExifInfo",
    "read_image",
    "read_image_bytes",
    "read_header",
    "decode_memory",
    # statistics
    "BLACK_LEVEL",
    "WHITE_LEVEL",
    "LUMA_STATS_KEYS",
    "luma_stats",
    # resizing
    "label_shape",
    "resize_map",
    "resize_image",
    "thumbnail",
    # writing
    "write_image",
    "encode_png",
    "encode_image",
]
