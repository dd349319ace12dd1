"""One image's label as the command line renders it (``iea show``): plain data, no ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np
from sqlalchemy import select

from iea_data.core.errors import IeaError, NotFoundError
from iea_data.store import Label
from iea_data.workflows.catalog import image_path, resolve_image

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = ["LabelView", "image_label", "label_map"]


@dataclass(frozen=True)
class LabelView:
    """A label revision of one image with its map, and where the image's file is.

    Attributes
    ----------
    image_id : int
    image_name : str
    path : str or None
        A recorded path of the image that exists (None: no file on disk any more).
    label_id : int
    kind : str
        ``model``, ``refdiff``, ``annotation`` or ``consensus``.
    revision : int
    mean : float
        The map's mean residual.
    residual : ndarray, float32 (h, w), [-1, 1]
    """

    image_id: int
    image_name: str
    path: Optional[str]
    label_id: int
    kind: str
    revision: int
    mean: float
    residual: np.ndarray


def image_label(ws: Workspace, image: str | int, *, label_id: Optional[int] = None) -> LabelView:
    """The newest label of ``image`` (or its label ``label_id``) with its map; commits (reads only).

    Parameters
    ----------
    ws : Workspace
    image : str or int
        Image id, sha256 (prefix of at least 8 hex digits), name or recorded path.
    label_id : int, optional
        A label of that image; default its newest label (by creation time, then id).

    Returns
    -------
    LabelView

    Raises
    ------
    NotFoundError
        No such image.
    IeaError
        The image has no label (or no label ``label_id``).

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> from iea_data.workflows.labels import save_label
    >>> ws, ann, image_id = example_workspace()
    >>> with ws.unit() as uow:
    ...     _ = save_label(uow, np.full((6, 8), -0.25, np.float32), image_id=image_id, kind="refdiff")
    >>> view = image_label(ws, "s_N1.png")
    >>> view.kind, view.revision, round(view.mean, 3), view.residual.shape, view.path
    ('refdiff', 1, -0.25, (6, 8), None)
    """
    if label_id is not None and (not isinstance(label_id, int) or isinstance(label_id, bool)):
        raise TypeError(f"label_id must be an int or None, got {type(label_id).__name__}")
    with ws.unit() as uow:
        im = resolve_image(uow, image)
        q = select(Label).where(Label.image_id == im.id)
        q = (
            q.where(Label.id == label_id)
            if label_id is not None
            else q.order_by(Label.created_at.desc(), Label.id.desc())
        )
        lab = uow.session.scalars(q.limit(1)).first()
        if lab is None:
            raise IeaError(
                f"image {im.name!r} has no label{' ' + str(label_id) if label_id else ''}; run `iea prelabel` first"
            )
        path = image_path(uow, im.id)
        view = dict(
            image_id=im.id,
            image_name=im.name,
            path=path,
            label_id=lab.id,
            kind=lab.kind,
            revision=lab.revision,
            mean=float(lab.mean),
        )
        key = lab.map_object
    return LabelView(**view, residual=ws.objects.get_array(key).astype(np.float32))


def label_map(ws: Workspace, label_id: int) -> np.ndarray:
    """The residual map of label ``label_id`` as float32 (h, w); commits (reads only).

    Raises
    ------
    NotFoundError
        No label with that id.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> from iea_data.workflows.labels import save_label
    >>> ws, ann, image_id = example_workspace()
    >>> with ws.unit() as uow:
    ...     lab = save_label(uow, np.full((6, 8), 0.5, np.float32), image_id=image_id, kind="refdiff")
    >>> float(label_map(ws, lab.id).max())
    0.5
    """
    if not isinstance(label_id, (int, np.integer)) or isinstance(label_id, bool):
        raise TypeError(f"label_id must be an int (a catalog id), got {type(label_id).__name__}")
    with ws.unit() as uow:
        key = uow.session.scalar(select(Label.map_object).where(Label.id == int(label_id)))
    if key is None:
        raise NotFoundError(f"no label with id {label_id}")
    return ws.objects.get_array(key).astype(np.float32)
