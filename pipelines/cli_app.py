"""Command: iea app (starts the Streamlit annotator app). Registered on the root app by :func:`register`."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines._console import console, open_workspace


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root ``iea`` app."""

    @app.command("app")
    def app_cmd(
        port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 8501,
        host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    ) -> None:
        """Start the annotator app (Streamlit) on the workspace; sign in with an `iea users` account.

        Example: iea -w demo-workspace app --port 8501
        """
        from rich.markup import escape

        from annotator_app.server import run_app

        ws = open_workspace()  # a folder name is text, not Rich markup
        console.print(
            f"annotator app for [bold]{escape(str(ws.root))}[/bold] at http://{escape(host)}:{port}  "
            "(Ctrl+C stops it); error details go to this log, never to the browser"
        )
        raise typer.Exit(run_app(ws, port=port, host=host))
