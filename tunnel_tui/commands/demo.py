"""`tunnel-tui demo`: try everything in a throwaway sandbox."""

from __future__ import annotations

import click


@click.command(name="demo")
def demo() -> None:
    """Try everything in a self-contained sandbox (nothing of yours is touched)."""
    from tunnel_tui.demo.sandbox import run_demo

    run_demo()
