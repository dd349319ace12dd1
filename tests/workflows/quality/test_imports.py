"""§0: released maps (kind ``imported``) and another tool's expert maps come in whole, or not at all."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sqlalchemy import func, select

from iea_data.store import Label, User
from iea_data.workflows.quality import ImportRefused, import_expert_labels, import_released_maps

from ..conftest import reader
from .conftest import H, W, add_images


def _manifest(tmp_path, names):
    csv = tmp_path / "train.csv"
    csv.write_text("img_id,ref_id,score\n" + "".join(f"{n},{n.split('_')[0]}.png,5\n" for n in names))
    return csv


def _count(ws, kind):
    with reader(ws) as s:
        return s.scalar(select(func.count()).select_from(Label).where(Label.kind == kind))


def test_released_maps_become_imported_labels_with_provenance_and_bad_files_import_nothing(qws, tmp_path):
    from iea_data.workflows.catalog import import_manifest

    names = ["a_N1.png", "a_P1.png", "b_N1.png"]
    import_manifest(qws, _manifest(tmp_path, names), split="train")
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "a_N1.npy", np.full((256, 256), 63.75, np.float32))  # ideal - test > 0: too dark
    np.save(maps / "a_P1.npy", np.full((256, 256), -25.5, np.float32))
    np.save(maps / "stray.npy", np.zeros((256, 256), np.float32))
    for bad, why in [
        (np.zeros((128, 128), np.float32), "shape (128, 128)"),
        (np.zeros((256, 256), np.int16), "dtype int16"),
        (np.full((256, 256), 300.0, np.float32), "values in [300, 300]"),
    ]:
        np.save(maps / "b_N1.npy", bad)
        with pytest.raises(ImportRefused, match=r"b_N1\.npy: " + re.escape(why)):
            import_released_maps(qws, maps, split="train")
        assert _count(qws, "imported") == 0  # nothing half-imported
    (maps / "b_N1.npy").unlink()
    report = import_released_maps(qws, maps, split="train")
    assert (report.n_files, report.n_saved, report.n_without_map, report.unmatched) == (3, 2, 1, ["stray.npy"])
    with reader(qws) as s:
        rows = {lab.params and json.loads(lab.params)["file"]: lab for lab in s.scalars(select(Label))}
    a = rows["a_N1.npy"]
    assert (a.kind, a.chain, a.status, a.height, a.width) == ("imported", "imported", "accepted", 256, 256)
    p = json.loads(a.params)
    assert p["split"] == "train" and len(p["sha256"]) == 64 and "official_map_to_residual" in p["conversion"]
    got = qws.objects.get_array(a.map_object).astype(np.float32)
    assert got.shape == (256, 256) and float(got[0, 0]) == pytest.approx(-0.25)  # the project's sign
    again = import_released_maps(qws, maps, split="train")
    assert (again.n_saved, again.n_unchanged) == (0, 2)


def test_expert_maps_are_resized_into_their_chain_and_the_author_cannot_sign_in(qws, tmp_path):
    from iea_data.workflows.users import authenticate

    (image_id,) = add_images(qws, 1)
    folder = tmp_path / "alice"
    folder.mkdir()
    np.save(folder / "img_000.png.npy", np.full((24, 32), 0.5, np.float64))  # another resolution, ideal - test
    np.save(folder / "nothing_here.npy", np.zeros((2, 2), np.float32))
    np.save(folder / "img_000.npy", np.full((3, 3), 1.5, np.float32))  # same image by stem: out of range
    with pytest.raises(ImportRefused, match=r"img_000\.npy: values in \[1\.5, 1\.5\], expected \[-1, 1\]"):
        import_expert_labels(qws, folder, author="alice", sign="released")
    with reader(qws) as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0  # the user was not created either
    (folder / "img_000.npy").unlink()
    report = import_expert_labels(qws, folder, author="alice", status="accepted", sign="released")
    assert (report.n_saved, report.unmatched) == (1, ["nothing_here.npy"])
    with reader(qws) as s:
        user = s.scalar(select(User).where(User.name == "alice"))
        lab = s.scalar(select(Label).where(Label.kind == "annotation"))
    assert (user.role, user.password_hash) == ("annotator", None)
    assert (lab.chain, lab.status, lab.height, lab.width) == (f"user:{user.id}", "accepted", H, W)
    assert np.allclose(qws.objects.get_array(lab.map_object).astype(np.float32), -0.5)
    with pytest.raises(Exception, match="wrong user name or password"):
        authenticate(qws, "alice", "")
    np.save(folder / "img_000.png.npy", np.full((24, 32), 0.25, np.float32))
    import_expert_labels(qws, folder, author="alice")
    with reader(qws) as s:
        revs = s.execute(select(Label.revision, Label.status).where(Label.chain == f"user:{user.id}")).all()
    assert sorted(revs) == [(1, "accepted"), (2, "submitted")]
