"""Terminal output and secrets (issue 10, sections 2, 3 and 8).

- Names, paths and messages print with control characters escaped and Rich markup shown
  literally, on a terminal and in a pipe; ``--json`` stays valid JSON.
- ``iea catalog snapshot`` writes no password hash and no login-throttle row, and refuses a
  folder holding files it did not write.
- A database URL's password is never printed, tracebacks included.
- Outside a terminal, tables print every value whole (tab-separated).
"""

from __future__ import annotations

import io
import json
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import run_iea
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

ESC_NAME = "a\x1b[31mred"  # an image file whose name holds ESC [ 31 m
MARKUP_NAME = "b[bold red]x[∕]"  # U+2215 DIVISION SLASH: a file name cannot hold "/"
LONG_NAME = "good_" + "n" * 55  # 60 characters
UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def iea(*args: str, env: dict | None = None):
    return run_iea(*args, env=env, timeout=300)


def _piped_env(**extra: str) -> dict:
    """A narrow, non-terminal environment: Rich would size tables to 40 columns here."""
    env = {"COLUMNS": "40", "FORCE_COLOR": "", "TTY_COMPATIBLE": "", "TERM": "dumb"}
    env.update(extra)
    return env


def _png(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    with open(path, "wb") as fh:  # open() takes any name; some writers re-parse paths
        Image.fromarray(pixels).save(fh, format="PNG")


def _test_console(*, terminal: bool):
    from pipelines._console import SafeConsole

    buf = io.StringIO()
    return SafeConsole(file=buf, force_terminal=terminal, color_system=None, width=60, emoji=False), buf


# --------------------------------------------------------------------------- escaping (library of the CLI)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40))
def test_escape_control_leaves_no_unsafe_character_and_keeps_safe_text(text):
    from pipelines._console import escape_control

    out = escape_control(text)
    assert not any(unicodedata.category(c) in UNSAFE_CATEGORIES for c in out)
    if not any(unicodedata.category(c) in UNSAFE_CATEGORIES for c in text):
        assert out == text  # letters, emoji, spaces, backslashes: unchanged
    for c in text:
        if unicodedata.category(c) in UNSAFE_CATEGORIES:
            assert c not in out
    assert escape_control(out) == out  # idempotent


def test_escape_control_writes_visible_escapes():
    from pipelines._console import escape_control

    assert escape_control("a\x1b[31mb\x7f\x9b\u202e\udce9\n\t") == "a\\x1b[31mb\\x7f\\x9b\\u202e\\udce9\\x0a\\x09"
    assert escape_control("line1\nline2\tx\x1b", keep_newlines=True) == "line1\nline2\tx\\x1b"
    assert escape_control("café 日本 🙂 a b") == "café 日本 🙂 a b"


@pytest.mark.parametrize("terminal", [True, False])
def test_table_and_messages_print_user_text_literally(monkeypatch, terminal):
    import pipelines._console as con

    console, buf = _test_console(terminal=terminal)
    monkeypatch.setattr(con, "console", console)
    rows = [{"id": 1, "name": "[bold red]x[/]"}, {"id": 2, "name": "a\x1b[31mred\u202e"}, {"id": 3, "name": ":smile:"}]
    con.print_table(rows, ["id", "name"], title="[blink]t")
    console.print(f"[red]error:[/red] {con.lit('[bold]y[/] :smile: z' + chr(0x1B) + '[2J')}")
    out = buf.getvalue()
    assert "\x1b" not in out and "\u202e" not in out
    assert "[bold red]x[/]" in out and "a\\x1b[31mred\\u202e" in out and "[blink]t" in out
    assert "[bold]y[/] :smile: z\\x1b[2J" in out and ":smile:" in out and "error:" in out


def test_library_warnings_are_printed_escaped(capsys, monkeypatch):
    import logging

    from pipelines._console import SafeLogHandler

    monkeypatch.setenv("IEA_DATABASE_URL", "postgresql+psycopg://iea:s3cretPW@db/iea")
    handler = SafeLogHandler(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("iea_data.test_cli_hardening")
    log.addHandler(handler)
    try:
        log.warning("%s: unreadable EXIF (%s)", "photos/a\x1b[31mred\u202e.jpg", "s3cretPW")
    finally:
        log.removeHandler(handler)
    err = capsys.readouterr().err
    assert err == "photos/a\\x1b[31mred\\u202e.jpg: unreadable EXIF (***)\n"


def test_print_json_is_valid_json_without_raw_control_characters(monkeypatch):
    import pipelines._console as con

    console, buf = _test_console(terminal=False)
    monkeypatch.setattr(con, "console", console)
    obj = [{"name": "a\x1b[31m\x7f\x9b\u202e\udce9😀 café", "n": 1.5}]
    con.print_json(obj)
    text = buf.getvalue()
    assert not any(unicodedata.category(c) in UNSAFE_CATEGORIES for c in text.replace("\n", ""))
    assert json.loads(text) == obj and "café" in text


def test_catalog_ls_escapes_control_characters_and_prints_long_names_whole_in_a_pipe(sqlite_workspace, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate((ESC_NAME, MARKUP_NAME, LONG_NAME)):
        _png(photos / f"{name}.png", i)
    ws = sqlite_workspace.root
    r = iea("-w", str(ws), "ingest", str(photos), "--workers", "1", env=_piped_env())
    assert r.returncode == 0, r.stderr
    r = iea("-w", str(ws), "catalog", "ls", env=_piped_env())
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "a\\x1b[31mred.png" in r.stdout
    assert f"{MARKUP_NAME}.png" in r.stdout  # markup printed as text
    assert f"{LONG_NAME}.png" in r.stdout and "…" not in r.stdout  # whole, though COLUMNS=40
    lines = r.stdout.splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["id", "name", "status"]
    grepped = [ln for ln in lines if "good_" in ln]
    assert len(grepped) == 1 and grepped[0].split("\t")[header.index("name")] == f"{LONG_NAME}.png"
    r = iea("-w", str(ws), "catalog", "ls", "--json", env=_piped_env())
    rows = json.loads(r.stdout)  # still valid JSON; the name reads back exactly
    assert "\x1b" not in r.stdout
    assert sorted(x["name"] for x in rows) == sorted(f"{n}.png" for n in (ESC_NAME, MARKUP_NAME, LONG_NAME))
    r = iea("-w", str(ws), "show", "[bold red]q[/]" + "\x1b[2J", "--out", str(tmp_path / "o.png"), env=_piped_env())
    assert r.returncode == 1 and "\x1b" not in r.stderr and "[bold red]q[/]" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_tables_outside_a_terminal_print_every_value_whole():
    """`iea rules ls` and `iea benchmark --list` (tables with long cells) through a pipe at COLUMNS=40."""
    from iea_data.core.rules import get_rule_base, list_rule_bases
    from iea_data.workflows.benchmark import get_method_cfg, list_methods

    r = iea("rules", "ls", env=_piped_env())
    assert r.returncode == 0, r.stderr
    for name in list_rule_bases():
        assert f"{name}\t{get_rule_base(name).title}\t" in r.stdout
    r = iea("benchmark", "--list", env=_piped_env())
    assert r.returncode == 0, r.stderr
    assert "# methods (also checkpoint:PATH)" in r.stdout and "…" not in r.stdout
    for name in list_methods():
        assert get_method_cfg(name).description in r.stdout


@pytest.mark.parametrize("args", [("rules", "ls"), ("rules", "show", "portrait_first")])
def test_a_reader_that_stops_early_ends_the_command_quietly(args):
    """`iea rules ls | head`: exit 141 and nothing on stderr, for TSV tables and Rich messages alike."""
    import subprocess
    import sys

    from conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO), **_piped_env()}
    p = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    p.stdout.close()  # the reader is gone before the command writes
    err = p.stderr.read()
    p.stderr.close()
    assert p.wait(timeout=120) == 141 and err == b""


def test_benchmark_like_table_survives_a_pipe(monkeypatch):
    import pipelines._console as con

    console, buf = _test_console(terminal=False)
    monkeypatch.setattr(con, "console", console)
    method = "checkpoint:/very/long/path/to/runs/fine-tune-2026-12-01/model_best_epoch_17.pth"
    rows = [{"method": method, "mae": 0.123456, "ssim": None, "images_per_s": 41.0}]
    con.print_table(rows, ["method", "mae", "ssim", "images_per_s"], title="4 images · true scores: labels")
    assert buf.getvalue().splitlines() == [
        "# 4 images · true scores: labels",
        "method\tmae\tssim\timages_per_s",
        f"{method}\t0.1235\t\t41",
    ]


# --------------------------------------------------------------------------- snapshots hold no secret


TYPED_NAME = "Typed-Into-Name-Field-pw-9x7"
PASSWORD = "otter lamp quietly 42 violet"


def _users_and_throttle(ws) -> str:
    """An admin with a password, and a failed login whose "name" is a password typed in the wrong field."""
    from sqlalchemy import select

    from iea_data.store import User
    from iea_data.workflows.users import AuthError, add_user, authenticate

    add_user(ws, "alice", role="admin", password=PASSWORD)  # commits
    with pytest.raises(AuthError):
        authenticate(ws, TYPED_NAME, "whatever")  # counts the failure in login_throttle
    with ws.session() as s:
        return s.scalars(select(User.password_hash).where(User.name == "alice")).one()


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_snapshot_writes_no_password_hash_and_no_typed_login_names(workspace, tmp_path):
    import pyarrow.parquet as pq

    from iea_data.workflows.catalog import snapshot_tables, write_snapshot

    hashed = _users_and_throttle(workspace)
    assert hashed and len(hashed) > 20
    out = tmp_path / "snap"
    counts = write_snapshot(workspace, out)
    names = sorted(p.name for p in out.iterdir())
    assert "users.parquet" not in names and "login_throttle.parquet" not in names
    assert sorted(counts) == snapshot_tables() and "users" not in counts
    blob = _all_bytes(out)
    for secret in (hashed, TYPED_NAME, PASSWORD, "argon2"):
        assert secret.encode() not in blob
    # --include-users: who they are, never the hash
    counts = write_snapshot(workspace, out, include_users=True)
    users = pq.read_table(out / "users.parquet").to_pylist()
    assert [(u["name"], u["role"], u["enabled"]) for u in users] == [("alice", "admin", True)]
    assert set(users[0]) == {"id", "name", "role", "enabled", "created_at"}
    blob = _all_bytes(out)
    assert hashed.encode() not in blob and TYPED_NAME.encode() not in blob and b"argon2" not in blob
    assert "login_throttle.parquet" not in {p.name for p in out.iterdir()}


def test_snapshot_out_refuses_folders_it_did_not_write(sqlite_workspace, tmp_path):
    from iea_data.core.errors import IeaError
    from iea_data.workflows.catalog import write_snapshot

    native = tmp_path / "release" / "native"  # a release's native/ folder: its own Parquet files
    native.mkdir(parents=True)
    (native / "images.parquet").write_bytes(b"release table")
    (native / "images").mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for folder in (native, notes, a_file):
        before = sorted((p.name, p.read_bytes() if p.is_file() else b"") for p in folder.parent.rglob("*"))
        with pytest.raises(IeaError, match="new or empty folder"):
            write_snapshot(sqlite_workspace, folder)
        assert sorted((p.name, p.read_bytes() if p.is_file() else b"") for p in folder.parent.rglob("*")) == before
    assert (native / "images.parquet").read_bytes() == b"release table"
    # a folder holding an earlier snapshot is ours: replaced, and (older snapshots') secret tables removed
    snap = tmp_path / "snap"
    write_snapshot(sqlite_workspace, snap, include_users=True)
    assert (snap / "users.parquet").exists()
    info = json.loads((snap / "snapshot.json").read_text())
    info["files"].append("login_throttle.parquet")  # as a snapshot written before this fix would list it
    (snap / "snapshot.json").write_text(json.dumps(info))
    (snap / "login_throttle.parquet").write_bytes(b"old names")
    write_snapshot(sqlite_workspace, snap)
    names = {p.name for p in snap.iterdir()}
    assert "users.parquet" not in names and "login_throttle.parquet" not in names and "images.parquet" in names
    # ...but a foreign file beside a snapshot still makes it not ours
    (snap / "keep.csv").write_text("a,b\n")
    with pytest.raises(IeaError, match="keep.csv"):
        write_snapshot(sqlite_workspace, snap)


def test_snapshot_cli_refuses_a_release_folder_in_one_line(sqlite_workspace, tmp_path):
    ws = sqlite_workspace.root
    native = tmp_path / "native"
    native.mkdir()
    (native / "labels.parquet").write_bytes(b"release")
    r = iea("-w", str(ws), "catalog", "snapshot", "--out", str(native), env=_piped_env())
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "did not write (e.g. labels.parquet)" in r.stderr and "Traceback" not in r.stderr
    assert (native / "labels.parquet").read_bytes() == b"release"
    r = iea("-w", str(ws), "catalog", "snapshot", "--out", str(tmp_path / "snap"), env=_piped_env())
    assert r.returncode == 0, r.stderr
    assert "users\t" not in r.stdout and "login_throttle" not in r.stdout and "images\t0" in r.stdout


# --------------------------------------------------------------------------- database URL passwords


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["postgresql+psycopg", "mysql", "mysql+pymysql", "postgresql"]),
    user=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=8),
    password=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="'\"/"), min_size=1, max_size=16
    ),
    host=st.sampled_from(["db", "127.0.0.1:5432", "db.example.org"]),
    context=st.sampled_from(["{}", "cannot use database URL '{}': no driver", "(x) at {} failed\n\tagain"]),
)
def test_redact_url_masks_any_password(scheme, user, password, host, context):
    from iea_data.core.redaction import redact_url

    url = f"{scheme}://{user}:{password}@{host}/iea"
    assert redact_url(context.format(url)) == context.format(f"{scheme}://{user}:***@{host}/iea")


