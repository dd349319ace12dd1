"""Ingest what ``iea brackets render`` wrote: one scene per RAW, variants with their EVs, provenance.

``iea ingest --from-render DIR`` in one step: the outputs listed in each ``<stem>.render.json``
are ingested (:func:`iea_data.workflows.catalog.ingest`), then grouped from the provenance
itself (not from file names): one scene per RAW named ``<stem>``, the reference EV's file its
reference, every other output a variant with its tag and EV. Each output's catalog row keeps
where it came from in ``images.raw_info`` (JSON ``{"rendered_from": {...}}``: the RAW's path and
sha256, the output's EV, the reference EV, the white balance and the render's LibRaw
settings, rawpy and LibRaw versions), which is how a target painted on the reference is
later computed from the linear RAW data (:func:`raw_source`,
:func:`iea_data.workflows.targets.apply_target`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from sqlalchemy import select

from iea_data.core.errors import IeaError
from iea_data.core.progress import ProgressFn
from iea_data.store import Image, ImagePath, Scene, UnitOfWork

from ._render import _WRITTEN_BY, PROVENANCE_SUFFIX

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace
    from iea_data.workflows.catalog import IngestReport

__all__ = ["RenderIngestReport", "RawSource", "ingest_render", "read_render_provenance", "raw_source"]

log = logging.getLogger(__name__)

#: ``scenes.source`` of the scenes :func:`ingest_render` makes.
SCENE_SOURCE = "render"


@dataclass
class RenderIngestReport:
    """What :func:`ingest_render` did.

    Attributes
    ----------
    ingest : IngestReport
        The catalog ingest of the outputs (new, unchanged, errors).
    n_brackets : int
        Provenance files (one per RAW) read.
    n_scenes : int
        Scenes assigned (created or reused, one per RAW).
    n_images : int
        Outputs grouped into their scene with variant and EV.
    missing : list of str
        Outputs a provenance lists that are not in the catalog (absent, or failed to ingest:
        see ``ingest.errors``); their scene is assigned without them.
    """

    ingest: IngestReport
    n_brackets: int = 0
    n_scenes: int = 0
    n_images: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list:
        """The ingest's failed files (a scripting shorthand for ``report.ingest.errors``)."""
        return self.ingest.errors


