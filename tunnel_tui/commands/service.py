"""`service install|uninstall|status`: the agent as a systemd user service (a launchd
agent on macOS), so tunnels marked autostart are there after login or reboot."""

from __future__ import annotations

import click

from tunnel_tui.actions import service_unit


@click.group()
def service() -> None:
    """Run the agent as a login service (systemd --user; launchd on macOS).

    \b
      tunnel-tui service install     # writes the unit, enables and starts it
      tunnel-tui edit prod --autostart
      loginctl enable-linger $USER   # optional: keep it running without a login
    """


def _todo(report: service_unit.ServiceReport) -> None:
    if report.todo:
        click.echo("To finish, run:")
        for command in report.todo:
            click.echo(f"  {command}")


@service.command()
def install() -> None:
    """Write the unit for `tunnel-tui agent` (restarts on failure, logs to the
    journal) and, where a user manager runs, enable and start it."""
    report = service_unit.install()
    click.echo(f"wrote {report.path}")
    for command in report.done:
        click.echo(f"ran: {command}")
    if not report.done and not service_unit.is_macos():
        click.echo("no systemd user manager answers here: nothing was started")
    if service_unit.linger_hint() in report.todo:
        click.echo("(lingering keeps the agent running while you are logged out, "
                   "and starts it at boot)")
    _todo(report)


@service.command()
def uninstall() -> None:
    """Stop and disable the agent's unit and remove it (running tunnels close)."""
    report = service_unit.uninstall()
    click.echo(f"removed {report.path}")
    for command in report.done:
        click.echo(f"ran: {command}")
    _todo(report)


@service.command()
def status() -> None:
    """Whether the unit is installed, enabled and running."""
    report = service_unit.status()
    click.echo(f"unit: {report.path} ({'installed' if report.installed else 'not installed'})")
    if report.exec_start:
        click.echo(f"runs: {report.exec_start}")
    if report.installed:
        if report.active is None:
            click.echo("state: unknown (no systemd user manager answers here)")
        else:
            click.echo(f"state: {report.active}, {report.enabled}")
    if report.linger is not None:
        click.echo(f"linger: {'on' if report.linger else 'off'}")
    _todo(report)
