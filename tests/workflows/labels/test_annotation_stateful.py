"""Random interleavings of two users in two tabs each: revisions are never overwritten, stale saves are refused,
nothing painted is lost, and every stored map is clip(base + correction)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from iea_data.core.errors import StaleRevisionError
from iea_data.store import Image, Label, dispose_engines
from iea_data.store.workspace import init_workspace
from iea_data.workflows.labels import discard_draft, open_annotation, save_annotation, save_draft, save_label
from iea_data.workflows.users import add_user

from ..conftest import reader

TABS = [(u, t) for u in (0, 1) for t in (0, 1)]


class TwoUsersTwoTabs(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="iea-stateful-"))
        self.ws = init_workspace(self.dir / "ws")
        with reader(self.ws) as s, s.begin():
            img = Image(name="x.png", status="ok", width=5, height=4)
            s.add(img)
        self.image_id = img.id
        self.users = [add_user(self.ws, f"u{k}", role="annotator", password="long enough pw") for k in (0, 1)]
        with self.ws.unit() as uow:
            base = np.linspace(-0.9, 0.9, 20, dtype=np.float32).reshape(4, 5)
            save_label(uow, base, image_id=self.image_id, kind="refdiff")
        self.tabs: dict = {}
        self.heads = {0: None, 1: None}  # the model: each user's head label id
        self.saved: dict[int, str] = {}  # label id -> sha256 of its map object bytes when saved

    def teardown(self):
        dispose_engines()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(tab=st.sampled_from(TABS), base=st.sampled_from(["refdiff", "zero"]))
    def open_tab(self, tab, base):
        self.tabs[tab] = open_annotation(self.ws, self.users[tab[0]], self.image_id, base=base)

    @precondition(lambda self: self.tabs)
    @rule(data=st.data(), value=st.floats(-2, 2, width=32), row=st.integers(0, 3))
    def paint(self, data, value, row):
        tab = data.draw(st.sampled_from(sorted(self.tabs)))
        self.tabs[tab].correction[row, :] = value
        self.tabs[tab].strokes = self.tabs[tab].strokes + [{"row": row, "value": float(value)}]

    @precondition(lambda self: self.tabs)
    @rule(data=st.data())
    def autosave(self, data):
        tab = data.draw(st.sampled_from(sorted(self.tabs)))
        save_draft(self.ws, self.users[tab[0]], self.tabs[tab])

    @precondition(lambda self: self.tabs)
    @rule(data=st.data(), submit=st.booleans())
    def save(self, data, submit):
        tab = data.draw(st.sampled_from(sorted(self.tabs)))
        state = self.tabs[tab]
        user = tab[0]
        if state.parent_id != self.heads[user]:
            with pytest.raises(StaleRevisionError):
                save_annotation(self.ws, self.users[user], state, submit=submit)
            # the work is kept: reopening gives this tab's correction and strokes
            back = open_annotation(self.ws, self.users[user], self.image_id)
            assert back.from_draft and back.parent_id == self.heads[user]
            np.testing.assert_array_equal(back.correction, state.correction)
            assert back.strokes == state.strokes
            self.tabs[tab] = back
            return
        label = save_annotation(self.ws, self.users[user], state, submit=submit)
        assert label.chain == f"user:{self.users[user].id}" and label.parent_id == self.heads[user]
        stored = self.ws.objects.get_array(label.map_object).astype(np.float32)
        expect = np.clip(state.base + state.correction, -1, 1).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(stored, expect)
        self.heads[user] = label.id
        self.saved[label.id] = hashlib.sha256(self.ws.objects.get_bytes(label.map_object)).hexdigest()
        self.tabs[tab].parent_id = label.id  # that tab continues from its own save

    @precondition(lambda self: self.tabs)
    @rule(data=st.data())
    def discard(self, data):
        tab = data.draw(st.sampled_from(sorted(self.tabs)))
        discard_draft(self.ws, self.users[tab[0]], self.image_id)

    @invariant()
    def revisions_are_never_overwritten_and_chains_stay_apart(self):
        with reader(self.ws) as s:
            rows = s.query(Label).filter(Label.kind == "annotation").all()
            for lab in rows:
                assert hashlib.sha256(self.ws.objects.get_bytes(lab.map_object)).hexdigest() == self.saved[lab.id]
                assert lab.author_id == self.users[int(lab.chain == f"user:{self.users[1].id}")].id
            for user in (0, 1):
                chain = sorted((lab.revision, lab.id) for lab in rows if lab.author_id == self.users[user].id)
                assert [r for r, _ in chain] == list(range(1, len(chain) + 1))
                assert (chain[-1][1] if chain else None) == self.heads[user]


TwoUsersTwoTabs.TestCase.settings = settings(max_examples=12, stateful_step_count=15, deadline=None)
test_two_users_two_tabs = TwoUsersTwoTabs.TestCase
