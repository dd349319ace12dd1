"""Command: iea app (starts the Streamlit annotator app). Registered on the root app by :func:`register`."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines._console import console, open_workspace


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root ``iea`` app."""

    @app.command("app")
    def app_cmd(
        port: Annotated[
            int, typer.Option(help="Port to serve on (the proxy's with --replicas).", min=1, max=65535)
        ] = 8501,
        host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
        replicas: Annotated[
            int,
            typer.Option(
                help="Streamlit replicas behind HAProxy (sticky sessions, health checks); more than 1 needs "
                "a PostgreSQL catalog (docs/deployment.md).",
                min=1,
                max=64,
            ),
        ] = 1,
    ) -> None:
        """Start the annotator app (Streamlit) on the workspace; sign in with an `iea users` account.

        Example: iea -w demo-workspace app --port 8501; a team: IEA_DATABASE_URL=postgresql+psycopg://…
        iea app --replicas 4 --port 8501
        """
        from rich.markup import escape

        ws = open_workspace()  # a folder name is text, not Rich markup
        if replicas == 1:
            from annotator_app.server import run_app

            console.print(
                f"annotator app for [bold]{escape(str(ws.root))}[/bold] at http://{escape(host)}:{port}  "
                "(Ctrl+C stops it); error details go to this log, never to the browser"
            )
            raise typer.Exit(run_app(ws, port=port, host=host))
        from annotator_app.replicas import check_team_database, find_haproxy, run_team

        check_team_database(ws, replicas)  # before anything starts: SQLite is refused
        find_haproxy()

        def ready(team) -> None:
            names = ", ".join(f"{n} :{r.port}" for n, r in team.replicas.items())
            console.print(
                f"annotator team for [bold]{escape(str(ws.root))}[/bold] at {escape(team.url)}  "
                f"({replicas} replicas: {escape(names)}; HAProxy config {escape(str(team.config_path))}; "
                "Ctrl+C stops everything)"
            )
            console.file.flush()  # a log behind a pipe gets the address now, not at exit

        raise typer.Exit(run_team(ws, replicas=replicas, port=port, host=host, on_ready=ready))
