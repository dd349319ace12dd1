"""Render exposure brackets from camera RAW files: demosaic once, scale in linear light, write files."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import multiprocessing as mp
import os
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iea_data.core import imaging, raw
from iea_data.core.errors import IeaError, ImageDecodeError
from iea_data.core.files import atomic_write
from iea_data.core.progress import ProgressFn
from iea_data.core.scenes import IEA40K_VARIANTS, format_ev_tag

__all__ = [
    "FORMATS",
    "NAME_STYLES",
    "SIDECAR_NAME",
    "PROVENANCE_SUFFIX",
    "BracketError",
    "BracketReport",
    "parse_evs",
    "bracket_names",
    "render_brackets",
]

log = logging.getLogger(__name__)

#: ``--format`` -> (extension, bit depth).
FORMATS = {"png16": (".png", 16), "png": (".png", 8), "jpg": (".jpg", 8)}
NAME_STYLES = ("iea40k", "ev")
SIDECAR_NAME = "brackets.csv"
PROVENANCE_SUFFIX = ".render.json"
JPEG_QUALITY = 95
_WRITTEN_BY = "iea brackets render"


def parse_evs(text: str | Sequence[float]) -> tuple[float, ...]:
    """EV values from ``"-2,-1,0,+1,+2"`` (or a sequence): finite, distinct, sorted darkest first.

    Examples
    --------
    >>> parse_evs("-2,-1,0,+1,+2")
    (-2.0, -1.0, 0.0, 1.0, 2.0)
    >>> parse_evs([0.5, -0.5])
    (-0.5, 0.5)
    """
    items = [p.strip() for p in re.split(r"[,\s]+", text) if p.strip()] if isinstance(text, str) else list(text)
    if not items:
        raise IeaError("--ev: give at least one EV value, e.g. --ev -2,-1,0,+1,+2")
    evs = []
    for item in items:
        try:
            ev = float(item)
        except (TypeError, ValueError):
            raise IeaError(f"--ev: {item!r} is not a number of stops; e.g. --ev -2,-1,0,+1,+2") from None
        lo, hi = raw.EV_RANGE
        if not math.isfinite(ev) or not lo <= ev <= hi:
            raise IeaError(f"--ev: {item!r} must be a finite number of stops within {lo:g}..{hi:+g}")
        evs.append(ev + 0.0)
    if len(set(evs)) != len(evs):
        raise IeaError(f"--ev: values repeat ({text!r}); give each EV once")
    return tuple(sorted(evs))


def _iea40k_token(ev: float) -> str:
    if ev != int(ev) or not -4 <= ev <= 4:
        raise IeaError(
            f"--name-style iea40k names whole EVs from -4 to +4 (N4..N1, P0..P4); {ev:g} has no token: "
            "use --name-style ev"
        )
    token = f"N{-int(ev)}" if ev < 0 else f"P{int(ev)}"
    assert token in IEA40K_VARIANTS
    return token


def bracket_names(
    stem: str, evs: Sequence[float], *, fmt: str = "png16", reference: float | None = 0.0, name_style: str = "iea40k"
) -> list[dict[str, Any]]:
    """The files one RAW's bracket is written as, with their sidecar rows.

    The reference EV's file is ``<stem>.<ext>`` (so that ``iea ingest`` makes it the scene's
    reference); the others are ``<stem>_<variant>.<ext>``: IEA40K tokens (``N2`` = -2 EV,
    ``P0`` = 0 EV, ``P2`` = +2 EV) or EV tags (``-2EV``, ``0EV``, ``+1EV``).

    Returns
    -------
    list of dict
        ``{"ev", "file", "variant", "is_reference"}``, darkest first.

    Examples
    --------
    >>> [r["file"] for r in bracket_names("a", [-1.0, 0.0, 1.0])]
    ['a_N1.png', 'a.png', 'a_P1.png']
    >>> [r["file"] for r in bracket_names("a", [-0.5, 0.5], reference=None, name_style="ev", fmt="jpg")]
    ['a_-0.5EV.jpg', 'a_+0.5EV.jpg']
    """
    if fmt not in FORMATS:
        raise IeaError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if name_style not in NAME_STYLES:
        raise IeaError(f"--name-style must be one of {', '.join(NAME_STYLES)}; got {name_style!r}")
    if reference is not None and reference not in evs:
        raise IeaError(f"--reference {reference:g} is not one of the EVs ({', '.join(f'{e:g}' for e in evs)})")
    ext = FORMATS[fmt][0]
    rows = []
    for ev in sorted(evs):
        if reference is not None and ev == reference:
            rows.append({"ev": ev, "file": f"{stem}{ext}", "variant": None, "is_reference": True})
            continue
        variant = _iea40k_token(ev) if name_style == "iea40k" else format_ev_tag(ev)
        rows.append({"ev": ev, "file": f"{stem}_{variant}{ext}", "variant": variant, "is_reference": False})
    return rows


@dataclass(frozen=True)
class BracketError:
    """A RAW file that was reported and skipped."""

    path: str
    reason: str
    message: str


@dataclass
class BracketReport:
    """What :func:`render_brackets` did."""

    out: str
    rendered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[BracketError] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    sidecar: str | None = None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _params(evs, fmt, reference, name_style, wb) -> dict[str, Any]:
    return {
        "evs": list(evs),
        "format": fmt,
        "reference": reference,
        "name_style": name_style,
        "wb": list(wb) if wb is not None else "camera",
        "scaling": "srgb(clip(linear * 2**ev, 0, 1)) in linear light (iea_data.core.raw.exposure_from_linear)",
        "jpeg_quality": JPEG_QUALITY if fmt == "jpg" else None,
    }


def _stems(paths: Sequence[str]) -> dict[str, str]:
    stems: dict[str, str] = {}
    for p in paths:
        stem = Path(p).stem
        if stem in stems and stems[stem] != p:
            raise IeaError(f"{p} and {stems[stem]} would both write {stem}.*; render them into different --out folders")
        stems[stem] = p
    return stems


def _up_to_date(out: Path, stem: str, sha: str, params: dict) -> bool:
    prov = out / f"{stem}{PROVENANCE_SUFFIX}"
    try:
        info = json.loads(prov.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if (
        info.get("raw_sha256") != sha
        or info.get("parameters") != params
        or info.get("versions") != raw.rawpy_versions()
    ):
        return False
    return all((out / o["file"]).is_file() for o in info.get("outputs", []))


def _render_one(task: tuple[str, str, str, dict]) -> dict:
    """Render one RAW's bracket (runs in a worker process); never raises on a bad RAW."""
    path, out_dir, stem, params = task
    out = Path(out_dir)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return {"path": path, "error": ("unreadable", f"{path}: cannot read the file ({exc.strerror or exc})")}
    sha = _sha256(data)
    if _up_to_date(out, stem, sha, params):
        return {"path": path, "skipped": True, "stem": stem}
    try:
        render = raw.render_linear(data, wb=None if params["wb"] == "camera" else params["wb"], name=path)
    except ImageDecodeError as exc:
        return {"path": path, "error": (exc.reason, str(exc))}
    except MemoryError:
        return {"path": path, "error": ("out-of-memory", f"{path}: too large to demosaic in memory")}
    ext, depth = FORMATS[params["format"]]
    rows = bracket_names(
        stem, params["evs"], fmt=params["format"], reference=params["reference"], name_style=params["name_style"]
    )
    for row in rows:
        srgb = raw.exposure_from_linear(render.counts, row["ev"])  # one table lookup per EV
        quality = JPEG_QUALITY if ext == ".jpg" else None
        atomic_write(out / row["file"], imaging.encode_image(srgb, ext, bit_depth=depth, quality=quality))
    provenance = {
        "written_by": _WRITTEN_BY,
        "raw": os.path.abspath(path),
        "raw_sha256": sha,
        "versions": raw.rawpy_versions(),
        "parameters": params,
        "render": render.params,
        "raw_info": render.info.as_dict(),
        "scene": stem,
        "outputs": [dict(r, bit_depth=depth) for r in rows],
    }
    # written last: its presence with these parameters marks the bracket complete (resume)
    atomic_write(out / f"{stem}{PROVENANCE_SUFFIX}", (json.dumps(provenance, indent=2) + "\n").encode("utf-8"))
    return {"path": path, "stem": stem, "outputs": [str(out / r["file"]) for r in rows]}


