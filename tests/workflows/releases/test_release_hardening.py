"""Releases never change, and never change your photos (issue 10, section 6).

- release images are hard links to the workspace's read-only, content-addressed copy
  (``objects/images/``), never to the user's photos; the copy is made once;
- a built release is read-only;
- names and versions are validated over the whole string (no trailing newline, NUL, ``/``...);
- a split that gets no scene is reported as a warning that says what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iea_data.workflows.releases import (
    ManifestSchemaError,
    ReleaseError,
    build_release,
    parse_version,
    release_path,
    resolve_file,
    validate_manifest,
    verify_release,
)
from iea_data.workflows.releases._files import make_read_only, remove_release_tree, writable_paths

WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


@pytest.fixture
def own_photos_ws(sqlite_workspace, demo_photos, tmp_path):
    """A workspace whose photos are this test's own copies (the tests edit them in place)."""
    from iea_data.workflows.catalog import ingest

    photos = tmp_path / "photos"
    shutil.copytree(demo_photos, photos)
    assert ingest(sqlite_workspace, [photos], workers=1).n_errors == 0
    return sqlite_workspace, photos


def _store_files(ws) -> dict[int, str]:
    root = ws.objects.root / "images"
    return {p.stat().st_ino: str(p) for p in root.rglob("*") if p.is_file()} if root.is_dir() else {}


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _release_images(root) -> list[str]:
    return [r["file"] for r in pq.read_table(root / "native" / "images.parquet").to_pylist() if r["file"]]


def test_release_images_are_the_stores_inodes_stored_once_and_editing_a_photo_changes_no_release(own_photos_ws):
    ws, photos = own_photos_ws
    src_inodes = {p.stat().st_ino for p in photos.iterdir()}
    r1 = build_release(ws, "h", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), formats=("native", "official"))
    store = _store_files(ws)
    total = sum(p.stat().st_size for p in photos.iterdir())
    assert r1.n_images_stored == len(store) == 10 and r1.n_bytes_stored == total  # 8 variants + 2 references, once
    for path in store.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o444
        name = os.path.basename(path)
        assert re.fullmatch(r"[0-9a-f]{64}\.png", name) and _sha(path) == name[:64]
        assert os.path.basename(os.path.dirname(path)) == name[:2]
    root1 = ws.releases_dir / "h" / "1.0.0"
    linked = _release_images(root1) + [f"official/images/{p.name}" for p in (root1 / "official" / "images").iterdir()]
    assert len(linked) == 16
    for rel in linked:
        ino = os.stat(root1 / rel).st_ino
        assert ino in store and ino not in src_inodes
    # the second release adds no bytes: same inodes, nothing new in the store
    r2 = build_release(ws, "h", "1.1.0", labels="refdiff", ratios=(0.5, 0.5))
    assert (r2.n_images_stored, r2.n_bytes_stored) == (0, 0) and _store_files(ws) == store
    root2 = ws.releases_dir / "h" / "1.1.0"
    assert {os.stat(root2 / rel).st_ino for rel in _release_images(root2)} <= set(store)
    # editing a photo in place (same size) changes neither release
    photo = photos / "astronaut_-1EV.png"
    before = _sha(photo)
    with open(photo, "r+b") as fh:
        fh.seek(-8, os.SEEK_END)
        fh.write(b"\x00" * 8)
    assert _sha(photo) != before
    assert verify_release(root1, workspace=ws).ok and verify_release(root2, workspace=ws).ok


def test_writing_into_a_release_never_reaches_the_photo(own_photos_ws):
    ws, photos = own_photos_ws
    build_release(ws, "w", "1.0.0", labels="refdiff", ratios=(0.5, 0.5))
    root = ws.releases_dir / "w" / "1.0.0"
    rel = _release_images(root)[0]
    name = pq.read_table(root / "native" / "images.parquet").to_pylist()[0]["name"]
    before = _sha(photos / name)
    assert stat.S_IMODE(os.stat(root / rel).st_mode) == 0o444
    try:  # a non-root user is refused by the mode; root is not, and must still not reach the photo
        with open(root / rel, "r+b") as fh:
            fh.write(b"XXXX")
    except PermissionError:
        assert os.geteuid() != 0
    assert _sha(photos / name) == before


