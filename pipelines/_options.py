"""Typer option types that more than one ``iea`` command takes (one help text each)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

EngineOpt = Annotated[
    str, typer.Option(help="local (this machine) or ray (Ray Data: a local runtime, or --ray-address).")
]
RayAddressOpt = Annotated[
    Optional[str], typer.Option(help="Ray cluster to join: 'auto' or host:port (default RAY_ADDRESS; else local).")
]
ActorsOpt = Annotated[
    Optional[int],
    typer.Option(help="Model actors on Ray (default: 1 per GPU; on CPUs 4 threads each, 2+ a node).", min=1),
]
