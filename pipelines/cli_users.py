"""Commands: iea users (add, ls, passwd, disable, enable, reset-password, role, log, demo).

Registered on the root app by :func:`register`.

The annotator app's accounts. Passwords are read from stdin (``--password-stdin``: the first
line, without its line ending ``\n`` or ``\r\n``) or typed at a hidden prompt; they never appear
on the command line. New passwords follow the library's policy (``check_password_policy``).
Every change is written to the audit log (``iea users log``) with the operating-system login
of whoever ran the command.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from pipelines._console import JsonOpt, console, lit, open_workspace, print_json, print_table

users_app = typer.Typer(
    help="Annotator app accounts: add, ls, passwd, disable, enable, reset-password, role, log, demo.",
    no_args_is_help=True,
)

PasswordStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of stdin (for scripts); one trailing \\n or \\r\\n "
        "is removed, nothing else.",
    ),
]


def strip_line_ending(line: bytes) -> bytes:
    """``line`` without exactly one trailing ``\\r\\n`` or ``\\n`` (nothing else is removed)."""
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def _password(from_stdin: bool) -> str:
    if from_stdin:
        raw = strip_line_ending(sys.stdin.buffer.readline())  # bytes: no newline translation
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            from iea_data.core.errors import IeaError

            raise IeaError("the password on stdin is not valid UTF-8; pass it as UTF-8 text") from None
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def add_cmd(
    name: Annotated[str, typer.Argument(help="Login name: letters, digits, _ . @ -")],
    role: Annotated[str, typer.Option("--role", help="annotator | reviewer | admin.")],
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Create a user (argon2 password hash).

    The password needs at least 12 characters, must not contain the name and must not be a
    common password. Example: echo 'otter lamp quietly' | iea users add alice --role annotator --password-stdin
    """
    from iea_data.workflows.users import add_user

    password = _password(password_stdin)
    user = add_user(open_workspace(), name, role=role, password=password)
    console.print(f"added user [bold]{lit(user.name)}[/bold] ({user.role}), id {user.id}")


@users_app.command("ls")
def ls_cmd(as_json: JsonOpt = False) -> None:
    """List users: name, role, enabled, and whether they must set a new password (after a reset).

    Example: iea users ls --json
    """
    from iea_data.workflows.users import list_users

    rows = [
        {
            "id": u.id,
            "name": u.name,
            "role": u.role,
            "enabled": u.enabled,
            "must_change_password": u.must_change_password,
        }
        for u in list_users(open_workspace())
    ]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["id", "name", "role", "enabled", "must_change_password"], title=f"{len(rows)} user(s)")


@users_app.command("passwd")
def passwd_cmd(
    name: Annotated[str, typer.Argument(help="The user.")],
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Set a user's password (also lifts a login throttle on the name).

    Same password rules as `iea users add`.
    Example: echo 'kettle north violet' | iea users passwd alice --password-stdin
    """
    from iea_data.workflows.users import set_password

    password = _password(password_stdin)
    set_password(open_workspace(), name, password)
    console.print(f"password of [bold]{lit(name)}[/bold] changed")


@users_app.command("disable")
def disable_cmd(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Disable a user: no more logins, and the app logs them out; their labels stay.

    Example: iea users disable alice
    """
    from iea_data.workflows.users import disable_user

    disable_user(open_workspace(), name)
    console.print(f"disabled [bold]{lit(name)}[/bold]")


@users_app.command("enable")
def enable_cmd(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Enable a disabled user again.

    Example: iea users enable alice
    """
    from iea_data.workflows.users import enable_user

    enable_user(open_workspace(), name)
    console.print(f"enabled [bold]{lit(name)}[/bold]")


@users_app.command("reset-password")
def reset_password_cmd(
    name: Annotated[str, typer.Argument(help="The user.")],
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Give a user a temporary password that they must replace at their next sign-in.

    Without --password-stdin a random one is generated and printed once (give it to the user
    by a private channel; it is not stored anywhere but as a hash). Also lifts a login throttle.
    Example: iea users reset-password alice
    """
    from iea_data.workflows.users import reset_password

    given = _password(True) if password_stdin else None
    reset = reset_password(open_workspace(), name, password=given)
    if reset.generated:
        console.print(f"temporary password of [bold]{lit(name)}[/bold] (shown once):")
        console.print(lit(reset.password))
    else:
        console.print(f"temporary password of [bold]{lit(name)}[/bold] set")
    console.print("they must choose a new password at their next sign-in")


@users_app.command("role")
def role_cmd(
    name: Annotated[str, typer.Argument(help="The user.")],
    role: Annotated[str, typer.Argument(help="annotator | reviewer | admin.")],
) -> None:
    """Change a user's role; it applies at once, also in an open app session.

    The last enabled admin cannot be demoted. Example: iea users role alice reviewer
    """
    from iea_data.workflows.users import set_role

    user = set_role(open_workspace(), name, role)
    console.print(f"[bold]{lit(user.name)}[/bold] is now {lit(user.role)}")


@users_app.command("log")
def log_cmd(
    user: Annotated[Optional[str], typer.Option("--user", help="Only the changes to this account.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many entries, newest first.")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """The audit log of account changes: when, what, whom, old and new role, and who made it.

    Never a password. Example: iea users log --user alice; iea users log --json
    """
    from iea_data.workflows.users import list_user_events

    events = list_user_events(open_workspace(), user=user, limit=limit)
    rows = [
        {
            "at": e.at.isoformat(timespec="seconds"),
            "action": e.action,
            "user": e.user,
            "old_role": e.old_role,
            "new_role": e.new_role,
            "by": e.by,
        }
        for e in events
    ]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["at", "action", "user", "old_role", "new_role", "by"], title=f"{len(rows)} change(s)")


@users_app.command("demo")
def demo_cmd() -> None:
    """Create the demo accounts (admin, reviewer, annotator1, annotator2) — for demo workspaces only.

    Their passwords are public (docs/annotation.md), so this refuses any workspace that `iea demo`
    did not build (one with other ingests or none). Example: iea -w demo-workspace users demo
    """
    from iea_data.workflows.users import DEMO_USERS, seed_demo_users

    users = seed_demo_users(open_workspace())
    print_table(
        [{"name": u.name, "role": u.role, "password": DEMO_USERS[u.name][1]} for u in users],
        ["name", "role", "password"],
        title="demo accounts (demo workspaces only)",
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root ``iea`` app."""
    app.add_typer(users_app, name="users")
