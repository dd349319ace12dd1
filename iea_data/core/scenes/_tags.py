"""Variant tags, shared by the parsers: the IEA40K tokens and EV tags, their canonical form and order."""

from __future__ import annotations

import math
import re
from decimal import Decimal

#: The IEA40K variant tokens, darkest first.
IEA40K_VARIANTS: tuple[str, ...] = ("N4", "N3", "N2", "N1", "P0", "P1", "P2", "P3", "P4")

_NP_RE = re.compile(r"[NP][0-9]")
_EV_RE = re.compile(
    r"(?P<sign>[+\-mMpP]?)(?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)[eE][vV]",
)


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
    >>> from iea_data.core.scenes import parse_variant_name
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