def test_a_built_release_is_read_only_and_verify_reads_it(own_photos_ws):
    ws, _ = own_photos_ws
    build_release(ws, "ro", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), formats=("native", "official", "webdataset"))
    root = ws.releases_dir / "ro" / "1.0.0"
    modes = [os.lstat(os.path.join(d, f)).st_mode for d, _, fs in os.walk(root) for f in fs]
    dirs = [os.lstat(d).st_mode for d, _, _ in os.walk(root)]
    assert len(modes) > 20 and len(dirs) >= 6
    assert all(not m & WRITE_BITS for m in modes + dirs)
    assert all(stat.S_IMODE(m) == 0o444 for m in modes) and all(stat.S_IMODE(m) == 0o555 for m in dirs)
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".1.0.0.tmp")]
    r = verify_release(root, workspace=ws)
    assert r.ok and r.writable == [] and writable_paths(root) == []
    # removing it (as a non-root user can) leaves the stored copies read-only for the other releases
    store = _store_files(ws)
    remove_release_tree(root)
    assert not root.exists()
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o444 for p in store.values())


def test_copies_on_request_are_read_only_and_not_the_stores_inodes(own_photos_ws):
    ws, photos = own_photos_ws
    rep = build_release(ws, "c", "1.0.0", labels="refdiff", copy=True)
    root = ws.releases_dir / "c" / "1.0.0"
    store = _store_files(ws)
    src_inodes = {p.stat().st_ino for p in photos.iterdir()}
    assert rep.link_modes == {"copy": 10}
    for rel in _release_images(root):
        st_ = os.stat(root / rel)
        assert st_.st_ino not in store and st_.st_ino not in src_inodes and stat.S_IMODE(st_.st_mode) == 0o444
    assert verify_release(root).ok


