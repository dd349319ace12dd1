"""Synthetic DNG files from a known linear scene (tests, docs and benchmarks; needs PiDNG)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

__all__ = ["synthetic_dng", "mosaic_rggb"]

# XYZ (D65) -> linear sRGB: as a DNG ColorMatrix1 it makes the camera's RGB sRGB's primaries.
_XYZ_TO_SRGB = (
    (3.2404542, -1.5371385, -0.4985314),
    (-0.9692660, 1.8760108, 0.0415560),
    (0.0556434, -0.2040259, 1.0572252),
)


def mosaic_rggb(scene: np.ndarray, *, black: int = 512, white: int = 16383) -> np.ndarray:
    """Sample a linear scene through an RGGB Bayer filter into sensor values.

    Parameters
    ----------
    scene : numpy.ndarray
        float (H, W, 3) in [0, 1], linear light; H and W even.
    black, white : int
        Sensor black and white levels.

    Returns
    -------
    numpy.ndarray
        uint16 (H, W): ``round(black + value * (white - black))``.

    Examples
    --------
    >>> mosaic_rggb(np.ones((2, 2, 3)), black=0, white=100).tolist()
    [[100, 100], [100, 100]]
    """
    scene = np.asarray(scene, dtype=np.float64)
    if scene.ndim != 3 or scene.shape[2] != 3 or scene.shape[0] % 2 or scene.shape[1] % 2:
        raise ValueError(f"`scene` must be (H, W, 3) with even H and W; got shape {scene.shape}")
    if not (np.isfinite(scene).all() and scene.min() >= 0 and scene.max() <= 1):
        raise ValueError("`scene` must be linear light in [0, 1]")
    if not 0 <= black < white <= 65535:
        raise ValueError(f"need 0 <= black < white <= 65535; got black={black}, white={white}")
    mos = np.empty(scene.shape[:2])
    mos[0::2, 0::2] = scene[0::2, 0::2, 0]
    mos[0::2, 1::2] = scene[0::2, 1::2, 1]
    mos[1::2, 0::2] = scene[1::2, 0::2, 1]
    mos[1::2, 1::2] = scene[1::2, 1::2, 2]
    return np.round(black + mos * (white - black)).astype(np.uint16)


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
) -> bytes:
    """The bytes of an uncompressed RGGB DNG whose linear render is ``scene``.

    The colour matrix maps the camera's RGB to sRGB's primaries unchanged and the as-shot
    white balance is neutral (``neutral``), so LibRaw's linear render of the file
    reproduces ``scene`` up to demosaicking and 1 / (white - black) quantisation. Exposure
    tags are written into IFD0 (TIFF/EP style).

    Parameters
    ----------
    scene : numpy.ndarray
        float (H, W, 3) in [0, 1], linear light; H and W even.
    black, white : int
        Sensor black and white levels (the white level sets the bit depth: 16383 = 14 bits).
    make, model : str
        Camera make and model tags.
    exposure_time, f_number, iso, exposure_bias, capture_time : optional
        EXIF exposure tags; ``None`` leaves a tag out.
    neutral : sequence of 3 float
        AsShotNeutral (the camera white balance is its reciprocal).

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

    raw = mosaic_rggb(scene, black=black, white=white)
    h, w = raw.shape
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, 1)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFAPattern.RGGB)
    t.set(Tag.BlackLevel, black)
    t.set(Tag.WhiteLevel, white)
    t.set(Tag.ColorMatrix1, [_rational(v) for row in _XYZ_TO_SRGB for v in row])
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
