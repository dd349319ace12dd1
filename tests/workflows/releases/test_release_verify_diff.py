"""verify names each changed, missing and extra file; diff finds moves and label changes; kill -9 leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from iea_data.store import Release
from iea_data.workflows.releases import build_release, diff_releases, list_releases, verify_release

from .conftest import image_ids, tamperable


@pytest.fixture
def built(demo_ws):
    build_release(demo_ws, "v", "1.0.0", labels="refdiff", formats=("native", "official"), ratios=(0.5, 0.5))
    tamperable(demo_ws.releases_dir / "v" / "1.0.0")  # the tests damage it
    return demo_ws, demo_ws.releases_dir / "v" / "1.0.0"


def test_verify_names_a_changed_byte_a_deleted_file_and_an_extra_file(built):
    ws, root = built
    assert verify_release(root).ok
    maps = sorted((root / "native" / "maps").iterdir())
    data = bytearray(maps[0].read_bytes())
    data[-1] ^= 0x01  # one bit, same size
    maps[0].write_bytes(bytes(data))
    (root / "official" / "train.csv").unlink()
    (root / "native" / "notes.txt").write_text("not part of the release")
    r = verify_release(root, workspace=ws)
    assert not r.ok
    assert r.changed == [str(maps[0].relative_to(root))]
    assert r.missing == ["official/train.csv"]
    assert r.extra == ["native/notes.txt"]
    assert r.catalog_manifest_match is True


@pytest.mark.parametrize("damage", ["byte", "delete", "extra"])
def test_each_kind_of_damage_alone_fails_verify(built, damage):
    _, root = built
    target = root / "native" / "images.parquet"
    if damage == "byte":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "delete":
        target.unlink()
    else:
        (root / "card" / "extra.png").write_bytes(b"\x89PNG")
    r = verify_release(root)
    assert not r.ok
    assert (r.changed, r.missing, r.extra) == {
        "byte": (["native/images.parquet"], [], []),
        "delete": ([], ["native/images.parquet"], []),
        "extra": ([], [], ["card/extra.png"]),
    }[damage]


def test_an_edited_manifest_is_caught_against_the_catalog(built):
    ws, root = built
    text = (root / "manifest.json").read_text().replace('"license": "', '"license": "X')
    (root / "manifest.json").write_text(text)
    r = verify_release(root, workspace=ws)
    assert not r.ok and r.changed == ["manifest.json"] and r.catalog_manifest_match is False


def test_diff_lists_moves_and_label_changes_with_mean_abs_delta(built):
    ws, root = built
    ids = image_ids(ws)
    name = "coffee_+1EV.png"
    from iea_data.workflows.labels import chain_head, load_label_map, save_label

    with ws.unit() as uow:
        head = chain_head(uow, ids[name], "refdiff")
        old = load_label_map(ws.objects, head)
        new = np.clip(old + 0.25, -1, 1).astype(np.float32)
        save_label(uow, new, image_id=ids[name], kind="refdiff", parent_id=head.id)
    build_release(ws, "v", "1.1.0", labels="refdiff", ratios=(0.5, 0.5), seed=1)
    d = diff_releases("v@1.0.0", "v@1.1.0", workspace=ws)
    a = {r["name"]: r["split"] for r in pq.read_table(root / "native" / "images.parquet").to_pylist()}
    b = {
        r["name"]: r["split"]
        for r in pq.read_table(ws.releases_dir / "v" / "1.1.0" / "native" / "images.parquet").to_pylist()
    }
    assert sorted((m["name"], m["from"], m["to"]) for m in d.moved) == sorted(
        (n, a[n], b[n]) for n in a if a[n] != b[n]
    )
    assert d.added == [] and d.removed == []
    assert [c["name"] for c in d.labels_changed] == [name]
    stored_new = np.clip(old + 0.25, -1, 1).astype(np.float16).astype(np.float32)
    expected = float(np.abs(old.astype(np.float64) - stored_new).mean())
    assert d.labels_changed[0]["mean_abs_delta"] == pytest.approx(expected, rel=1e-6)
    rows = {(r["name"], r["version"]): r for r in list_releases(ws)}
    assert rows[("v", "1.0.0")]["recorded"] and rows[("v", "1.1.0")]["images"] == 8


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from iea_data.store.workspace import Workspace
    from iea_data.workflows.releases import build_release

    ws = Workspace.open(sys.argv[1])

    def progress(done, total):
        if done > total // 2:  # past the leak check, files are being written: die the hard way
            os.kill(os.getpid(), signal.SIGKILL)

    build_release(ws, "k", "1.0.0", labels="refdiff", formats=("native", "official"), progress=progress)
""")


def test_kill_9_mid_build_leaves_no_half_release_and_a_rebuild_succeeds(demo_ws, tmp_path):
    ws = demo_ws
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("IEA_DATABASE_URL", None)
    proc = subprocess.run([sys.executable, str(script), str(ws.root)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    parent = ws.releases_dir / "k"
    assert not (parent / "1.0.0").exists()
    leftovers = [p.name for p in parent.iterdir() if p.name.startswith(".1.0.0.tmp-")]
    assert len(leftovers) == 1  # the dead build's temporary folder, with files in it
    assert any((parent / leftovers[0]).rglob("*.npy"))
    with ws.session() as s:
        assert s.scalar(select(Release).where(Release.name == "k")) is None
    rep = build_release(ws, "k", "1.0.0", labels="refdiff", formats=("native", "official"))
    assert rep.n_labelled == 8 and verify_release(parent / "1.0.0").ok
    assert [p.name for p in parent.iterdir() if not p.name.endswith(".lock")] == ["1.0.0"]