def test_a_photo_changed_behind_the_catalogs_back_is_not_stored_and_is_reported(own_photos_ws):
    ws, photos = own_photos_ws
    photo = photos / "coffee_+1EV.png"
    st_ = photo.stat()
    with open(photo, "r+b") as fh:  # same size, same mtime: only the bytes tell
        fh.seek(-8, os.SEEK_END)
        fh.write(b"\x00" * 8)
    os.utime(photo, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    rep = build_release(ws, "s", "1.0.0", labels="refdiff", ratios=(0.5, 0.5))
    assert [name for name, _ in rep.errors] == ["coffee_+1EV.png"]
    assert "changed since it was ingested" in rep.errors[0][1] and "iea ingest" in rep.errors[0][1]
    assert rep.without_files == ["coffee_+1EV.png"] and rep.n_images_stored == 9
    assert not any(_sha(p) == _sha(photo) for p in _store_files(ws).values())
    assert verify_release(ws.releases_dir / "s" / "1.0.0").ok


def test_references_resolve_to_the_store_when_links_are_refused(own_photos_ws, monkeypatch):
    import errno

    ws, photos = own_photos_ws

    def no_link(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    rep = build_release(ws, "r", "1.0.0", labels="refdiff", ratios=(1, 0))
    root = ws.releases_dir / "r" / "1.0.0"
    assert rep.link_modes == {"reference": 10}
    row = pq.read_table(root / "native" / "images.parquet").to_pylist()[0]
    for p in photos.iterdir():  # the user's photos may go: the store holds the bytes
        p.unlink()
    resolved = resolve_file(root, row["file"])
    assert str(resolved).startswith(str(ws.objects.root / "images")) and _sha(resolved) == row["sha256"]


def test_leftovers_of_a_killed_build_are_removed_even_when_read_only(own_photos_ws):
    ws, _ = own_photos_ws
    stale = ws.releases_dir / "k" / ".1.0.0.tmp-123-abcd"
    (stale / "native" / "maps").mkdir(parents=True)
    (stale / "native" / "maps" / "x.npy").write_bytes(b"x")
    make_read_only(stale)
    build_release(ws, "k", "1.0.0", labels="refdiff")
    assert sorted(p.name for p in (ws.releases_dir / "k").iterdir()) == [".1.0.0.lock", "1.0.0"]


# ---- names and versions: the whole string ----

HOSTILE_NAMES = [
    "nl\n",
    "nl\r\n",
    "nl\r",
    "a\x00b",
    "a/b",
    "/abs",
    "..",
    ".",
    "../up",
    "a\\b",
    "a b",
    "",
    "x" * 129,
    "-lead",
    ".hidden",
    "a\u202eb",
    "\u202enl",
    "ｎｌ",
    "nl\u200b",
    "ñl",
    "a\tb",
]
HOSTILE_VERSIONS = [
    "1.0.0\n",
    "1.0.0\r\n",
    "1.0.0\x00",
    "1.0.0/..",
    "../1.0.0",
    "1.0.0 ",
    " 1.0.0",
    "1.0",
    "01.0.0",
    "1.0.0.0",
    "v1.0.0",
    "\u0661.0.0",
    "１.0.0",
    "1.0.0\u202e",
    "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_release_names_are_refused(demo_ws, name):
    with pytest.raises(ReleaseError, match="release name must be"):
        release_path(demo_ws, name, "1.0.0")


@pytest.mark.parametrize("version", HOSTILE_VERSIONS)
def test_hostile_versions_are_refused(demo_ws, version):
    with pytest.raises(ReleaseError, match="version must be MAJOR.MINOR.PATCH"):
        release_path(demo_ws, "ok", version)


_ALLOWED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.one_of(st.text(max_size=140), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)),
    tail=st.sampled_from(["", "\n", "\r", "\x00", "/", "\u202e"]),
)
def test_a_name_is_accepted_only_when_every_character_is_allowed(demo_ws, name, tail):
    name = name + tail
    ok = 0 < len(name) <= 128 and set(name) <= _ALLOWED and name[0] not in "._-"
    try:
        release_path(demo_ws, name, "1.0.0")
        accepted = True
    except ReleaseError:
        accepted = False
    assert accepted == ok, name


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(max_size=20), st.tuples(*[st.integers(0, 10**6)] * 3).map(lambda t: "{}.{}.{}".format(*t))),
    st.sampled_from(["", "\n", "\x00", " "]),
)
def test_a_version_parses_only_when_it_is_exactly_three_plain_numbers(version, tail):
    version = version + tail
    want = re.fullmatch(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)", version, flags=re.ASCII)
    try:
        got = parse_version(version)
    except ReleaseError:
        got = None
    assert got == (tuple(int(x) for x in want.groups()) if want else None)


def test_the_cli_refuses_a_name_and_version_with_a_trailing_newline(demo_ws, capsys):
    from pipelines.cli import main

    code = main(["-w", str(demo_ws.root), "release", "build", "nl\n", "--version", "1.0.0\n", "--labels", "refdiff"])
    err = capsys.readouterr().err
    assert code == 1 and "release name must be" in err and "'nl\\n'" in err and "Traceback" not in err
    code = main(["-w", str(demo_ws.root), "release", "build", "nl", "--version", "1.0.0\n", "--labels", "refdiff"])
    err = capsys.readouterr().err
    assert code == 1 and "version must be MAJOR.MINOR.PATCH" in err and "'1.0.0\\n'" in err
    assert not demo_ws.releases_dir.exists() or not any(p.name != "nl" for p in demo_ws.releases_dir.iterdir())
    assert not (demo_ws.releases_dir / "nl").exists() or not list((demo_ws.releases_dir / "nl").glob("1.0.0*"))


def test_manifest_patterns_are_anchored_at_the_very_end(demo_ws):
    build_release(demo_ws, "m", "1.0.0", labels="refdiff")
    data = json.loads((demo_ws.releases_dir / "m" / "1.0.0" / "manifest.json").read_text())
    assert validate_manifest(data)["name"] == "m"
    for key, bad in (("name", "m\n"), ("version", "1.0.0\n")):
        with pytest.raises(ManifestSchemaError, match="does not match"):
            validate_manifest({**data, key: bad})
    f = dict(data["files"][0], sha256=data["files"][0]["sha256"] + "\n")
    with pytest.raises(ManifestSchemaError, match="does not match"):
        validate_manifest({**data, "files": [f] + data["files"][1:]})


