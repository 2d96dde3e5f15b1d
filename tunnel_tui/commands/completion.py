"""Shell completion (click's): connection names, key names, hosts; and the
`tunnel-tui completion bash|zsh|fish` command that prints the script.

The completers are imported by the command modules but read the config only when
the shell asks (`_TUNNEL_TUI_COMPLETE` set): a normal start-up pays nothing. They
never open a secret store and never fail loudly (a broken config completes nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # click.shell_completion is imported only when the shell asks
    from click.shell_completion import CompletionItem

PROG = "tunnel-tui"
COMPLETE_VAR = "_TUNNEL_TUI_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def _config() -> object | None:
    from tunnel_tui.core import config
    from tunnel_tui.core.errors import TunnelTuiError

    try:
        return config.load()
    except (TunnelTuiError, OSError):
        return None


def connection_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    from tunnel_tui.core.config import Config

    cfg = _config()
    if not isinstance(cfg, Config):
        return []
    return [
        CompletionItem(name, help=f"{conn.database.kind.label} via {conn.bastion.host}")
        for name, conn in sorted(cfg.connections.items())
        if name.startswith(incomplete)
    ]


def key_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    from tunnel_tui.core.config import Config

    cfg = _config()
    if not isinstance(cfg, Config):
        return []
    names = sorted({key.name for key in cfg.keys.values()})
    return [CompletionItem(n, help="key") for n in names if n.startswith(incomplete)]


def host_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The configured bastions and jump hosts, as `hosts forget` takes them."""
    from click.shell_completion import CompletionItem

    from tunnel_tui.core.config import Config

    cfg = _config()
    if not isinstance(cfg, Config):
        return []
    hosts: dict[str, list[str]] = {}
    for name, conn in sorted(cfg.connections.items()):
        for hop in conn.hops:
            host = f"[{hop.host}]" if ":" in hop.host else hop.host
            shown = host if hop.port == 22 else f"{host}:{hop.port}"
            hosts.setdefault(shown, []).append(name)
    return [
        CompletionItem(h, help=", ".join(users))
        for h, users in sorted(hosts.items())
        if h.startswith(incomplete)
    ]


def script(shell: str, group: click.Command) -> str:
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # click knows these three
        raise click.BadParameter(f"unknown shell {shell!r}")
    return cls(group, {}, PROG, COMPLETE_VAR).source()


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
      bash:  echo 'eval "$(tunnel-tui completion bash)"' >> ~/.bashrc
      zsh:   echo 'eval "$(tunnel-tui completion zsh)"' >> ~/.zshrc
      fish:  tunnel-tui completion fish > ~/.config/fish/completions/tunnel-tui.fish

    It completes connection names, key names (--use-key, --key) and hosts
    (`hosts forget`).
    """
    from tunnel_tui.cli import cli

    click.echo(script(shell, cli), nl=False)