def test_database_errors_never_quote_statement_parameters(workspace):
    """A refused statement's message (what `unexpected error:` would print) holds no parameter value."""
    from sqlalchemy.exc import IntegrityError

    from iea_data.store import User

    with workspace.session() as s:
        s.add(User(name="bob", role="admin", password_hash="$argon2id$SECRET-HASH-1", enabled=True))
        s.commit()
        s.add(User(name="bob", role="admin", password_hash="$argon2id$SECRET-HASH-2", enabled=True))
        with pytest.raises(IntegrityError) as exc:
            s.commit()
    assert "SECRET-HASH" not in str(exc.value) and "parameters hidden" in str(exc.value)


def test_settings_and_workspace_never_show_the_password(tmp_path, monkeypatch):
    from iea_data.core.errors import IeaError
    from iea_data.store.workspace import Settings, Workspace

    monkeypatch.setenv("IEA_DATABASE_URL", "postgresql+psycopg://iea:s3cretPW@db/iea")
    ws = Workspace(root=tmp_path)
    assert ws.database_url_redacted == "postgresql+psycopg://iea:***@db/iea"
    assert "s3cretPW" not in repr(Settings(database_url="mysql://iea:s3cretPW@h/d")) and "s3cretPW" not in repr(ws)
    with pytest.raises(IeaError) as exc:
        Settings(database_url="iea:s3cretPW@host/db")
    assert "s3cretPW" not in str(exc.value) and "database_url" in str(exc.value)