def test_rule_base_names_are_checked_over_the_whole_string():
    from iea_data.core.rules import RuleBaseError, parse_rule_base

    doc = {
        "schema": "iea-rule-base/1",
        "name": "toy\n",
        "title": "Toy",
        "thresholds": {"under": -0.1, "over": 0.1},
        "levels": [{"score": 5, "when": "otherwise"}],
    }
    with pytest.raises(RuleBaseError, match="'name' must be lower case"):
        parse_rule_base(json.dumps(doc))


# ---- a split with no scene ----


def test_a_split_that_gets_no_scene_is_a_warning_that_says_what_to_do(demo_ws):
    rep = build_release(demo_ws, "e", "1.0.0", labels="refdiff")  # 2 scenes at 0.8/0.1/0.1
    assert rep.counts == {"train": 8, "val": 0, "test": 0}
    assert [w.split(":")[0] for w in rep.warnings] == ["split 'val' got no scene", "split 'test' got no scene"]
    for w in rep.warnings:
        assert "2 scene(s)" in w and "0.8,0.1,0.1" in w
        assert "fewer splits" in w and "--ratios 0.8,0.2" in w and "other ratios" in w and "more scenes" in w
    assert rep.to_dict()["warnings"] == rep.warnings
    # a split whose share is 0 is empty on purpose: no warning
    assert build_release(demo_ws, "e", "1.0.1", labels="refdiff", ratios=(1, 0)).warnings == []
    assert build_release(demo_ws, "e", "1.0.2", labels="refdiff", ratios=(0.5, 0.5)).warnings == []


def test_six_scenes_at_the_default_ratios_warn_that_test_is_empty(sqlite_workspace, tmp_path, rng):
    import cv2

    from iea_data.workflows.catalog import ingest

    folder = tmp_path / "six"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"p{i}.png"), (rng.random((24, 32, 3)) * 255).astype(np.uint8))
    assert ingest(sqlite_workspace, [folder], workers=1, group="none").n_errors == 0
    rep = build_release(sqlite_workspace, "six", "1.0.0", labels="refdiff", stratify=())
    assert rep.counts["test"] == 0 and sum(rep.counts.values()) == 6
    assert any(w.startswith("split 'test' got no scene: 6 scene(s)") for w in rep.warnings)


def test_the_cli_prints_the_empty_split_warning_on_stderr(demo_ws, capsys):
    from pipelines.cli import main

    code = main(
        ["-w", str(demo_ws.root), "release", "build", "e", "--version", "1.0.0", "--labels", "refdiff", "--json"]
    )
    out = capsys.readouterr()
    assert code == 0
    assert json.loads(out.out)["counts"] == {"train": 8, "val": 0, "test": 0}  # stdout stays JSON
    err = " ".join(out.err.split())
    assert "warning: split 'test' got no scene" in err and "fewer splits" in err and "more scenes" in err
    code = main(["-w", str(demo_ws.root), "release", "build", "e", "--version", "1.0.1", "--labels", "refdiff"])
    out = capsys.readouterr()
    assert code == 0 and "warning: split 'val' got no scene" in " ".join(out.err.split())
    assert "new image(s)" in out.out


@pytest.mark.parametrize("ref", ["../../x@1.0.0", "ok@1.0.0\n", "ok\n@1.0.0", "ok@../1.0.0"])
def test_a_release_named_by_reference_is_checked_too(demo_ws, ref):
    from iea_data.workflows.releases import open_release

    with pytest.raises(ReleaseError, match="release name must be|version must be"):
        open_release(ref, demo_ws)


