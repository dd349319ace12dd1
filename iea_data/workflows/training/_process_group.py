"""Closing a DDP run's process group so that the process can exit cleanly.

``torch.distributed.destroy_process_group`` drops the registry's references, but a gloo
group that a ``DistributedDataParallel`` wrapper has used stays alive (torch 2.13: its
worker threads ``pt_gloo_runloop`` and ``gloo_tcp_loop`` outlive the call, and the Python
object keeps references no collector can see). A worker releases each finished collective
*after* the waiting caller has been woken; when that release drops a tensor with a Python
object while the interpreter is finalizing, the thread cannot take the GIL, the C++ runtime
calls ``std::terminate`` and the process dies with SIGABRT ("terminate called without an
active exception") after training has finished. Seen under ``torchrun --nproc_per_node=2``
on a loaded 2-core machine in about one run in twelve (the core dump shows the worker in
``~AsyncBarrierWork`` → ``decref_pyobject`` → ``take_gil`` → ``pthread_exit``); upstream
describes the same crash in pytorch/pytorch#179291.

:func:`close_process_group` therefore destroys the group and then waits, with the GIL
released, until the ``pt_gloo_runloop`` threads are asleep and stay asleep, so nothing is left for
them to release when the interpreter finalizes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

__all__ = ["close_process_group", "thread_activity", "wait_for_idle_threads"]

#: Name prefix (``/proc/<pid>/task/<tid>/comm``) of the threads that run a gloo group's
#: collectives; its ``gloo_tcp_loop`` thread wakes every 10 ms and releases no work.
GLOO_WORKERS = ("pt_gloo_runloop",)


def thread_activity(prefixes: tuple[str, ...], *, task_dir: str = "/proc/self/task") -> dict[int, tuple[str, int]]:
    """The state and context-switch count of each thread whose name starts with a prefix.

    Parameters
    ----------
    prefixes : tuple of str
        Thread-name prefixes, as the kernel holds them (at most 15 characters).
    task_dir : str, optional
        The process's ``task`` folder; Linux only.

    Returns
    -------
    dict
        ``{tid: (state, switches)}``: the one-letter scheduler state (``"R"`` running or
        runnable, ``"S"`` asleep, ...) and the voluntary plus involuntary context switches so
        far. Empty where the folder cannot be read (not Linux) or no thread matches.

    Examples
    --------
    >>> thread_activity(("no such thread",))
    {}
    """
    found: dict[int, tuple[str, int]] = {}
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return found
    for tid in tids:
        try:
            with open(os.path.join(task_dir, tid, "comm")) as fh:
                name = fh.read().strip()
            if not name.startswith(prefixes):
                continue
            with open(os.path.join(task_dir, tid, "status")) as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:  # the thread ended between the listing and the read
            continue
        state = fields.get("State", "?").split()[0]
        switches = int(fields.get("voluntary_ctxt_switches", 0)) + int(fields.get("nonvoluntary_ctxt_switches", 0))
        found[int(tid)] = (state, switches)
    return found


def _quiet(before: Mapping[int, tuple[str, int]], after: Mapping[int, tuple[str, int]]) -> bool:
    return all(state == "S" for state, _ in after.values()) and dict(before) == dict(after)


def wait_for_idle_threads(
    prefixes: tuple[str, ...], *, settle: float = 0.02, timeout: float = 5.0, task_dir: str = "/proc/self/task"
) -> bool:
    """Sleep until the named threads are asleep and have not run for ``settle`` seconds.

    The caller sleeps between the looks, so a thread that waits for the GIL gets it
    and finishes; a thread that is runnable, or that woke since the last look, is not idle.

    Parameters
    ----------
    prefixes : tuple of str
        Thread-name prefixes (see :func:`thread_activity`).
    settle : float, optional
        Seconds between two looks that must find the same quiet threads.
    timeout : float, optional
        Give up after this many seconds.
    task_dir : str, optional
        The process's ``task`` folder.

    Returns
    -------
    bool
        True once the threads are idle (or none is running), False on timeout.

    Examples
    --------
    >>> wait_for_idle_threads(("no such thread",), timeout=0.1)
    True
    """
    if settle <= 0 or timeout <= 0:
        raise ValueError(f"`settle` and `timeout` must be > 0 seconds; got {settle} and {timeout}")
    deadline = time.monotonic() + timeout
    before = thread_activity(prefixes, task_dir=task_dir)
    while True:
        time.sleep(settle)
        after = thread_activity(prefixes, task_dir=task_dir)
        if _quiet(before, after):
            return True
        if time.monotonic() >= deadline:
            return False
        before = after


def close_process_group(*, timeout: float = 5.0) -> bool:
    """Destroy the default process group and wait until its gloo threads are idle.

    Parameters
    ----------
    timeout : float, optional
        Seconds to wait for the threads.

    Returns
    -------
    bool
        False where the threads were still busy after ``timeout`` (the process may then
        still abort on exit), True otherwise.
    """
    import torch.distributed as dist

    dist.destroy_process_group()
    return wait_for_idle_threads(GLOO_WORKERS, timeout=timeout)