@pytest.mark.parametrize(
    ("args", "debug"),
    [
        (("catalog", "stats"), ""),
        (("db", "current"), ""),
        (("catalog", "errors"), "1"),
        (("catalog", "stats", "--json"), "1"),
    ],
)
def test_database_password_is_never_printed(tmp_path, monkeypatch, args, debug):
    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "iea.toml").write_text("")
    r = iea("-w", str(ws), *args, env=_piped_env(IEA_DATABASE_URL="mysql://iea:s3cretPW@dbhost/iea", IEA_DEBUG=debug))
    assert r.returncode == 1
    assert "s3cretPW" not in r.stdout + r.stderr and "mysql://iea:***@dbhost/iea" in r.stderr
    if debug:
        assert "Traceback" in r.stderr
    else:
        assert len(r.stderr.strip().splitlines()) == 1 and "psycopg[binary]" in r.stderr  # markup not eaten


def test_password_in_the_workspace_setting_and_a_refused_connection_are_not_printed(tmp_path, monkeypatch):
    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "iea.toml").write_text('[catalog]\ndatabase_url = "postgresql+psycopg://iea:s3cret%40PW@127.0.0.1:1/iea"\n')
    r = iea("-w", str(ws), "catalog", "stats", env=_piped_env(IEA_DEBUG="1"))  # the driver's traceback too
    assert r.returncode == 1 and "connection" in r.stderr.lower() and "Traceback" in r.stderr
    assert "s3cret" not in r.stdout + r.stderr
    r = iea(
        "init",
        str(tmp_path / "ws2"),
        env=_piped_env(IEA_DATABASE_URL="postgresql+psycopg://iea:s3cretPW@127.0.0.1:1/iea"),
    )
    assert r.returncode == 1 and "s3cretPW" not in r.stdout + r.stderr and "iea:***@127.0.0.1:1" in r.stderr


