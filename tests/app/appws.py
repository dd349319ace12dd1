"""A small app workspace for the browser tests and the painting benchmark: generated photos, refdiff pre-labels, demo users."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_photos(folder: Path, size=(192, 256), scenes=("alpha", "beta")) -> None:
    """Per scene a reference and a -1 EV variant: smooth colour gradients with a few shapes."""
    from iea_data.imaging import apply_ev, write_image

    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i, name in enumerate(scenes):
        rgb = np.stack([0.25 + 0.5 * xx / w, 0.3 + 0.4 * yy / h, 0.6 - 0.3 * xx / w], axis=-1)
        cy, cx = h * (0.3 + 0.2 * i), w * (0.6 - 0.2 * i)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < (min(h, w) * 0.18) ** 2
        rgb[disc] = (0.85, 0.8, 0.3)
        rgb = np.clip(rgb, 0, 1).astype(np.float32)
        write_image(folder / f"{name}.png", rgb)
        write_image(folder / f"{name}_-1EV.png", apply_ev(rgb, -1.0))


def build_workspace(root: Path, *, size=(192, 256), scenes=("alpha", "beta")):
    """Init, ingest, refdiff pre-labels and the demo users; returns the Workspace."""
    from iea_data.catalog import ingest
    from iea_data.labels import prelabel_refdiff
    from iea_data.users import seed_demo_users
    from iea_data.workspace import init_workspace

    ws = init_workspace(root)
    write_photos(root.parent / f"{root.name}-photos", size=size, scenes=scenes)
    report = ingest(ws, [root.parent / f"{root.name}-photos"], workers=1)
    assert report.n_errors == 0, report.errors
    prelabel_refdiff(ws)
    with ws.session() as s:
        seed_demo_users(s)
    return ws
