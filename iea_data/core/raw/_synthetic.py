"""Synthetic DNG files from a known linear scene (tests, docs and benchmarks; needs PiDNG)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

__all__ = ["synthetic_dng", "mosaic_rggb", "mosaic_bayer", "BAYER_PATTERNS"]

#: The 2 x 2 Bayer patterns, read row by row, that :func:`mosaic_bayer` and :func:`synthetic_dng` write.
BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
_CHANNEL = {"R": 0, "G": 1, "B": 2}

# XYZ (D65) -> linear sRGB: as a DNG ColorMatrix1 it makes the camera's RGB sRGB's primaries.
_XYZ_TO_SRGB = (
    (3.2404542, -1.5371385, -0.4985314),
    (-0.9692660, 1.8760108, 0.0415560),
    (0.0556434, -0.2040259, 1.0572252),
)


def mosaic_bayer(scene: np.ndarray, pattern: str = "RGGB", *, black: Any = 512, white: int = 16383) -> np.ndarray:
    """Sample a linear scene through a 2 x 2 Bayer filter into sensor values.

    Parameters
    ----------
    scene : numpy.ndarray
        float (H, W, 3) in [0, 1], linear light in the camera's RGB; H and W even.
    pattern : str, optional
        One of :data:`BAYER_PATTERNS`: the filter colours of the 2 x 2 block, row by row.
    black : int or sequence of 4 int, optional
        Sensor black level, or one per position of the 2 x 2 block (row by row).
    white : int, optional
        Sensor white level.

    Returns
    -------
    numpy.ndarray
        uint16 (H, W): ``round(black + value * (white - black))`` with each position's black.

    Examples
    --------
    >>> scene = np.zeros((2, 2, 3)); scene[..., 2] = 1.0
    >>> mosaic_bayer(scene, "GBRG", black=(0, 1, 2, 3), white=100).tolist()
    [[0, 100], [2, 3]]
    """
    if pattern not in BAYER_PATTERNS:
        raise ValueError(f"`pattern` must be one of {', '.join(BAYER_PATTERNS)}; got {pattern!r}")
    scene = _check_scene(scene)
    blacks = _check_black(black, white)
    out = np.empty(scene.shape[:2], dtype=np.uint16)
    for k, letter in enumerate(pattern):
        dy, dx = divmod(k, 2)
        values = scene[dy::2, dx::2, _CHANNEL[letter]]
        out[dy::2, dx::2] = np.round(blacks[k] + values * (white - blacks[k]))
    return out


def _check_scene(scene: Any) -> np.ndarray:
    scene = np.asarray(scene, dtype=np.float64)
    if scene.ndim != 3 or scene.shape[2] != 3 or scene.shape[0] % 2 or scene.shape[1] % 2:
        raise ValueError(f"`scene` must be (H, W, 3) with even H and W; got shape {scene.shape}")
    if not (np.isfinite(scene).all() and scene.min() >= 0 and scene.max() <= 1):
        raise ValueError("`scene` must be linear light in [0, 1]")
    return scene


def _check_black(black: Any, white: int) -> tuple[int, int, int, int]:
    blacks = (black,) * 4 if isinstance(black, (int, np.integer)) else tuple(black)
    if len(blacks) != 4 or not all(isinstance(b, (int, np.integer)) and 0 <= b < white <= 65535 for b in blacks):
        raise ValueError(
            f"need `black` (one int or 4) with 0 <= black < white <= 65535; got black={black!r}, white={white}"
        )
    return tuple(int(b) for b in blacks)  # type: ignore[return-value]


def mosaic_rggb(scene: np.ndarray, *, black: int = 512, white: int = 16383) -> np.ndarray:
    """Sample a linear scene through an RGGB Bayer filter: :func:`mosaic_bayer` with ``"RGGB"``.

    Examples
    --------
    >>> mosaic_rggb(np.ones((2, 2, 3)), black=0, white=100).tolist()
    [[100, 100], [100, 100]]
    """
    return mosaic_bayer(scene, "RGGB", black=black, white=white)


def _rational(x: float, den: int = 10000) -> list[int]:
    return [int(round(x * den)), den]


def synthetic_dng(
    scene: np.ndarray,
    *,
    black: int = 512,
    white: int = 16383,
    make: str = "Synthetic",
    model: str = "Bayer RGGB",
    exposure_time: float | None = 1 / 100,
    f_number: float | None = 5.6,
    iso: int | None = 200,
    exposure_bias: float | None = 0.0,
    capture_time: datetime | None = datetime(2024, 5, 1, 12, 0, 0),
    neutral: Any = (1.0, 1.0, 1.0),
    pattern: str | None = "RGGB",
    color_matrix: Any = None,
    orientation: int = 1,
) -> bytes:
    """The bytes of an uncompressed Bayer DNG whose linear render is ``scene``.

    By default the colour matrix maps the camera's RGB to sRGB's primaries unchanged and the
    as-shot white balance is neutral (``neutral``), so LibRaw's linear render of the file
    reproduces ``scene`` up to demosaicking and 1 / (white - black) quantisation. Exposure
    tags are written into IFD0 (TIFF/EP style).

    Parameters
    ----------
    scene : numpy.ndarray
        float (H, W, 3) in [0, 1], linear light; H and W even.
    black : int or sequence of 4 int
        Sensor black level, or one per position of the 2 x 2 block (row by row; written with
        ``BlackLevelRepeatDim`` 2 x 2).
    white : int
        Sensor white level (it sets the bit depth: 16383 = 14 bits).
    make, model : str
        Camera make and model tags.
    exposure_time, f_number, iso, exposure_bias, capture_time : optional
        EXIF exposure tags; ``None`` leaves a tag out.
    neutral : sequence of 3 float
        AsShotNeutral (the camera white balance is its reciprocal).
    pattern : str or None, optional
        The CFA pattern, one of :data:`BAYER_PATTERNS`; ``None`` writes a LinearRaw DNG
        (three samples a pixel, no mosaic; one black level).
    color_matrix : 3 x 3 floats, optional
        ``ColorMatrix1`` (XYZ to camera RGB, D65); default XYZ to linear sRGB (the camera's
        RGB is sRGB's). With another matrix ``scene`` is the camera's RGB, not sRGB.
    orientation : int, optional
        The TIFF orientation tag (1 as stored, 3 rotated 180°, 6 and 8 rotated 90°, 2, 4, 5
        and 7 mirrored).

    Returns
    -------
    bytes

    Examples
    --------
    >>> data = synthetic_dng(np.full((4, 6, 3), 0.5))
    >>> data[:4]
    b'II*\\x00'
    """
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation

    blacks = _check_black(black, white)
    if pattern is None:
        if len(set(blacks)) != 1:
            raise ValueError(f"a LinearRaw DNG (`pattern=None`) has one black level; got black={black!r}")
        raw = np.round(blacks[0] + _check_scene(scene) * (white - blacks[0])).astype(np.uint16)
    else:
        raw = mosaic_bayer(scene, pattern, black=black, white=white)
    matrix = np.asarray(_XYZ_TO_SRGB if color_matrix is None else color_matrix, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.isfinite(matrix).all():
        raise ValueError(f"`color_matrix` must be 3 x 3 finite numbers; got {color_matrix!r}")
    if orientation not in range(1, 9):
        raise ValueError(f"`orientation` must be a TIFF orientation 1..8; got {orientation!r}")
    h, w = raw.shape[:2]
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, int(orientation))
    if pattern is None:
        t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Linear_Raw)
        t.set(Tag.SamplesPerPixel, 3)
        t.set(Tag.BitsPerSample, [16, 16, 16])
    else:
        t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
        t.set(Tag.SamplesPerPixel, 1)
        t.set(Tag.BitsPerSample, 16)
        t.set(Tag.CFARepeatPatternDim, [2, 2])
        t.set(Tag.CFAPattern, getattr(CFAPattern, pattern))
    if len(set(blacks)) == 1:
        t.set(Tag.BlackLevel, blacks[0])
    else:
        t.set(Tag.BlackLevelRepeatDim, [2, 2])
        t.set(Tag.BlackLevel, list(blacks))
    t.set(Tag.WhiteLevel, white)
    t.set(Tag.ColorMatrix1, [_rational(float(v)) for v in matrix.ravel()])
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [_rational(float(v)) for v in neutral])
    t.set(Tag.BaselineExposure, [[0, 100]])
    t.set(Tag.Make, make)
    t.set(Tag.Model, model)
    t.set(Tag.UniqueCameraModel, f"{make} {model}")
    if exposure_time is not None:
        t.set(Tag.ExposureTime, [_rational(exposure_time, 1_000_000)])
    if f_number is not None:
        t.set(Tag.FNumber, [_rational(f_number, 100)])
    if iso is not None:
        t.set(Tag.PhotographicSensitivity, [int(iso)])
    if exposure_bias is not None:
        t.set(Tag.ExposureBiasValue, [_rational(exposure_bias, 100)])
    if capture_time is not None:
        t.set(Tag.DateTimeOriginal, capture_time.strftime("%Y:%m:%d %H:%M:%S"))
    t.set(Tag.DNGVersion, DNGVersion.V1_4)
    t.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    writer = RAW2DNG()
    writer.options(t, path="", compress=False)
    return bytes(writer.convert(raw, filename=""))
