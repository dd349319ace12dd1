"""A team deployment: N Streamlit replicas of the app behind HAProxy on one PostgreSQL catalog.

``iea app --replicas N`` calls :func:`run_team`; tests and the load test call :func:`start_team`.
The proxy config is written by the pure function :func:`haproxy_config` into
``<workspace>/deploy/haproxy.cfg``; ``annotator_app/deploy/haproxy.cfg`` is the same config as a
template a lab can reuse (docs/deployment.md).

What the proxy does: one public port; a cookie ``iea_replica`` inserted by the proxy keeps a
browser on the replica that holds its Streamlit session (the websocket ``/_stcore/stream`` and
the media URLs live in that process); health checks on ``/_stcore/health`` take a dead replica
out and ``option redispatch`` sends its browsers to a live one; every response carries
``X-IEA-Replica: <name>``. Each replica gets ``IEA_REPLICA=<name>`` (shown in the page's footer)
and ``IEA_TRUSTED_PROXIES=local`` (sign-in throttling by the browser's address from
``X-Forwarded-For``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from annotator_app.server import app_env, streamlit_command
from iea_data.core.errors import IeaError

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = [
    "COOKIE",
    "TEMPLATE",
    "ReplicaProcess",
    "Team",
    "TeamError",
    "check_team_database",
    "find_haproxy",
    "haproxy_config",
    "run_team",
    "start_team",
]

COOKIE = "iea_replica"
TEMPLATE = Path(__file__).resolve().parent / "deploy" / "haproxy.cfg"
HEALTH = "/_stcore/health"


class TeamError(IeaError):
    """The team deployment cannot start (no haproxy, a SQLite catalog, a replica that does not come up)."""


@dataclass
class ReplicaProcess:
    """One Streamlit replica: its name (``r1``…), local port, process id and ``Popen``."""

    name: str
    port: int
    pid: int
    popen: subprocess.Popen = field(repr=False)


def haproxy_config(
    servers: Mapping[str, int] | Sequence[tuple[str, str, int]],
    *,
    bind: str = "127.0.0.1:8501",
    cookie: str = COOKIE,
    check_interval_ms: int = 1000,
) -> str:
    """The HAProxy configuration of a team (a pure function: text in, text out).

    Parameters
    ----------
    servers : mapping of name to port, or sequence of (name, host, port)
        The replicas; a mapping means ``127.0.0.1:<port>`` for each.
    bind : str
        The public address, ``host:port`` (``:443 ssl crt /etc/haproxy/iea.pem`` for TLS: see
        docs/deployment.md).
    cookie : str
        The sticky-session cookie the proxy inserts.
    check_interval_ms : int
        Milliseconds between health checks; a replica is down after 2 failed checks.

    Returns
    -------
    str
        The config file's text.

    Examples
    --------
    >>> cfg = haproxy_config({"r1": 8601, "r2": 8602}, bind="127.0.0.1:8501")
    >>> "server r2 127.0.0.1:8602 check cookie r2" in cfg
    True
    """
    rows = [(n, "127.0.0.1", p) for n, p in servers.items()] if isinstance(servers, Mapping) else list(servers)
    if not rows:
        raise ValueError("servers must name at least one replica, got none")
    for name, host, port in rows:
        if not str(name).isidentifier() or not str(host) or not (0 < int(port) < 65536):
            raise ValueError(f"servers must be (name, host, port) with a plain name and a port 1-65535, got {name!r}")
    if not bind or any(c in bind for c in "\n\r"):
        raise ValueError(f"bind must be one line such as '127.0.0.1:8501', got {bind!r}")
    if not cookie.isidentifier():
        raise ValueError(f"cookie must be a plain name such as 'iea_replica', got {cookie!r}")
    inter = int(check_interval_ms)
    if inter < 100:
        raise ValueError(f"check_interval_ms must be at least 100, got {check_interval_ms!r}")
    lines = [
        "# IEA annotator team: HAProxy in front of the app's Streamlit replicas (docs/deployment.md).",
        "# Written by `iea app --replicas N`; annotator_app/deploy/haproxy.cfg is the reusable template.",
        "global",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    option forwardfor",
        "    option redispatch",
        "    retries 2",
        "    timeout connect 5s",
        "    timeout client 1h",
        "    timeout server 1h",
        "    # Streamlit keeps one websocket per browser tab open for the whole session",
        "    timeout tunnel 1h",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 10s",
        "",
        "frontend iea",
        f"    bind {bind}",
        "    default_backend replicas",
        "",
        "backend replicas",
        "    balance roundrobin",
        "    # sticky sessions: the websocket /_stcore/stream and the media URLs reach the replica",
        "    # that holds the Streamlit session; a dead replica's browsers go to a live one",
        f"    cookie {cookie} insert indirect nocache httponly",
        f"    option httpchk GET {HEALTH}",
        "    http-check expect status 200",
        "    # which replica answered (%s: the server's name)",
        "    http-response set-header X-IEA-Replica %s",
    ]
    lines += [
        f"    server {name} {host}:{int(port)} check cookie {name} inter {inter} fall 2 rise 1"
        for name, host, port in rows
    ]
    return "\n".join(lines) + "\n"


def find_haproxy() -> str:
    """The ``haproxy`` executable, or a :class:`TeamError` that says how to install it."""
    path = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if path is None:
        raise TeamError(
            "iea app --replicas needs HAProxy in front of the replicas, and `haproxy` is not installed; "
            "install it from the system packages (Debian/Ubuntu: `apt-get install haproxy`)"
        )
    return path


def check_team_database(ws: Workspace, replicas: int) -> None:
    """Refuse ``replicas > 1`` on a SQLite catalog, with why and what to do instead."""
    if int(replicas) < 1:
        raise TeamError(f"replicas must be at least 1, got {replicas!r}")
    if replicas > 1 and ws.database_url.startswith("sqlite"):
        raise TeamError(
            f"--replicas {replicas} needs a PostgreSQL catalog, and this workspace's catalog is SQLite: each "
            "replica is a separate process writing the catalog, SQLite has a single writer and is not made for "
            "storage shared between processes and machines. Point the workspace at PostgreSQL, e.g. "
            "`export IEA_DATABASE_URL=postgresql+psycopg://user@dbhost/iea` then `iea db upgrade` "
            "(docs/deployment.md), or run one replica (--replicas 1)."
        )


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + HEALTH, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the thread that started it ends (no orphans after kill -9)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Team:
    """A running team: the proxy and its replicas (see :func:`start_team`). A context manager."""

    url: str
    replicas: dict[str, ReplicaProcess]
    proxy: subprocess.Popen = field(repr=False)
    config_path: Path
    _logs: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def proxy_pid(self) -> int:
        """The HAProxy process id."""
        return self.proxy.pid

    @property
    def pids(self) -> list[int]:
        """Every process the team started: the proxy's, then the replicas'."""
        return [self.proxy.pid] + [r.pid for r in self.replicas.values()]

    def kill(self, name: str) -> None:
        """``kill -9`` replica ``name`` (fault tests) and reap it."""
        if name not in self.replicas:
            raise ValueError(f"name must be one of the replicas {sorted(self.replicas)}, got {name!r}")
        proc = self.replicas[name].popen
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the proxy and every replica, wait up to ``timeout`` seconds, SIGKILL stragglers."""
        procs = [self.proxy] + [r.popen for r in self.replicas.values()]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for f in self._logs:
            f.close()
        self._logs.clear()

    def __enter__(self) -> Team:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_team(
    workspace: Workspace | str | os.PathLike[str],
    replicas: int = 2,
    port: int | None = None,
    host: str = "127.0.0.1",
    log_dir: str | os.PathLike[str] | None = None,
    *,
    timeout: float = 120.0,
    die_with_parent: bool = False,
) -> Team:
    """Start ``replicas`` Streamlit processes and HAProxy in front; returns when all are healthy.

    Parameters
    ----------
    workspace : Workspace or path
        The workspace (its catalog must be PostgreSQL when ``replicas > 1``).
    replicas : int
        How many replicas, named ``r1``…``rN``, each on a free port of 127.0.0.1.
    port : int, optional
        The proxy's public port; None: a free one.
    host : str
        The proxy's public address.
    log_dir : path, optional
        Where ``r1.log``… and ``haproxy.log`` go; None: this process's stdout and stderr.
    timeout : float
        Seconds to wait for the replicas and the proxy to answer their health checks.
    die_with_parent : bool
        Linux: the children get SIGTERM if this thread dies (``iea app`` sets it).

    Returns
    -------
    Team

    Raises
    ------
    TeamError
        No haproxy, a SQLite catalog with ``replicas > 1``, a replica or the proxy that does not start.
    """
    from iea_data.store import Workspace as _Workspace

    ws = workspace if isinstance(workspace, _Workspace) else _Workspace.open(workspace)
    check_team_database(ws, replicas)
    haproxy = find_haproxy()
    deploy = ws.root / "deploy"
    deploy.mkdir(parents=True, exist_ok=True)
    logs = Path(log_dir) if log_dir is not None else None
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
    preexec = _die_with_parent if die_with_parent else None
    opened: list[IO[bytes]] = []

    def out(name: str):
        if logs is None:
            return {}
        f = open(logs / f"{name}.log", "ab")
        opened.append(f)
        return {"stdout": f, "stderr": subprocess.STDOUT}

    started: dict[str, ReplicaProcess] = {}
    proxy = None
    try:
        for i in range(1, int(replicas) + 1):
            name = f"r{i}"
            rport = _free_port()
            env = app_env(ws.root)
            env["IEA_REPLICA"] = name
            env.setdefault("IEA_TRUSTED_PROXIES", "local")
            p = subprocess.Popen(streamlit_command(rport, "127.0.0.1"), env=env, preexec_fn=preexec, **out(name))
            started[name] = ReplicaProcess(name, rport, p.pid, p)
        _wait(lambda: all(_healthy(f"http://127.0.0.1:{r.port}") for r in started.values()), started, timeout)
        pport = int(port) if port is not None else _free_port(host)
        config = deploy / "haproxy.cfg"
        config.write_text(haproxy_config({n: r.port for n, r in started.items()}, bind=f"{host}:{pport}"))
        proxy = subprocess.Popen([haproxy, "-db", "-f", str(config)], preexec_fn=preexec, **out("haproxy"))
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        url = f"http://{shown}:{pport}"
        team = Team(url=url, replicas=started, proxy=proxy, config_path=config, _logs=opened)
        _wait(lambda: _healthy(url), {**started, "haproxy": proxy}, timeout)
        return team
    except BaseException:
        Team(url="", replicas=started, proxy=proxy or _Exited(), config_path=deploy, _logs=opened).stop()
        raise


