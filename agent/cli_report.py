"""``galago report RUN_DIR... [--out FILE]``: rebuild a self-contained HTML report from run directories."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run_dirs: List[Path] = typer.Argument(..., metavar="RUN_DIR", help="Run directories (or folders of them, e.g. a --galago-report dir)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o",
                                           help="The HTML file to write (default: RUN_DIR/report.html)."),
        title: Optional[str] = typer.Option(None, "--title", help="The report's title."),
    ) -> None:
        """Build one HTML report (screenshots inline, readable offline) from run directories."""
        from rich.console import Console
        from rich.markup import escape

        from actions.errors import ConfigError
        from agent.report import build_report

        target = out or (run_dirs[0] / "report.html")
        try:
            path = build_report(run_dirs, target, title=title)
        except ConfigError as e:
            Console(stderr=True).print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        size = path.stat().st_size
        Console().print(f"report: {escape(str(path))} ({size / 1e6:.2f} MB)", highlight=False, soft_wrap=True)
