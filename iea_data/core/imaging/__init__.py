"""Images in the library: decoding, colour, luma statistics, resizing and writing.

Conventions (shared by the whole toolkit):

- An image is float32 RGB (H, W, 3) in [0, 1], sRGB-encoded, EXIF orientation applied.
  Integer pixels become floats only here: uint8 / 255, uint16 / 65535.
- Luma is Rec.601 (0.299, 0.587, 0.114) of the sRGB-encoded values.
- A residual map is float32 (H, W) in [-1, 1]; exposure changes are EV stops in linear light.
- Entry points validate their arrays with :func:`check_image`, :func:`check_residual` and
  :func:`check_range`; out-of-range values raise instead of being clipped.

OpenCV, PIL and NumPy are imported on first use of a name (``iea_data.core.lazy``), so
``import iea_data.core.imaging`` stays cheap for the command line's start-up.
"""

from iea_data.core.lazy import lazy_attributes

_LAZY = {
    **dict.fromkeys(["LUMA_WEIGHTS", "apply_ev", "linear_to_srgb", "luma", "srgb_to_linear"], "._color"),
    **dict.fromkeys(["DEFAULT_MAX_PIXELS", "DecodedImage"], "._decoded"),
    **dict.fromkeys(["read_image", "read_image_bytes"], "._decode"),
    "read_header": "._header",
    "decode_memory": "._memory",
    **dict.fromkeys(
        ["RAW_EXTENSIONS", "RawHeader", "raw_header", "raw_decode_bytes", "pixel_limit_error"], "._raw_header"
    ),
    **dict.fromkeys(["encode_image", "encode_png", "write_image"], "._encode"),
    "ExifInfo": "._exif",
    **dict.fromkeys(["label_shape", "resize_image", "resize_map", "thumbnail"], "._resize"),
    **dict.fromkeys(["BLACK_LEVEL", "LUMA_STATS_KEYS", "WHITE_LEVEL", "luma_stats"], "._stats"),
    **dict.fromkeys(["check_image", "check_range", "check_residual"], "._validate"),
}

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
    # camera RAW headers (issue 14; the RAW readers are in iea_data.core.raw)
    "RAW_EXTENSIONS",
    "RawHeader",
    "raw_header",
    "raw_decode_bytes",
    "pixel_limit_error",
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

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__, namespace=globals())