def read_render_provenance(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The ``<stem>.render.json`` files ``iea brackets render`` wrote into ``folder``, sorted by name.

    Each dict is the JSON as written, plus ``"dir"`` (the folder, absolute). Files written by
    anything else, or unreadable, are skipped with a warning.

    Raises
    ------
    IeaError
        If ``folder`` is not a folder or holds no render provenance.

    Examples
    --------
    >>> import tempfile
    >>> read_render_provenance(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    iea_data.core.errors.IeaError: ... holds no `iea brackets render` output (no *.render.json); render into it first
    """
    d = Path(folder)
    if not d.is_dir():
        raise IeaError(
            f"--from-render: {os.fspath(folder)!r} is not a folder; give the --out folder of `iea brackets render`"
        )
    found = []
    for prov in sorted(d.glob(f"*{PROVENANCE_SUFFIX}")):
        try:
            info = json.loads(prov.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("skipped %s: not readable JSON (%s)", prov, exc)
            continue
        if (
            not isinstance(info, dict)
            or info.get("written_by") != _WRITTEN_BY
            or not isinstance(info.get("outputs"), list)
        ):
            log.warning("skipped %s: not written by %s", prov, _WRITTEN_BY)
            continue
        info["dir"] = os.path.abspath(d)
        found.append(info)
    if not found:
        raise IeaError(
            f"--from-render: {os.fspath(folder)} holds no `iea brackets render` output (no *{PROVENANCE_SUFFIX}); "
            "render into it first"
        )
    return found


def _rendered_from(info: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    params = info.get("parameters", {})
    return {
        "raw": info.get("raw"),
        "raw_sha256": info.get("raw_sha256"),
        "scene": info.get("scene"),
        "ev": float(output["ev"]),
        "reference_ev": params.get("reference"),
        "is_reference": bool(output.get("is_reference")),
        "wb": params.get("wb", "camera"),
        "format": params.get("format"),
        "bit_depth": output.get("bit_depth"),
        "render": info.get("render"),
        "versions": info.get("versions"),
        "provenance": os.path.join(info["dir"], f"{info.get('scene')}{PROVENANCE_SUFFIX}"),
    }


def ingest_render(
    ws: Workspace,
    folders: Sequence[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> RenderIngestReport:
    """Ingest ``iea brackets render`` output folders: one scene per RAW with the right EVs, in one step.

    The files each ``<stem>.render.json`` lists are ingested (only those: nothing else in the
    folder), then, in one unit of work, each RAW's outputs become one scene named
    ``<stem>``: the reference EV's file is the scene's reference, the others are variants with
    their tag (``N2``, ``-2EV``, ...) and EV (stops relative to the RAW's own exposure, as in
    ``brackets.csv``). Each output's ``images.raw_info`` records its provenance
    (``{"rendered_from": ...}``, see the module notes). Running it again is cheap (unchanged
    files are skipped) and gives the same grouping.

    Parameters
    ----------
    ws : Workspace
    folders : sequence of path-like
        ``--out`` folders of ``iea brackets render``.
    workers : int, optional
        Decoder processes for the ingest (default the workspace setting).
    progress : callable, optional
        ``progress(done, total)`` per ingested file.

    Returns
    -------
    RenderIngestReport

    Raises
    ------
    IeaError
        A folder holds no render provenance; or two folders render the same ``<stem>``
        (they would be one scene).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from iea_data.core.raw import synthetic_dng
    >>> from iea_data.store import init_workspace
    >>> from iea_data.workflows.brackets import render_brackets
    >>> d = tempfile.mkdtemp()
    >>> _ = open(f"{d}/shot.dng", "wb").write(synthetic_dng(np.full((32, 48, 3), 0.2, np.float32)))
    >>> _ = render_brackets([f"{d}/shot.dng"], f"{d}/out", evs="-1,0,1")
    >>> ws = init_workspace(f"{d}/ws")
    >>> report = ingest_render(ws, [f"{d}/out"], workers=1)
    >>> report.n_scenes, report.n_images, report.ingest.n_new
    (1, 3, 3)
    """
    from iea_data.workflows.catalog import ingest

    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    brackets: list[dict[str, Any]] = []
    for folder in folders:
        brackets.extend(read_render_provenance(folder))
    seen: dict[str, str] = {}
    for info in brackets:
        stem = str(info.get("scene"))
        if stem in seen and seen[stem] != info["dir"]:
            raise IeaError(
                f"--from-render: {seen[stem]} and {info['dir']} both hold a bracket of {stem!r}; "
                "they would be one scene: ingest them into different workspaces or rename one RAW"
            )
        seen[stem] = info["dir"]
    files = [os.path.join(info["dir"], o["file"]) for info in brackets for o in info["outputs"]]
    present = [f for f in files if os.path.isfile(f)]
    report = RenderIngestReport(
        ingest=ingest(ws, present, workers=workers, group="none", progress=progress, kind="render")
    )
    report.n_brackets = len(brackets)
    with ws.unit() as uow:
        for info in brackets:
            _group_bracket(uow, info, report)
    return report


def _group_bracket(uow: UnitOfWork, info: dict[str, Any], report: RenderIngestReport) -> None:
    s = uow.session
    stem = str(info["scene"])
    scene = s.scalar(select(Scene).where(Scene.name == stem))
    if scene is None:
        scene = Scene(name=stem, source=SCENE_SOURCE)
        s.add(scene)
        s.flush()
    report.n_scenes += 1
    for output in info["outputs"]:
        path = os.path.join(info["dir"], output["file"])
        image = s.scalar(
            select(Image)
            .join(ImagePath, ImagePath.image_id == Image.id)
            .where(ImagePath.path == path, Image.status == "ok")
        )
        if image is None:
            report.missing.append(path)
            continue
        image.scene_id = scene.id
        if output.get("is_reference"):
            scene.reference_image_id = image.id
            image.variant = None
            image.ev = None
        else:
            image.variant = output.get("variant")
            image.ev = float(output["ev"])
        if not image.raw:  # a RAW file itself keeps its own facts
            image.raw_info = json.dumps({"rendered_from": _rendered_from(info, output)}, sort_keys=True)
        report.n_images += 1
    s.flush()


@dataclass(frozen=True)
class RawSource:
    """Where a rendered image's linear light comes from (:func:`raw_source`).

    Attributes
    ----------
    path : str or None
        A readable file with the RAW's bytes (its sha256 checked), or None when none is found.
    raw_sha256 : str
    ev : float
        The EV the image was rendered at (stops relative to the RAW's exposure).
    wb : list of float or None
        The white balance of the render (None: the camera's).
    problem : str or None
        Why ``path`` is None.
    candidates : tuple of str
        The paths to look at (the recorded one, then the catalog's), for :meth:`resolve`.
    """

    path: Optional[str]
    raw_sha256: str
    ev: float
    wb: Optional[list[float]]
    problem: Optional[str] = None
    candidates: tuple[str, ...] = ()

    def resolve(self) -> RawSource:
        """The first candidate whose bytes have the recorded sha256 as ``path`` (no database needed)."""
        for path in self.candidates:
            if os.path.isfile(path) and _sha256_file(path) == self.raw_sha256:
                return replace(self, path=path, problem=None)
        where = self.candidates[0] if self.candidates else "its recorded path"
        return replace(
            self,
            path=None,
            problem=f"the RAW it was rendered from ({where}, sha256 {self.raw_sha256[:12]}…) is not found",
        )


def _sha256_file(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def raw_source(uow: UnitOfWork, image: Image, *, resolve: bool = True) -> RawSource | None:
    """The RAW a catalogued image was rendered from (``iea ingest --from-render``), or None.

    The RAW is looked for at the path its provenance recorded, then at the paths of a
    catalogued image with the same sha256 (a RAW ingested, or moved and ingested again);
    a file is used only when its bytes still have the recorded sha256. With
    ``resolve=False`` the files are not read (``path`` is None): call
    :meth:`RawSource.resolve` after the unit of work, so that no transaction is held while
    a large RAW is hashed.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> with ws.unit() as uow:
    ...     raw_source(uow, uow.session.get(Image, image_id)) is None
    True
    """
    if not image.raw_info or image.raw:
        return None
    try:
        origin = json.loads(image.raw_info).get("rendered_from")
    except (ValueError, AttributeError):
        return None
    if not isinstance(origin, dict) or not origin.get("raw_sha256"):
        return None
    sha = str(origin["raw_sha256"])
    wb = origin.get("wb")
    source = RawSource(None, sha, float(origin.get("ev") or 0.0), None if wb in (None, "camera") else list(wb))
    candidates = [origin["raw"]] if origin.get("raw") else []
    candidates += list(
        uow.session.scalars(
            select(ImagePath.path)
            .join(Image, Image.id == ImagePath.image_id)
            .where(Image.sha256 == sha)
            .order_by(ImagePath.id)
        )
    )
    source = replace(source, candidates=tuple(dict.fromkeys(candidates)))
    return source.resolve() if resolve else source
