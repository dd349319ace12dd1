"""Label revisions: never overwritten, provenance kept, stale saves refused (both backends)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from sqlalchemy import func, select

from iea_data.core.errors import StaleRevisionError
from iea_data.core.residuals import label_stats
from iea_data.store import Image, Label, User
from iea_data.workflows.labels import chain_head, load_label_map, save_label, set_label_status

from ..conftest import reader


@pytest.fixture
def image_and_users(workspace):
    with reader(workspace) as s, s.begin():
        img = Image(name="x_N1.png", status="ok", width=64, height=48)
        alice = User(name="alice", role="annotator")
        bob = User(name="bob", role="annotator")
        s.add_all([img, alice, bob])
    return img.id, alice.id, bob.id


def _map(rng, value=None):
    m = rng.uniform(-0.8, 0.8, (48, 64)).astype(np.float32)
    if value is not None:
        m[:] = value
    return m


def test_revisions_chain_and_never_overwrite(workspace, image_and_users, rng):
    image_id, alice, _ = image_and_users
    store = workspace.objects
    with workspace.unit() as uow:
        r1 = save_label(uow, _map(rng, -0.25), image_id=image_id, kind="annotation", author_id=alice)
        r2 = save_label(uow, _map(rng, 0.5), image_id=image_id, kind="annotation", author_id=alice, parent_id=r1.id)
    assert (r1.revision, r2.revision, r2.parent_id) == (1, 2, r1.id)
    with workspace.unit() as uow:
        first = uow.session.get(Label, r1.id)
        assert np.all(load_label_map(store, first) == -0.25)  # the old revision is intact
        assert np.all(load_label_map(store, uow.session.get(Label, r2.id)) == 0.5)
        assert chain_head(uow, image_id, f"user:{alice}").id == r2.id


def test_stale_save_is_refused_and_writes_nothing(workspace, image_and_users, rng):
    image_id, alice, _ = image_and_users
    with workspace.unit() as uow:
        r1 = save_label(uow, _map(rng), image_id=image_id, kind="annotation", author_id=alice)
        save_label(uow, _map(rng), image_id=image_id, kind="annotation", author_id=alice, parent_id=r1.id)
        # a second tab still based on r1
        with pytest.raises(StaleRevisionError, match="reload the newest revision"):
            save_label(uow, _map(rng), image_id=image_id, kind="annotation", author_id=alice, parent_id=r1.id)
        with pytest.raises(StaleRevisionError):
            save_label(uow, _map(rng), image_id=image_id, kind="annotation", author_id=alice)
        assert uow.session.scalar(select(func.count()).select_from(Label)) == 2


def test_two_experts_have_separate_chains(workspace, image_and_users, rng):
    image_id, alice, bob = image_and_users
    store = workspace.objects
    with workspace.unit() as uow:
        a = save_label(uow, _map(rng, 0.1), image_id=image_id, kind="annotation", author_id=alice)
        b = save_label(uow, _map(rng, -0.1), image_id=image_id, kind="annotation", author_id=bob)
    assert a.revision == b.revision == 1 and a.chain != b.chain
    with reader(workspace) as s:
        assert np.all(load_label_map(store, s.get(Label, a.id)) == np.float16(0.1))
        assert np.all(load_label_map(store, s.get(Label, b.id)) == np.float16(-0.1))


def test_concurrent_saves_on_one_parent_let_exactly_one_win(workspace, image_and_users, rng):
    image_id, alice, _ = image_and_users
    with workspace.unit() as uow:
        base = save_label(uow, _map(rng), image_id=image_id, kind="annotation", author_id=alice)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def attempt(i: int) -> None:
        m = _map(np.random.default_rng(i))
        barrier.wait()  # before the unit: on SQLite a unit holds the write lock from its start
        try:
            with workspace.unit() as uow:
                save_label(uow, m, image_id=image_id, kind="annotation", author_id=alice, parent_id=base.id)
            outcomes.append("saved")
        except StaleRevisionError:
            outcomes.append("stale")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["saved", "stale", "stale", "stale"]
    with reader(workspace) as s:
        assert s.scalar(select(func.max(Label.revision))) == 2


def test_model_provenance_is_recorded(workspace, image_and_users, rng):
    image_id, _, _ = image_and_users
    with workspace.unit() as uow:
        lab = save_label(
            uow,
            _map(rng),
            image_id=image_id,
            kind="model",
            model_name="pieanet",
            model_sha256="6f" * 32,
            params={"input_size": [256, 256], "device": "cpu"},
        )
    assert lab.chain == "model:pieanet" and json.loads(lab.params)["device"] == "cpu"


def test_map_validation_and_status(workspace, image_and_users, rng):
    image_id, alice, _ = image_and_users
    with workspace.unit() as uow:
        with pytest.raises(ValueError, match="residual"):
            save_label(uow, np.full((4, 4), 1.5, np.float32), image_id=image_id, kind="refdiff")
        lab = save_label(uow, _map(rng), image_id=image_id, kind="refdiff")
        set_label_status(uow, lab.id, "accepted")
        assert uow.session.get(Label, lab.id).status == "accepted"
        with pytest.raises(ValueError, match="status must be one of"):
            set_label_status(uow, lab.id, "done")


def test_label_stats_against_numpy(rng):
    m = rng.uniform(-1, 1, (33, 17)).astype(np.float32)
    st = label_stats(m)
    assert st["mean"] == pytest.approx(float(m.astype(np.float64).mean()), abs=1e-12)
    assert st["mean_abs"] == pytest.approx(float(np.abs(m.astype(np.float64)).mean()), abs=1e-12)
    assert st["frac_under"] == np.mean(m < -0.05) and st["frac_over"] == np.mean(m > 0.05)
