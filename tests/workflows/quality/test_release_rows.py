"""§2: a release with ``--labels consensus`` uses the catalog's consensus rows, and its card reports reliability."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
from sqlalchemy import select

from iea_data.store import Label
from iea_data.workflows.quality import compute_consensus
from iea_data.workflows.releases import build_release
from iea_data.workflows.users import add_user

from ..conftest import PASSWORD, reader
from .conftest import add_images, expert_map, save_expert


def test_consensus_release_uses_fresh_catalog_rows_and_reports_reliability(qws):
    users = [add_user(qws, f"r{k}", role="annotator", password=PASSWORD) for k in range(3)]
    ids = add_images(qws, 5)
    for k, i in enumerate(ids):
        for j, (u, (b, sd)) in enumerate(zip(users, [(0.05, 0.02), (0.0, 0.04), (-0.05, 0.15)])):
            save_expert(qws, u.id, i, expert_map(i, b, sd, seed=10 * k + j))
    compute_consensus(qws)
    # a newer accepted revision on the last image: its stored row is stale, so the build computes that one
    save_expert(qws, users[0].id, ids[-1], expert_map(ids[-1], 0.0, 0.02, seed=999))
    rep = build_release(qws, "q", "1.0.0", labels="consensus", min_experts=2, ratios=(1, 0), stratify=())
    assert rep.n_labelled == 5 and not rep.errors
    root = qws.releases_dir / "q" / "1.0.0"
    rows = {r["name"]: r for r in pq.read_table(root / "native" / "images.parquet").to_pylist()}
    with reader(qws) as s:
        stored = {lab.image_id: lab.map_object for lab in s.scalars(select(Label).where(Label.kind == "consensus"))}
    labels = {r["image_key"]: r for r in pq.read_table(root / "native" / "labels.parquet").to_pylist()}
    methods = {}
    for k, i in enumerate(ids):
        r = rows[f"img_{k:03d}.png"]
        methods[i] = labels[r["image_key"]]["method"]
        got = np.load(root / r["map_file"]).astype(np.float32)
        if i != ids[-1]:
            want = qws.objects.get_array(stored[i]).astype(np.float32)
            np.testing.assert_allclose(got, want, atol=1e-3)
    assert [methods[i] for i in ids] == ["consensus:catalog:staple"] * 4 + ["consensus:median"]
    card = (root / "README.md").read_text()
    assert "### Reliability" in card and "ICC(2,1)" in card
    line = next(ln for ln in card.splitlines() if ln.startswith("| train") and "[" in ln)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "3" and cells[2] == "3-3" and cells[3] == "4"  # experts, per image, catalog rows used
    icc = float(cells[4].split()[0])
    assert 0.5 < icc <= 1.0  # experts agree well on a smooth truth
