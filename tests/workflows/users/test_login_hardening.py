"""Issue 10, logins and accounts: throttling per address and for the server, pruning, no lock-out of an
owner by someone who knows the name, the password policy, ``--password-stdin``, demo accounts only in a
demo workspace, and authentication events in the log without passwords."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from iea_data.core.errors import IeaError
from iea_data.store import IngestRun, LoginThrottle, User
from iea_data.workflows.users import (
    DEMO_USERS,
    GLOBAL_WINDOW_SECONDS,
    MIN_PASSWORD_LENGTH,
    THROTTLE_MAX_SECONDS,
    THROTTLE_WINDOW_SECONDS,
    AuthError,
    add_user,
    authenticate,
    check_password_policy,
    client_address,
    disable_user,
    failed_logins,
    is_common_password,
    is_demo_workspace,
    log_sign_out,
    seed_demo_users,
    set_password,
)
from pipelines.cli_users import strip_line_ending

from ..conftest import PASSWORD, reader

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
ATTACKER, OWNER, OTHER = "198.51.100.66", "203.0.113.10", "192.0.2.20"
REPO = Path(__file__).resolve().parents[3]


def sec(x: float) -> dt.timedelta:
    return dt.timedelta(seconds=x)


@pytest.fixture
def argon2_calls(monkeypatch):
    """How many password checks (argon2 work) ran."""
    import iea_data.workflows.users._accounts as accounts

    calls = []
    real = accounts._verify
    monkeypatch.setattr(accounts, "_verify", lambda h, p: calls.append(1) or real(h, p))
    return calls


def n_rows(s) -> int:
    s.commit()
    return s.scalar(select(func.count()).select_from(LoginThrottle))


# --- throttling -------------------------------------------------------------------------------------------


def test_spray_of_distinct_names_from_one_address_is_throttled_without_argon2(workspace, people, argon2_calls):
    with reader(workspace) as s:
        for k in range(5):
            with pytest.raises(AuthError, match="wrong user name or password"):
                authenticate(
                    workspace,
                    f"spray{k}",
                    "guess guess guess",
                    address=ATTACKER,
                    max_failures_per_address=5,
                    now=T0 + sec(k),
                )
        assert len(argon2_calls) == 5
        rows = n_rows(s)
        for k in range(5, 40):
            with pytest.raises(AuthError, match=r"too many failed sign-ins from this address; wait 30 s and try again"):
                authenticate(
                    workspace,
                    f"spray{k}",
                    "guess guess guess",
                    address=ATTACKER,
                    max_failures_per_address=5,
                    now=T0 + sec(4),
                )
        assert len(argon2_calls) == 5  # throttled attempts cost no password check ...
        assert n_rows(s) == rows  # ... and add no rows
        # the right password from that address is refused too: the lock hurts the address, not the account
        with pytest.raises(AuthError, match="from this address"):
            authenticate(workspace, "ann1", PASSWORD, address=ATTACKER, max_failures_per_address=5, now=T0 + sec(6))
        # everyone else is unaffected
        assert (
            authenticate(workspace, "ann1", PASSWORD, address=OWNER, max_failures_per_address=5, now=T0 + sec(6)).name
            == "ann1"
        )
        # after the lock the address may try again; the next failure doubles its lock
        with pytest.raises(AuthError, match="wrong user name"):
            authenticate(
                workspace,
                "spray99",
                "guess guess guess",
                address=ATTACKER,
                max_failures_per_address=5,
                now=T0 + sec(36),
            )
        with pytest.raises(AuthError, match="wait 60 s"):
            authenticate(workspace, "spray100", "x", address=ATTACKER, max_failures_per_address=5, now=T0 + sec(36))


def test_concurrent_attempts_cannot_exceed_the_address_limit(workspace, people, argon2_calls):
    from iea_data.store import dispose_engines

    barrier = threading.Barrier(8)
    outcomes = []

    def attempt(k):
        barrier.wait()
        try:
            authenticate(workspace, f"c{k}", "guess guess guess", address=ATTACKER, max_failures_per_address=3, now=T0)
        except AuthError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=attempt, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    dispose_engines()
    assert sorted(o.startswith("wrong") for o in outcomes) == [False] * 5 + [True] * 3
    assert len(argon2_calls) == 3


def test_global_limit_refuses_new_failures_but_known_owners_sign_in(workspace, people, argon2_calls):
    assert (
        authenticate(workspace, "ann1", PASSWORD, address=OWNER, now=T0).name == "ann1"
    )  # OWNER is now known for ann1
    for k in range(4):
        with pytest.raises(AuthError, match="wrong user name"):
            authenticate(workspace, f"x{k}", "guess guess guess", address=f"10.0.0.{k}", max_failures_global=4, now=T0)
    checks = len(argon2_calls)
    for k in range(4, 10):
        with pytest.raises(AuthError, match=r"too many failed sign-ins on this server right now; wait 60 s"):
            authenticate(workspace, f"x{k}", "guess guess guess", address=f"10.0.0.{k}", max_failures_global=4, now=T0)
    with pytest.raises(AuthError, match="on this server"):  # a new address for ann1 waits too
        authenticate(workspace, "ann1", PASSWORD, address=OTHER, max_failures_global=4, now=T0 + sec(1))
    assert len(argon2_calls) == checks
    assert (
        authenticate(workspace, "ann1", PASSWORD, address=OWNER, max_failures_global=4, now=T0 + sec(1)).name == "ann1"
    )
    # the window ends: everyone is checked again
    t = T0 + sec(GLOBAL_WINDOW_SECONDS + 1)
    assert authenticate(workspace, "ann2", PASSWORD, address=OTHER, max_failures_global=4, now=t).name == "ann2"


def _lock_name(ws, name, address, *, failures, max_failures=2, start=T0):
    """Fail ``failures`` times for ``name`` from ``address``, waiting out each lock as a patient attacker
    would; returns the time of the last failure (the name is locked then)."""
    t, done = start, 0
    while done < failures:
        try:
            authenticate(ws, name, "not the password", address=address, max_failures=max_failures, now=t)
        except AuthError as exc:
            if "try again in" in str(exc):
                t += sec(int(str(exc).split("try again in ")[1].split(" s")[0]))
                continue
            assert "wrong user name" in str(exc)
            done += 1
    return t


def test_owner_is_not_locked_out_by_someone_who_knows_the_name(workspace, people):
    assert authenticate(workspace, "ann1", PASSWORD, address=OWNER, max_failures=2, now=T0).name == "ann1"
    t = _lock_name(workspace, "ann1", "198.51.100.1", failures=12, start=T0 + sec(1))
    assert failed_logins(workspace, "ann1", now=t) == 12
    # the backoff is capped: never more than THROTTLE_MAX_SECONDS, however many failures
    with pytest.raises(AuthError, match=rf"try again in {int(THROTTLE_MAX_SECONDS)} s"):
        authenticate(workspace, "ann1", PASSWORD, address="198.51.100.1", max_failures=2, now=t)
    # while it lasts, the owner signs in at once from an address that signed in as ann1 before ...
    assert authenticate(workspace, "ann1", PASSWORD, address=OWNER, max_failures=2, now=t + sec(1)).name == "ann1"
    assert failed_logins(workspace, "ann1", now=t + sec(1)) == 0
    # ... or from any address without recent failures
    t = _lock_name(workspace, "ann1", "198.51.100.2", failures=12, start=t + sec(2))
    assert (
        authenticate(workspace, "ann1", PASSWORD, address="192.0.2.99", max_failures=2, now=t + sec(1)).name == "ann1"
    )
    # an address that failed recently waits out the capped backoff, then signs in
    t = _lock_name(workspace, "ann1", "198.51.100.3", failures=12, start=t + sec(2))
    with pytest.raises(AuthError, match="wrong user name"):
        authenticate(workspace, "ann1", "typo typo typo", address=OTHER, max_failures=2, now=t)
    with pytest.raises(AuthError, match=rf"try again in {int(THROTTLE_MAX_SECONDS)} s"):
        authenticate(workspace, "ann1", PASSWORD, address=OTHER, max_failures=2, now=t + sec(0.5))
    later = t + sec(THROTTLE_MAX_SECONDS + 1)
    assert authenticate(workspace, "ann1", PASSWORD, address=OTHER, max_failures=2, now=later).name == "ann1"


def test_throttle_rows_are_pruned_and_hold_no_typed_text(workspace, people):
    with reader(workspace) as s:
        for k in range(30):
            with pytest.raises(AuthError):
                authenticate(
                    workspace, f"typed-secret-{k}", "guess guess guess", address=f"10.1.0.{k}", now=T0 + sec(k)
                )
        assert n_rows(s) >= 60  # a name and an address row per attempt, and the server's
        keys = list(s.scalars(select(LoginThrottle.name)))
        assert not any("typed-secret" in k or "10.1.0" in k for k in keys)
        with pytest.raises(AuthError):
            authenticate(
                workspace, "late", "guess guess guess", address=OTHER, now=T0 + sec(30 + THROTTLE_WINDOW_SECONDS)
            )
        assert n_rows(s) <= 3  # only the last attempt's name and address, and the server window
        # legacy rows keyed by the name in clear are pruned too
        s.add(LoginThrottle(name="old-style-name", failures=3, last_failure_at=T0))
        s.commit()
        with pytest.raises(AuthError):
            authenticate(
                workspace, "later", "guess guess guess", address=OTHER, now=T0 + sec(31 + THROTTLE_WINDOW_SECONDS)
            )
        assert s.scalar(select(LoginThrottle).where(LoginThrottle.name == "old-style-name")) is None


def test_client_address_trusts_forwarded_for_only_from_a_configured_proxy():
    assert client_address(None) == client_address("127.0.0.1") == client_address("::1") == "local"
    assert client_address("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_address("203.0.113.7", "10.9.9.9") == "203.0.113.7"  # header from an untrusted peer
    assert client_address(None, "10.9.9.9") == "local"
    assert client_address("198.51.100.1", "1.2.3.4, 203.0.113.5", ["198.51.100.1"]) == "203.0.113.5"
    assert (
        client_address("198.51.100.1", "203.0.113.5, 198.51.100.2", ["198.51.100.1", "198.51.100.2"]) == "203.0.113.5"
    )


# --- password policy --------------------------------------------------------------------------------------

WORDS = st.text(alphabet="bcdfghjkmnpqrstvwxz", min_size=4, max_size=8)


@settings(max_examples=200, deadline=None)
@given(password=st.text(max_size=MIN_PASSWORD_LENGTH - 1))
def test_short_passwords_are_refused(password):
    with pytest.raises(IeaError, match=r"at least 12 characters long, got \d+"):
        check_password_policy(password, name="ann")


@settings(max_examples=200, deadline=None)
@given(
    name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,10}", fullmatch=True), left=WORDS, right=WORDS, flip=st.booleans()
)
def test_passwords_containing_the_name_are_refused(name, left, right, flip):
    typed = name.swapcase() if flip else name
    with pytest.raises(IeaError, match="must not contain the user name"):
        check_password_policy(f"{left}{typed}{right}zzzzzzzzzzzz", name=name)


@settings(max_examples=200, deadline=None)
@given(words=st.lists(WORDS, min_size=3, max_size=5))
def test_long_uncommon_passwords_are_accepted(words):
    password = " ".join(words)
    if len(password) >= MIN_PASSWORD_LENGTH and "ann" not in password:
        assert check_password_policy(password, name="ann") == password  # no composition rules


@functools.lru_cache(maxsize=1)
def _long_common() -> list[str]:
    from iea_data.workflows.users._policy import _common_passwords

    return sorted(p for p in _common_passwords() if len(p) >= MIN_PASSWORD_LENGTH)


def test_the_shipped_list_holds_thousands_of_long_common_passwords():
    long_ones = _long_common()
    assert len(long_ones) > 1000 and {"password1234", "qwertyuiop123", "123456789012", "iloveyou2024"} <= set(long_ones)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_common_passwords_are_refused_in_any_case(data):
    word = data.draw(st.sampled_from(_long_common()))
    typed = "".join(c.upper() if i % 2 else c for i, c in enumerate(word))
    assert is_common_password(typed)
    with pytest.raises(IeaError, match="list of common passwords"):
        check_password_policy(typed, name="zzzz")


def test_policy_applies_to_add_user_and_set_password(workspace, people):
    with reader(workspace) as s:
        for bad, message in (
            ("Password1234", "common passwords"),
            ("ann3-is-great!", "user name"),
            ("elevenchars", "12"),
        ):
            with pytest.raises(IeaError, match=message):
                add_user(workspace, "ann3", role="annotator", password=bad)
        with pytest.raises(IeaError, match="common passwords"):
            set_password(workspace, "ann1", "qwertyuiop123")
        with pytest.raises(IeaError, match="user name"):
            set_password(workspace, "ann1", "my name is ANN1 ok", by=people["ann1"])
        assert s.scalar(select(func.count()).select_from(User).where(User.name == "ann3")) == 0
        assert authenticate(workspace, "ann1", PASSWORD).name == "ann1"  # unchanged
        add_user(workspace, "ann3", role="annotator", password="otter lamp quietly")
        # the demo passwords are refused outside a demo workspace
        with pytest.raises(IeaError):
            add_user(workspace, "admin9", role="admin", password="admin-demo")


# --- demo accounts ----------------------------------------------------------------------------------------


def test_demo_accounts_only_in_a_workspace_made_by_iea_demo(workspace):
    with reader(workspace) as s:
        assert not is_demo_workspace(workspace)
        with pytest.raises(IeaError, match="only for a workspace made by `iea demo`"):
            seed_demo_users(workspace)
        s.add(IngestRun(kind="demo", status="done"))
        s.commit()
        assert is_demo_workspace(workspace)
        s.add(IngestRun(kind="ingest", status="done"))  # real photos ingested too
        s.commit()
        assert not is_demo_workspace(workspace)
        with pytest.raises(IeaError, match="iea users add"):
            seed_demo_users(workspace)
        assert s.scalar(select(func.count()).select_from(User)) == 0


def test_demo_passwords_work_in_a_demo_workspace(workspace):
    with reader(workspace) as s:
        s.add(IngestRun(kind="demo", status="done"))
        s.commit()
        seed_demo_users(workspace)
        for name, (role, password) in DEMO_USERS.items():
            assert authenticate(workspace, name, password, address=OWNER).role == role


# --- --password-stdin and the CLI -------------------------------------------------------------------------


@settings(max_examples=300)
@given(body=st.binary(max_size=40).filter(lambda b: not b.endswith(b"\r")), tail=st.sampled_from([b"", b"\n", b"\r\n"]))
def test_strip_line_ending_removes_exactly_one(body, tail):
    if tail == b"" and body.endswith(b"\n"):
        body = body + b"x"
    assert strip_line_ending(body + tail) == body
    assert strip_line_ending(body + tail + b"\n") == body + tail  # only one


def iea(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    env.pop("IEA_HOME", None)
    env.pop("IEA_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], input=stdin, env=env, capture_output=True, timeout=300
    )


def test_cli_password_stdin_policy_and_demo_refusal(tmp_path):
    from iea_data.store.workspace import init_workspace

    ws_dir = str(tmp_path / "ws")
    init_workspace(ws_dir)  # as `iea init` does
    # printf 'a-long-secret-pw\r\n' | iea users add ...
    r = iea("-w", ws_dir, "users", "add", "alice", "--role", "admin", "--password-stdin", stdin=b"a-long-secret-pw\r\n")
    assert r.returncode == 0, r.stderr
    r = iea("-w", ws_dir, "users", "passwd", "alice", "--password-stdin", stdin=b"password1234\n")
    assert r.returncode == 1 and b"list of common passwords" in r.stderr and b"Traceback" not in r.stderr
    assert len(r.stderr.decode().strip().splitlines()) == 1
    r = iea("-w", ws_dir, "users", "demo")
    assert r.returncode == 1 and b"only for a workspace made by `iea demo`" in r.stderr and b"Traceback" not in r.stderr

    from iea_data.store import dispose_engines
    from iea_data.store.workspace import Workspace

    opened = Workspace.open(ws_dir)
    with reader(opened) as s:
        assert authenticate(opened, "alice", "a-long-secret-pw").name == "alice"
        with pytest.raises(AuthError):
            authenticate(opened, "alice", "a-long-secret-pw\r")
        assert [u for u in s.scalars(select(User.name))] == ["alice"]  # no demo accounts added
    dispose_engines()


# --- authentication events --------------------------------------------------------------------------------


def test_auth_events_are_logged_with_name_and_time_never_the_password(workspace, people, caplog):
    secret = "Zq9-this-is-the-typed-secret"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError):
        authenticate(workspace, "ann1", secret, address=ATTACKER, max_failures=2, now=T0)
    with pytest.raises(AuthError):  # a password typed into the name field
        authenticate(workspace, secret, PASSWORD, address=ATTACKER, max_failures=2, now=T0)
    with pytest.raises(AuthError):
        authenticate(workspace, "ann1", secret + "2", address=ATTACKER, max_failures=2, now=T0)
    with pytest.raises(AuthError, match="try again"):
        authenticate(workspace, "ann1", secret, address=ATTACKER, max_failures=2, now=T0)
    authenticate(workspace, "ann2", PASSWORD, address=OWNER, now=T0)
    disable_user(workspace, "ann2")
    with pytest.raises(AuthError, match="disabled"):
        authenticate(workspace, "ann2", PASSWORD, address=OWNER, now=T0)
    authenticate(workspace, "rev", PASSWORD, address=OWNER, now=T0)
    set_password(workspace, "rev", secret)
    log_sign_out("rev", address=OWNER)
    auth = [r for r in caplog.records if r.name == "iea.auth"]
    lines = [r.getMessage() for r in auth]
    text = "\n".join(lines)
    assert secret not in "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert PASSWORD not in text
    stamp = T0.isoformat(timespec="milliseconds")
    assert f"sign-in failed: user='ann1' address='{ATTACKER}' at={stamp}" in lines
    assert any(line.startswith("sign-in failed: user=<unknown name #") for line in lines)
    assert f"sign-in throttled (name): user='ann1' address='{ATTACKER}' at={stamp}" in lines
    assert any(line.startswith("signed in: user='ann2' role=annotator") for line in lines)
    assert any(line.startswith("account disabled: user='ann2'") for line in lines)
    assert any(line.startswith("sign-in refused, account disabled: user='ann2'") for line in lines)
    assert any(line.startswith("password changed: user='rev'") for line in lines)
    assert any(line.startswith("signed out ('signed out'): user='rev'") and " at=" in line for line in lines)


def test_log_escapes_control_characters_in_names(caplog):
    caplog.set_level(logging.INFO, logger="iea.auth")
    log_sign_out("ann\x1b[31m\nforged line")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "iea.auth"]
    assert "\x1b" not in line and "\n" not in line and "\\x1b[31m\\nforged line" in line
