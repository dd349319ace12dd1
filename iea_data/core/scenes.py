"""Group exposure brackets into scenes: pure functions, no database.

A *scene* is a bracket of one subject: its variant images, each with a variant tag
(``N2``, ``-1EV``) and, where known, an EV offset, plus its reference (the image the
ideal-exposure target starts from). The catalog calls these functions; they only look at
names, EXIF-like records and sidecar CSV files, and never touch the database.

Three ways to find scenes:

- :func:`group_by_filename` -- the IEA40K / FiveK convention ``<scene>_<variant>.<ext>``
  (parsed by :func:`parse_variant_name`), with the reference named ``<scene>.<ext>``.
- :func:`group_by_exif` -- consecutive shots of one camera with different exposures
  (auto-exposure bracketing); :func:`ev_offsets` gives each member's EV offset.
- :func:`read_sidecar` -- an explicit CSV (``path,scene[,variant,ev,is_reference]``).

Variant tags
------------
``N1``..``N4`` (darker renderings, ``N4`` darkest) and ``P0``..``P4`` (``P0`` the base
rendering, ``P1``..``P4`` brighter) are the IEA40K tokens; they are matched in upper case
only. Their EV is ``None``: the IEA40K renderings are not defined in stops.

EV tags are a signed decimal number of stops followed by ``EV`` (any case):
``-1EV``, ``+2ev``, ``0EV``, ``-0.5EV``, ``+1.5ev``, ``.5EV``. ``m`` and ``p`` may stand
for the sign (``m1ev`` = ``-1EV``, ``p0.5EV`` = ``+0.5EV``), a spelling some bracketing
tools write because ``+`` is awkward in file names. The canonical tag
(:func:`format_ev_tag`) is the shortest decimal with an explicit sign, and ``0EV`` for zero.
"""

from __future__ import annotations

import csv
import difflib
import logging
import math
import os
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .errors import ManifestError

__all__ = [
    "IEA40K_VARIANTS",
    "VariantName",
    "SceneGroup",
    "Conflict",
    "SidecarRow",
    "parse_variant_name",
    "format_ev_tag",
    "variant_sort_key",
    "group_by_filename",
    "group_by_exif",
    "ev_offsets",
    "read_sidecar",
    "SIDECAR_COLUMNS",
]

logger = logging.getLogger(__name__)

#: The IEA40K variant tokens, darkest first.
IEA40K_VARIANTS: tuple[str, ...] = ("N4", "N3", "N2", "N1", "P0", "P1", "P2", "P3", "P4")

_NP_RE = re.compile(r"[NP][0-9]")
_EV_RE = re.compile(
    r"(?P<sign>[+\-mMpP]?)(?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)[eE][vV]",
)
# The last ``_token`` before an optional single extension. ``.+`` is greedy, so the
# last underscore that yields a valid token wins; DOTALL lets scene names hold any
# character (newlines included). The EV form is tried first so that an extension-less
# ``x_P0.5EV`` reads as +0.5EV, not as ``P0`` with the extension ``.5EV``.
_NAME_RE = re.compile(
    r"(?P<scene>.+)_(?P<tok>[+\-mMpP]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)[eE][vV]|[NP][0-9])"
    r"(?:\.[^.]+)?",
    re.DOTALL,
)

# Two exposures closer than this (in stops, per field) count as the same exposure.
_SAME_EXPOSURE_TOL_EV = 0.05


# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class VariantName:
    """What a file name says about its scene and variant.

    Attributes
    ----------
    scene : str
        The scene key: the file's stem without the trailing ``_<variant>`` token.
    variant : str or None
        Canonical variant tag (``"N2"``, ``"P0"``, ``"-1EV"``, ``"+0.5EV"``, ``"0EV"``),
        or ``None`` when the name carries no token (it may be a scene's reference).
    ev : float or None
        The EV offset for EV tags; ``None`` for ``N``/``P`` tokens and for plain names.
    """

    scene: str
    variant: str | None
    ev: float | None


def _parse_token(token: str) -> tuple[str, float | None] | None:
    """Return ``(canonical tag, ev)`` for a variant token, or ``None`` if it is not one."""
    if _NP_RE.fullmatch(token):
        return (token, None) if token in IEA40K_VARIANTS else None
    m = _EV_RE.fullmatch(token)
    if m is None:
        return None
    ev = float(m["num"])
    if m["sign"] in ("-", "m", "M"):
        ev = -ev
    ev += 0.0  # turns -0.0 into 0.0
    return format_ev_tag(ev), ev