class _Exited:
    """Stands in for a proxy that never started."""

    pid = 0

    def poll(self):
        return 0

    def wait(self, timeout=None):
        return 0


def _wait(ready, procs: Mapping[str, object], timeout: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for name, p in procs.items():
            popen = p.popen if isinstance(p, ReplicaProcess) else p
            if popen.poll() is not None:  # type: ignore[attr-defined]
                raise TeamError(f"{name} exited with status {popen.returncode} while starting (see its log)")  # type: ignore[attr-defined]
        if ready():
            return
        time.sleep(0.1)
    raise TeamError(f"the team did not answer {HEALTH} within {timeout:.0f} s")


def run_team(ws: Workspace, *, replicas: int, port: int, host: str = "127.0.0.1", on_ready=None) -> int:
    """Serve the team in the foreground until Ctrl+C or SIGTERM, which stop every process it started.

    Returns 0 after a stop, 1 when the proxy or a replica died on its own (the others are stopped).
    ``on_ready(team)`` is called once everything answers its health check.
    """
    stopping = False

    def stop(signum, frame):  # pragma: no cover - exercised through a subprocess in the tests
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        team = start_team(ws, replicas=replicas, port=port, host=host, die_with_parent=True)
        with team:
            if on_ready is not None:
                on_ready(team)
            while not stopping:
                if team.proxy.poll() is not None:
                    return 1
                time.sleep(0.2)
            return 0
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
