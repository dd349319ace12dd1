"""The few EXIF facts the toolkit keeps, read defensively from a lazily opened PIL image."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image

__all__ = ["ExifInfo"]

logger = logging.getLogger(__name__)

# Tag numbers (EXIF 2.32 / TIFF 6.0).
_MAKE = 0x010F
_MODEL = 0x0110
_ORIENTATION = 0x0112
_DATETIME = 0x0132
_EXIF_IFD = 0x8769
_EXPOSURE_TIME = 0x829A
_F_NUMBER = 0x829D
_ISO = 0x8827
_DATETIME_ORIGINAL = 0x9003
_DATETIME_DIGITIZED = 0x9004
_EXPOSURE_BIAS = 0x9204


@dataclass(frozen=True)
class ExifInfo:
    """Camera facts from an image's EXIF block; every field is ``None`` where unknown.

    Attributes
    ----------
    exposure_time : float or None
        Shutter time in seconds (> 0).
    f_number : float or None
        Aperture f-number (> 0).
    iso : int or None
        ISO speed (PhotographicSensitivity, > 0).
    exposure_bias : float or None
        Exposure compensation in EV.
    camera_make, camera_model : str or None
        As written by the camera, stripped of padding.
    capture_time : datetime.datetime or None
        DateTimeOriginal (else DateTimeDigitized, else DateTime), naive: the camera's
        wall-clock time as written (EXIF offsets are not applied).
    orientation : int or None
        EXIF Orientation 1..8 (other values are treated as absent). Decoded pixels already
        have it applied.

    Examples
    --------
    >>> ExifInfo(iso=100).iso
    100
    >>> ExifInfo().capture_time is None
    True
    """

    exposure_time: float | None = None
    f_number: float | None = None
    iso: int | None = None
    exposure_bias: float | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    capture_time: datetime | None = None
    orientation: int | None = None


def _first(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return value[0] if value else None
    return value


def _number(value: Any, *, positive: bool) -> float | None:
    value = _first(value)
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        out = float(value)  # IFDRational with a zero denominator gives nan
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not math.isfinite(out) or (positive and out <= 0):
        return None
    return out


def _text(value: Any) -> str | None:
    value = _first(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _time(value: Any) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def _raw_exif(im: Image.Image) -> Image.Exif | None:
    # PIL's PNG getexif() decodes the whole image to look for an eXIf chunk after IDAT: only
    # look where the header already has one, so reading EXIF never costs a second decode.
    if im.format == "PNG" and "exif" not in im.info and "Raw profile type exif" not in im.info:
        return None
    return im.getexif()


def exif_from_pil(im: Image.Image, name: str) -> ExifInfo:
    """Read :class:`ExifInfo` from a lazily opened PIL image; never raises.

    A malformed EXIF block is logged (warning) and yields what could be read, or an empty
    :class:`ExifInfo`: bad metadata must not make a good photo unreadable.
    """
    try:
        # PIL's warnings about a malformed block are ignored by the one filter that
        # imaging._header installs at import: nothing here touches the warning filters.
        exif = _raw_exif(im)
        if exif is None or not len(exif):
            return ExifInfo()
        try:
            sub = dict(exif.get_ifd(_EXIF_IFD))
        except Exception as err:
            logger.warning("ignoring an unreadable EXIF sub-IFD in %r: %s", name, err)
            sub = {}

        def get(tag: int) -> Any:
            # Writers disagree on IFD0 vs Exif IFD for a few tags; prefer the standard place.
            return sub[tag] if tag in sub else exif.get(tag)

        orientation = _first(exif.get(_ORIENTATION))
        if not isinstance(orientation, int) or not 1 <= orientation <= 8:
            if orientation is not None:
                logger.debug("ignoring invalid EXIF orientation %r in %r", orientation, name)
            orientation = None
        iso = _number(get(_ISO), positive=True)
        taken = get(_DATETIME_ORIGINAL) or get(_DATETIME_DIGITIZED) or exif.get(_DATETIME)
        return ExifInfo(
            exposure_time=_number(get(_EXPOSURE_TIME), positive=True),
            f_number=_number(get(_F_NUMBER), positive=True),
            iso=None if iso is None else int(round(iso)),
            exposure_bias=_number(get(_EXPOSURE_BIAS), positive=False),
            camera_make=_text(exif.get(_MAKE)),
            camera_model=_text(exif.get(_MODEL)),
            capture_time=_time(taken),
            orientation=orientation,
        )
    except Exception as err:
        logger.warning("ignoring unreadable EXIF metadata in %r: %s", name, err)
        return ExifInfo()
