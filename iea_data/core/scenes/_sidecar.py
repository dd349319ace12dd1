"""Scenes from a sidecar CSV: ``path,scene[,variant,ev,is_reference]``, validated row by row."""

from __future__ import annotations

import csv
import difflib
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from iea_data.core.errors import ManifestError

from ._tags import _NP_RE, _parse_token, format_ev_tag

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

        def fail(problem: str, line: int = line) -> ManifestError:
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
