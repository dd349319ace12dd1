"""The build lock: fcntl on POSIX, msvcrt on Windows (faked here), a clear error where neither exists."""

from __future__ import annotations

import os
import threading
import time
import types

import pytest

from iea_data.workflows.releases import ReleaseError, _lock, build_release, verify_release


def _hold_and_contend(path, hold_s: float = 0.3) -> list[str]:
    """Thread A takes the lock and holds it; thread B asks meanwhile. Returns the order of events."""
    events: list[str] = []
    a_has_it = threading.Event()

    def a():
        with _lock.release_lock(path):
            events.append("a in")
            a_has_it.set()
            time.sleep(hold_s)
            events.append("a out")

    def b():
        a_has_it.wait()
        with _lock.release_lock(path):
            events.append("b in")

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return events


@pytest.mark.skipif(_lock.fcntl is None, reason="POSIX lock")
def test_fcntl_lock_makes_a_second_holder_wait(tmp_path):
    path = tmp_path / ".1.0.0.lock"
    assert _hold_and_contend(path) == ["a in", "a out", "b in"]
    assert path.exists()  # the lock file stays; the lock itself dies with its holder


class FakeMsvcrt(types.SimpleNamespace):
    """``msvcrt.locking`` as Windows does it for byte 0: a second lock of a locked region raises OSError."""

    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

    def __init__(self):
        super().__init__(held={}, guard=threading.Lock(), calls=[])

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        key = os.fstat(fd).st_ino, os.lseek(fd, 0, os.SEEK_CUR), nbytes
        with self.guard:
            self.calls.append(mode)
            if mode == self.LK_UNLCK:
                assert self.held.pop(key) == fd, "unlocking a region this handle does not hold"
            elif key in self.held:
                raise OSError(36, "Resource deadlock avoided")
            else:
                self.held[key] = fd


def test_windows_lock_waits_and_releases(tmp_path, monkeypatch):
    fake = FakeMsvcrt()
    monkeypatch.setattr(_lock, "fcntl", None)
    monkeypatch.setattr(_lock, "msvcrt", fake)
    monkeypatch.setattr(_lock, "POLL_SECONDS", 0.01)
    assert _hold_and_contend(tmp_path / ".1.0.0.lock") == ["a in", "a out", "b in"]
    assert fake.held == {} and fake.LK_NBLCK in fake.calls and fake.calls.count(fake.LK_UNLCK) == 2


def test_a_release_builds_with_the_windows_lock(demo_ws, monkeypatch):
    fake = FakeMsvcrt()
    monkeypatch.setattr(_lock, "fcntl", None)
    monkeypatch.setattr(_lock, "msvcrt", fake)
    rep = build_release(demo_ws, "w", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), card=False)
    assert verify_release(rep.path).ok
    assert fake.held == {} and fake.calls == [fake.LK_NBLCK, fake.LK_UNLCK]


def test_without_any_lock_the_build_says_it_needs_posix_or_windows(demo_ws, monkeypatch):
    monkeypatch.setattr(_lock, "fcntl", None)
    monkeypatch.setattr(_lock, "msvcrt", None)
    with pytest.raises(ReleaseError, match=r"fcntl \(POSIX\) or msvcrt \(Windows\)"):
        build_release(demo_ws, "n", "1.0.0", labels="refdiff", ratios=(0.5, 0.5))
    assert not (demo_ws.releases_dir / "n" / "1.0.0").exists()
