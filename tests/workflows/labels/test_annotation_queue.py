"""The annotation queue: order by pre-label disagreement then fewest experts, statuses, progress, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import insert

from iea_data.core.errors import PermissionDeniedError
from iea_data.store import Image, Label, Scene
from iea_data.workflows.labels import (
    annotation_progress,
    annotation_queue,
    open_annotation,
    review_label,
    save_annotation,
    save_draft,
    save_label,
)

from ..conftest import reader


def _disagreement(model: np.ndarray, refdiff: np.ndarray) -> float:
    """Independent statement of the documented priority (float64 statistics of the saved float32 maps)."""
    m = model.astype(np.float64)
    r = refdiff.astype(np.float64)
    return abs(m.mean() - r.mean()) + abs(np.abs(m).mean() - np.abs(r).mean())


@pytest.fixture
def random_catalog(workspace, people, rng):
    """12 variants with random pre-labels (two missing one of them), a reference, a missing file."""
    n = 12
    with reader(workspace) as s, s.begin():
        scene = Scene(name="q")
        s.add(scene)
        s.flush()
        ref = Image(name="q.png", status="ok", width=4, height=3, scene_id=scene.id)
        gone = Image(name="q_gone.png", status="missing", scene_id=scene.id)
        imgs = [Image(name=f"q_{i:02d}.png", status="ok", width=4, height=3, scene_id=scene.id) for i in range(n)]
        s.add_all([ref, gone, *imgs])
        s.flush()
        scene.reference_image_id = ref.id
    prio = {}
    with workspace.unit() as uow:
        for k, img in enumerate(imgs):
            model = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
            refd = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
            if k != 3:
                save_label(uow, model, image_id=img.id, kind="model", model_name="pieanet")
            if k != 7:
                save_label(uow, refd, image_id=img.id, kind="refdiff")
            # an older model revision must not count: only the newest
            if k == 5:
                save_label(uow, -model, image_id=img.id, kind="model", model_name="other")
                model = -model
            prio[img.id] = 0.0 if k in (3, 7) else _disagreement(model, refd)
    return {
        "ids": [i.id for i in imgs],
        "names": {i.id: i.name for i in imgs},
        "priority": prio,
        "ref": ref.id,
        "gone": gone.id,
    }


def _submit(ws, user, image_id, value=0.0):
    st = open_annotation(ws, user, image_id, base="zero")
    st.correction[:] = value
    return save_annotation(ws, user, st, submit=True)


def test_queue_order_by_disagreement_then_fewest_experts(workspace, people, random_catalog):
    prio = random_catalog["priority"]
    # ann2 and rev finish some images: they then have experts
    experts = {random_catalog["ids"][0]: 2, random_catalog["ids"][3]: 1, random_catalog["ids"][7]: 2}
    for image_id, n in experts.items():
        for who in ("ann2", "rev")[:n]:
            _submit(workspace, people[who], image_id)
    q = annotation_queue(workspace, people["ann1"])
    assert {x.image_id for x in q} == set(random_catalog["ids"])  # no reference, no missing file
    names = random_catalog["names"]
    expect = sorted(random_catalog["ids"], key=lambda i: (-round(prio[i], 9), experts.get(i, 0), names[i]))
    assert [x.image_id for x in q] == expect
    for x in q:
        assert x.priority == pytest.approx(prio[x.image_id], abs=1e-9)
        assert x.n_experts == experts.get(x.image_id, 0) and x.scene == "q" and x.status == "todo"
    # ties at priority 0 (images missing a pre-label) go to the one with fewer experts
    zero = [x.image_id for x in q if x.priority == 0]
    assert zero == [random_catalog["ids"][3], random_catalog["ids"][7]]
    by_experts = annotation_queue(workspace, people["ann1"], order="fewest_experts")
    by_name = annotation_queue(workspace, people["ann1"], order="name")
    assert len(annotation_queue(workspace, people["ann1"], limit=5)) == 5
    assert [x.n_experts for x in by_experts] == sorted(x.n_experts for x in q)
    assert [x.name for x in by_name] == sorted(names.values())
    with pytest.raises(ValueError, match="order must be one of"):
        annotation_queue(workspace, people["ann1"], order="random")


def test_queue_statuses_progress_and_rejection_comment(workspace, people, random_catalog):
    ids = random_catalog["ids"]
    ann = people["ann1"]
    assert annotation_progress(workspace, ann) == (0, len(ids))
    done = _submit(workspace, ann, ids[0])
    rejected = _submit(workspace, ann, ids[1])
    st = open_annotation(workspace, ann, ids[2])
    save_draft(workspace, ann, st)  # autosaved draft
    save_annotation(workspace, ann, open_annotation(workspace, ann, ids[3]))  # saved, not submitted
    review_label(workspace, people["rev"], rejected.id, decision="reject", comment="the shadows are too dark")
    q = {x.image_id: x for x in annotation_queue(workspace, ann)}
    assert ids[0] not in q  # submitted: off the queue
    assert (q[ids[1]].status, q[ids[1]].rejected_comment) == ("rejected", "the shadows are too dark")
    assert q[ids[2]].status == q[ids[3]].status == "draft"
    assert q[ids[4]].status == "todo" and q[ids[4]].rejected_comment is None
    assert annotation_progress(workspace, ann) == (1, len(ids))
    review_label(workspace, people["rev"], done.id, decision="accept")
    assert annotation_progress(workspace, ann) == (1, len(ids))  # accepted still counts as done
    # the other annotator's queue is untouched by ann1's work
    assert {x.status for x in annotation_queue(workspace, people["ann2"])} == {"todo"}
    assert annotation_progress(workspace, people["ann2"]) == (0, len(ids))
    # resubmitting the rejected image takes it off the queue again
    again = open_annotation(workspace, ann, ids[1])
    again.correction[:] = 0.2
    save_annotation(workspace, ann, again, submit=True)
    assert ids[1] not in {x.image_id for x in annotation_queue(workspace, ann)}


def test_queue_needs_an_enabled_user(workspace, people, random_catalog):
    from iea_data.workflows.users import AuthError, UserInfo, disable_user

    disable_user(workspace, "ann2")
    with pytest.raises(AuthError):
        annotation_queue(workspace, people["ann2"])
    # the role comes from the database, not from what the caller holds
    from iea_data.workflows.labels import review_queue

    with pytest.raises(PermissionDeniedError):
        review_queue(workspace, UserInfo(people["ann1"].id, "ann1", "admin", True))


@pytest.mark.slow
def test_queue_is_fast_on_40k_images(sqlite_workspace, rng):
    """40,000 images with a model and a refdiff pre-label each; the queue must come back well under 1 s."""
    from iea_data.store import unit_of_work
    from iea_data.workflows.users import add_user

    ws = sqlite_workspace
    n = 40_000
    key = "0" * 64
    means = rng.uniform(-0.5, 0.5, (n, 2))
    # one transaction (the library's unit of work): the test reader commits statement by statement
    with unit_of_work(ws) as uow:
        s = uow.session
        s.execute(insert(Scene), [{"name": f"s{i}"} for i in range(n // 5)])
        s.execute(
            insert(Image),
            [
                {
                    "name": f"s{i // 5}_N{i % 5}.jpg",
                    "status": "ok",
                    "width": 4000,
                    "height": 3000,
                    "scene_id": i // 5 + 1,
                }
                for i in range(n)
            ],
        )
        rows = []
        for i in range(n):
            for j, (kind, chain) in enumerate((("model", "model:pieanet"), ("refdiff", "refdiff"))):
                rows.append(
                    {
                        "image_id": i + 1,
                        "kind": kind,
                        "chain": chain,
                        "revision": 1,
                        "status": "draft",
                        "map_object": key,
                        "height": 768,
                        "width": 1024,
                        "mean": means[i, j],
                        "mean_abs": abs(means[i, j]),
                    }
                )
        s.execute(insert(Label), rows)
    with reader(ws) as s:
        user = add_user(ws, "fast", role="annotator", password="a long password")
        annotation_queue(ws, user)  # warm the caches once
        t0 = time.perf_counter()
        q = annotation_queue(ws, user)
        seconds = time.perf_counter() - t0
    assert len(q) == n
    best = max(range(n), key=lambda i: abs(means[i, 0] - means[i, 1]) + abs(abs(means[i, 0]) - abs(means[i, 1])))
    assert q[0].image_id == best + 1
    print(f"annotation_queue on {n} images: {seconds * 1000:.0f} ms")
    assert seconds < 3.0, f"annotation_queue took {seconds:.2f} s on {n} images"
