"""Which scenes the target painter can open, and why the others cannot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from sqlalchemy import select
from sqlalchemy.orm import aliased

from iea_data.store import Image, Scene

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = ["PaintableScene", "paintable_scenes"]


@dataclass(frozen=True)
class PaintableScene:
    """A scene as the target painter sees it.

    Attributes
    ----------
    scene_id : int
    name : str
    reference : str or None
        The reference image's name (None: the scene has none).
    reason : str or None
        Why the scene cannot be painted, with what to do; None when it can.
    """

    scene_id: int
    name: str
    reference: Optional[str]
    reason: Optional[str] = None

    @property
    def paintable(self) -> bool:
        return self.reason is None


def paintable_scenes(ws: Workspace) -> list[PaintableScene]:
    """Every scene, ordered by name, each marked paintable or with the reason it is not.

    A target is painted on the scene's reference, so a scene can be painted when it has a
    reference image whose file was decoded (status ``ok``, size known). After importing the
    released manifests and before their images are linked, references have status
    ``missing``: those scenes are listed with the reason, not offered. One query; the files
    themselves are not opened (a file deleted since it was ingested is reported when opened).

    Parameters
    ----------
    ws : Workspace

    Returns
    -------
    list of PaintableScene

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from iea_data.store import Image, Scene
    >>> from iea_data.store.workspace import init_workspace
    >>> ws = init_workspace(pathlib.Path(tempfile.mkdtemp()) / "ws")
    >>> with ws.unit() as uow:
    ...     img = Image(name="a.png", status="missing"); uow.session.add(img); uow.session.flush()
    ...     uow.session.add_all([Scene(name="a", reference_image_id=img.id), Scene(name="b")])
    >>> [(p.name, p.paintable) for p in paintable_scenes(ws)]
    [('a', False), ('b', False)]
    """
    ref = aliased(Image)
    with ws.unit() as uow:
        rows = uow.session.execute(
            select(Scene.id, Scene.name, ref.name, ref.status, ref.width, ref.height)
            .outerjoin(ref, ref.id == Scene.reference_image_id)
            .order_by(Scene.name, Scene.id)
        ).all()
    out = []
    for scene_id, name, ref_name, status, width, height in rows:
        if ref_name is None:
            reason = "no reference image; set one with `iea scenes set-reference SCENE IMAGE`"
        elif status == "missing":
            reason = (
                f"its reference {ref_name!r} has no file yet (imported from a manifest); ingest the images to link it"
            )
        elif status != "ok" or not width or not height:
            reason = (
                f"its reference {ref_name!r} could not be decoded (status {status}); "
                "see `iea catalog errors`, fix the file and ingest it again"
            )
        else:
            reason = None
        out.append(PaintableScene(scene_id, name, ref_name, reason))
    return out
