"""Waiting for named threads to go idle before a DDP process exits (see ``_process_group``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import sys
import threading
import time

import pytest

from iea_data.workflows.training._process_group import thread_activity, wait_for_idle_threads

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task (Linux only)")

NAME = b"iea_test_spin"


def _name_this_thread(name: bytes) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    assert libc.prctl(15, ctypes.c_char_p(name), 0, 0, 0) == 0  # PR_SET_NAME


def _spinner(seconds: float, named: threading.Event, done: threading.Event) -> threading.Thread:
    def run():
        _name_this_thread(NAME)
        named.set()
        end = time.monotonic() + seconds
        data = bytes(1 << 20)
        while time.monotonic() < end:
            hashlib.sha256(data).digest()  # runs without the GIL, so it stays runnable under load
        done.wait()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert named.wait(5)
    return thread


def test_a_running_thread_is_not_idle_and_a_sleeping_one_is():
    named, done = threading.Event(), threading.Event()
    t0 = time.monotonic()
    thread = _spinner(0.6, named, done)
    try:
        seen = thread_activity((NAME.decode(),))
        assert len(seen) == 1 and next(iter(seen.values()))[0] in "RS"
        assert wait_for_idle_threads((NAME.decode(),), timeout=0.15) is False  # still spinning
        assert wait_for_idle_threads((NAME.decode(),), timeout=5) is True
        assert time.monotonic() - t0 >= 0.6  # not before the spin ended
        state, _ = thread_activity((NAME.decode(),))[thread.native_id]
        assert state == "S"
    finally:
        done.set()
        thread.join(5)
    assert thread_activity((NAME.decode(),)) == {}


def test_bad_arguments_say_what_is_expected():
    with pytest.raises(ValueError, match="`settle` and `timeout` must be > 0 seconds; got 0"):
        wait_for_idle_threads(("x",), settle=0)
    assert thread_activity(("x",), task_dir="/nonexistent/task") == {}