def _write_sidecar(out: Path) -> str:
    """``brackets.csv`` (``path,scene,variant,ev,is_reference``) from every bracket rendered into ``out``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "scene", "variant", "ev", "is_reference"])
    for prov in sorted(out.glob(f"*{PROVENANCE_SUFFIX}")):
        try:
            info = json.loads(prov.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if info.get("written_by") != _WRITTEN_BY:
            continue
        for o in info["outputs"]:
            w.writerow(
                [
                    o["file"],
                    info["scene"],
                    o["variant"] or "",
                    repr(float(o["ev"])),
                    "true" if o["is_reference"] else "false",
                ]
            )
    path = out / SIDECAR_NAME
    atomic_write(path, buf.getvalue().encode("utf-8"))
    return str(path)


def render_brackets(
    raws: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    evs: Sequence[float] | str = (-2.0, -1.0, 0.0, 1.0, 2.0),
    fmt: str = "png16",
    reference: float | None = 0.0,
    name_style: str = "iea40k",
    wb: Sequence[float] | None = None,
    workers: int = 1,
    progress: ProgressFn | None = None,
) -> BracketReport:
    """Render each RAW's exposure bracket into ``out``: one demosaic per file, every EV from it.

    Each RAW is demosaicked once to linear light (:func:`iea_data.core.raw.render_linear`:
    camera white balance or ``wb``, no auto-bright, 16-bit linear), then each EV is
    ``srgb(clip(linear * 2**ev))`` written as a 16-bit PNG, 8-bit PNG or JPEG named for
    ``iea ingest``'s scene grouping (:func:`bracket_names`). Beside them: one
    ``<stem>.render.json`` per RAW (rawpy and LibRaw versions, every parameter, the RAW's
    sha256, its metadata) and ``brackets.csv`` (``path,scene,variant,ev,is_reference`` for
    ``iea scenes sidecar``).

    Parameters
    ----------
    raws : sequence of path-like
        Camera RAW files.
    out : path-like
        Output folder (created).
    evs : sequence of float or str
        EVs in stops relative to the RAW's own exposure, e.g. ``"-2,-1,0,+1,+2"``.
    fmt : {"png16", "png", "jpg"}
        Output format.
    reference : float or None
        The EV whose file is the scene's reference ``<stem>.<ext>``; ``None`` for none.
    name_style : {"iea40k", "ev"}
        ``<stem>_N2.png`` ... ``<stem>_P2.png``, or ``<stem>_-2EV.png`` ... ``<stem>_+2EV.png``.
    wb : sequence of 3 or 4 float, optional
        White-balance multipliers; default the camera's.
    workers : int
        Processes rendering files in parallel (1: in this process).
    progress : callable, optional
        ``progress(done, total)`` after each file.

    Returns
    -------
    BracketReport
        Rendered, skipped (already up to date: same RAW bytes, parameters and library
        versions, every output present) and failed files; a bad RAW is reported and the
        others go on.

    Examples
    --------
    >>> report = render_brackets(["shot.dng"], "out/", evs="-1,0,1")  # doctest: +SKIP
    >>> report.outputs  # doctest: +SKIP
    ['out/shot_N1.png', 'out/shot.png', 'out/shot_P1.png']
    """
    ev_values = parse_evs(evs) if isinstance(evs, str) else parse_evs(list(evs))
    if reference is not None:
        reference = float(reference) + 0.0
    if wb is not None:
        wb = raw.check_wb(wb)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise IeaError(f"--workers must be an integer >= 1; got {workers!r}")
    paths = [os.fspath(p) for p in raws]
    if not paths:
        raise IeaError("give at least one RAW file")
    bracket_names("x", ev_values, fmt=fmt, reference=reference, name_style=name_style)  # validate early
    stems = _stems(paths)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = _params(ev_values, fmt, reference, name_style, wb)
    tasks = [(p, str(out_dir), stem, params) for stem, p in stems.items()]
    report = BracketReport(out=str(out_dir))
    done = 0

    def record(result: dict) -> None:
        nonlocal done
        if "error" in result:
            reason, message = result["error"]
            log.warning("skipped %s: %s", result["path"], message)
            report.errors.append(BracketError(result["path"], reason, message))
        elif result.get("skipped"):
            report.skipped.append(result["path"])
        else:
            report.rendered.append(result["path"])
            report.outputs.extend(result["outputs"])
        done += 1
        if progress is not None:
            progress(done, len(tasks))

    if workers == 1 or len(tasks) == 1:
        for task in tasks:
            record(_render_one(task))
    else:
        # forkserver: LibRaw's OpenMP threads must not be inherited through fork
        ctx = mp.get_context("forkserver") if "forkserver" in mp.get_all_start_methods() else mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
            futures = [pool.submit(_render_one, t) for t in tasks]
            for fut in as_completed(futures):
                record(fut.result())
    report.sidecar = _write_sidecar(out_dir)
    return report
