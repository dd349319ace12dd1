"""`iea users`, run as a user would (a subprocess per command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def iea(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    env.pop("IEA_HOME", None)
    env.pop("IEA_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def ws_dir(tmp_path):
    r = iea("init", str(tmp_path / "ws"))
    assert r.returncode == 0, r.stderr
    return str(tmp_path / "ws")


def test_users_add_ls_passwd_disable(ws_dir):
    r = iea("-w", ws_dir, "users", "add", "alice", "--role", "reviewer", "--password-stdin", stdin="first secret\n")
    assert r.returncode == 0, r.stderr
    assert "first secret" not in r.stdout + r.stderr
    r = iea("-w", ws_dir, "users", "add", "admin1", "--role", "admin", "--password-stdin", stdin="admin secret\n")
    assert r.returncode == 0, r.stderr
    users = json.loads(iea("-w", ws_dir, "users", "ls", "--json").stdout)
    assert [(u["name"], u["role"], u["enabled"]) for u in users] == [
        ("admin1", "admin", True),
        ("alice", "reviewer", True),
    ]
    assert iea("-w", ws_dir, "users", "passwd", "alice", "--password-stdin", stdin="second secret\n").returncode == 0
    assert iea("-w", ws_dir, "users", "disable", "alice").returncode == 0
    users = {u["name"]: u for u in json.loads(iea("-w", ws_dir, "users", "ls", "--json").stdout)}
    assert users["alice"]["enabled"] is False

    from iea_data.store import dispose_engines
    from iea_data.store.workspace import Workspace
    from iea_data.workflows.users import AuthError, authenticate, enable_user

    ws = Workspace.open(ws_dir)
    with pytest.raises(AuthError, match="disabled"):
        authenticate(ws, "alice", "second secret")
    enable_user(ws, "alice")
    assert authenticate(ws, "alice", "second secret").role == "reviewer"
    with pytest.raises(AuthError):
        authenticate(ws, "alice", "first secret")
    dispose_engines()


@pytest.mark.parametrize(
    "args,stdin,message",
    [
        (("users", "add", "bob", "--role", "boss", "--password-stdin"), "long enough\n", "role must be one of"),
        (("users", "add", "bob", "--role", "annotator", "--password-stdin"), "short\n", "at least 12 characters"),
        (("users", "add", "bad name", "--role", "annotator", "--password-stdin"), "long enough\n", "user name must be"),
        (("users", "disable", "ghost"), None, "no user named 'ghost'"),
        (("users", "passwd", "ghost", "--password-stdin"), "long enough pw\n", "no user named 'ghost'"),
    ],
)
def test_users_errors_are_one_line_and_exit_1(ws_dir, args, stdin, message):
    r = iea("-w", ws_dir, *args, stdin=stdin)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr


def test_users_demo_creates_the_documented_accounts(ws_dir):
    from iea_data.store import dispose_engines
    from iea_data.store.workspace import Workspace
    from iea_data.workflows.demo import build_demo

    assert (
        build_demo(Workspace.open(ws_dir), photos=("camera",), evs=(1.0,), workers=1).n_errors == 0
    )  # `iea demo`, small
    dispose_engines()
    r = iea("-w", ws_dir, "users", "demo")
    assert r.returncode == 0, r.stderr
    names = [u["name"] for u in json.loads(iea("-w", ws_dir, "users", "ls", "--json").stdout)]
    assert names == ["admin", "annotator1", "annotator2", "reviewer"]
    assert "annotator1-demo" in r.stdout


def test_users_reset_password_role_and_log(ws_dir):
    """Issue 13: reset-password (shown once), role, and a log that stays whole when piped; never a password."""
    for name, role in (("boss", "admin"), ("alice", "annotator")):
        r = iea("-w", ws_dir, "users", "add", name, "--role", role, "--password-stdin", stdin="otter lamp quietly\n")
        assert r.returncode == 0, r.stderr
    r = iea("-w", ws_dir, "users", "reset-password", "alice")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    temporary = lines[lines.index("temporary password of alice (shown once):") + 1]
    assert len(temporary) == 19 and "next sign-in" in r.stdout
    r = iea("-w", ws_dir, "users", "reset-password", "boss", "--password-stdin", stdin="kettle north violet\n")
    assert r.returncode == 0 and "kettle north violet" not in r.stdout + r.stderr
    assert iea("-w", ws_dir, "users", "role", "alice", "reviewer").stdout.strip() == "alice is now reviewer"
    r = iea("-w", ws_dir, "users", "role", "boss", "annotator")
    assert r.returncode == 1 and "only enabled admin" in r.stderr and "Traceback" not in r.stderr
    assert iea("-w", ws_dir, "users", "disable", "alice").returncode == 0
    assert iea("-w", ws_dir, "users", "enable", "alice").returncode == 0

    piped = iea("-w", ws_dir, "users", "log").stdout.splitlines()  # not a terminal: tab-separated, whole
    assert piped[0] == "# 7 change(s)"
    assert piped[1].split("\t") == ["at", "action", "user", "old_role", "new_role", "by"]
    rows = [line.split("\t") for line in piped[2:]]
    assert [r[1:5] for r in rows] == [
        ["enabled", "alice", "", ""],
        ["disabled", "alice", "", ""],
        ["role_changed", "alice", "annotator", "reviewer"],
        ["password_reset", "boss", "", ""],
        ["password_reset", "alice", "", ""],
        ["added", "alice", "", "annotator"],
        ["added", "boss", "", "admin"],
    ]
    assert all(r[5].startswith("local operator") for r in rows)
    events = json.loads(iea("-w", ws_dir, "users", "log", "--user", "alice", "--limit", "2", "--json").stdout)
    assert [(e["action"], e["user"]) for e in events] == [("enabled", "alice"), ("disabled", "alice")]
    everything = iea("-w", ws_dir, "users", "log", "--json").stdout
    assert temporary not in everything and "kettle" not in everything and "argon2" not in everything

    from iea_data.store import dispose_engines
    from iea_data.store.workspace import Workspace
    from iea_data.workflows.users import authenticate

    listed = {
        u["name"]: u["must_change_password"] for u in json.loads(iea("-w", ws_dir, "users", "ls", "--json").stdout)
    }
    assert listed == {"alice": True, "boss": True}
    user = authenticate(Workspace.open(ws_dir), "alice", temporary)
    assert user.must_change_password and user.role == "reviewer"
    dispose_engines()
