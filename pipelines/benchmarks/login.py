"""Login benchmark: a spray of distinct unknown names from one address while a real user signs in.

Run: ``python -m pipelines.benchmarks.login [--logins 15] [--threads 4] [--out FILE]``.

Issue 10's probe (200 logins with distinct unknown names over four connections: 3.2 attempts/s,
none throttled; everyone's login latency p50 0.64 s, max 10.8 s) at the library level: ``--threads``
threads call :func:`iea_data.workflows.users.authenticate` with a new unknown name each time from one
address, as fast as they can, while one more thread signs a real user in ``--logins`` times from
its own address. Three modes on a fresh SQLite workspace each, with the real argon2 cost:

- ``no spray``: the real user alone (the baseline);
- ``limits off``: the per-address and global limits set out of reach (what throttling per name
  alone gave: every sprayed attempt costs an argon2 check);
- ``default limits``: the shipped limits.

Reported per mode: sprayed attempts, how many were checked with argon2 and how many throttled,
checked attempts per second, the real user's login latency p50 / max, and ``login_throttle`` rows.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

SPRAY_ADDRESS = "198.51.100.66"
OWNER_ADDRESS = "203.0.113.10"
OWNER_PASSWORD = "otter lamp quietly north"


def run_mode(root: Path, *, limits: bool, logins: int, threads: int, label: str | None = None) -> dict:
    from sqlalchemy import func, select

    from iea_data.store import LoginThrottle, dispose_engines
    from iea_data.store.workspace import init_workspace
    from iea_data.workflows.users import AuthError, add_user, authenticate

    ws = init_workspace(root)
    add_user(ws, "owner", role="annotator", password=OWNER_PASSWORD)
    authenticate(ws, "owner", OWNER_PASSWORD, address=OWNER_ADDRESS)  # a returning user
    kwargs = {} if limits else {"max_failures_per_address": 10**9, "max_failures_global": 10**9}
    done = threading.Event()
    lock = threading.Lock()
    counts = {"checked": 0, "throttled": 0}
    latencies: list[float] = []
    serial = iter(range(10**9))

    def spray() -> None:
        while not done.is_set():
            with lock:
                k = next(serial)
            try:
                authenticate(ws, f"nobody{k:06d}", "guess guess guess", address=SPRAY_ADDRESS, **kwargs)
            except AuthError as exc:
                with lock:
                    counts["checked" if str(exc).startswith("wrong") else "throttled"] += 1

    def owner() -> None:
        for _ in range(logins):
            t = time.perf_counter()
            authenticate(ws, "owner", OWNER_PASSWORD, address=OWNER_ADDRESS, **kwargs)
            latencies.append(time.perf_counter() - t)
        done.set()

    workers = [threading.Thread(target=spray) for _ in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    if threads:
        time.sleep(0.5)  # the spray is under way before the first real login
    legit = threading.Thread(target=owner)
    legit.start()
    legit.join()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    with ws.session() as s:
        rows = s.scalar(select(func.count()).select_from(LoginThrottle))
    dispose_engines()
    attempts = counts["checked"] + counts["throttled"]
    return {
        "mode": label or ("default limits" if limits else "limits off"),
        "seconds": round(wall, 2),
        "spray_attempts": attempts,
        "checked": counts["checked"],
        "throttled": counts["throttled"],
        "checked_per_s": round(counts["checked"] / wall, 2),
        "real_logins": len(latencies),
        "attempts_per_s": round(attempts / wall, 1),
        "login_p50_s": round(statistics.median(latencies), 3),
        "login_max_s": round(max(latencies), 3),
        "throttle_rows": rows,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logins", type=int, default=15, help="real logins measured per mode")
    ap.add_argument("--threads", type=int, default=4, help="spraying threads")
    ap.add_argument("--out", type=Path, default=Path(".bench/login.json"))
    args = ap.parse_args(argv)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "threads": args.threads,
        "logins": args.logins,
        "modes": [],
    }
    auth_log = logging.getLogger("iea.auth")
    level = auth_log.level
    auth_log.setLevel(logging.ERROR)  # thousands of refused sign-ins: not for the terminal
    try:
        with tempfile.TemporaryDirectory(prefix="iea-login-bench-") as tmp:
            result["modes"].append(
                run_mode(Path(tmp) / "ws-quiet", limits=True, logins=args.logins, threads=0, label="no spray")
            )
            for limits in (False, True):
                result["modes"].append(
                    run_mode(Path(tmp) / f"ws-{int(limits)}", limits=limits, logins=args.logins, threads=args.threads)
                )
    finally:
        auth_log.setLevel(level)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"login benchmark ({result['machine']}, {result['date']}, {args.threads} spraying threads, "
        f"{args.logins} real logins)"
    )
    for m in result["modes"]:
        print(
            f"  {m['mode']:>14}: {m['spray_attempts']} sprayed ({m['attempts_per_s']}/s), {m['checked']} checked "
            f"({m['checked_per_s']}/s), {m['throttled']} throttled; real login p50 {m['login_p50_s']} s, "
            f"max {m['login_max_s']} s; {m['throttle_rows']} throttle rows"
        )
    return result


if __name__ == "__main__":
    main()
