"""Scenes from file names: the IEA40K / FiveK convention ``<scene>_<variant>.<ext>``."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import Any

from ._tags import _parse_token, variant_sort_key
from ._types import Conflict, SceneGroup, VariantName

logger = logging.getLogger(__name__)

# The last ``_token`` before an optional single extension. ``.+`` is greedy, so the
# last underscore that yields a valid token wins; DOTALL lets scene names hold any
# character (newlines included). The EV form is tried first so that an extension-less
# ``x_P0.5EV`` reads as +0.5EV, not as ``P0`` with the extension ``.5EV``.
_NAME_RE = re.compile(
    r"(?P<scene>.+)_(?P<tok>[+\-mMpP]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)[eE][vV]|[NP][0-9])"
    r"(?:\.[^.]+)?",
    re.DOTALL,
)


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
        found.extend(Conflict(None, plain[0], other) for other in plain[1:])
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
