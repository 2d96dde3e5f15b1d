"""The command line's side of secrets: its `Session` (the vault passphrase is asked on a
terminal), secrets read from stdin or a hidden prompt (never argv or the environment),
and the questions an identity file raises."""

from __future__ import annotations

import sys

import click

from tunnel_tui.actions import keys as key_actions
from tunnel_tui.actions.connections import KeyInput, KeySource
from tunnel_tui.actions.session import Session
from tunnel_tui.core.errors import UsageError
from tunnel_tui.core.secret import Secret


def _ask_vault_passphrase() -> Secret | None:
    if not sys.stdin.isatty():
        return None
    return Secret(click.prompt("Vault passphrase", hide_input=True, err=True))


def cli_session() -> Session:
    """The session of this command (default home): the keyring of this login; else the
    vault the agent holds unlocked (`tunnel-tui vault unlock` in an SSH login lets
    commands store secrets and have key work done in the agent, with no passphrase in
    argv or env); else the vault opened here, its passphrase asked on a terminal."""
    return Session(ask_vault_passphrase=_ask_vault_passphrase, agent_vault=True)


class StdinLines:
    """Secrets piped on stdin, one per line, in a fixed order (passphrase first)."""

    def read(self, what: str, flag: str) -> Secret:
        if sys.stdin.isatty():
            value = click.prompt(
                what[:1].upper() + what[1:],
                hide_input=True,
                default="",
                show_default=False,
                err=True,  # stdout stays clean for --json
            )
        else:
            line = sys.stdin.readline()
            value = line[:-1] if line.endswith("\n") else line
            value = value[:-1] if value.endswith("\r") else value
        if not value:
            raise UsageError(f"no {what} on stdin", hint=f"{flag} reads one line from stdin")
        return Secret(value)


def identity_key(
    path_text: str, stdin: StdinLines, passphrase_stdin: bool, name: str | None = None
) -> KeyInput:
    """An --identity file, read now (copied, never referenced); its passphrase from stdin
    or asked on a terminal when the key is encrypted."""
    identity = key_actions.inspect_identity(path_text)
    if identity.encrypted and not passphrase_stdin and not sys.stdin.isatty():
        raise UsageError(
            f"{identity.path} is encrypted and there is no terminal to ask its passphrase on",
            field="passphrase",
            hint="pipe it with --passphrase-stdin",
        )
    if identity.permission_warning:
        click.echo(identity.permission_warning, err=True)
    passphrase: Secret | None = None
    if passphrase_stdin:
        passphrase = stdin.read("key passphrase", "--passphrase-stdin")
    elif identity.encrypted:
        passphrase = Secret(
            click.prompt(f"Passphrase for {identity.path}", hide_input=True, err=True)
        )
    return KeyInput(
        KeySource.FILE, path=str(identity.path), data=identity.data, passphrase=passphrase,
        name=name,
    )
