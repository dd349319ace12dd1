"""Open camera RAW files with rawpy (LibRaw): metadata and linear renders."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from iea_data.core.imaging import RAW_EXTENSIONS, ExifInfo, pixel_limit_error

from ._errors import RawDecodeError, UnsupportedRawError
from ._tiff import RAW_MAGIC, read_tiff_tags

__all__ = [
    "RAW_EXTENSIONS",
    "RawInfo",
    "LinearRender",
    "is_raw_name",
    "check_wb",
    "rawpy_versions",
    "read_raw_info",
    "render_linear",
]

# RAW_EXTENSIONS (the file extensions read as camera RAW) is defined with the RAW header
# probe in iea_data.core.imaging, whose memory estimate needs it, and re-exported here.

Source = Union[bytes, bytearray, memoryview, str, os.PathLike]


def is_raw_name(name: str | os.PathLike[str]) -> bool:
    """Whether a file name has a camera RAW extension (any case).

    Examples
    --------
    >>> is_raw_name("IMG_0001.CR2"), is_raw_name("a.dng"), is_raw_name("a.png")
    (True, True, False)
    """
    return os.path.splitext(os.fspath(name))[1].lower() in RAW_EXTENSIONS


def rawpy_versions() -> dict[str, str]:
    """The versions of rawpy and of the LibRaw it runs, for provenance.

    Examples
    --------
    >>> sorted(rawpy_versions())
    ['libraw', 'rawpy']
    """
    import rawpy

    return {"rawpy": rawpy.__version__, "libraw": ".".join(str(v) for v in rawpy.libraw_version)}


@dataclass(frozen=True)
class RawInfo:
    """What a camera RAW file says about itself.

    Attributes
    ----------
    format : str
        ``"DNG"``, ``"CR2"``, ``"NEF"``, ... (from the extension, else the magic bytes, else ``"RAW"``).
    width, height : int
        Size of the full render (the visible area, camera orientation applied).
    raw_width, raw_height : int
        Size of the sensor data (including masked borders).
    bit_depth : int
        Bits of the sensor values, from the white level (``ceil(log2(white + 1))``).
    cfa_pattern : str or None
        The colour filter pattern read row by row (``"RGGB"``; 36 letters for X-Trans),
        ``None`` for non-mosaic data (Foveon, sRAW, linear DNG).
    black_levels : tuple of int
        Black level per CFA channel.
    white_level : int
        Sensor saturation value.
    camera_wb : tuple of float
        The camera's as-shot white balance multipliers (R, G, B, G2).
    flip : int
        LibRaw's orientation code (0 none, 3 180°, 5 90° CCW, 6 90° CW).
    exif : ExifInfo
        Make, model and exposure (time, f-number, ISO, bias, capture time) where found.
    """

    format: str
    width: int
    height: int
    raw_width: int
    raw_height: int
    bit_depth: int
    cfa_pattern: str | None
    black_levels: tuple[int, ...]
    white_level: int
    camera_wb: tuple[float, ...]
    flip: int
    exif: ExifInfo = field(default_factory=ExifInfo)

    @property
    def camera(self) -> str | None:
        """``"<make> <model>"`` where known."""
        parts = [p for p in (self.exif.camera_make, self.exif.camera_model) if p]
        return " ".join(parts) or None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready facts (the EXIF capture time as ISO text)."""
        exif = {k: getattr(self.exif, k) for k in self.exif.__dataclass_fields__}
        if exif["capture_time"] is not None:
            exif["capture_time"] = exif["capture_time"].isoformat()
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "exif"}
        out["black_levels"] = list(self.black_levels)
        out["camera_wb"] = list(self.camera_wb)
        out["exif"] = exif
        return out


