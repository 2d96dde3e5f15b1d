"""Finding 5 (issue 14): a host key is trusted only as the key the user checked.

The app used to offer its trust dialog for any failure at the host-key step (a
"connection reset", which an attacker can cause, was shown in place of a
fingerprint), and Accept re-ran with accept-new: whatever key came next was saved,
for every hop and retry. Now the dialog appears only for an unknown key we actually
received, with its fingerprint, and Accept saves exactly that key. On the CLI,
`--accept-host-key SHA256:…` trusts exactly the fingerprint given.
"""

from __future__ import annotations

import asyncssh

from tests.fixtures.pilot import SIZE, main_screen, make_app, settle, wait_for_stacked, wait_until
from tests.reliability.security_helpers import (
    HostileSsh,
    ResetAtKeyExchange,
    public_line,
    run_cli,
)
from tunnel_tui.core.known_hosts import KnownHosts
from tunnel_tui.core.steps import StepStatus
from tunnel_tui.ui.screens.host_key import HostKeyConfirmScreen
from tunnel_tui.ui.screens.validation import ValidationScreen


def _row(stdout: str, step: str) -> str:
    return next(line for line in stdout.splitlines() if line[2:].startswith(step))


def test_accept_host_key_trusts_exactly_the_fingerprint_given(secret_service):
    other = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    with HostileSsh() as server:
        name = server.add_connection()

        out = run_cli("validate", name)  # no TTY: fails, naming the key and the option
        assert out.returncode == 1
        assert f"--accept-host-key {server.fingerprint}" in out.stdout, out.stdout

        out = run_cli("validate", name, "--accept-host-key", other)
        assert out.returncode == 1
        row = _row(out.stdout, "host-key")
        assert row.startswith("✕") and server.fingerprint in row and other in row, out.stdout
        assert "· ssh-auth" in out.stdout
        assert KnownHosts().trusted_keys(server.host, server.port) == []

        bad = run_cli("validate", name, "--accept-host-key", "SHA256:short")
        assert bad.returncode == 2 and "--accept-host-key" in bad.stderr

        out = run_cli("validate", name, "--accept-host-key", other,
                      "--accept-host-key", server.fingerprint + "=")
        row = _row(out.stdout, "host-key")
        assert row.startswith("✓") and server.fingerprint in row, out.stdout
        assert "✓ ssh-auth" in out.stdout
    assert KnownHosts().trusted_keys(server.host, server.port) == [public_line(server.host_key)]


async def test_reset_at_the_host_key_step_offers_nothing_to_trust(secret_service):
    with ResetAtKeyExchange() as server:
        server.add_connection("reset")
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await main_screen(pilot)
            await pilot.press("v")
            log = await wait_for_stacked(pilot, ValidationScreen, "validation log")
            await wait_until(pilot, log.finished.is_set, timeout=60, what="validation")
            await settle(pilot)  # whatever the screen does after the run, it has done
            failed = log.step_log.failed
            assert failed is not None and failed.step == "host-key", failed
            assert failed.status is StepStatus.FAIL and "reset" in failed.detail.lower()
            assert not any(isinstance(s, HostKeyConfirmScreen) for s in app.screen_stack)
            log.action_retry()  # and again: still nothing to accept
            await settle(pilot)
            await wait_until(pilot, log.finished.is_set, timeout=60, what="retry")
            await settle(pilot)
            assert not any(isinstance(s, HostKeyConfirmScreen) for s in app.screen_stack)
        assert server.connections >= 2
    assert KnownHosts().trusted_keys(server.host, server.port) == []


def test_up_accept_host_key_trusts_exactly_the_fingerprint_given(secret_service, agent_reaper):
    other = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    with HostileSsh() as server:
        name = server.add_connection()

        out = run_cli("up", name, "--timeout", "10")
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"--accept-host-key {server.fingerprint}" in out.stderr, out.stderr

        out = run_cli("up", name, "--timeout", "10", "--accept-host-key", other)
        assert out.returncode == 1 and server.fingerprint in out.stderr, out.stderr
        assert KnownHosts().trusted_keys(server.host, server.port) == []

        assert run_cli("up", name, "--accept-host-key", "nonsense").returncode == 2

        out = run_cli("up", name, "--timeout", "10", "--accept-host-key", server.fingerprint)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.startswith(f"{name} up on 127.0.0.1:"), out.stdout
        run_cli("down", name)
    assert KnownHosts().trusted_keys(server.host, server.port) == [public_line(server.host_key)]


def test_add_accept_host_key_checks_and_trusts_exactly_that_key(secret_service):
    other = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    with HostileSsh() as server:
        ssh = f"ssh://{server.user}@{server.host}:{server.port}"
        db = "postgresql://app@10.0.0.5:5432/app"

        bad = run_cli("add", "c0", "--db", db, "--ssh", ssh, "--accept-host-key", "SHA256:x")
        assert bad.returncode == 2 and "--accept-host-key" in bad.stderr
        assert "c0" not in run_cli("list").stdout  # nothing added

        # A new key, not installed yet: the host key is met before auth all the same.
        out = run_cli("add", "c1", "--db", db, "--ssh", ssh, "--accept-host-key", other)
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"{server.fingerprint} unknown and not the fingerprint given" in out.stdout
        assert KnownHosts().trusted_keys(server.host, server.port) == []

        out = run_cli("add", "c2", "--db", db, "--ssh", ssh,
                      "--accept-host-key", server.fingerprint)
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"{server.fingerprint} new, matches what you gave: saved" in out.stdout
    assert KnownHosts().trusted_keys(server.host, server.port) == [public_line(server.host_key)]
