"""Camera RAW through rawpy (LibRaw): metadata, linear renders, exposures in linear light.

Pure functions on the bytes of a RAW file (no database, no workspace):

- :func:`read_raw_info` -- make, model, sensor size, bit depth, CFA pattern, black and
  white levels, camera white balance and the exposure EXIF (:class:`RawInfo`).
- :func:`render_linear` -- demosaic once to linear sRGB-primaries RGB with the camera's
  (or a given) white balance, ``no_auto_bright=True``, ``gamma=(1, 1)``, ``output_bps=16``.
- :func:`exposure_from_linear` -- one EV of a bracket: ``srgb(clip(linear * 2**ev))``.
- :func:`raw_preview` -- the half-size sRGB preview the ingest computes statistics and
  thumbnails on (from a Bayer sensor's data directly, else LibRaw's half-size render).
- :func:`ideal_from_linear` -- a scene's ideal target from its linear RAW render and an EV
  map (16-bit, no clipping before the map is applied).
- :class:`RawDecodeError` (``unreadable-raw``) and :class:`UnsupportedRawError`
  (``unsupported-raw``), both :class:`~iea_data.core.errors.ImageDecodeError`.
- :func:`synthetic_dng` -- a DNG of a known linear scene (tests and benchmarks; needs PiDNG),
  any 2 x 2 Bayer pattern (:data:`BAYER_PATTERNS`), per-channel blacks, colour matrix,
  orientation.

rawpy is imported on first use, so importing this package stays cheap.
"""

from ._errors import RawDecodeError, UnsupportedRawError
from ._ideal import ideal_from_linear
from ._read import (
    RAW_EXTENSIONS,
    LinearRender,
    RawInfo,
    check_wb,
    is_raw_name,
    rawpy_versions,
    read_raw_info,
    render_linear,
)
from ._render import EV_RANGE, PREVIEW_METHODS, RawPreview, exposure_from_linear, raw_preview
from ._synthetic import BAYER_PATTERNS, mosaic_bayer, mosaic_rggb, synthetic_dng
from ._tiff import read_tiff_tags

__all__ = [
    "RAW_EXTENSIONS",
    "EV_RANGE",
    "RawDecodeError",
    "UnsupportedRawError",
    "RawInfo",
    "LinearRender",
    "is_raw_name",
    "check_wb",
    "rawpy_versions",
    "read_raw_info",
    "read_tiff_tags",
    "render_linear",
    "exposure_from_linear",
    "raw_preview",
    "RawPreview",
    "PREVIEW_METHODS",
    "ideal_from_linear",
    "mosaic_rggb",
    "mosaic_bayer",
    "BAYER_PATTERNS",
    "synthetic_dng",
]
