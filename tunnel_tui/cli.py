"""The command line: every TUI action is also a command (a contract, see README).

Subcommands live in `tunnel_tui.commands.*` and are imported only when used, so
`tunnel-tui status` starts fast and does not load Textual or asyncssh.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from tunnel_tui import __version__
from tunnel_tui.core.errors import TunnelTuiError

# name -> "module:attribute"; each module is owned by one area of the code.
COMMANDS: dict[str, tuple[str, str]] = {
    "add": ("tunnel_tui.commands.connections:add", "Add a connection (database behind a bastion)."),
    "edit": ("tunnel_tui.commands.connections:edit", "Change a connection (flags of add)."),
    "list": ("tunnel_tui.commands.connections:list_", "List connections."),
    "show": ("tunnel_tui.commands.connections:show", "Show one connection."),
    "remove": ("tunnel_tui.commands.connections:remove", "Remove a connection."),
    "key": ("tunnel_tui.commands.keys:key", "Keys: show, list, generate, import, delete."),
    "hosts": ("tunnel_tui.commands.hosts:hosts", "Trusted host keys: list, forget."),
    "vault": ("tunnel_tui.commands.vault:vault", "The encrypted vault used when no keyring works."),
    "import-ssh-config": (
        "tunnel_tui.commands.sshconfig:import_ssh_config",
        "Import hosts from ~/.ssh/config as bastions.",
    ),
    "validate": ("tunnel_tui.commands.validate:validate", "Check a connection step by step."),
    "forward": ("tunnel_tui.commands.forward:forward", "Hold a tunnel in the foreground."),
    "up": ("tunnel_tui.commands.agentctl:up", "Bring a tunnel up (in the agent)."),
    "down": ("tunnel_tui.commands.agentctl:down", "Take a tunnel down."),
    "status": ("tunnel_tui.commands.agentctl:status", "Show tunnel states."),
    "agent": ("tunnel_tui.commands.agentctl:agent", "Run the agent here; restart, stop."),
    "service": ("tunnel_tui.commands.service:service", "Run the agent as a login service."),
    "exec": ("tunnel_tui.commands.exec:exec_", "Run a command with a tunnel up (psql, ...)."),
    "export": ("tunnel_tui.commands.exchange:export", "Connections as TOML for a team."),
    "import": ("tunnel_tui.commands.exchange:import_", "Add connections from an export."),
    "rotate-key": ("tunnel_tui.commands.rotate:rotate_key", "Rotate a key with zero downtime."),
    "bastion-setup": (
        "tunnel_tui.commands.bastion_setup:bastion_setup",
        "What the bastion admin runs for a key (user, key line, sshd).",
    ),
    "completion": (
        "tunnel_tui.commands.completion:completion",
        "Print the shell completion script (bash, zsh, fish).",
    ),
    "demo": ("tunnel_tui.commands.demo:demo", "Try everything in a self-contained sandbox."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so --help does not import every module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="tunnel-tui")
@click.option("--debug", is_flag=True, help="Verbose, redacted log on stderr.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """tunnel-tui: reach private databases through SSH bastions.

    Run without a command to open the terminal app (`tunnel-tui demo` opens a
    sandbox with its own bastion, nothing of yours touched).

    \b
    A first tunnel from the command line:
      tunnel-tui add analytics --db postgresql://reader@10.0.12.34:5432/analytics \\
          --ssh ssh://tunnel@bastion.example.com --generate-key --db-password-stdin
      tunnel-tui key show analytics        # the line for ~tunnel/.ssh/authorized_keys
      tunnel-tui validate analytics        # step by step, with a hint for each failure
      tunnel-tui up analytics              # held by the background agent
      tunnel-tui status                    # from any terminal, also over SSH

    Exit codes: 0 ok, 1 the operation failed, 2 bad input (nothing changed).
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if debug:
        from tunnel_tui.core.logging import enable_debug_logging

        enable_debug_logging()
    if ctx.invoked_subcommand is None:
        _run_app()


def _run_app() -> None:
    """`tunnel-tui` with no command: the app on the user's own home. Its empty state
    offers the sandbox; the app exits and hands the starter back to run here."""
    from tunnel_tui.ui.app import TunnelTuiApp

    then = TunnelTuiApp(open_sandbox=_start_sandbox, remember_settings=True).run()
    if then is not None:
        then()


def _start_sandbox() -> None:
    from tunnel_tui.demo.sandbox import run_demo

    run_demo()


def main(argv: list[str] | None = None) -> Any:
    """Entry point: typed errors become one clear line and their exit code."""
    try:
        return cli.main(args=argv, prog_name="tunnel-tui", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # click's own usage errors read like ours: one line, then what to do.
        command = exc.ctx.command_path if exc.ctx is not None else "tunnel-tui"
        message = exc.format_message().rstrip(".")
        click.echo(f"error: {message[:1].lower()}{message[1:]}", err=True)
        click.echo(f"hint: see {command} --help", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except TunnelTuiError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
