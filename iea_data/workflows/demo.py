"""A small real demo workspace made from the photos bundled with scikit-image.

Per photo, a scene whose reference is the photo and whose variants are exposures at
−2, −1, +1 and +2 EV (scaled in linear light, sRGB-encoded, clipped), written as PNGs
named ``<photo>_<EV>EV.png`` next to ``<photo>.png`` and ingested.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from iea_data.core.imaging import apply_ev, write_image
from iea_data.core.scenes import format_ev_tag

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import UserInfo, Workspace

__all__ = ["DEMO_PHOTOS", "DEMO_EVS", "demo_exposures", "write_demo_photos", "build_demo", "example_workspace"]

log = logging.getLogger(__name__)

#: Photos shipped inside the scikit-image wheel (no download needed); ``camera`` is greyscale.
DEMO_PHOTOS: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "camera")
DEMO_EVS: tuple[float, ...] = (-2.0, -1.0, 1.0, 2.0)


def _load_photo(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return (img[..., :3].astype(np.float32) / 255.0).astype(np.float32)


def demo_exposures(n: int, photos: Sequence[str] = DEMO_PHOTOS) -> list[float]:
    """Evenly spaced EVs in [-2.5, 2.5] (none at 0) so that ``photos`` and their variants are at least ``n`` files.

    For benchmarks that need ``n`` distinct demo-derived photos (:func:`write_demo_photos` with these
    ``evs``; ``n`` is rounded up to whole photos).

    Examples
    --------
    >>> demo_exposures(24)
    [-2.5, -0.833, 0.833, 2.5]
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    per = max(2, 2 * (-(-n // (2 * len(photos)))))  # an even number of variants per photo: none at 0 EV
    return [round(-2.5 + 5.0 * k / (per - 1), 3) for k in range(per)]


def write_demo_photos(
    folder: str | Path, *, photos: Sequence[str] = DEMO_PHOTOS, evs: Sequence[float] = DEMO_EVS
) -> list[Path]:
    """Write each photo and its EV variants as 8-bit PNGs into ``folder``; existing files are kept.

    Returns the paths of every demo file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in photos:
        ref_path = folder / f"{name}.png"
        wanted = [ref_path] + [folder / f"{name}_{format_ev_tag(ev)}.png" for ev in evs]
        paths.extend(wanted)
        if all(p.exists() for p in wanted):
            continue
        rgb = _load_photo(name)
        if not ref_path.exists():
            write_image(ref_path, rgb)
        for ev, path in zip(evs, wanted[1:]):
            if not path.exists():
                write_image(path, apply_ev(rgb, float(ev)))
    return paths


def build_demo(
    workspace: Workspace,
    *,
    photos: Sequence[str] = DEMO_PHOTOS,
    evs: Sequence[float] = DEMO_EVS,
    workers: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
):
    """Write the demo photos into ``WORKSPACE/demo-photos`` and ingest them; returns the ingest report.

    The ingest run is recorded with kind ``"demo"``: that is the catalog's mark of a demo
    workspace (:func:`iea_data.workflows.users.is_demo_workspace`), the only kind where ``iea users demo``
    may create the demo accounts with their public passwords.
    """
    from .catalog import ingest
    from .users import DEMO_RUN_KIND

    folder = workspace.root / "demo-photos"
    write_demo_photos(folder, photos=photos, evs=evs)
    return ingest(workspace, [folder], workers=workers, progress=progress, kind=DEMO_RUN_KIND)


def example_workspace() -> tuple[Workspace, UserInfo, int]:
    """A throw-away workspace for the documentation's examples: one 6 x 8 scene and an annotator.

    It lives in a temporary folder removed when the process exits.

    The scene ``s`` has a reference image and one variant (``s_N1.png``, status ``ok``, no
    file); the annotator ``ann`` has the role ``annotator``.

    Returns
    -------
    (Workspace, UserInfo, int)
        The workspace, the annotator and the variant's image id.

    Examples
    --------
    >>> ws, ann, image_id = example_workspace()
    >>> ann.role, isinstance(image_id, int)
    ('annotator', True)
    """
    import atexit
    import shutil
    import tempfile

    from iea_data.store import Image, Scene, init_workspace

    from .users import add_user

    folder = tempfile.mkdtemp(prefix="iea-example-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # a doctest's workspace does not outlive it
    ws = init_workspace(folder)
    with ws.unit() as uow:
        s = uow.session
        scene = Scene(name="s")
        s.add(scene)
        s.flush()
        ref = Image(name="s.png", status="ok", width=8, height=6, scene_id=scene.id)
        variant = Image(name="s_N1.png", status="ok", width=8, height=6, scene_id=scene.id, variant="N1")
        s.add_all([ref, variant])
        s.flush()
        scene.reference_image_id = ref.id
        image_id = int(variant.id)
    ann = add_user(ws, "ann", role="annotator", password="otter lamp quietly")
    return ws, ann, image_id
