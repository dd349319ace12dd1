"""A small, bounds-checked reader of the TIFF tags a camera RAW carries (make, model, exposure).

LibRaw (through rawpy) decodes the pixels but does not expose the camera's make, model or
exposure bias; most RAW formats (DNG, CR2, NEF, ARW, PEF, SRW, ORF, RW2, ...) are TIFF
structures, so their IFD0 and EXIF IFD are read here directly. Anything malformed is
ignored (the tags are then ``None``); this never raises on bad bytes.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime
from typing import Any

__all__ = ["read_tiff_tags", "RAW_MAGIC"]

# byte order mark + magic of the TIFF-structured RAW formats
_TIFF_HEADERS = {
    b"II*\x00": "<",
    b"MM\x00*": ">",
    b"IIRO": "<",  # Olympus ORF
    b"IIRS": "<",  # Olympus ORF
    b"MMOR": ">",  # Olympus ORF
    b"IIU\x00": "<",  # Panasonic RW2
}
#: Magic bytes of camera RAW containers that are not TIFF structures: (offset, bytes, format).
RAW_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"FUJIFILMCCD-RAW", "RAF"),
    (4, b"ftypcrx", "CR3"),
    (0, b"FOVb", "X3F"),
    (0, b"\x00MRM", "MRW"),
)

_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_TYPE_FMT = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 11: "f", 12: "d", 13: "I"}
_WANTED = {
    271: "make",
    272: "model",
    274: "orientation",
    306: "datetime",
    33434: "exposure_time",
    33437: "f_number",
    34855: "iso",
    36867: "datetime_original",
    36868: "datetime_digitized",
    37380: "exposure_bias",
}
_EXIF_IFD = 34665
_MAX_ENTRIES = 4096


def _values(data: bytes, bo: str, typ: int, count: int, at: int) -> Any:
    if typ == 2:
        raw = data[at : at + count].split(b"\x00", 1)[0]
        return raw.decode("utf-8", "replace").strip() or None
    if typ in (5, 10):
        code = "I" if typ == 5 else "i"
        out = []
        for i in range(count):
            num, den = struct.unpack_from(bo + code * 2, data, at + 8 * i)
            out.append(num / den if den else None)
        return out
    if typ in _TYPE_FMT:
        return list(struct.unpack_from(f"{bo}{count}{_TYPE_FMT[typ]}", data, at))
    return None


def _read_ifd(data: bytes, bo: str, offset: int, found: dict[str, Any]) -> int | None:
    """Read the wanted tags of the IFD at ``offset`` into ``found``; return the EXIF IFD offset."""
    if offset <= 0 or offset + 2 > len(data):
        return None
    (n,) = struct.unpack_from(bo + "H", data, offset)
    if n > _MAX_ENTRIES or offset + 2 + 12 * n > len(data):
        return None
    exif_at = None
    for i in range(n):
        tag, typ, count, value = struct.unpack_from(bo + "HHI4s", data, offset + 2 + 12 * i)
        if tag != _EXIF_IFD and tag not in _WANTED:
            continue
        size = _TYPE_SIZE.get(typ)
        if size is None or count == 0 or count > 1 << 16:
            continue
        if size * count <= 4:
            at = offset + 2 + 12 * i + 8
        else:
            (at,) = struct.unpack(bo + "I", value)
        if at + size * count > len(data):
            continue
        vals = _values(data, bo, typ, count, at)
        if tag == _EXIF_IFD:
            exif_at = vals[0] if isinstance(vals, list) and vals else None
        elif vals is not None:
            found.setdefault(_WANTED[tag], vals)
    return exif_at


def _scalar(v: Any) -> Any:
    if isinstance(v, list):
        return v[0] if v else None
    return v


def _positive(v: Any) -> float | None:
    v = _scalar(v)
    if isinstance(v, (int, float)) and math.isfinite(v) and v > 0:
        return float(v)
    return None


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def read_tiff_tags(data: bytes) -> dict[str, Any] | None:
    """The camera and exposure tags of a TIFF-structured RAW, or ``None`` if it is not one.

    Parameters
    ----------
    data : bytes
        The file's bytes.

    Returns
    -------
    dict or None
        Keys ``make``, ``model`` (str or None), ``orientation`` (int 1..8 or None),
        ``exposure_time``, ``f_number``, ``exposure_bias`` (float or None), ``iso``
        (int or None), ``capture_time`` (naive datetime or None: DateTimeOriginal, else
        DateTimeDigitized, else DateTime). ``None`` when the bytes do not start with a TIFF
        (or ORF / RW2) header.

    Examples
    --------
    >>> read_tiff_tags(b"not a tiff") is None
    True
    >>> header = b"II*\\x00" + (8).to_bytes(4, "little") + (0).to_bytes(2, "little")
    >>> read_tiff_tags(header)["make"] is None
    True
    """
    bo = _TIFF_HEADERS.get(bytes(data[:4]))
    if bo is None or len(data) < 8:
        return None
    found: dict[str, Any] = {}
    try:
        (ifd0,) = struct.unpack_from(bo + "I", data, 4)
        exif_at = _read_ifd(data, bo, ifd0, found)
        if exif_at:
            _read_ifd(data, bo, exif_at, found)
    except struct.error:
        pass
    iso = _positive(found.get("iso"))
    bias = _scalar(found.get("exposure_bias"))
    orientation = _scalar(found.get("orientation"))
    return {
        "make": found.get("make") if isinstance(found.get("make"), str) else None,
        "model": found.get("model") if isinstance(found.get("model"), str) else None,
        "orientation": orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None,
        "exposure_time": _positive(found.get("exposure_time")),
        "f_number": _positive(found.get("f_number")),
        "iso": int(iso) if iso is not None else None,
        "exposure_bias": float(bias) if isinstance(bias, (int, float)) and math.isfinite(bias) else None,
        "capture_time": _time(found.get("datetime_original"))
        or _time(found.get("datetime_digitized"))
        or _time(found.get("datetime")),
    }
