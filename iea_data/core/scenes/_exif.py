"""Scenes from EXIF: consecutive shots of one camera with different exposures, and their EV offsets."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Two exposures closer than this (in stops, per field) count as the same exposure.
_SAME_EXPOSURE_TOL_EV = 0.05


@dataclass(frozen=True)
class _Shot:
    index: int
    key: Hashable
    camera: str | None
    time: datetime | None
    exposure_time: float | None
    bias: float | None
    iso: float | None
    f_number: float | None


def _get(record: Any, name: str, *, required: bool = False) -> Any:
    if isinstance(record, Mapping):
        if required and name not in record:
            raise ValueError(f"record {record!r} has no {name!r} entry")
        return record.get(name)
    if required and not hasattr(record, name):
        raise ValueError(f"record {record!r} has no {name!r} attribute")
    return getattr(record, name, None)


def _positive(value: Any, name: str, key: Hashable) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"record {key!r}: {name} must be a number, got {value!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"record {key!r}: {name} must be a finite number > 0, got {value!r}")
    return x


def _shots(records: Iterable[Any]) -> list[_Shot]:
    shots: list[_Shot] = []
    seen: set[Hashable] = set()
    for index, record in enumerate(records):
        key = _get(record, "key", required=True)
        if key in seen:
            raise ValueError(f"records hold the key {key!r} twice; keys must be unique")
        seen.add(key)
        camera = _get(record, "camera")
        if camera is not None:
            camera = str(camera).strip() or None
        time = _get(record, "capture_time")
        if time is not None and not isinstance(time, datetime):
            raise ValueError(f"record {key!r}: capture_time must be a datetime or None, got {type(time).__name__}")
        bias = _get(record, "exposure_bias")
        if bias is not None:
            try:
                bias = float(bias)
            except (TypeError, ValueError):
                raise ValueError(f"record {key!r}: exposure_bias must be a number of stops, got {bias!r}") from None
            if not math.isfinite(bias):
                raise ValueError(f"record {key!r}: exposure_bias must be finite, got {bias!r}")
        shots.append(
            _Shot(
                index=index,
                key=key,
                camera=camera,
                time=time,
                exposure_time=_positive(_get(record, "exposure_time"), "exposure_time", key),
                bias=bias,
                iso=_positive(_get(record, "iso"), "iso", key),
                f_number=_positive(_get(record, "f_number"), "f_number", key),
            )
        )
    return shots


def _same_exposure(a: _Shot, b: _Shot) -> bool:
    """True when no field known on both shots differs by the tolerance or more."""
    pairs = (
        (a.exposure_time, b.exposure_time, 1.0),
        (a.iso, b.iso, 1.0),
        (a.f_number, b.f_number, 2.0),
    )
    for x, y, scale in pairs:
        if x is not None and y is not None:
            if abs(scale * math.log2(x / y)) >= _SAME_EXPOSURE_TOL_EV:
                return False
    if a.bias is not None and b.bias is not None:
        if abs(a.bias - b.bias) >= _SAME_EXPOSURE_TOL_EV:
            return False
    return True


def group_by_exif(
    records: Iterable[Any],
    *,
    window_s: float = 10.0,
) -> list[list[Hashable]]:
    """Find exposure brackets among shots from their EXIF facts.

    Parameters
    ----------
    records : iterable of mapping or object
        Each with ``key`` (hashable, unique) and ``camera`` (make + model string or
        ``None``), ``capture_time`` (``datetime`` or ``None``), ``exposure_time``
        (seconds > 0 or ``None``), ``exposure_bias`` (stops or ``None``); optionally
        ``iso`` and ``f_number``. Mappings are read by item, other objects by attribute;
        a missing optional field counts as ``None``.
    window_s : float, default 10.0
        Largest gap, in seconds, between a shot and the previous shot of its bracket.

    Returns
    -------
    list of list
        The keys of each bracket in capture order (ties keep the input order); brackets
        sorted by camera, then first capture time. Only brackets with at least two
        shots are returned.

    Raises
    ------
    ValueError
        On a duplicate key, a record without ``key``, a non-datetime ``capture_time``,
        a non-positive exposure time, ISO or f-number, a non-finite bias, a negative
        ``window_s``, or naive and timezone-aware capture times on one camera.

    Notes
    -----
    Shots are taken per camera (exact string after stripping blanks) in capture-time
    order. A shot joins the current bracket when it lies within ``window_s`` of the
    bracket's previous shot **and** its exposure differs from every shot already in the
    bracket; otherwise it starts a new bracket. Exposures differ when the exposure time,
    bias, ISO or f-number (each compared only where both shots have it) differ by
    0.05 stop or more. So a burst of identical exposures is not a bracket, and two
    brackets shot back to back (``0, -1, +1, 0, -1, +1``) come out as two.
    Records without a camera, a capture time, or both exposure time and bias are left
    out.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> t0 = datetime(2024, 5, 1, 12, 0, 0)
    >>> shots = [
    ...     dict(key="a", camera="X", capture_time=t0, exposure_time=1 / 100, exposure_bias=0),
    ...     dict(key="b", camera="X", capture_time=t0 + timedelta(seconds=1),
    ...          exposure_time=1 / 200, exposure_bias=-1),
    ...     dict(key="c", camera="X", capture_time=t0 + timedelta(seconds=2),
    ...          exposure_time=1 / 50, exposure_bias=1),
    ...     dict(key="d", camera="X", capture_time=t0 + timedelta(minutes=5),
    ...          exposure_time=1 / 50, exposure_bias=1),
    ... ]
    >>> group_by_exif(shots)
    [['a', 'b', 'c']]
    """
    window = float(window_s)
    if not (math.isfinite(window) and window >= 0):
        raise ValueError(f"window_s must be a finite number of seconds >= 0, got {window_s!r}")

    by_camera: dict[str, list[tuple[datetime, _Shot]]] = {}
    for shot in _shots(records):
        if shot.camera is None or shot.time is None:
            continue
        if shot.exposure_time is None and shot.bias is None:
            continue
        by_camera.setdefault(shot.camera, []).append((shot.time, shot))

    found: list[tuple[str, datetime, list[Hashable]]] = []
    for camera, timed in by_camera.items():
        if len({t.utcoffset() is not None for t, _ in timed}) > 1:
            raise ValueError(
                f"camera {camera!r} has both naive and timezone-aware capture times; "
                "convert them to one kind before grouping"
            )
        timed.sort(key=lambda ts: (ts[0], ts[1].index))
        brackets: list[list[tuple[datetime, _Shot]]] = []
        for time, shot in timed:
            current = brackets[-1] if brackets else None
            if (
                current is not None
                and (time - current[-1][0]).total_seconds() <= window
                and not any(_same_exposure(shot, member) for _, member in current)
            ):
                current.append((time, shot))
            else:
                brackets.append([(time, shot)])
        found.extend((camera, b[0][0], [shot.key for _, shot in b]) for b in brackets if len(b) >= 2)
    found.sort(key=lambda g: (g[0], g[1]))
    return [keys for _, _, keys in found]


def ev_offsets(records: Sequence[Any]) -> dict[Hashable, float]:
    """EV offset of each shot of one bracket, relative to its median exposure.

    Parameters
    ----------
    records : sequence of mapping or object
        The members of one bracket, with the fields described in :func:`group_by_exif`.

    Returns
    -------
    dict
        ``key -> offset`` in stops; positive = more light = brighter. The reference is
        the member with the median exposure (for an even count, the lower of the two
        middle ones; ties by input order); its offset is 0.0. Empty input gives ``{}``.

    Raises
    ------
    ValueError
        If some member has neither ``exposure_time`` nor ``exposure_bias``, or a field
        is invalid (see :func:`group_by_exif`).

    Notes
    -----
    When every member has an exposure time, the offset is the light actually gathered::

        ev = log2(t / t_ref) [+ log2(iso / iso_ref)] [- 2 * log2(N / N_ref)]

    (the ISO and f-number terms only when every member has them). The exposure bias is
    then **not** added: in auto-exposure bracketing the camera realises the bias by
    changing the exposure time, so ``log2(t / t_ref) + (bias - bias_ref)`` would count the
    step twice (a ``-1`` bias shot at half the time would come out at -2 EV). Only when
    some member lacks an exposure time is the offset ``bias - bias_ref``.

    Examples
    --------
    >>> shots = [
    ...     dict(key="base", exposure_time=1 / 100, exposure_bias=0.0),
    ...     dict(key="dark", exposure_time=1 / 200, exposure_bias=-1.0),
    ...     dict(key="bright", exposure_time=1 / 50, exposure_bias=1.0),
    ... ]
    >>> ev_offsets(shots)
    {'base': 0.0, 'dark': -1.0, 'bright': 1.0}
    >>> ev_offsets([dict(key=1, exposure_bias=-2.0), dict(key=2, exposure_bias=0.0)])
    {1: 0.0, 2: 2.0}
    """
    shots = _shots(records)
    if not shots:
        return {}
    missing = [s.key for s in shots if s.exposure_time is None and s.bias is None]
    if missing:
        raise ValueError(
            f"records {missing!r} have neither exposure_time nor exposure_bias; their EV offset cannot be computed"
        )
    if all(s.exposure_time is not None for s in shots):
        use_iso = all(s.iso is not None for s in shots)
        use_f = all(s.f_number is not None for s in shots)

        def offset(s: _Shot, r: _Shot) -> float:
            # Ratios first, then log2: exact for the usual power-of-two steps.
            v = math.log2(s.exposure_time / r.exposure_time)  # type: ignore[operator]
            if use_iso:
                v += math.log2(s.iso / r.iso)  # type: ignore[operator]
            if use_f:
                v -= 2.0 * math.log2(s.f_number / r.f_number)  # type: ignore[operator]
            return v

    else:

        def offset(s: _Shot, r: _Shot) -> float:
            return s.bias - r.bias  # type: ignore[operator]

    ranked = sorted(shots, key=lambda s: (offset(s, shots[0]), s.index))
    ref = ranked[(len(ranked) - 1) // 2]
    return {s.key: offset(s, ref) + 0.0 for s in shots}
