"""`vault unlock|lock|status`: the encrypted vault used where no keyring works
(an SSH login, a headless box). The passphrase goes to the agent, which keeps it
in memory until `vault lock` or an idle timeout; it never touches argv, env or disk.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.secret import Secret

if TYPE_CHECKING:
    from tunnel_tui.actions.session import Session


@click.group()
def vault() -> None:
    """The encrypted vault used when no keyring works (an SSH login, a headless box).

    `vault unlock` hands the passphrase to the agent, which keeps it in memory until
    `vault lock` or an idle timeout. Meanwhile, from any terminal of yours, `up` works
    (the agent reads the keys itself), and commands that store or delete secrets (add,
    key generate/import/delete, remove) go through it, with no prompt. The agent never
    hands a secret back: what must read one here (validate, rotate-key, remove's
    bastion cleanup) needs a keyring or asks for the passphrase on a terminal.
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


def _session() -> Session:
    from tunnel_tui.actions.session import Session

    return Session()


@vault.command()
@click.option("--passphrase-stdin", is_flag=True, help="Read the passphrase from stdin (one line).")
def unlock(passphrase_stdin: bool) -> None:
    """Unlock the vault in the agent (creates the vault if none exists yet)."""
    from tunnel_tui.actions import vault as vault_actions

    session = _session()
    new = not vault_actions.exists(session)
    passphrase = _read_passphrase(passphrase_stdin, new=new)
    state = vault_actions.unlock(session, passphrase, create=new)
    minutes = (state.idle_timeout or 0) / 60
    verb = "created and unlocked" if state.created else "unlocked"
    click.echo(f"vault {verb} in the agent (locks again after {minutes:g} min idle)")


@vault.command()
def lock() -> None:
    """Make the agent forget the vault passphrase."""
    from tunnel_tui.actions import vault as vault_actions

    vault_actions.lock(_session())
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
    from tunnel_tui.actions import vault as vault_actions

    state = vault_actions.state(_session())
    if as_json:
        click.echo(json.dumps(state.to_json()))
        return
    if not state.exists:
        click.echo("no vault (`tunnel-tui vault unlock` creates one)")
    else:
        click.echo("vault unlocked in the agent" if state.unlocked_in_agent else "vault locked")
