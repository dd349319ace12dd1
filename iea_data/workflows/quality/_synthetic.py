"""A synthetic catalog of many images and experts with known bias and noise, for benchmarks and demos.

Rows are inserted in bulk (not through :func:`~iea_data.workflows.labels.save_label`, which
checks and writes one revision at a time) so that a 40,000-image catalog builds in minutes, and
the quality summary is then rebuilt from them (:func:`~iea_data.store.rebuild_quality_summary`);
the maps come from a small pool per expert (content-addressed, so stored once each).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from iea_data.core.residuals import label_stats
from iea_data.store import Image, Label, User, rebuild_quality_summary, utcnow

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = ["build_synthetic_quality_catalog"]

_CHUNK = 2000


def build_synthetic_quality_catalog(
    ws: Workspace,
    *,
    n_images: int,
    n_experts: int,
    side: int = 32,
    pool: int = 16,
    seed: int = 0,
) -> dict:
    """Add ``n_images`` images, each labelled (accepted) by ``n_experts`` experts with known bias and noise; commits.

    Parameters
    ----------
    n_images, n_experts : int
    side : int
        Maps are ``side`` x ``side``.
    pool : int
        Distinct truths (and maps per expert): image ``i`` uses truth ``i % pool``.
    seed : int

    Returns
    -------
    dict
        ``experts`` (name -> (bias, noise sd)), ``n_labels``.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> out = build_synthetic_quality_catalog(init_workspace(tempfile.mkdtemp()), n_images=3, n_experts=2, side=4)
    >>> out["n_labels"], sorted(out["experts"])
    (6, ['syn_e00', 'syn_e01'])
    """
    for name, v in (("n_images", n_images), ("n_experts", n_experts), ("side", side), ("pool", pool)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / max(side - 1, 1)
    truths = [
        np.clip(0.5 * np.sin(2 * np.pi * (xx * rng.uniform(0.5, 2) + rng.uniform())) * np.cos(3 * yy), -0.9, 0.9)
        for _ in range(pool)
    ]
    experts = {
        f"syn_e{k:02d}": (float(rng.uniform(-0.08, 0.08)), float(rng.uniform(0.02, 0.25))) for k in range(n_experts)
    }
    now = utcnow()
    with ws.unit() as uow:
        s = uow.session
        users = []
        for name in experts:
            u = s.scalar(select(User).where(User.name == name))
            if u is None:
                u = User(name=name, role="annotator", password_hash=None, enabled=True)
                s.add(u)
            users.append(u)
        s.flush()
        objects: dict[tuple[int, int], tuple[str, dict]] = {}
        for k, (bias, sd) in enumerate(experts.values()):
            for t, truth in enumerate(truths):
                m = np.clip(truth + bias + rng.normal(0, sd, truth.shape), -1, 1).astype(np.float32)
                objects[(k, t)] = (ws.objects.put_array(m.astype(np.float16)), label_stats(m))
        start = int(s.scalar(select(Image.id).order_by(Image.id.desc()).limit(1)) or 0)
        for c0 in range(0, n_images, _CHUNK):
            idx = range(c0, min(n_images, c0 + _CHUNK))
            s.execute(
                Image.__table__.insert(),
                [
                    {
                        "name": f"syn_{start + i:06d}.png",
                        "sha256": f"{start + i:064x}",
                        "status": "ok",
                        "width": side,
                        "height": side,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in idx
                ],
            )
            ids = dict(
                s.execute(
                    select(Image.name, Image.id).where(Image.name.in_([f"syn_{start + i:06d}.png" for i in idx]))
                ).all()
            )
            rows = []
            for i in idx:
                image_id = ids[f"syn_{start + i:06d}.png"]
                for k, u in enumerate(users):
                    obj, st = objects[(k, i % pool)]
                    rows.append(
                        {
                            "image_id": image_id,
                            "kind": "annotation",
                            "chain": f"user:{u.id}",
                            "revision": 1,
                            "status": "accepted",
                            "author_id": u.id,
                            "params": '{"n_strokes": 5}',
                            "map_object": obj,
                            "height": side,
                            "width": side,
                            "created_at": now,
                            "updated_at": now,
                            **st,
                        }
                    )
            s.execute(Label.__table__.insert(), rows)
        rebuild_quality_summary(s)  # bulk rows bypass the writers that keep the summary
    return {"experts": experts, "n_labels": n_images * n_experts}
