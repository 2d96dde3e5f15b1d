"""`vault unlock|lock|status`: the encrypted vault used where no keyring works
(an SSH login, a headless box). The passphrase goes to the agent, which keeps it
in memory until `vault lock` or an idle timeout; it never touches argv, env or disk.
"""

from __future__ import annotations

import json
import sys

import click

from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.secret import Secret


@click.group()
def vault() -> None:
    """The encrypted vault used when no keyring works (an SSH login, a headless box).

    `vault unlock` hands the passphrase to the agent, which keeps it in memory until
    `vault lock` or an idle timeout. Meanwhile, from any terminal of yours, `up` reads
    the keys through the agent, and commands that read or store secrets (add, edit,
    remove, key generate/import/delete, rotate-key) go through it too, with no prompt.
    No passphrase ever goes in argv or the environment.

    \b
      tunnel-tui vault unlock                 # asks on the terminal
      tunnel-tui vault unlock --passphrase-stdin < file
      tunnel-tui add prod --db ... --ssh ...  # no prompt: the agent holds the vault
    """


def _read_passphrase(from_stdin: bool, *, new: bool) -> Secret:
    if from_stdin:
        line = sys.stdin.readline()
        value = line[:-1] if line.endswith("\n") else line
    elif not sys.stdin.isatty():
        raise UsageError(
            "no terminal to ask the vault passphrase on",
            hint="pipe it with --passphrase-stdin",
        )
    elif new:
        value = click.prompt(
            "New vault passphrase", hide_input=True, confirmation_prompt="Repeat it", err=True
        )
    else:
        value = click.prompt("Vault passphrase", hide_input=True, err=True)
    if not value:
        raise UsageError("the vault passphrase cannot be empty", field="passphrase")
    return Secret(value)


@vault.command()
@click.option("--passphrase-stdin", is_flag=True, help="Read the passphrase from stdin (one line).")
def unlock(passphrase_stdin: bool) -> None:
    """Unlock the vault in the agent (creates the vault if none exists yet)."""
    from tunnel_tui.agent.client import ensure_agent
    from tunnel_tui.core import paths
    from tunnel_tui.core import vault as vault_file

    new = not vault_file.exists(paths.vault_path())
    passphrase = _read_passphrase(passphrase_stdin, new=new)
    state = ensure_agent().vault_unlock(passphrase, create=new)
    minutes = float(state.get("idle_timeout") or 0) / 60
    verb = "created and unlocked" if new else "unlocked"
    click.echo(f"vault {verb} in the agent (locks again after {minutes:g} min idle)")


@vault.command()
def lock() -> None:
    """Make the agent forget the vault passphrase."""
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning

    try:
        AgentClient().vault_lock()
    except AgentNotRunning:
        pass
    click.echo("vault locked")


@vault.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="{exists, unlocked, idle_timeout (s, or null)} on stdout.",
)
def status(as_json: bool) -> None:
    """Whether a vault exists and whether the agent holds it unlocked."""
    from tunnel_tui.agent.client import AgentClient, AgentNotRunning
    from tunnel_tui.core import paths
    from tunnel_tui.core import vault as vault_file

    try:
        state = AgentClient().vault_status()
        state.pop("v", None), state.pop("id", None), state.pop("ok", None)
    except AgentNotRunning:
        state = {
            "exists": vault_file.exists(paths.vault_path()),
            "unlocked": False,
            "idle_timeout": None,  # no agent, so no timer
        }
    if as_json:
        click.echo(json.dumps(state))
        return
    if not state["exists"]:
        click.echo("no vault (`tunnel-tui vault unlock` creates one)")
    else:
        click.echo("vault unlocked in the agent" if state["unlocked"] else "vault locked")
