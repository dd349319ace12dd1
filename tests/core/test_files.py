"""atomic_write: readers see the old file or the new one; a failed write leaves nothing behind."""

import pytest

from iea_data.core.files import atomic_write


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "m.csv"
    atomic_write(p, b"old")

    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(p, boom, fsync=True)
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["m.csv"]


def test_a_missing_folder_raises_unless_asked_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "no" / "x.bin", b"x")
    atomic_write(tmp_path / "no" / "x.bin", b"x", make_dirs=True)
    assert (tmp_path / "no" / "x.bin").read_bytes() == b"x"