def test_an_unreachable_database_is_one_line_that_says_what_to_check(tmp_path, monkeypatch):
    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "iea.toml").write_text("")
    r = iea(
        "-w",
        str(ws),
        "catalog",
        "stats",
        env=_piped_env(IEA_DATABASE_URL="postgresql+psycopg://iea:s3cretPW@127.0.0.1:1/iea"),
    )
    assert r.returncode == 1 and "s3cretPW" not in r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unexpected error" not in lines[0]
    assert "cannot reach the catalog database" in lines[0] and "[catalog] database_url" in lines[0]


@pytest.mark.postgres
def test_postgres_url_with_a_password_is_shown_masked(tmp_path, db_url, monkeypatch):
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    with_pw = url.set(password="s3cretPW").render_as_string(hide_password=False)  # trust auth ignores it
    env = _piped_env(IEA_DATABASE_URL=with_pw)
    r = iea("init", str(tmp_path / "ws"), env=env)
    assert r.returncode == 0, r.stderr
    assert ":***@" in r.stdout
    for args in (("catalog", "stats"), ("db", "current"), ("catalog", "stats", "--json")):
        r = iea("-w", str(tmp_path / "ws"), *args, env=env)
        assert r.returncode == 0, r.stderr
        assert "s3cretPW" not in r.stdout + r.stderr