@pytest.mark.parametrize("clone", ["faithful", "wrong-bytes"])
def test_a_reflinked_copy_is_checked_on_the_stored_bytes(tmp_path, monkeypatch, clone):
    """ext4 has no reflinks; a fake FICLONE shows the hash is taken from the stored copy, not the source."""
    import iea_data.store.objects as objects
    from iea_data.store.objects import ObjectStore, SourceChangedError

    src = tmp_path / "p.png"
    src.write_bytes(b"photo bytes" * 1000)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    calls = []

    def fake_ioctl(fd, request, src_fd):
        assert request == objects._FICLONE
        calls.append(request)
        data = os.pread(src_fd, 1 << 20, 0)
        os.pwrite(fd, data if clone == "faithful" else data[:-1] + b"!", 0)
        return 0

    monkeypatch.setattr(objects.fcntl, "ioctl", fake_ioctl)
    store = ObjectStore(tmp_path / "objects")
    if clone == "faithful":
        dest, n = store.put_image_file(src, sha, ".PNG")
        assert calls and n == src.stat().st_size and dest.read_bytes() == src.read_bytes()
        assert dest.name == f"{sha}.png" and stat.S_IMODE(dest.stat().st_mode) == 0o444
        assert store.put_image_file(src, sha, ".png") == (dest, 0)  # stored once
    else:
        with pytest.raises(SourceChangedError, match="changed since it was ingested"):
            store.put_image_file(src, sha, ".png")
        assert not [p for p in (tmp_path / "objects" / "images").rglob("*") if p.is_file()]  # nothing stored, no temp


_NON_ROOT_PROBE = r"""
import json, os, stat, sys
from pathlib import Path
from iea_data.workflows.releases import build_release, verify_release
from iea_data.workflows.releases._files import remove_release_tree
from iea_data.store.workspace import Workspace
root, store = Path(sys.argv[1]), Path(sys.argv[2])
out = {}
# building works without the privileges too: the read-only temporary folder is renamed into place
again = Path(build_release(Workspace.open(sys.argv[3]), "nr", "1.0.1", labels="refdiff", ratios=(0.5, 0.5)).path)
out["built"] = verify_release(again).ok and not os.stat(again).st_mode & 0o222
def refused(fn):
    try:
        fn()
        return False
    except PermissionError:
        return True
img = next((root / "native" / "images").iterdir())
out["write_image"] = refused(lambda: open(img, "r+b").close())
out["write_table"] = refused(lambda: open(root / "native" / "images.parquet", "r+b").close())
out["create_file"] = refused(lambda: (root / "native" / "new.txt").write_text("x"))
out["delete_file"] = refused(lambda: (root / "manifest.json").unlink())
out["verify_ok"] = verify_release(root).ok
remove_release_tree(root)
out["removed"] = not root.exists()
out["store_modes"] = sorted({oct(stat.S_IMODE(p.stat().st_mode)) for p in store.rglob("*") if p.is_file()})
print(json.dumps(out))
"""


def test_without_root_privileges_a_release_refuses_writes_and_can_still_be_removed(own_photos_ws):
    """Root ignores file modes; the probe runs without the capabilities that let it (or as the user it is)."""
    import subprocess
    import sys
    from pathlib import Path

    ws, _ = own_photos_ws
    root = Path(build_release(ws, "nr", "1.0.0", labels="refdiff", ratios=(0.5, 0.5)).path)
    cmd = [sys.executable, "-c", _NON_ROOT_PROBE, str(root), str(ws.objects.root / "images"), str(ws.root)]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root and setpriv (util-linux) is missing: cannot drop CAP_DAC_OVERRIDE")
        caps = "-dac_override,-dac_read_search,-fowner"
        cmd = ["setpriv", "--bounding-set", caps, "--inh-caps", caps, *cmd]
    repo = str(Path(__file__).resolve().parents[3])
    r = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, cwd=repo, env={**os.environ, "PYTHONPATH": repo}
    )
    if r.returncode != 0 and "setpriv" in r.stderr:
        pytest.skip(f"setpriv cannot drop capabilities here: {r.stderr.strip()[:200]}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == {
        "built": True,
        "write_image": True,
        "write_table": True,
        "create_file": True,
        "delete_file": True,
        "verify_ok": True,
        "removed": True,
        "store_modes": ["0o444"],
    }
