"""``galago serve``: put any policy behind an OpenAI-compatible endpoint (policy/serve.py)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from actions.errors import ConfigError


def served_name(spec: str) -> str:
    """The model id a spec is served under: ``hf:/models/UI-TARS-1.5-7B`` -> ``ui-tars-1.5-7b``
    (the directory name says the family to clients that guess from names), others the spec."""
    name, _, arg = spec.partition(":")
    if name in ("hf", "moe") and arg:
        return Path(arg.rstrip("/")).name.lower() or name
    return spec


def serve_command(
    policy: str = typer.Option("builtin", "--policy", "-p", help="Policy spec to serve: builtin, moe:DIR, hf:DIR, scripted, ..."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for all; no auth, so take care)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port (0: any free port)."),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="Model id clients use (default: from the spec)."),
) -> None:
    """Serve a policy as an OpenAI-compatible /v1/chat/completions endpoint."""
    from policy import load
    from policy.serve import PolicyServer, space_params

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        pol = load(policy)
        srv = PolicyServer(pol, host, port, model_name=model_name or served_name(policy))
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    except OSError as e:  # port in use, bad host
        typer.echo(f"error: cannot listen on {host}:{port}: {e}", err=True)
        raise typer.Exit(2)
    with srv:
        typer.echo(f"serving {srv.model_name} ({space_params(pol)['coordinate_space']} coordinates) at {srv.url}")
        typer.echo(f"use it with: galago run TASK --policy openai:{srv.model_name}@{srv.url}", err=True)
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    """Add the `serve` command to the main galago app."""
    app.command("serve")(serve_command)