@dataclass(frozen=True)
class LinearRender:
    """A RAW demosaicked to linear light.

    Attributes
    ----------
    linear : numpy.ndarray
        float32 (H, W, 3) in [0, 1]: linear sRGB primaries (not gamma-encoded), 1.0 the
        sensor's white level after white balance; ``uint16 / 65535`` of LibRaw's output.
    info : RawInfo
        The file's facts.
    params : dict
        The rendering parameters, as recorded in provenance.
    counts : numpy.ndarray
        uint16 (H, W, 3): LibRaw's output, ``linear == counts / 65535``; exposures from it are
        table lookups (:func:`exposure_from_linear`).
    """

    linear: np.ndarray
    info: RawInfo
    params: dict[str, Any]
    counts: np.ndarray | None = None


def _format_of(data: bytes, name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    if ext in RAW_EXTENSIONS:
        return ext[1:].upper()
    for offset, magic, fmt in RAW_MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return fmt
    return "RAW"


def _message(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text) or type(exc).__name__


def _camera_of(tags: dict | None) -> str | None:
    if not tags:
        return None
    return " ".join(p for p in (tags.get("make"), tags.get("model")) if p) or None


def _looks_raw(data: bytes, tags: dict | None) -> bool:
    return bool(tags and (tags.get("make") or tags.get("model"))) or any(
        data[o : o + len(m)] == m for o, m, _ in RAW_MAGIC
    )


def _read_bytes(source: Source, name: str) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<bytes>"
    path = os.fspath(source)
    try:
        with open(path, "rb") as fh:
            return fh.read(), name or path
    except OSError as exc:
        raise RawDecodeError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc


def _decode_error(exc: BaseException, data: bytes, name: str, tags: dict | None) -> RawDecodeError:
    import rawpy

    msg = _message(exc)
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        camera = _camera_of(tags)
        if _looks_raw(data, tags):
            what = camera or f"this {_format_of(data, name)} file's camera"
            return UnsupportedRawError(
                f"{name}: LibRaw {'.'.join(map(str, rawpy.libraw_version))} does not support {what} "
                f"(LibRaw: {msg}); convert the file to DNG (e.g. Adobe DNG Converter) and ingest that",
                camera=camera,
            )
        return RawDecodeError(f"{name}: not a camera RAW file (LibRaw: {msg}); check the file and its extension")
    return RawDecodeError(f"{name}: cannot decode the RAW file, truncated or corrupt (LibRaw: {msg})")


def _exif(tags: dict | None, raw: Any) -> ExifInfo:
    tags = tags or {}
    exposure_time, f_number, iso = tags.get("exposure_time"), tags.get("f_number"), tags.get("iso")
    other = getattr(raw, "other", None)  # rawpy >= 0.28 exposes LibRaw's imgother
    if other is not None:
        if exposure_time is None and other.shutter_speed > 0:
            exposure_time = float(other.shutter_speed)
        if f_number is None and other.aperture > 0:
            f_number = float(other.aperture)
        if iso is None and other.iso_speed > 0:
            iso = int(round(other.iso_speed))
    return ExifInfo(
        exposure_time=exposure_time,
        f_number=f_number,
        iso=iso,
        exposure_bias=tags.get("exposure_bias"),
        camera_make=tags.get("make"),
        camera_model=tags.get("model"),
        capture_time=tags.get("capture_time"),
        orientation=tags.get("orientation"),
    )


def _info(raw: Any, data: bytes, name: str, tags: dict | None) -> RawInfo:
    sizes = raw.sizes
    pattern = raw.raw_pattern
    desc = raw.color_desc.decode("ascii", "replace")
    cfa = "".join(desc[int(i)] for i in np.asarray(pattern).ravel()) if pattern is not None else None
    white = int(raw.white_level)
    width, height = int(sizes.width), int(sizes.height)
    if sizes.flip & 4:  # LibRaw's bit 4 swaps rows and columns (5 and 6, and the mirrored 4 and 7)
        width, height = height, width
    return RawInfo(
        format=_format_of(data, name),
        width=width,
        height=height,
        raw_width=int(sizes.raw_width),
        raw_height=int(sizes.raw_height),
        bit_depth=max(1, math.ceil(math.log2(white + 1))) if white > 0 else 16,
        cfa_pattern=cfa,
        black_levels=tuple(int(b) for b in raw.black_level_per_channel),
        white_level=white,
        camera_wb=tuple(float(w) for w in raw.camera_whitebalance),
        flip=int(sizes.flip),
        exif=_exif(tags, raw),
    )


def _check_max_pixels(max_pixels: Any) -> int | None:
    if max_pixels is None:
        return None
    if not isinstance(max_pixels, int) or isinstance(max_pixels, bool) or max_pixels < 1:
        raise ValueError(f"`max_pixels` must be an integer >= 1 or None; got {max_pixels!r}")
    return max_pixels


def _open(data: bytes, name: str, max_pixels: int | None = None) -> Any:
    import rawpy

    tags = read_tiff_tags(data)
    if not data:
        raise RawDecodeError(f"{name}: empty file (0 bytes)")
    raw = rawpy.RawPy()
    try:
        raw.open_buffer(io.BytesIO(data))
    except rawpy.LibRawError as exc:
        raw.close()
        raise _decode_error(exc, data, name, tags) from None
    sizes = raw.sizes
    if max_pixels is not None and sizes.raw_width * sizes.raw_height > max_pixels:  # from the header: nothing unpacked
        raw.close()
        raise pixel_limit_error(name, int(sizes.raw_width), int(sizes.raw_height), max_pixels)
    return raw, tags


def check_wb(wb: Any) -> list[float] | None:
    """Validate white-balance multipliers: 3 or 4 finite numbers > 0, returned as 4 (R, G, B, G2).

    Examples
    --------
    >>> check_wb((2.0, 1.0, 1.5))
    [2.0, 1.0, 1.5, 1.0]
    >>> check_wb(None) is None
    True
    """
    if wb is None:
        return None
    try:
        values = [float(v) for v in wb]
    except (TypeError, ValueError):
        raise TypeError(f"`wb` must be 3 or 4 numbers (R, G, B[, G2] multipliers); got {wb!r}") from None
    if len(values) not in (3, 4) or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"`wb` must be 3 or 4 finite multipliers > 0 (R, G, B[, G2]); got {wb!r}")
    return values if len(values) == 4 else values + [values[1]]


