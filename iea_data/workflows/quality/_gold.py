"""Gold images: marking them (admin), the workspace gold rate, and each annotator's scores on them.

A gold image has a reference map: an accepted label or an imported (released) map of that
image. Annotators meet gold images in their ordinary queue at the workspace's rate
(:mod:`iea_data.workflows.labels`); nothing they are shown says "gold", and their scores on
gold are reported to reviewers and admins only (the Quality page, ``iea quality report``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Optional, Union

import numpy as np
from sqlalchemy import delete, func, select

from iea_data.core.errors import IeaError, NotFoundError
from iea_data.core.imaging import resize_map
from iea_data.core.quality import GOLD_THRESHOLD
from iea_data.store import (
    GOLD_RATE_KEY,
    GoldImage,
    Image,
    Label,
    User,
    UserInfo,
    WorkspaceSetting,
    aware,
    require,
    utcnow,
)
from iea_data.workflows.labels import check_gold_rate, gold_rate
from iea_data.workflows.users import load_actor

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import UnitOfWork, Workspace

__all__ = [
    "GoldInfo",
    "GoldResult",
    "add_gold",
    "list_gold",
    "remove_gold",
    "get_gold_rate",
    "set_gold_rate",
    "gold_results",
    "GOLD_THRESHOLD",
]

# Under / ideal / over classes of gold scoring split at the rule bases' default threshold
# (``iea_data.core.quality.GOLD_THRESHOLD``, ``Thresholds().under``).
_REFERENCE_KINDS = ("annotation", "imported", "consensus", "refdiff", "model")


@dataclass(frozen=True)
class GoldInfo:
    """One gold image as :func:`list_gold` returns it."""

    image_id: int
    image_name: str
    label_id: int
    label_kind: str
    label_chain: str
    added_by: Optional[str]
    added_at: dt.datetime


@dataclass(frozen=True)
class GoldResult:
    """One annotator's revision of a gold image scored against its reference (:func:`gold_results`)."""

    user_id: int
    user_name: str
    image_id: int
    label_id: int
    created_at: dt.datetime
    mae: float
    bias: float
    sign_agreement: float
    iou_under: float
    iou_over: float


def _admin(uow: UnitOfWork, by: Optional[UserInfo]) -> None:
    if by is not None:
        require(load_actor(uow, by.id), "manage_scenes")


def _image(uow: UnitOfWork, image: Union[int, str]) -> Image:
    if isinstance(image, bool) or not isinstance(image, (int, str)):
        raise TypeError(f"image must be an image id (int) or name (str), got {type(image).__name__}")
    if isinstance(image, int) or image.isdigit():
        row = uow.session.get(Image, int(image))
    else:
        row = uow.session.scalar(select(Image).where(Image.name == image).order_by(Image.id).limit(1))
    if row is None:
        raise NotFoundError(f"no image {image!r} in the catalog")
    return row


def _default_reference(uow: UnitOfWork, image_id: int) -> Optional[Label]:
    """The newest imported map, else the newest accepted annotation, of ``image_id``."""
    for cond in ((Label.kind == "imported",), (Label.kind == "annotation", Label.status == "accepted")):
        row = uow.session.scalar(
            select(Label).where(Label.image_id == image_id, *cond).order_by(Label.id.desc()).limit(1)
        )
        if row is not None:
            return row
    return None


def add_gold(
    ws: Workspace, image: Union[int, str], *, label_id: Optional[int] = None, by: Optional[UserInfo] = None
) -> GoldInfo:
    """Mark an image as gold with a reference map; commits.

    Parameters
    ----------
    image : int or str
        Image id or name.
    label_id : int, optional
        The reference: a label of that image that is accepted (or imported). Default: the
        image's newest imported map, else its newest accepted annotation.
    by : UserInfo, optional
        The acting user (needs admin rights); None for the local operator (the CLI).

    Raises
    ------
    IeaError
        No usable reference, a reference of another image, or one not accepted.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from iea_data.store import Image, init_workspace
    >>> from iea_data.workflows.labels import save_label
    >>> ws = init_workspace(tempfile.mkdtemp())
    >>> with ws.unit() as uow:
    ...     uow.session.add(Image(name="a.png", status="ok", width=2, height=1)); uow.session.flush()
    ...     _ = save_label(uow, np.zeros((1, 2), np.float32), image_id=1, kind="imported", status="accepted")
    >>> g = add_gold(ws, "a.png")
    >>> g.label_kind, [x.image_name for x in list_gold(ws)]
    ('imported', ['a.png'])
    """
    with ws.unit(by) as uow:
        _admin(uow, by)
        img = _image(uow, image)
        if label_id is None:
            ref = _default_reference(uow, img.id)
            if ref is None:
                raise IeaError(
                    f"image {img.name!r} has no imported map and no accepted annotation to be its gold reference; "
                    "import one (iea import-manifest --maps) or accept an annotation first, or pass --label"
                )
        else:
            ref = uow.session.get(Label, int(label_id))
            if ref is None:
                raise NotFoundError(f"no label with id {label_id}")
            if ref.image_id != img.id:
                raise IeaError(f"label {label_id} belongs to image {ref.image_id}, not to {img.name!r}")
            if ref.status != "accepted":
                raise IeaError(f"label {label_id} is {ref.status}; a gold reference must be accepted (or imported)")
        row = uow.session.scalar(select(GoldImage).where(GoldImage.image_id == img.id))
        if row is None:
            row = GoldImage(image_id=img.id, label_id=ref.id, added_by=by.id if by else None)
            uow.session.add(row)
        else:
            row.label_id, row.added_by, row.added_at = ref.id, (by.id if by else None), utcnow()
        uow.session.flush()
        adder = by.name if by else None
        return GoldInfo(img.id, img.name, ref.id, ref.kind, ref.chain, adder, aware(row.added_at))


