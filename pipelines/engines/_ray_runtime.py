"""The Ray runtime of ``--engine ray``: start or join it, quiet it, check the workspace's storage.

Without an address a local runtime is started for the run (``ray.init(num_cpus=...)``, a
modest object store, no dashboard) and shut down at the end; with ``--ray-address auto`` or
``RAY_ADDRESS`` (Ray's own convention) the job joins a running cluster and leaves it running.
A runtime that is already up in this process (a notebook, the tests) is used as it is.

Ray's own progress bars and INFO logs are off: the CLI shows one progress bar of its own
(images/s), and Ray's log lines reach the terminal only as warnings and errors.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from iea_data.core.errors import IeaError

__all__ = [
    "RAY_INSTALL_HINT",
    "RayCluster",
    "StorageError",
    "require_ray",
    "ray_runtime",
    "check_shared_storage",
    "read_probe",
]

log = logging.getLogger(__name__)

RAY_INSTALL_HINT = "pip install 'iea-toolkit[ray]'"
#: Object store of a local runtime, MiB (Ray's default is 30 % of RAM: too much on a shared machine).
OBJECT_STORE_MB = 500
PROBE_PREFIX = ".iea-storage-probe-"


class StorageError(IeaError):
    """The workspace is not on storage every Ray node sees (maps written there would be lost)."""


def require_ray() -> Any:
    """The ``ray`` module, or an :class:`IeaError` that says how to install it."""
    try:
        import ray
        import ray.data  # Ray Data is the part the engine uses
    except ImportError:
        raise IeaError(f"--engine ray needs Ray Data, which is not installed: {RAY_INSTALL_HINT}") from None
    return ray


@dataclass(frozen=True)
class RayCluster:
    """What the run got: where, how big, and how long the runtime took to start (seconds)."""

    address: str
    started_here: bool
    nodes: int
    cpus: float
    gpus: float
    start_seconds: float
    memory: Optional[float] = None  # bytes for tasks and actors (Ray's ``memory`` resource)

    def describe(self) -> str:
        where = "a local Ray runtime" if self.started_here else f"the Ray cluster at {self.address}"
        gpus = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"{where}: {self.nodes} node(s), {self.cpus:g} CPU{gpus}"


def quiet_ray_data() -> None:
    """Ray Data's progress bars off and its INFO logs out of the terminal (this process)."""
    import ray.data

    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    if hasattr(ctx, "enable_rich_progress_bars"):
        ctx.enable_rich_progress_bars = False
    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def ray_runtime(address: Optional[str] = None, *, num_cpus: int = 2) -> Iterator[RayCluster]:
    """Start (no address) or join (``address``, or ``RAY_ADDRESS``) a Ray runtime for one run.

    Parameters
    ----------
    address : str, optional
        ``"auto"`` or ``host:port`` of a running cluster; default ``RAY_ADDRESS`` if set,
        else a local runtime with ``num_cpus`` CPUs, started here and shut down at the end.
    num_cpus : int, optional
        CPUs of a local runtime (default 2).
    """
    ray = require_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    t0 = time.perf_counter()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,  # workers' output stays in Ray's session logs
            "logging_level": logging.ERROR,
        }
        if address is None:
            # the workers find this package the way this process did (a checkout or an install)
            here = str(Path(__file__).resolve().parents[2])
            path = os.environ.get("PYTHONPATH", "")
            if here not in path.split(os.pathsep):
                os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, path) if p)
            kwargs.update(num_cpus=num_cpus, object_store_memory=OBJECT_STORE_MB << 20)
        else:
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise IeaError(f"cannot start or join Ray (address {address or 'local'}): {exc}") from None
        started = True
    quiet_ray_data()
    try:
        res = ray.cluster_resources()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        yield RayCluster(
            address=address or "local",
            started_here=started and address is None,
            nodes=len(nodes),
            cpus=float(res.get("CPU", 0)),
            gpus=float(res.get("GPU", 0)),
            start_seconds=time.perf_counter() - t0,
            memory=float(res["memory"]) if res.get("memory") else None,
        )
    finally:
        if started:
            ray.shutdown()


def _probe_file(root: str, token: str) -> str:
    return os.path.join(root, f"{PROBE_PREFIX}{token}")


def _write_probe(root: str, token: str) -> str:
    """Runs as a Ray task on one node: write the probe file; return the node's host name."""
    host = socket.gethostname()
    with open(_probe_file(root, token), "w", encoding="utf-8") as fh:
        fh.write(f"{token} {host}\n")
    return host


def read_probe(root: Path, token: str) -> Optional[str]:
    """The probe file's content as the driver sees it, or None where there is none."""
    try:
        return Path(_probe_file(str(root), token)).read_text(encoding="utf-8")
    except OSError:
        return None


def check_shared_storage(root: Path) -> int:
    """Refuse to run unless every alive Ray node writes a file in ``root`` that this process reads.

    One task per node (pinned to it) writes a probe file into the workspace folder; the
    driver reads each back and removes it. Returns the number of nodes checked.

    Raises
    ------
    StorageError
        Naming the nodes whose file the driver did not see, and what to do.
    """
    ray = require_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    root = Path(root).resolve()
    task = ray.remote(num_cpus=0, max_retries=0)(_write_probe)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    probes = []
    for node in nodes:
        token = uuid.uuid4().hex
        strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
        probes.append((token, node, task.options(scheduling_strategy=strategy).remote(str(root), token)))
    missing = []
    for token, node, ref in probes:
        try:
            host = ray.get(ref, timeout=120)
        except Exception as exc:  # the task itself could not write there (no such folder on that node)
            missing.append(f"{node.get('NodeManagerAddress', '?')} ({type(exc).__name__}: {str(exc).splitlines()[0]})")
            continue
        text = read_probe(root, token)
        if text is None or not text.startswith(token):
            missing.append(f"{host} ({node.get('NodeManagerAddress', '?')})")
        try:
            os.unlink(_probe_file(str(root), token))
        except OSError:
            pass
    if missing:
        raise StorageError(
            f"the workspace {root} is not on storage every Ray node sees: a file written there by "
            f"{', '.join(missing)} did not appear here. Put the workspace on shared storage (NFS, a "
            f"cluster file system) mounted at the same path on every node, or run with --engine local"
        )
    return len(nodes)