def read_raw_info(source: Source, *, name: str = "") -> RawInfo:
    """Open a camera RAW and read its facts (no demosaicking).

    Parameters
    ----------
    source : bytes or path-like
        The file's bytes, or its path.
    name : str, optional
        The name used in messages and for the format (its extension); default the path.

    Returns
    -------
    RawInfo

    Raises
    ------
    UnsupportedRawError
        A camera RAW from a camera LibRaw does not support (names the camera).
    RawDecodeError
        A truncated, corrupt or non-RAW file (with LibRaw's message).

    Examples
    --------
    >>> import numpy as np
    >>> from iea_data.core.raw import synthetic_dng
    >>> info = read_raw_info(synthetic_dng(np.full((32, 48, 3), 0.25, np.float32)), name="x.dng")
    >>> info.format, info.width, info.height, info.cfa_pattern, info.bit_depth
    ('DNG', 48, 32, 'RGGB', 14)
    """
    with _unpacked(source, name) as (_, info):
        return info


def render_linear(
    source: Source,
    *,
    wb: Any = None,
    half_size: bool = False,
    name: str = "",
    max_pixels: int | None = None,
) -> LinearRender:
    """Demosaic a camera RAW to linear light, without automatic brightening.

    LibRaw's ``postprocess`` with ``gamma=(1, 1)``, ``no_auto_bright=True``,
    ``output_bps=16``, sRGB output primaries and the camera's white balance (or ``wb``),
    and ``adjust_maximum_thr=0`` (LibRaw's default lowers the white level to the data's
    maximum when that is above 75 % of it: a content-dependent gain like auto-bright).
    The camera's orientation is applied. No content-dependent gain is applied, so the
    render's exposure is the sensor's.

    Parameters
    ----------
    source : bytes or path-like
        The file's bytes, or its path.
    wb : sequence of 3 or 4 float, optional
        White-balance multipliers (R, G, B[, G2]); default the camera's as-shot balance.
    half_size : bool, optional
        Demosaic at half resolution (each 2 x 2 CFA block one pixel): ~4x faster, for
        previews and statistics.
    name : str, optional
        The name used in messages and for the format; default the path.
    max_pixels : int, optional
        Refuse, from the header and before unpacking anything, a RAW whose sensor data
        (``raw_width * raw_height``) has more pixels (the ``decompression-bomb`` error of
        the other decoders); default no limit.

    Returns
    -------
    LinearRender
        ``linear`` float32 (H, W, 3) in [0, 1] (``uint16 / 65535``).

    Raises
    ------
    UnsupportedRawError, RawDecodeError
        See :func:`read_raw_info`.
    iea_data.core.errors.ImageDecodeError
        ``"decompression-bomb"``: more than ``max_pixels`` (nothing was decoded).
    TypeError, ValueError
        If ``wb`` is not 3 or 4 positive finite numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from iea_data.core.raw import synthetic_dng
    >>> scene = np.full((32, 48, 3), (0.2, 0.4, 0.1), np.float32)
    >>> out = render_linear(synthetic_dng(scene))
    >>> out.linear.shape, out.linear.dtype
    ((32, 48, 3), dtype('float32'))
    >>> [round(float(m), 3) for m in out.linear.reshape(-1, 3).mean(0)]
    [0.2, 0.4, 0.1]
    """
    rgb16, info, params = _postprocess(source, wb=wb, half_size=half_size, name=name, max_pixels=max_pixels)
    linear = np.ascontiguousarray(rgb16, dtype=np.float32)
    linear /= np.float32(65535)
    counts = np.ascontiguousarray(rgb16, dtype=np.uint16)
    counts.setflags(write=False)
    return LinearRender(linear=linear, info=info, params=params, counts=counts)