def remove_gold(ws: Workspace, image: Union[int, str], *, by: Optional[UserInfo] = None) -> None:
    """Unmark a gold image (its annotators' revisions stay); commits."""
    with ws.unit(by) as uow:
        _admin(uow, by)
        img = _image(uow, image)
        n = uow.session.execute(delete(GoldImage).where(GoldImage.image_id == img.id)).rowcount
        if not n:
            raise NotFoundError(f"image {img.name!r} is not a gold image")


def list_gold(ws: Workspace) -> list[GoldInfo]:
    """Every gold image with its reference, by image name; commits (reads only)."""
    with ws.unit() as uow:
        rows = uow.session.execute(
            select(GoldImage, Image.name, Label.kind, Label.chain, User.name)
            .join(Image, Image.id == GoldImage.image_id)
            .join(Label, Label.id == GoldImage.label_id)
            .outerjoin(User, User.id == GoldImage.added_by)
            .order_by(Image.name, Image.id)
        ).all()
        return [
            GoldInfo(g.image_id, name, g.label_id, kind, chain, who, aware(g.added_at))
            for g, name, kind, chain, who in rows
        ]


def get_gold_rate(ws: Workspace) -> float:
    """The share of queue positions that hold a gold image (default 0.05); commits (reads only).

    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> get_gold_rate(init_workspace(tempfile.mkdtemp()))
    0.05
    """
    with ws.unit() as uow:
        return gold_rate(uow.session)


def set_gold_rate(ws: Workspace, rate: float, *, by: Optional[UserInfo] = None) -> float:
    """Set the workspace's gold rate in [0, 0.5]; commits. Returns the rate set."""
    rate = check_gold_rate(rate)
    with ws.unit(by) as uow:
        _admin(uow, by)
        row = uow.session.get(WorkspaceSetting, GOLD_RATE_KEY)
        if row is None:
            uow.session.add(WorkspaceSetting(key=GOLD_RATE_KEY, value=repr(rate)))
        else:
            row.value, row.updated_at = repr(rate), utcnow()
    return rate


def _score(label_map: np.ndarray, gold: np.ndarray) -> dict:
    from iea_data.core.quality import gold_scores

    if label_map.shape != gold.shape:
        label_map = np.clip(resize_map(label_map, gold.shape), -1.0, 1.0).astype(np.float32)
    s = gold_scores(label_map, gold, threshold=GOLD_THRESHOLD)
    d = asdict(s) if hasattr(s, "__dataclass_fields__") else dict(s)
    return {k: float(d[k]) for k in ("mae", "bias", "sign_agreement", "iou_under", "iou_over")}


def gold_results(ws: Workspace) -> list[GoldResult]:
    """Every expert revision of a gold image (not drafts, not the reference itself) scored against the reference.

    Every revision counts (not only the newest), so the scores show each annotator over time.
    Sorted by time. Commits (reads only).
    """
    with ws.unit() as uow:
        s = uow.session
        golds = s.execute(
            select(GoldImage.image_id, Label.map_object, Label.id).join(Label, Label.id == GoldImage.label_id)
        ).all()
        if not golds:
            return []
        refs = {image_id: (obj, lid) for image_id, obj, lid in golds}
        rows = s.execute(
            select(Label.id, Label.image_id, Label.author_id, User.name, Label.map_object, Label.created_at)
            .join(User, User.id == Label.author_id)
            .where(Label.kind == "annotation", Label.status != "draft", Label.image_id.in_(list(refs)))
            .order_by(Label.created_at, Label.id)
        ).all()
    cache: dict[str, np.ndarray] = {}

    def get(obj: str) -> np.ndarray:
        if obj not in cache:
            cache[obj] = ws.objects.get_array(obj).astype(np.float32)
        return cache[obj]

    out = []
    for lid, image_id, uid, uname, obj, created in rows:
        ref_obj, ref_id = refs[image_id]
        if lid == ref_id:
            continue
        sc = _score(get(obj), get(ref_obj))
        out.append(GoldResult(uid, uname, image_id, lid, aware(created), **sc))
    return out


def gold_counts(uow: UnitOfWork) -> int:
    """The number of gold images (inside the caller's unit)."""
    return int(uow.session.scalar(select(func.count()).select_from(GoldImage)) or 0)
