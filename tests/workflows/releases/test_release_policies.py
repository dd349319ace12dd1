"""Label policies other than consensus: accepted, prelabel, refdiff pick the right revision; rejected ones never."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
from sqlalchemy import select

from iea_data.store import Label
from iea_data.workflows.labels import chain_head, save_label, set_label_status
from iea_data.workflows.releases import build_release

from .conftest import add_expert, annotate, image_ids

NAME = "astronaut_+1EV.png"


def _released_map(ws, release: str, name: str = NAME):
    root = ws.releases_dir / release / "1.0.0"
    rows = {r["name"]: r for r in pq.read_table(root / "native" / "images.parquet").to_pylist()}
    manifest = json.loads((root / "manifest.json").read_text())
    used = [(r["chain"], r["revision"], r["status"]) for r in manifest["label_revisions"] if r["image"] == name]
    m = rows[name]["map_file"]
    return (np.load(root / m) if m else None), used


def _model_label(ws, image_id: int, value: float, shape, *, status: str = "draft") -> int:
    with ws.unit() as uow:
        head = chain_head(uow, image_id, "model:pieanet")
        lab = save_label(
            uow,
            np.full(shape, value, np.float32),
            image_id=image_id,
            kind="model",
            model_name="pieanet",
            parent_id=head.id if head else None,
            status=status,
        )
        return lab.id


def test_each_policy_takes_its_newest_usable_revision(demo_ws):
    ws = demo_ws
    iid = image_ids(ws)[NAME]
    with ws.session() as s:
        refdiff = s.scalar(select(Label).where(Label.image_id == iid, Label.chain == "refdiff"))
        shape = (refdiff.height, refdiff.width)
    # prelabel: two model revisions, the newest rejected -> the first one is used
    _model_label(ws, iid, 0.25, shape)
    _model_label(ws, iid, -0.75, shape, status="rejected")
    # accepted: the refdiff accepted first, then an expert's annotation accepted later -> the annotation
    with ws.unit() as uow:
        set_label_status(uow, refdiff.id, "accepted")
    expert = add_expert(ws, "ann")
    annotate(ws, iid, expert, np.full(shape, 0.5, np.float32))
    for policy in ("prelabel", "accepted", "refdiff"):
        build_release(ws, policy, "1.0.0", labels=policy, ratios=(1, 0))
    m, used = _released_map(ws, "prelabel")
    np.testing.assert_allclose(m, 0.25)
    assert used == [("model:pieanet", 1, "draft")]
    m, used = _released_map(ws, "accepted")
    np.testing.assert_allclose(m, 0.5)
    assert used == [(f"user:{expert}", 1, "accepted")]
    m, used = _released_map(ws, "refdiff")
    assert used == [("refdiff", 1, "accepted")] and m.shape == shape and np.abs(m).mean() > 0.05
    # images without a usable label are released without a map under these policies, and listed
    root = ws.releases_dir / "prelabel" / "1.0.0"
    rows = pq.read_table(root / "native" / "images.parquet").to_pylist()
    assert sum(r["map_file"] is None for r in rows) == 7