def format_ev_tag(ev: float) -> str:
    """Canonical EV variant tag for an offset in stops.

    The number is the shortest decimal that reads back as the same float, written
    without an exponent and with an explicit sign; zero is ``"0EV"``.

    Parameters
    ----------
    ev : float
        A finite EV offset in stops (positive = brighter).

    Returns
    -------
    str
        The tag, e.g. ``"-1EV"``, ``"+0.5EV"``, ``"0EV"``.

    Raises
    ------
    ValueError
        If ``ev`` is NaN or infinite.

    Examples
    --------
    >>> format_ev_tag(-1.0), format_ev_tag(2), format_ev_tag(0.5), format_ev_tag(-0.0)
    ('-1EV', '+2EV', '+0.5EV', '0EV')
    >>> parse_variant_name("x_" + format_ev_tag(-1 / 3) + ".png").ev == -1 / 3
    True
    """
    ev = float(ev)
    if not math.isfinite(ev):
        raise ValueError(f"ev must be a finite number of stops, got {ev!r}")
    if ev == 0.0:
        return "0EV"
    text = format(Decimal(repr(abs(ev))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return ("+" if ev > 0 else "-") + text + "EV"


def variant_sort_key(tag: str | None) -> tuple:
    """Sort key that orders variant tags from darkest to brightest.

    ``N4`` < ... < ``N1`` < ``P0`` < ... < ``P4``, then EV tags by their value, then any
    other (free-text, e.g. from a sidecar) tag alphabetically, then ``None``.

    Examples
    --------
    >>> sorted(["P1", "+1EV", "N1", "-2EV", "N3", "0EV"], key=variant_sort_key)
    ['N3', 'N1', 'P1', '-2EV', '0EV', '+1EV']
    """
    if tag is None:
        return (3, 0.0, "")
    parsed = _parse_token(tag)
    if parsed is None:
        return (2, 0.0, tag)
    canonical, ev = parsed
    if ev is None:
        return (0, float(IEA40K_VARIANTS.index(canonical)), canonical)
    return (1, ev, canonical)


def _basename(filename: str | os.PathLike[str]) -> str:
    if isinstance(filename, bytes) or not isinstance(filename, (str, os.PathLike)):
        raise TypeError(f"filename must be a str or os.PathLike, got {type(filename).__name__}")
    return os.path.basename(os.fspath(filename))


def parse_variant_name(filename: str | os.PathLike[str]) -> VariantName:
    """Split a file name into scene key, variant tag and EV offset.

    Only the basename is read, and only its last ``_<token>`` counts (scene names may
    contain underscores, spaces and any unicode). The extension is optional and may be
    anything; only the last suffix is an extension.

    Parameters
    ----------
    filename : str or os.PathLike
        A file name or path.

    Returns
    -------
    VariantName
        ``variant`` and ``ev`` are ``None`` when the name has no variant token; the scene
        is then the stem (the name without its last suffix).

    Raises
    ------
    TypeError
        If ``filename`` is not a str or path-like.
    ValueError
        If the basename is empty (a path ending in a separator).

    Notes
    -----
    Recognised tokens: ``N1``..``N4`` and ``P0``..``P4`` (upper case only; ``ev`` is
    ``None`` because the IEA40K renderings are not defined in stops), and EV tags
    (``-1EV``, ``+2ev``, ``0EV``, ``-0.5EV``, ``m1ev``, ``p1ev``; see the module
    docstring). Other tokens such as ``N5`` or ``v2`` are part of the scene name.
    The scene key before the token must be non-empty, so ``_N1.png`` is a plain name.

    Examples
    --------
    >>> parse_variant_name("a0001-jmac_DSC1459_N1.png")
    VariantName(scene='a0001-jmac_DSC1459', variant='N1', ev=None)
    >>> parse_variant_name("data/a4124-20080709_at_10h04m23__MG_4561_P0.png").scene
    'a4124-20080709_at_10h04m23__MG_4561'
    >>> parse_variant_name("Ünïcode shot_-0.50ev.JPG")
    VariantName(scene='Ünïcode shot', variant='-0.5EV', ev=-0.5)
    >>> parse_variant_name("bracket_p1EV.tif")
    VariantName(scene='bracket', variant='+1EV', ev=1.0)
    >>> parse_variant_name("a0001-jmac_DSC1459.png")
    VariantName(scene='a0001-jmac_DSC1459', variant=None, ev=None)
    """
    base = _basename(filename)
    if not base:
        raise ValueError(f"filename {os.fspath(filename)!r} has no basename; pass a file path, not a directory")
    m = _NAME_RE.fullmatch(base)
    if m is not None:
        parsed = _parse_token(m["tok"])
        if parsed is not None:
            return VariantName(scene=m["scene"], variant=parsed[0], ev=parsed[1])
    stem, _ = os.path.splitext(base)
    return VariantName(scene=stem, variant=None, ev=None)


# --------------------------------------------------------------------------- grouping


@dataclass(frozen=True)
class Conflict:
    """A name that could not be placed in its scene because its slot was taken.

    Attributes
    ----------
    tag : str or None
        The variant tag both names claim, or ``None`` for the reference slot.
    kept : str
        The name that holds the slot (the smaller of the two as strings).
    dropped : str
        The name that was left out of the group.
    """

    tag: str | None
    kept: str
    dropped: str


@dataclass
class SceneGroup:
    """One scene found from file names.

    Attributes
    ----------
    scene : str
        The scene key (the file stem without the variant token).
    directory : str
        ``os.path.normpath`` of the names' directory part (``"."`` for bare names).
        Scenes are keyed by ``(directory, scene)``, so equal scene names in two folders
        are two scenes.
    reference : str or None
        The name whose stem is the scene key, if one was given.
    variants : dict of str to str
        Variant tag -> name, ordered darkest to brightest (:func:`variant_sort_key`).
    evs : dict of str to (float or None)
        Variant tag -> EV offset (``None`` for ``N``/``P`` tokens).
    conflicts : list of Conflict
        Names left out because another name already claimed the same tag (or the
        reference slot); see :func:`group_by_filename`.
    """

    scene: str
    directory: str
    reference: str | None
    variants: dict[str, str]
    evs: dict[str, float | None]
    conflicts: list[Conflict] = field(default_factory=list)

    def names(self) -> list[str]:
        """All names placed in the group: the reference (if any), then the variants."""
        head = [self.reference] if self.reference is not None else []
        return head + list(self.variants.values())


def group_by_filename(
    names: Iterable[str | os.PathLike[str]],
    *,
    include_singletons: bool = False,
) -> list[SceneGroup]:
    """Group file names into scenes by the ``<scene>_<variant>.<ext>`` convention.

    Parameters
    ----------
    names : iterable of str or os.PathLike
        File names or paths. Each is parsed with :func:`parse_variant_name` on its
        basename; the returned groups hold the names as given (``os.fspath``).
    include_singletons : bool, default False
        Also return plain names (no variant token) that are not the reference of any
        scene, each as a group with ``reference`` set to the name and no variants.

    Returns
    -------
    list of SceneGroup
        Sorted by ``(directory, scene)``. Every name with a variant token is in a group
        (a lone variant makes a single-variant scene without reference); a plain name
        whose stem equals a scene key in the same directory becomes its reference.

    Raises
    ------
    TypeError
        If ``names`` is a single str/path instead of an iterable of them, or holds
        something that is not a str or path-like.
    ValueError
        If a name has an empty basename.

    Notes
    -----
    - Grouping is by ``(normpath(dirname), scene)``: two folders holding equal scene names
      never merge. No file system access is made, so ``a/x.png`` and ``./a/x.png`` are in
      the same directory but a symlinked folder is not resolved.
    - Duplicates never raise (one bad file must not stop a batch). When two names claim
      the same slot of a scene -- the same variant tag (``x_N1.png`` and ``x_N1.jpg``, or
      ``x_-1EV.png`` and ``x_-1.0ev.png``) or the reference (``x.png`` and ``x.jpg``) --
      the smaller name (as a string) is kept and the other is recorded in the group's
      ``conflicts``. The same string given twice is one name, not a conflict.
    - The result does not depend on the order of ``names``.
    - A name with a token is always a variant, never a reference: ``x_N1_P0.png`` is a
      variant of scene ``x_N1``, not a reference of anything.

    Examples
    --------
    >>> groups = group_by_filename(
    ...     ["s1_N1.png", "s1.png", "s1_P2.png", "other_-1EV.jpg", "lonely.png"]
    ... )
    >>> [(g.scene, g.reference, list(g.variants)) for g in groups]
    [('other', None, ['-1EV']), ('s1', 's1.png', ['N1', 'P2'])]
    >>> groups[0].evs
    {'-1EV': -1.0}
    >>> [g.scene for g in group_by_filename(["lonely.png"], include_singletons=True)]
    ['lonely']
    >>> [g.directory for g in group_by_filename(["a/s_N1.png", "b/s_N1.png"])]
    ['a', 'b']
    """
    if isinstance(names, (str, bytes, os.PathLike)):
        raise TypeError(
            "names must be an iterable of file names; wrap a single name in a list: "
            f"group_by_filename([{os.fspath(names)!r}])"
        )
    # Deduplicate identical strings and sort, so that the result is order-invariant.
    given = sorted({os.fspath(_check_name(n)) for n in names})

    variants: dict[tuple[str, str], dict[str, tuple[str, float | None]]] = {}
    plains: dict[tuple[str, str], list[str]] = {}
    conflicts: dict[tuple[str, str], list[Conflict]] = {}
    for name in given:
        parsed = parse_variant_name(name)
        key = (os.path.normpath(os.path.dirname(name)), parsed.scene)
        if parsed.variant is None:
            plains.setdefault(key, []).append(name)
            continue
        slots = variants.setdefault(key, {})
        if parsed.variant in slots:
            kept = slots[parsed.variant][0]
            conflicts.setdefault(key, []).append(Conflict(parsed.variant, kept, name))
            logger.debug("scene %r: %r and %r both claim %s", key, kept, name, parsed.variant)
        else:
            slots[parsed.variant] = (name, parsed.ev)

    groups: list[SceneGroup] = []
    for key in sorted(set(variants) | (set(plains) if include_singletons else set())):
        directory, scene = key
        plain = plains.get(key, [])
        found = conflicts.get(key, [])
        reference = plain[0] if plain else None
        found.extend(Conflict(None, reference, other) for other in plain[1:])
        slots = variants.get(key, {})
        order = sorted(slots, key=variant_sort_key)
        groups.append(
            SceneGroup(
                scene=scene,
                directory=directory,
                reference=reference,
                variants={tag: slots[tag][0] for tag in order},
                evs={tag: slots[tag][1] for tag in order},
                conflicts=sorted(found, key=lambda c: (variant_sort_key(c.tag), c.dropped)),
            )
        )
    return groups


def _check_name(name: Any) -> str | os.PathLike[str]:
    if isinstance(name, bytes) or not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"every name must be a str or os.PathLike, got {type(name).__name__}: {name!r}")
    return name


# --------------------------------------------------------------------------- EXIF


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


# --------------------------------------------------------------------------- sidecar

#: Columns a sidecar may have; the first two are required.
SIDECAR_COLUMNS: tuple[str, ...] = ("path", "scene", "variant", "ev", "is_reference")
_REQUIRED = ("path", "scene")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


@dataclass(frozen=True)
class SidecarRow:
    """One validated row of a scene sidecar CSV.

    Attributes
    ----------
    line : int
        Line number in the file (the header is line 1).
    path : str
        The image path as written (relative paths are the caller's to resolve, usually
        against the sidecar's folder).
    scene : str
        Scene key.
    variant : str or None
        Variant tag: canonical when it is a known token (``n1`` -> ``N1``, ``-1ev`` ->
        ``-1EV``), else the text as written; derived from ``ev`` when only that is given;
        ``None`` when neither is given (the caller may parse the file name).
    ev : float or None
        EV offset in stops; taken from an EV variant tag when the ``ev`` cell is empty.
    is_reference : bool
        Whether this image is the scene's reference.
    """

    line: int
    path: str
    scene: str
    variant: str | None
    ev: float | None
    is_reference: bool


def read_sidecar(path: str | os.PathLike[str]) -> list[SidecarRow]:
    """Read and validate a scene sidecar CSV.

    Parameters
    ----------
    path : str or os.PathLike
        A UTF-8 CSV (a byte-order mark is allowed) with header ``path,scene`` and
        optionally ``variant``, ``ev``, ``is_reference`` in any order. Cells are
        stripped of surrounding blanks; blank lines are skipped.

    Returns
    -------
    list of SidecarRow
        In file order.

    Raises
    ------
    ManifestError
        If the file cannot be read or is empty; if the header lacks ``path`` or ``scene``,
        repeats a column or has unknown columns (all named, with a suggestion); or if a
        row (named as ``line N``, the header being line 1) has the wrong number of cells,
        an empty ``path`` or ``scene``, an ``ev`` that is not a finite number, an
        ``is_reference`` other than true/false/1/0/yes/no (any case, empty = false), an
        EV variant tag that disagrees with ``ev``, a path already listed, a variant tag
        already used in its scene, or a second reference for its scene.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "scenes.csv").write_text(
    ...     "path,scene,variant,ev,is_reference\\n"
    ...     "img/a.jpg,beach,,,yes\\n"
    ...     "img/b.jpg,beach,-1ev,,\\n"
    ...     "img/c.jpg,beach,,2,no\\n"
    ... )
    >>> [(r.line, r.variant, r.ev, r.is_reference) for r in read_sidecar(d / "scenes.csv")]
    [(2, None, None, True), (3, '-1EV', -1.0, False), (4, '+2EV', 2.0, False)]
    >>> _ = (d / "bad.csv").write_text("path,scene,is_ref\\nx.jpg,s,1\\n")
    >>> read_sidecar(d / "bad.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    iea_data.core.errors.ManifestError: ...bad.csv, line 1: unknown column 'is_ref' (did you mean 'is_reference'?); ...
    """
    where = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return _parse_sidecar(csv.reader(fh), where)
    except OSError as exc:
        raise ManifestError(f"{where}: cannot read the sidecar: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise ManifestError(f"{where}: malformed CSV: {exc}") from exc


def _parse_sidecar(reader: Any, where: str) -> list[SidecarRow]:
    header: list[str] | None = None
    for cells in reader:
        if any(c.strip() for c in cells):
            header = [c.strip() for c in cells]
            break
    if header is None:
        raise ManifestError(f"{where}: empty sidecar; expected a header 'path,scene[,variant,ev,is_reference]'")
    hline = reader.line_num

    unknown = [c for c in header if c not in SIDECAR_COLUMNS]
    if unknown:
        parts = []
        for c in unknown:
            hint = difflib.get_close_matches(c, SIDECAR_COLUMNS, n=1)
            parts.append(f"{c!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        raise ManifestError(
            f"{where}, line {hline}: unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(parts)}; "
            f"allowed columns: {', '.join(SIDECAR_COLUMNS)}"
        )
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ManifestError(f"{where}, line {hline}: column(s) {', '.join(map(repr, repeated))} appear more than once")
    lacking = [c for c in _REQUIRED if c not in header]
    if lacking:
        raise ManifestError(
            f"{where}, line {hline}: missing required column(s) {', '.join(map(repr, lacking))}; "
            f"the header must contain 'path' and 'scene', got {','.join(header)!r}"
        )

    rows: list[SidecarRow] = []
    seen_paths: dict[str, int] = {}
    seen_tags: dict[tuple[str, str], int] = {}
    references: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ManifestError(
                f"{where}, line {line}: {len(cells)} cell(s) but the header has {len(header)} ({','.join(header)})"
            )
        cell = dict(zip(header, (c.strip() for c in cells)))

        def fail(problem: str) -> ManifestError:
            return ManifestError(f"{where}, line {line}: {problem}")

        img = cell["path"]
        scene = cell["scene"]
        if not img:
            raise fail("empty 'path'")
        if not scene:
            raise fail(f"empty 'scene' for {img!r}")

        ev: float | None = None
        ev_text = cell.get("ev", "")
        if ev_text:
            try:
                ev = float(re.sub(r"(?i)ev$", "", ev_text))
            except ValueError:
                raise fail(f"'ev' must be a number of stops such as -1 or 0.5, got {ev_text!r}") from None
            if not math.isfinite(ev):
                raise fail(f"'ev' must be finite, got {ev_text!r}")
            ev += 0.0

        variant: str | None = cell.get("variant", "") or None
        if variant is not None:
            parsed = _parse_token(variant.upper() if _NP_RE.fullmatch(variant.upper()) else variant)
            if parsed is not None:
                variant, tag_ev = parsed
                if tag_ev is not None:
                    if ev is not None and abs(ev - tag_ev) > 1e-9:
                        raise fail(f"variant {variant!r} says {tag_ev:g} EV but 'ev' is {ev_text!r}")
                    ev = tag_ev
        elif ev is not None:
            variant = format_ev_tag(ev)

        ref_text = cell.get("is_reference", "")
        flag = ref_text.lower()
        if flag in _TRUE:
            is_ref = True
        elif flag in _FALSE:
            is_ref = False
        else:
            raise fail(f"'is_reference' must be one of true/false/1/0/yes/no, got {ref_text!r}")

        if img in seen_paths:
            raise fail(f"path {img!r} is already listed on line {seen_paths[img]}")
        seen_paths[img] = line
        if variant is not None:
            if (scene, variant) in seen_tags:
                raise fail(f"scene {scene!r} already has variant {variant!r} (line {seen_tags[scene, variant]})")
            seen_tags[scene, variant] = line
        if is_ref:
            if scene in references:
                raise fail(
                    f"scene {scene!r} already has a reference on line {references[scene]}; "
                    "a scene has at most one reference"
                )
            references[scene] = line
        rows.append(SidecarRow(line, img, scene, variant, ev, is_ref))
    return rows