@contextmanager
def _unpacked(source: Source, name: str, max_pixels: int | None = None) -> Iterator[tuple[Any, RawInfo]]:
    """An opened and unpacked ``rawpy.RawPy`` and the file's facts; LibRaw's errors (also
    those raised in the ``with`` body) become :class:`RawDecodeError` / :class:`UnsupportedRawError`."""
    import rawpy

    data, name = _read_bytes(source, name)
    raw, tags = _open(data, name, max_pixels)
    try:
        try:
            raw.unpack()
            yield raw, _info(raw, data, name, tags)
        except rawpy.LibRawError as exc:
            raise _decode_error(exc, data, name, tags) from None
    finally:
        raw.close()


def _libraw_render(raw: Any, *, user_wb: list[float] | None, half_size: bool) -> np.ndarray:
    """LibRaw's uint16 (H, W, 3) linear sRGB render of an unpacked RAW (see :func:`render_linear`)."""
    import rawpy

    kw: dict[str, Any] = {"use_camera_wb": True} if user_wb is None else {"user_wb": user_wb}
    return raw.postprocess(
        gamma=(1, 1),
        no_auto_bright=True,
        adjust_maximum_thr=0.0,  # LibRaw's default 0.75 lowers the white level to the data's maximum
        output_bps=16,
        output_color=rawpy.ColorSpace.sRGB,
        half_size=bool(half_size),
        demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
        **kw,
    )


def _postprocess(
    source: Source, *, wb: Any, half_size: bool, name: str, max_pixels: int | None
) -> tuple[np.ndarray, RawInfo, dict[str, Any]]:
    """LibRaw's uint16 (H, W, 3) linear render, the file's facts and the parameters (see :func:`render_linear`)."""
    user_wb = check_wb(wb)
    max_pixels = _check_max_pixels(max_pixels)
    params = {
        "gamma": [1, 1],
        "no_auto_bright": True,
        "adjust_maximum_thr": 0.0,
        "output_bps": 16,
        "output_color": "sRGB",
        "half_size": bool(half_size),
        "wb": "camera" if user_wb is None else user_wb,
        "demosaic": "AHD" if not half_size else "none (half size)",
    }
    with _unpacked(source, name, max_pixels) as (raw, info):
        rgb16 = _libraw_render(raw, user_wb=user_wb, half_size=half_size)
    return rgb16, info, params
