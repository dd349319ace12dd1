"""Races: two tabs saving on one parent, two reviewers deciding at once (both backends, real threads)."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from iea_data.core.errors import IeaError, StaleRevisionError
from iea_data.store import Draft, Label, Review
from iea_data.workflows.labels import open_annotation, review_label, save_annotation

from ..conftest import reader


def _race(n, fn):
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def run(k):
        barrier.wait()
        try:
            outcomes[k] = fn(k)
        except Exception as exc:
            outcomes[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcomes


def test_concurrent_saves_from_one_parent_let_exactly_one_win(workspace, people, catalog):
    img = catalog["images"][0]
    ann = people["ann1"]
    with reader(workspace) as s:
        first = save_annotation(workspace, ann, open_annotation(workspace, ann, img))
    states = []
    for k in range(3):
        with reader(workspace) as s:
            st = open_annotation(workspace, ann, img)
        st.correction[:] = 0.1 * (k + 1)
        states.append(st)

    def save(k):
        return save_annotation(workspace, ann, states[k])

    outcomes = _race(3, save)
    wins = [o for o in outcomes if isinstance(o, Label)]
    assert len(wins) == 1, outcomes
    assert all(isinstance(o, StaleRevisionError) for o in outcomes if not isinstance(o, Label))
    with reader(workspace) as s:
        revs = s.scalars(select(Label.revision).where(Label.chain == f"user:{ann.id}").order_by(Label.revision)).all()
        assert revs == [1, 2] and wins[0].parent_id == first.id
        # the losers' work is in the (single) draft of that user and image
        assert s.scalar(select(func.count()).select_from(Draft)) == 1


def test_two_reviewers_at_once_exactly_one_decides(workspace, people, catalog):
    img = catalog["images"][1]
    with reader(workspace) as s:
        st = open_annotation(workspace, people["ann1"], img)
        label = save_annotation(workspace, people["ann1"], st, submit=True)

    def decide(k):
        who = ("rev", "rev2", "admin")[k]
        return review_label(
            workspace, people[who], label.id, decision="accept" if k else "reject", comment="redo the sky"
        )

    outcomes = _race(3, decide)
    assert sum(isinstance(o, Review) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, IeaError) for o in outcomes if not isinstance(o, Review))
    with reader(workspace) as s:
        assert s.scalar(select(func.count()).select_from(Review)) == 1
        decided = s.scalar(select(Review.decision))
        assert s.get(Label, label.id).status == {"accept": "accepted", "reject": "rejected"}[decided]
