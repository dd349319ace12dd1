"""§3: one library function feeds the Quality page and ``iea quality report`` (HTML escaped, CSV, Parquet, PNG)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import update

from iea_data.store import Image
from iea_data.workflows.labels import review_queue
from iea_data.workflows.quality import (
    add_gold,
    compute_consensus,
    image_quality,
    quality_report,
    write_quality_report,
)
from iea_data.workflows.users import add_user

from ..conftest import PASSWORD
from .conftest import add_images, expert_map, save_expert, truth_map


def test_report_numbers_files_cache_and_worst_first(qws, tmp_path):
    admin = add_user(qws, "admin", role="admin", password=PASSWORD)
    rev = add_user(qws, "rev", role="reviewer", password=PASSWORD)
    anns = [add_user(qws, f"a{k}", role="annotator", password=PASSWORD) for k in range(3)]
    ids = add_images(qws, 6)
    with qws.unit() as uow:  # a name that would be markup
        uow.session.execute(update(Image).where(Image.id == ids[0]).values(name="<script>x</script>.png"))
    sds = [0.02, 0.05, 0.2]
    for k, i in enumerate(ids):
        for j, (u, sd) in enumerate(zip(anns, sds)):
            noisy = sd * (3 if i == ids[3] else 1)  # image 3: the experts disagree most
            save_expert(qws, u.id, i, expert_map(i, 0.0, noisy, seed=7 * k + j), status="submitted")
    save_expert(qws, rev.id, ids[5], truth_map(ids[5]), status="accepted")
    add_gold(qws, ids[5], by=admin)
    compute_consensus(qws)
    rep = quality_report(qws)
    assert not rep.cached
    by_name = {r["name"]: r for r in rep.annotators}
    assert set(by_name) >= {"a0", "a1", "a2"}
    assert by_name["a0"]["images_done"] == 6 and by_name["a0"]["strokes_per_image"] == 3.0
    assert by_name["a0"]["noise_sd"] < by_name["a2"]["noise_sd"]
    assert by_name["a0"]["gold_done"] == 1 and by_name["a0"]["gold_mae"] < by_name["a2"]["gold_mae"]
    assert by_name["a0"]["agreement_consensus"] > by_name["a2"]["agreement_consensus"]
    assert (
        rep.reliability["icc"]["value"] > 0.5
        and rep.reliability["alpha"]["ci_low"] <= rep.reliability["alpha"]["value"]
    )
    assert rep.images[0]["image_id"] == ids[3]  # worst first
    assert {"bias.png", "noise.png"} <= set(rep.plots) and all(
        p[:8] == b"\x89PNG\r\n\x1a\n" for p in rep.plots.values()
    )
    again = quality_report(qws)
    assert again.cached and not again.stale and again.annotators == rep.annotators
    assert again.images == rep.images and set(again.plots) == set(rep.plots)
    save_expert(qws, anns[0].id, ids[1], truth_map(ids[1]), status="submitted")  # the catalog changes
    assert not quality_report(qws, plots=False).cached  # recomputed
    save_expert(qws, anns[0].id, ids[2], truth_map(ids[2]), status="submitted")
    served = quality_report(qws, plots=False, max_age_s=300)
    assert served.cached and served.stale and served.as_of
    # the reviewers' queue, worst first
    queue = review_queue(qws, rev, order="disagreement")
    assert queue[0].image_id == ids[3]
    # per image: experts, consensus, spread, one grid PNG
    iq = image_quality(qws, ids[3])
    assert iq.experts == ["a0", "a1", "a2"] and iq.consensus.shape == (6, 8) and iq.grid_png[:4] == b"\x89PNG"
    out = tmp_path / "report"
    paths = write_quality_report(rep, out)
    names = {p.name for p in paths}
    assert {"index.html", "annotators.csv", "annotators.parquet", "images.parquet", "bias.png"} <= names
    html = (out / "index.html").read_text()
    assert "<script>x" not in html and "&lt;script&gt;x" in html
    df = pd.read_parquet(out / "annotators.parquet")
    assert list(df["name"]) == [r["name"] for r in rep.annotators]
    assert np.isclose(df.set_index("name").loc["a0", "noise_sd"], by_name["a0"]["noise_sd"])
