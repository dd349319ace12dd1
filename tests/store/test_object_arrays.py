"""Arrays read back from the object store equal what ``numpy.load`` reads (the header is parsed once per shape)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from iea_data.core.errors import IeaError
from iea_data.store.objects import ObjectStore

ARRAYS = [
    np.arange(6, dtype=np.float16).reshape(2, 3),
    np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    np.arange(5, dtype=">i4"),
    np.zeros((0, 3), np.float32),
    np.zeros((), np.float64),
]


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
@pytest.mark.parametrize("k", range(len(ARRAYS)))
def test_get_array_equals_numpy_load_for_every_format_version(tmp_path, k, version):
    store = ObjectStore(tmp_path)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, ARRAYS[k], version=version, allow_pickle=False)
    key = store.put_bytes(buf.getvalue())
    want = np.load(io.BytesIO(buf.getvalue()), allow_pickle=False)
    for _ in range(2):  # the second read uses the parsed header
        got = store.get_array(key)
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
        assert got.flags.writeable and got.flags.f_contiguous == want.flags.f_contiguous
        got[...] = 0  # a copy: the next read is unchanged
    assert np.array_equal(store.get_array(key), want)


def test_pickles_and_bad_keys_are_refused(tmp_path):
    store = ObjectStore(tmp_path)
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    key = store.put_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="allow_pickle"):
        store.get_array(key)
    with pytest.raises(ValueError, match="64-character lowercase hex sha256"):
        store.get_array("AB" * 32)
    (tmp_path / key[:2] / key[2:]).chmod(0o644)
    (tmp_path / key[:2] / key[2:]).write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(IeaError, match="corrupt"):
        store.get_array(key)
